"""The text shortcuts of babelclip.models.openclip and .causal_text against open_clip itself.

* ``_WordMemoTokenizer.ids`` must give exactly ``SimpleTokenizer(texts)``: the reference is
  open_clip's own tokenizer, run on the same texts.
* ``causal_text.encode_shared_prefixes`` (trimmed batches, the last block at the pooled
  position only, shared prefixes computed once) must give ``CLIP.encode_text`` on the full
  padded context, to float rounding, whatever grouping its cost model picks and however the
  texts are batched.
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from _tiny_openclip import tiny_openclip_model_dir

import babelclip.models.causal_text as ct
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


def test_mojibake_prefilter_never_hides_a_bad_text():
    """A text with none of ftfy's mojibake characters is never ``is_bad``; texts with them are
    still checked. Random strings over those characters, other non-ASCII letters and ASCII."""
    import random

    from ftfy.badness import is_bad

    chars = oc._mojibake_chars()
    assert {"Ã", "Â", "€", "\x85", "Œ"} <= chars and not any(c.isascii() for c in chars)
    assert "猫" not in chars and "क" not in chars  # CJK and Devanagari texts skip the regex
    rng = random.Random(0)
    pool = sorted(chars) + list("αβγλπωжшщ猫犬写真मकअ") + list("abcAZ .,?!-(")
    bad_seen = 0
    for _ in range(20000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(1, 8)))
        if chars.isdisjoint(text):
            assert not is_bad(text), repr(text)
        bad_seen += is_bad(text)
    assert bad_seen > 1000  # the sample really exercises the regex
    for text in ["voilÃ le travail", "cafÃ©", "donâ€™t", "×²"]:  # real mojibake is still caught
        assert is_bad(text) and not chars.isdisjoint(text)


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


@pytest.mark.parametrize("overhead", [0, 192, 10**9])  # share everything / the default / share nothing
def test_shared_prefix_forward_equals_encode_text(tiny_clip, monkeypatch, overhead):
    monkeypatch.setattr(ct, "GROUP_OVERHEAD_POSITIONS", overhead)
    monkeypatch.setattr(ct, "SUFFIX_BATCH", 3)  # several suffix batches under one prefix
    texts = _prompts()
    model = tiny_clip.model
    full = tiny_clip.tokenizer(texts)  # open_clip's ids, padded to the whole context
    with torch.inference_mode():
        ref = model.encode_text(full).float()
        ids = tiny_clip.tokenize(texts, tiny_clip_lang())
        assert ids.shape[1] < full.shape[1]  # trimmed, so the comparison covers trimming too
        got = ct.encode_shared_prefixes(model, ids, tiny_clip._pool_index(ids), batch_size=5)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)
    # and through the public path: unit-norm rows of the same features
    pub = torch.from_numpy(tiny_clip.encode_texts(texts, "en"))
    torch.testing.assert_close(pub, torch.nn.functional.normalize(ref, dim=-1), atol=1e-5, rtol=0)


def _plan(texts, tiny_clip, overhead):
    import numpy as np

    ids = tiny_clip.tokenize(texts, tiny_clip_lang()).numpy()
    lengths = tiny_clip._pool_index(torch.from_numpy(ids)).numpy() + 1
    mat = np.where(np.arange(ids.shape[1]) < lengths[:, None], ids, -1)
    order = np.lexsort(mat.T[::-1])
    return ct.plan_groups(mat[order], lengths[order], overhead=overhead), mat[order], lengths[order]


def test_plan_groups_shares_real_prefixes_and_counts_positions(tiny_clip):
    import numpy as np

    labels = ["dog", "cat", "tree", "hot dog", "house", "car", "bird", "fish"]
    texts = [f"a photo of a {lab}." for lab in labels] + [f"{lab} in a picture" for lab in labels]
    plan, mat, lengths = _plan(texts, tiny_clip, overhead=0)
    assert plan.total == lengths.sum() and plan.positions < plan.total
    shared = 0
    for g, p in enumerate(plan.prefix):
        rows = slice(plan.starts[g], plan.starts[g + 1])
        if p:  # every text of the group really starts with those p tokens and keeps >= 1 of its own
            assert (mat[rows, :p] == mat[plan.starts[g], :p]).all()
            assert lengths[rows].min() > p
            shared += (plan.starts[g + 1] - plan.starts[g] - 1) * p
    assert plan.positions == plan.total - shared
    # the eight "a photo of a ..." texts share at least sot + "a photo of a" (5 tokens)
    photo = [g for g, p in enumerate(plan.prefix) if p >= 5 and plan.starts[g + 1] - plan.starts[g] == 8]
    assert photo
    # a fixed cost larger than any saving: no groups at all
    none, _, _ = _plan(texts, tiny_clip, overhead=10**9)
    assert not none.prefix.any() and none.positions == none.total


def test_plan_groups_never_shares_a_whole_text():
    import numpy as np

    mat = np.array([[1, 2, 3, -1], [1, 2, 3, 4]])  # the first text is a prefix of the second
    plan = ct.plan_groups(mat, np.array([3, 4]), overhead=0)
    assert plan.prefix.max() <= 2  # the shorter text keeps its pooled position outside the prefix


def test_last_block_runs_at_pooled_positions_only(tiny_clip):
    """The last block's MLP sees one row per text; earlier blocks see every position."""
    seen = []
    hooks = [blk.mlp.register_forward_hook(lambda m, a, out: seen.append(tuple(a[0].shape)))
             for blk in tiny_clip.model.transformer.resblocks]
    texts = _prompts()
    try:
        with torch.inference_mode():
            ids = tiny_clip.tokenize(texts, tiny_clip_lang())
            ct.encode_causal(tiny_clip.model, ids)
    finally:
        for h in hooks:
            h.remove()
    assert len(seen) == 2 and seen[0][:2] == tuple(ids.shape) and seen[-1] == (len(texts), seen[0][2])

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
        got = ct.encode_causal(model, ids).float()
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)


