"""The two text shortcuts of babelclip.models.openclip against open_clip itself.

* ``_WordMemoTokenizer.ids`` must give exactly ``SimpleTokenizer(texts)``: the reference is
  open_clip's own tokenizer, run on the same texts.
* ``_clip_encode_text_shared_prefixes`` (a token-prefix trie run like incremental decoding)
  must give ``CLIP.encode_text`` on the full padded context, to float rounding, however its
  key/value budget splits the texts into groups and however many trie nodes it runs at once.
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from _tiny_openclip import tiny_openclip_model_dir

import babelclip.models.openclip as oc
from babelclip import create_model

# Prompts of several scripts as Babel-ImageNet builds them (template x label), plus the inputs
# the word memo must hand back to SimpleTokenizer: HTML entities, mojibake ftfy repairs,
# control characters str.split() treats as whitespace, fullwidth forms NFC keeps.
MULTILINGUAL = [
    "ein Foto von einem Hund.",
    "Ein Foto von einem Hund.",
    "ein  Foto\tvon einem\nHund ",
    "一张狗的照片。",
    "犬の写真です",
    "फ़ोटो में एक कुत्ता",
    "صورة كلب",
    "фотография собаки",
    "una foto de un perro pequeño",
    "valokuva koirasta",
    "suuraa saree 🐕 dog!!",
    "it's a (good) dog-like thing, isn't it?",
    "",
    "   ",
]
EDGE = [
    "&amp;",
    "cats &amp; dogs",
    "Tom &lt;3 Jerry",
    "voilÃ le travail",
    "a photo of voilÃ le travail",
    "x\x1cy",
    "x\x1c y\x1fz\x85w",
    "ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ ＡＢＣ １２３",
    "ＡＢＣ photo",
    " ".join(["Sehenswürdigkeit"] * 40),  # far more than 77 tokens: truncated, eot kept
    " ".join(f"word{i}" for i in range(120)),
]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Hundreds of tiny ops: with 2 OpenMP threads on a loaded machine they spin and crawl."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def simple():
    return open_clip.SimpleTokenizer()  # context length 77, clean="lower": the default


def test_word_memo_tokenizer_equals_simple_tokenizer(simple):
    fast = oc._WordMemoTokenizer.wrap(simple)
    assert fast is not None
    texts = MULTILINGUAL + EDGE
    ref = simple(texts)
    got = fast.ids(texts)
    assert got.dtype == ref.dtype and got.shape == ref.shape == (len(texts), 77)
    for t, a, b in zip(texts, got, ref):
        assert torch.equal(a, b), f"ids differ for {t!r}"
    # over-long texts: full width, sot first, eot last (truncated, not dropped)
    long_rows = ref[-2:]
    assert (long_rows != 0).all() and (long_rows[:, -1] == simple.eot_token_id).all()
    # the memo is warm now: the same texts again, in another order and batch, same ids
    again = fast.ids(texts[::-1])
    assert torch.equal(again, ref.flip(0))
    assert fast.memo  # words were memoised


def test_word_memo_only_wraps_the_default_simple_tokenizer():
    assert oc._WordMemoTokenizer.wrap(open_clip.SimpleTokenizer(clean="whitespace")) is None
    assert oc._WordMemoTokenizer.wrap(open_clip.SimpleTokenizer(reduction_mask="random")) is None


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    enc = create_model(str(tiny_openclip_model_dir(tmp_path_factory.mktemp("sp"), "clip")))
    assert enc.share_prefixes and enc._fast is not None
    return enc


def _prompts() -> list[str]:
    templates = ["a photo of a {}.", "a photo of the {}", "{}", "{} in a picture", "a bad photo of a {}."]
    labels = ["dog", "hot dog", "dog sled", "cat", "ein Hund", "猫", "tree", "a"]
    return [t.replace("{}", lab) for t in templates for lab in labels] + ["a photo of a", "a photo of a dog."]


@pytest.mark.parametrize("cache_bytes,node_batch", [(1, 4096), (3000, 3), (256 * 2**20, 2)])
def test_shared_prefix_forward_equals_encode_text(tiny_clip, monkeypatch, cache_bytes, node_batch):
    monkeypatch.setattr(oc, "_PREFIX_CACHE_BYTES", cache_bytes)  # 1: one text per group
    monkeypatch.setattr(oc, "_NODE_BATCH", node_batch)
    texts = _prompts()
    model = tiny_clip.model
    full = tiny_clip.tokenizer(texts)  # open_clip's ids, padded to the whole context
    with torch.inference_mode():
        ref = model.encode_text(full).float()
        ids = tiny_clip.tokenize(texts, tiny_clip_lang())
        assert ids.shape[1] < full.shape[1]  # trimmed, so the comparison covers trimming too
        got = oc._clip_encode_text_shared_prefixes(model, ids, tiny_clip._pool_index(ids))
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)
    # and through the public path: unit-norm rows of the same features
    pub = torch.from_numpy(tiny_clip.encode_texts(texts, "en"))
    torch.testing.assert_close(pub, torch.nn.functional.normalize(ref, dim=-1), atol=1e-5, rtol=0)


def test_shared_prefix_groups_really_split(tiny_clip, monkeypatch):
    """A 1-byte budget falls back to the floor of one longest text's nodes per group: many groups."""
    monkeypatch.setattr(oc, "_PREFIX_CACHE_BYTES", 1)
    calls = []
    real = oc._trie_forward

    def counting(model, blocks, mat, lengths, cast):
        calls.append(len(mat))
        return real(model, blocks, mat, lengths, cast)

    monkeypatch.setattr(oc, "_trie_forward", counting)
    texts = _prompts()
    with torch.inference_mode():
        ids = tiny_clip.tokenize(texts, tiny_clip_lang())
        oc._clip_encode_text_shared_prefixes(tiny_clip.model, ids, tiny_clip._pool_index(ids))
    assert sum(calls) == len(texts) and len(calls) > len(texts) // 2


def tiny_clip_lang():
    from babelclip import get_language

    return get_language("en")


def test_causal_batch_path_equals_encode_text(tiny_clip):
    """The long-sequence path (SDPA with is_causal, trimmed batches) against open_clip."""
    texts = _prompts()
    model = tiny_clip.model
    with torch.inference_mode():
        ref = model.encode_text(tiny_clip.tokenizer(texts)).float()
        ids = tiny_clip.tokenize(texts, tiny_clip_lang())
        got = oc._clip_encode_text_causal(model, ids).float()
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)


def test_long_sequences_take_the_causal_path_and_match(tiny_clip, monkeypatch):
    monkeypatch.setattr(oc, "_SHARE_MAX_MEAN_TOKENS", 0)  # every call is "long"
    monkeypatch.setattr(oc, "_CAUSAL_BATCH", 4)
    used = []
    real = oc._clip_encode_text_causal
    monkeypatch.setattr(oc, "_clip_encode_text_causal", lambda m, ids: used.append(ids.shape) or real(m, ids))
    texts = sorted(_prompts(), key=len)
    got = tiny_clip.encode_texts(texts, "en")
    with torch.inference_mode():
        ref = torch.nn.functional.normalize(tiny_clip.model.encode_text(tiny_clip.tokenizer(texts)).float(), dim=-1)
    torch.testing.assert_close(torch.from_numpy(got), ref, atol=1e-5, rtol=0)
    assert len(used) == -(-len(texts) // 4) and all(s[0] <= 4 for s in used)
    assert used[0][1] < used[-1][1]  # each batch trimmed to its own longest text
