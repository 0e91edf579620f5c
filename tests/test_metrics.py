"""Classification and retrieval metrics: hand-worked cases, bootstrap CIs, and equality with
open_clip's and CLIP_benchmark's own code on identical embeddings."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from babelclip.eval.metrics import (
    bootstrap_ci,
    bootstrap_means,
    classification_metrics,
    retrieval_metrics,
    target_ranks,
)

# ---------------------------------------------------------------- hand-worked cases


def test_three_by_three_by_hand():
    # image 0 (class 0): its class scores highest            -> rank 0
    # image 1 (class 1): 0.3 is beaten by 0.8 only           -> rank 1
    # image 2 (class 2): three-way tie, two lower indices    -> rank 2 (stable: lower index first)
    scores = np.array([[0.9, 0.5, 0.1], [0.2, 0.3, 0.8], [0.4, 0.4, 0.4]])
    targets = np.array([0, 1, 2])
    assert target_ranks(scores, targets).tolist() == [0, 1, 2]
    m = classification_metrics(scores, targets, ks=(1, 2, 5), n_boot=0)
    assert m["top1"] == pytest.approx(1 / 3)
    assert m["top2"] == pytest.approx(2 / 3)
    assert m["top5"] == 1.0  # k capped at the 3 classes: every class is in the "top 5"
    assert m["top5_chance"] == 1.0 and m["top2_chance"] == pytest.approx(2 / 3)
    assert m["chance"] == pytest.approx(1 / 3)
    assert m["top1_norm"] == pytest.approx(0.0)  # exactly chance
    assert m["mean_per_class_recall"] == pytest.approx(1 / 3)  # recalls 1, 0, 0
    assert "top1_ci_low" not in m  # n_boot=0: no interval


def test_ties_go_to_the_lower_index_like_argmax():
    scores = np.array([[0.5, 0.5, 0.1], [0.5, 0.5, 0.1]])
    m0 = classification_metrics(scores[:1], np.array([0]), n_boot=0)
    m1 = classification_metrics(scores[1:], np.array([1]), n_boot=0)
    assert m0["top1"] == 1.0 and m1["top1"] == 0.0
    assert np.argmax(scores[0]) == 0  # the rule agrees with argmax
    # and with a stable descending sort
    order = np.argsort(-scores[1], kind="stable")
    assert target_ranks(scores[1:], np.array([1]))[0] == order.tolist().index(1)
    # many ties: top-k equals a brute-force stable sort
    rng = np.random.default_rng(4)
    scores = rng.integers(0, 3, size=(200, 6)).astype(float)
    targets = rng.integers(0, 6, 200)
    m = classification_metrics(scores, targets, ks=(1, 2, 5), n_boot=0)
    for k in (1, 2, 5):
        hits = [targets[i] in np.argsort(-scores[i], kind="stable")[:k] for i in range(200)]
        assert m[f"top{k}"] == pytest.approx(np.mean(hits))


def test_chance_normalisation_four_classes():
    # 4 images, 4 classes, 2 right: top1 0.5, chance 0.25 -> (0.5-0.25)/(1-0.25) = 1/3
    scores = np.eye(4)
    targets = np.array([0, 1, 3, 2])
    m = classification_metrics(scores, targets, n_boot=0)
    assert m["top1"] == 0.5 and m["chance"] == 0.25
    assert m["top1_norm"] == pytest.approx(1 / 3)
    # perfect classification normalises to 1, whatever the number of classes
    assert classification_metrics(np.eye(7), np.arange(7), n_boot=0)["top1_norm"] == pytest.approx(
        1.0
    )


def test_mean_per_class_recall_unbalanced_and_absent_class():
    # class 0: three images, two right (recall 2/3); class 1: one image, right (recall 1);
    # class 2 has no image and does not enter the mean (as sklearn's balanced accuracy).
    scores = np.array([[0.9, 0.1, 0.0], [0.8, 0.1, 0.0], [0.1, 0.9, 0.0], [0.0, 0.9, 0.1]])
    targets = np.array([0, 0, 0, 1])
    m = classification_metrics(scores, targets, n_boot=0)
    assert m["top1"] == pytest.approx(3 / 4)
    assert m["mean_per_class_recall"] == pytest.approx((2 / 3 + 1) / 2)


def test_retrieval_by_hand_any_caption_counts():
    # 3 images; image 0 has texts 0 and 1, image 1 text 2, image 2 text 3.
    scores = np.array(
        [
            [0.1, 0.9, 0.0],  # text 0 (image 0): ranks image 0 second
            [0.8, 0.2, 0.0],  # text 1 (image 0): first
            [0.3, 0.7, 0.0],  # text 2 (image 1): first
            [0.5, 0.4, 0.2],  # text 3 (image 2): third
        ]
    )
    t2i = np.array([0, 0, 1, 2])
    m = retrieval_metrics(scores, t2i, ks=(1, 2))
    assert m["t2i_r@1"] == pytest.approx(2 / 4)
    assert m["t2i_r@2"] == pytest.approx(3 / 4)
    # image 0 column: texts ranked 1 (0.8), 3 (0.5), 2 (0.3), 0 (0.1): its text 1 is first -> hit@1
    # image 1 column: 0 (0.9), 2 (0.7), ...: its text 2 is second -> hit@2 only
    # image 2 column: 3 (0.2) is the largest -> hit@1
    assert m["i2t_r@1"] == pytest.approx(2 / 3)
    assert m["i2t_r@2"] == pytest.approx(1.0)
    assert m["t2i_chance@1"] == pytest.approx(1 / 3)
    # chance that a random order of 4 texts puts one of m in the top k: 1 - C(4-m,k)/C(4,k)
    # image 0 (m=2): k=1 -> 1/2, k=2 -> 1 - 1/6; images 1, 2 (m=1): k=1 -> 1/4, k=2 -> 1/2
    assert m["i2t_chance@1"] == pytest.approx((1 / 2 + 1 / 4 + 1 / 4) / 3)
    assert m["i2t_chance@2"] == pytest.approx((5 / 6 + 1 / 2 + 1 / 2) / 3)


def test_retrieval_ties_follow_a_stable_sort_both_ways():
    # one image column of equal scores: image 0 owns texts 1 and 2; a stable order is 0, 1, 2,
    # so its first own text sits at position 1: miss at k=1, hit at k=2
    scores = np.array([[0.5, 0.9], [0.5, 0.1], [0.5, 0.2]])
    m = retrieval_metrics(scores, np.array([1, 0, 0]), ks=(1, 2))
    assert m["i2t_r@1"] == 0.5 and m["i2t_r@2"] == 1.0  # image 1: text 0 first (0.9) -> hit

    # many ties (small integer scores): compare with a brute-force stable sort
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 3, size=(40, 12)).astype(float)
    t2i = np.r_[np.arange(12), rng.integers(0, 12, 28)]
    m = retrieval_metrics(scores, t2i, ks=(1, 3))
    for k in (1, 3):
        t2i_hits = [
            list(np.argsort(-scores[i], kind="stable")[:k]).count(t2i[i]) for i in range(40)
        ]
        i2t_hits = [
            np.isin(np.argsort(-scores[:, j], kind="stable")[:k], np.flatnonzero(t2i == j)).any()
            for j in range(12)
        ]
        assert m[f"t2i_r@{k}"] == pytest.approx(np.mean(t2i_hits))
        assert m[f"i2t_r@{k}"] == pytest.approx(np.mean(i2t_hits))


def test_image_without_text_is_a_candidate_not_a_query(caplog):
    # image 2 has no text: it can still outrank the right image for text 1, but is not queried
    scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.3, 0.8]])
    m = retrieval_metrics(scores, np.array([0, 1]), ks=(1,))
    assert m["t2i_r@1"] == 0.5  # text 1 retrieves image 2 first
    assert m["t2i_chance@1"] == pytest.approx(1 / 3)
    # image 0: text 0 (0.9) first -> hit; image 1: text 1 (0.3) first -> hit; image 2 skipped
    assert m["i2t_r@1"] == 1.0 and m["i2t_chance@1"] == 0.5
    assert "1 of 3 images have no text" in caplog.text


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="targets must lie in 0..2"):
        classification_metrics(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="shape"):
        classification_metrics(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="integer"):
        classification_metrics(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="NaN"):
        classification_metrics(np.full((2, 3), np.nan), np.array([0, 1]))
    with pytest.raises(ValueError, match="positive"):
        retrieval_metrics(np.zeros((2, 2)), np.array([0, 1]), ks=(0,))


# ---------------------------------------------------------------- bootstrap


def test_bootstrap_ci_contains_estimate_shrinks_and_is_deterministic():
    rng = np.random.default_rng(1)
    small = (rng.random(100) < 0.3).astype(float)
    large = (rng.random(10_000) < 0.3).astype(float)
    lo_s, hi_s = bootstrap_ci(small, seed=3)
    lo_l, hi_l = bootstrap_ci(large, seed=3)
    assert lo_s <= small.mean() <= hi_s and lo_l <= large.mean() <= hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 5  # width ~ 1/sqrt(n): 10x for 100x the data
    assert bootstrap_ci(small, seed=3) == (lo_s, hi_s)
    # another seed draws other resamples (the quantiles of 100 0/1 values may still coincide)
    assert not np.array_equal(bootstrap_means(small, seed=3), bootstrap_means(small, seed=4))


def test_bootstrap_ci_matches_normal_theory():
    # For a mean of n iid values the 95% interval is about mean +- 1.96 sd/sqrt(n).
    rng = np.random.default_rng(2)
    for values in (rng.normal(size=4000), (rng.random(4000) < 0.4).astype(float)):
        half = 1.96 * values.std() / np.sqrt(values.size)
        lo, hi = bootstrap_ci(values, n_boot=4000, seed=0)
        assert lo == pytest.approx(values.mean() - half, abs=0.15 * half)
        assert hi == pytest.approx(values.mean() + half, abs=0.15 * half)


def test_classification_ci_fields():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(500, 10))
    targets = rng.integers(0, 10, 500)
    scores[np.arange(250), targets[:250]] += 3  # half the images made easy
    m = classification_metrics(scores, targets, seed=5)
    assert m["top1_ci_low"] <= m["top1"] <= m["top1_ci_high"]
    assert m["top1_norm_ci_low"] <= m["top1_norm"] <= m["top1_norm_ci_high"]
    assert m["top1_norm_ci_low"] == pytest.approx((m["top1_ci_low"] - 0.1) / 0.9)
    assert classification_metrics(scores, targets, seed=5) == m


# ---------------------------------------------------------------- against open_clip and CLIP_benchmark


def _array_safe_float(x):
    """``float`` that accepts 1-element arrays, as NumPy < 2.3 did."""
    return (
        builtins.float(np.asarray(x).reshape(-1)[0])
        if isinstance(x, np.ndarray)
        else builtins.float(x)
    )


class _TableModel:
    """A 'CLIP model' whose towers look embeddings up by id (raw, not normalised)."""

    def __init__(self, text_emb, image_emb):
        import torch

        self.text = torch.as_tensor(text_emb)
        self.image = torch.as_tensor(image_emb)

    def encode_text(self, ids, normalize=False):
        e = self.text[ids]
        return e / e.norm(dim=-1, keepdim=True) if normalize else e

    def encode_image(self, ids, normalize=False):
        e = self.image[ids]
        return e / e.norm(dim=-1, keepdim=True) if normalize else e


class _TableTokenizer:
    def __init__(self, vocab: dict[str, int]):
        self.vocab = vocab

    def __call__(self, texts):
        import torch

        return torch.tensor([self.vocab[t] for t in texts])


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_classification_equals_open_clip_and_clip_benchmark(monkeypatch):
    torch = pytest.importorskip("torch")
    zsc = pytest.importorskip("clip_benchmark.metrics.zeroshot_classification")
    from open_clip.zero_shot_classifier import build_zero_shot_classifier
    from open_clip_train import zero_shot as oc_zero_shot

    # CLIP_benchmark 1.6.2 and open_clip_train call float() on a 1-element array, a TypeError
    # on NumPy >= 2.3; shadow ``float`` in those two modules only, nothing else changes.
    monkeypatch.setattr(zsc, "float", _array_safe_float, raising=False)
    monkeypatch.setattr(oc_zero_shot, "float", _array_safe_float, raising=False)

    rng = np.random.default_rng(0)
    n_classes, n_templates, n_images, dim = 12, 3, 300, 16
    classnames = [f"class{i}" for i in range(n_classes)]
    cb_templates = [f"template {j} of {{c}}" for j in range(n_templates)]
    oc_templates = [t.replace("{c}", "{}") for t in cb_templates]
    texts = [t.format(c=c) for c in classnames for t in cb_templates]
    vocab = {t: i for i, t in enumerate(texts)}
    class_dirs = rng.normal(size=(n_classes, dim))
    text_emb = np.repeat(class_dirs, n_templates, axis=0) + 0.8 * rng.normal(size=(len(texts), dim))
    targets = rng.integers(0, n_classes, n_images)
    image_emb = class_dirs[targets] + 1.5 * rng.normal(size=(n_images, dim))
    model = _TableModel(text_emb, image_emb)
    tok = _TableTokenizer(vocab)

    # ours: normalise, average the templates, re-normalise, cosine
    weights = _unit(_unit(text_emb).reshape(n_classes, n_templates, dim).mean(1))
    scores = _unit(image_emb) @ weights.T
    ours = classification_metrics(scores, targets, n_boot=0)
    assert 0.2 < ours["top1"] < 0.9  # a non-trivial case

    # open_clip: its classifier builder and open_clip_train's accuracy
    oc_weights = build_zero_shot_classifier(
        model, tok, classnames, oc_templates, num_classes_per_batch=5
    )
    np.testing.assert_allclose(oc_weights.numpy().T, weights, atol=1e-6)
    oc_logits = 100.0 * model.encode_image(torch.arange(n_images), normalize=True) @ oc_weights
    oc_top1, oc_top5 = oc_zero_shot.accuracy(oc_logits, torch.as_tensor(targets), topk=(1, 5))
    assert ours["top1"] == pytest.approx(oc_top1 / n_images, abs=1e-6)
    assert ours["top5"] == pytest.approx(oc_top5 / n_images, abs=1e-6)

    # CLIP_benchmark: its whole evaluate(), on a dataloader of image ids
    class _DS:
        classes = classnames

    class _Loader(list):
        dataset = _DS()

    ids, tg = torch.arange(n_images), torch.as_tensor(targets)
    loader = _Loader((ids[i : i + 64], tg[i : i + 64]) for i in range(0, n_images, 64))
    cb = zsc.evaluate(model, loader, tok, classnames, cb_templates, "cpu", amp=False)
    assert ours["top1"] == pytest.approx(cb["acc1"], abs=1e-6)
    assert ours["top5"] == pytest.approx(cb["acc5"], abs=1e-6)
    assert ours["mean_per_class_recall"] == pytest.approx(cb["mean_per_class_recall"], abs=1e-6)


def test_retrieval_equals_clip_benchmark():
    torch = pytest.importorskip("torch")
    zsr = pytest.importorskip("clip_benchmark.metrics.zeroshot_retrieval")

    rng = np.random.default_rng(1)
    n_images, dim = 60, 12
    n_caps = rng.integers(1, 4, n_images)  # 1 to 3 captions per image
    t2i = np.repeat(np.arange(n_images), n_caps)
    image_emb = rng.normal(size=(n_images, dim))
    text_emb = image_emb[t2i] + 1.2 * rng.normal(size=(len(t2i), dim))
    model = _TableModel(text_emb, image_emb)
    captions = [[f"caption {j}" for j in np.flatnonzero(t2i == i)] for i in range(n_images)]
    tok = _TableTokenizer({f"caption {j}": j for j in range(len(t2i))})
    # its dataloader yields (images, [captions per image]); batches of 16 images
    loader = [
        (torch.arange(s, min(s + 16, n_images)), captions[s : s + 16])
        for s in range(0, n_images, 16)
    ]
    cb = zsr.evaluate(model, loader, tok, "cpu", amp=False, recall_k_list=[1, 5, 10])

    ours = retrieval_metrics(_unit(text_emb) @ _unit(image_emb).T, t2i)
    assert 0.1 < ours["t2i_r@1"] < 0.9
    for k in (1, 5, 10):
        assert ours[f"t2i_r@{k}"] == pytest.approx(cb[f"image_retrieval_recall@{k}"], abs=1e-6)
        assert ours[f"i2t_r@{k}"] == pytest.approx(cb[f"text_retrieval_recall@{k}"], abs=1e-6)


def test_large_classification_is_fast():
    import time

    rng = np.random.default_rng(0)
    scores = rng.normal(size=(50_000, 200)).astype(np.float32)
    targets = rng.integers(0, 200, 50_000)
    t0 = time.perf_counter()
    m = classification_metrics(scores, targets, n_boot=1000)
    assert time.perf_counter() - t0 < 5.0  # ~0.3 s alone; generous for a shared CPU
    assert m["top1_ci_low"] < m["top1"] < m["top1_ci_high"]


# ---------------------------------------------------------------- retrieval confidence intervals

_RECALL_KEYS = [f"{d}_r@{k}" for d in ("t2i", "i2t") for k in (1, 5, 10)]


def test_retrieval_ci_exact_small_case():
    # text 0 -> image 0 (hit), text 1 -> image 0 ranked first (miss): t2i hits [1, 0].
    # image 0's column ranks text 0 first (hit), image 1's ranks text 1 (0.2 > 0.1) first (hit).
    scores = np.array([[0.9, 0.1], [0.8, 0.2]])
    m = retrieval_metrics(scores, np.array([0, 1]), ks=(1, 2), n_boot=2000)
    assert m["t2i_r@1"] == 0.5
    # a resample of 2 texts has 0, 1 or 2 hits with probability 1/4, 1/2, 1/4: the 2.5% and
    # 97.5% quantiles of the resampled recall are 0 and 1
    assert (m["t2i_r@1_ci_low"], m["t2i_r@1_ci_high"]) == (0.0, 1.0)
    # every query a hit (or none): every resample is the same, the interval is a point
    assert (m["t2i_r@2_ci_low"], m["t2i_r@2_ci_high"]) == (1.0, 1.0)
    assert (m["i2t_r@1_ci_low"], m["i2t_r@1_ci_high"]) == (1.0, 1.0)
    assert "t2i_r@1_ci_low" not in retrieval_metrics(scores, np.array([0, 1]), n_boot=0)


def _block_diagonal(block: np.ndarray, copies: int) -> np.ndarray:
    """``copies`` independent copies of a retrieval problem: cross-copy scores (-10) are below
    any cosine, so every rank, hence every recall, is that of one copy."""
    n, m = block.shape
    out = np.full((n * copies, m * copies), -10.0)
    for c in range(copies):
        out[c * n : (c + 1) * n, c * m : (c + 1) * m] = block
    return out


def test_retrieval_ci_contains_estimate_and_shrinks_with_more_queries():
    rng = np.random.default_rng(5)
    n_images, dim = 40, 8
    t2i = np.repeat(np.arange(n_images), 2)  # 2 captions per image
    img = _unit(rng.normal(size=(n_images, dim)))
    txt = _unit(img[t2i] + 0.9 * rng.normal(size=(len(t2i), dim)))
    block = txt @ img.T
    small = retrieval_metrics(block, t2i)
    big = retrieval_metrics(_block_diagonal(block, 16), np.concatenate([t2i + c * n_images for c in range(16)]))
    assert 0.1 < small["t2i_r@1"] < 0.9 and 0.1 < small["i2t_r@1"] < 0.9  # not a degenerate case
    for key in _RECALL_KEYS:
        assert big[key] == pytest.approx(small[key])  # same problem, 16x the queries
        for m in (small, big):
            assert m[f"{key}_ci_low"] <= m[key] <= m[f"{key}_ci_high"]
        w_small = small[f"{key}_ci_high"] - small[f"{key}_ci_low"]
        w_big = big[f"{key}_ci_high"] - big[f"{key}_ci_low"]
        if 0 < small[key] < 1:
            assert w_big < w_small / 2.5  # ~1/4: width ~ 1/sqrt(queries)


def test_retrieval_ci_resamples_texts_for_t2i_and_images_for_i2t():
    # 120 texts over 12 images: the t2i interval is the bootstrap of the 120 per-text hits,
    # the i2t one of the 12 per-image hits (brute-force stable sorts, not our rank code)
    rng = np.random.default_rng(6)
    t2i = np.r_[np.arange(12), rng.integers(0, 12, 108)]
    scores = rng.normal(size=(120, 12)) + 1.5 * (np.arange(12)[None, :] == t2i[:, None])
    m = retrieval_metrics(scores, t2i, ks=(1, 3), n_boot=500, seed=9)
    for k in (1, 3):
        text_hits = np.array([t2i[i] in np.argsort(-scores[i], kind="stable")[:k] for i in range(120)], float)
        image_hits = np.array(
            [np.isin(np.argsort(-scores[:, j], kind="stable")[:k], np.flatnonzero(t2i == j)).any() for j in range(12)],
            float,
        )
        assert (m[f"t2i_r@{k}_ci_low"], m[f"t2i_r@{k}_ci_high"]) == bootstrap_ci(text_hits, n_boot=500, seed=9)
        assert (m[f"i2t_r@{k}_ci_low"], m[f"i2t_r@{k}_ci_high"]) == bootstrap_ci(image_hits, n_boot=500, seed=9)
    assert retrieval_metrics(scores, t2i, ks=(1,), seed=9, n_boot=500)["t2i_r@1_ci_low"] == m["t2i_r@1_ci_low"]
