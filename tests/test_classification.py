"""Zero-shot classification: Babel-ImageNet protocol, ensembles, text dedupe, fixed-K subsets."""
from __future__ import annotations

import numpy as np
import pytest
from _tiny_encoder import TinyEncoder

from babelclip.data.labels import LabelSet
from babelclip.data.prompts import PromptSet, label_only
from babelclip.eval.cache import EmbeddingCache
from babelclip.eval.classification import (
    FixedK,
    classifier_weights,
    ensemble,
    zero_shot_classification,
)
from babelclip.eval.encode import ImageEmbeddings

WNIDS = ("n001", "n002", "n003", "n004")
LABELS = LabelSet("toy", WNIDS, {
    "en": {0: "dog", 1: "cat", 2: "car", 3: "tree"},
    "de": {0: "Hund", 1: "Katze", 2: "Auto", 3: "Baum"},
    "ja": {1: "猫", 3: "木"},  # a language with labels for only some classes
})
TEMPLATES = PromptSet("two", default=("a photo of a {}.", "{} in a picture"))


def _images(enc, lang="en", noise=0.0, per_class=3, seed=0):
    """Images whose embeddings sit near the label-only text embedding of their class."""
    rng = np.random.default_rng(seed)
    idx, labs = LABELS.classes(lang)
    base = enc.encode_texts(labs, lang)
    vecs, labels = [], []
    for c, b in zip(idx, base):
        for _ in range(per_class):
            v = b + noise * rng.standard_normal(b.shape)
            vecs.append(v / np.linalg.norm(v))
            labels.append(c)
    ids = [f"img{i}" for i in range(len(vecs))]
    return ImageEmbeddings(ids, np.asarray(vecs, np.float32), np.asarray(labels))


def test_protocol_restricts_images_and_classes_per_language():
    enc = TinyEncoder()
    imgs = _images(enc, "en")  # 12 images, 4 classes
    with EmbeddingCache(None, enc.fingerprint.key, enc.dim) as cache:
        res = zero_shot_classification(enc, imgs, WNIDS, LABELS, [label_only()], cache, languages=["en", "ja"], n_boot=50)
    by = {r.language: r for r in res}
    assert by["en"].counts["images"] == 12 and by["en"].counts["classes"] == 4
    assert by["en"].metrics["top1"] == 1.0  # each image is its own label's text embedding
    assert by["ja"].counts["images"] == 6 and by["ja"].counts["classes"] == 2
    assert by["ja"].metrics["chance"] == 0.5
    # the protocol comes from the caller (the benchmark's task); a bare call says "zero-shot"
    assert by["en"].labels == "toy/raw" and by["en"].protocol == "zero-shot"


def test_ensemble_weights_match_an_independent_computation_and_texts_are_deduped():
    enc = TinyEncoder()
    labs = ["Hund", "Katze", "Auto", "Baum"]
    # independent: normalise each prompt embedding, average, re-normalise (open_clip's recipe)
    expect = []
    for lab in labs:
        e = enc.encode_texts([t.replace("{}", lab) for t in TEMPLATES.default], "de")
        m = e.mean(0)
        expect.append(m / np.linalg.norm(m))
    texts = {}
    for t in TEMPLATES.default:
        for lab in labs:
            texts[t.replace("{}", lab)] = enc.encode_texts([t.replace("{}", lab)], "de")[0]
    np.testing.assert_allclose(classifier_weights(texts, labs, TEMPLATES.default), np.stack(expect), atol=1e-6)

    enc2 = TinyEncoder()
    imgs = _images(enc2, "de", noise=0.3)
    enc2.text_forwards = 0
    sets = [label_only(), TEMPLATES, ensemble([label_only(), TEMPLATES])]
    with EmbeddingCache(None, enc2.fingerprint.key, enc2.dim) as cache:
        res = zero_shot_classification(enc2, imgs, WNIDS, LABELS, sets, cache, languages=["de"], n_boot=0)
        assert enc2.text_forwards == 4 * 3  # 4 labels x 3 distinct templates, each string once
        again = zero_shot_classification(enc2, imgs, WNIDS, LABELS, sets, cache, languages=["de"], n_boot=0)
        assert enc2.text_forwards == 12
    assert [r.prompts for r in res] == ["label", "two", "ensemble"]
    assert [r.counts["templates"] for r in res] == [1, 2, 3]
    assert [r.metrics for r in res] == [r.metrics for r in again]