def test_plain_rows_run_in_trimmed_length_sorted_batches(tiny_clip, monkeypatch):
    monkeypatch.setattr(ct, "GROUP_OVERHEAD_POSITIONS", 10**9)  # nothing shared: plain batches only
    used = []
    real = ct.encode_causal
    monkeypatch.setattr(ct, "encode_causal", lambda m, ids, pool=None, past=None: used.append(ids.shape) or real(m, ids, pool, past))
    texts = _prompts()
    got = tiny_clip.encode_texts(texts, "en", batch_size=4)
    with torch.inference_mode():
        ref = torch.nn.functional.normalize(tiny_clip.model.encode_text(tiny_clip.tokenizer(texts)).float(), dim=-1)
    torch.testing.assert_close(torch.from_numpy(got), ref, atol=1e-5, rtol=0)
    assert len(used) == -(-len(texts) // 4) and all(s[0] <= 4 for s in used)
    assert used[0][1] < used[-1][1]  # each batch trimmed to its own longest text


def test_kv_padding_rule_is_fixed_by_length_and_vector_width(monkeypatch):
    cpu, meta = torch.device("cpu"), torch.device("meta")
    monkeypatch.setattr(ct, "_cpu_vector_lanes", lambda: 16)
    assert [ct.kv_padding(n, cpu) for n in (5, 16, 17, 21, 22, 31, 32)] == [0, 0, 0, 0, 10, 1, 0]
    assert ct.kv_padding(13, meta) == 0  # only the CPU kernel has the remainder path
    monkeypatch.setattr(ct, "_cpu_vector_lanes", lambda: 8)
    assert [ct.kv_padding(n, cpu) for n in (2, 3, 8, 13)] == [0, 5, 0, 3]


@pytest.mark.parametrize("prefix", [0, 3])
def test_padded_causal_attention_equals_the_causal_kernel(prefix):
    """Masked zero keys after the real ones change nothing but float rounding, with or without a
    shared prefix, at every length (padded or not)."""
    g = torch.Generator().manual_seed(0)
    for n in range(1, 40):
        q = torch.randn(5, 4, n, 16, generator=g)
        k, v = torch.randn(2, 5, 4, n, 16, generator=g)
        past = tuple(torch.randn(2, 1, 4, prefix, 16, generator=g)) if prefix else None
        if past:  # the reference sees the prefix's keys/values before every text's own
            ref_k, ref_v = (torch.cat([p.expand(5, -1, -1, -1), t], dim=2) for p, t in zip(past, (k, v)))
        else:
            ref_k, ref_v = k, v
        mask = torch.ones(n, prefix + n, dtype=torch.bool).tril(prefix)
        ref = torch.nn.functional.scaled_dot_product_attention(q, ref_k, ref_v, attn_mask=mask)
        torch.testing.assert_close(ct._causal_attention(q, k, v, past), ref, atol=1e-6, rtol=0)