def test_fixed_k_is_seeded_and_averages_repetitions():
    enc = TinyEncoder()
    imgs = _images(enc, "en", noise=0.8, seed=3)
    cfg = FixedK(k=2, repeats=4, seed=7)
    with EmbeddingCache(None, enc.fingerprint.key, enc.dim) as cache:
        a = zero_shot_classification(enc, imgs, WNIDS, LABELS, [label_only()], cache, languages=["en", "ja"], fixed_k=cfg)
        b = zero_shot_classification(enc, imgs, WNIDS, LABELS, [label_only()], cache, languages=["en"], fixed_k=cfg)
        three = zero_shot_classification(enc, imgs, WNIDS, LABELS, [label_only()], cache, languages=["ja"], fixed_k=FixedK(3))
    assert three == []  # ja has 2 classes < K=3: skipped
    en = a[0]
    assert en.protocol == "fixed-k=2" and en.counts["classes"] == 2 and en.counts["classes_available"] == 4
    assert en.metrics == b[0].metrics
    assert en.metrics["chance"] == 0.5 and "top1_sd" in en.metrics
    # independent recomputation of the mean top-1 over the same seeded draws
    text = enc.encode_texts(["dog", "cat", "car", "tree"], "en")
    accs = []
    for r in range(4):
        chosen = np.sort(np.random.default_rng([7, r]).choice(4, 2, replace=False))
        sel = np.isin(imgs.labels, chosen)
        pred = chosen[np.argmax(imgs.vectors[sel] @ text[chosen].T, axis=1)]
        accs.append(np.mean(pred == imgs.labels[sel]))
    assert en.metrics["top1"] == pytest.approx(np.mean(accs))


def test_errors_are_clear():
    enc = TinyEncoder()
    imgs = _images(enc, "en")
    with EmbeddingCache(None, enc.fingerprint.key, enc.dim) as cache:
        with pytest.raises(ValueError, match="none of the image source"):
            zero_shot_classification(enc, imgs, ("x1", "x2", "x3", "x4"), LABELS, [label_only()], cache)
        with pytest.raises(ValueError, match="no prompt sets"):
            zero_shot_classification(enc, imgs, WNIDS, LABELS, [], cache)
    with pytest.raises(ValueError, match="k >= 2"):
        FixedK(1)


def test_warm_run_is_bitwise_cold_with_no_text_forward_and_sees_label_changes(tmp_path, monkeypatch):
    import dataclasses

    import babelclip.eval.encode as enc_mod

    monkeypatch.setattr(enc_mod, "TEXT_CHUNK_BATCHES", 1)  # with batch_size=1: chunks of one text
    enc = TinyEncoder()
    imgs = _images(enc, "de", noise=0.5, seed=1)
    sets = [label_only(), TEMPLATES, ensemble([label_only(), TEMPLATES])]

    def run(e, labels=LABELS, s=sets):  # ``cache``: the one open in the enclosing block
        return zero_shot_classification(e, imgs, WNIDS, labels, s, cache, languages=["de", "en"],
                                        n_boot=20, batch_size=1)

    with EmbeddingCache(tmp_path, enc.fingerprint.key, enc.dim) as cache:
        cold = run(enc)
    warm_enc = TinyEncoder()
    with EmbeddingCache(tmp_path, warm_enc.fingerprint.key, warm_enc.dim) as cache:
        warm = run(warm_enc)
        assert warm_enc.text_forwards == 0
        assert [r.metrics for r in warm] == [r.metrics for r in cold]  # exact float equality
        # a changed label: only its prompts are encoded, and the result follows the new label
        changed = dataclasses.replace(LABELS, labels={**LABELS.labels, "de": {**LABELS.labels["de"], 0: "Pudel"}})
        after = run(warm_enc, changed)
        assert warm_enc.text_forwards == 3  # "Pudel" x 3 distinct templates
        assert sorted(t for c in warm_enc.text_calls for t in c[1]) == ["Pudel", "Pudel in a picture", "a photo of a Pudel."]
        # a changed template: only the new template's prompts
        more = PromptSet("three", default=(*TEMPLATES.default, "{}!"))
        run(warm_enc, changed, [more])
        assert warm_enc.text_forwards == 3 + 4 + 4  # "{}!" x 4 German and 4 English labels
    fresh = TinyEncoder()
    with EmbeddingCache(None, fresh.fingerprint.key, fresh.dim) as cache:
        assert [r.metrics for r in run(fresh, changed)] == [r.metrics for r in after]
