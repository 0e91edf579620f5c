"""Image→image retrieval and k-NN classification: hand-computed cases and scikit-learn."""
from __future__ import annotations

import numpy as np
import pytest

from babelclip.eval.image_tasks import (
    image_retrieval_metrics,
    image_task_results,
    knn_classification_metrics,
)


def _angles(*deg):
    a = np.radians(deg)
    return np.stack([np.cos(a), np.sin(a)], 1).astype(np.float32)


def test_image_retrieval_by_hand():
    # on a circle: A0=0°, A1=10°, B0=20°, B1=100°, C0=200° (alone: candidate, not a query)
    x = _angles(0, 10, 20, 100, 200)
    y = [0, 0, 1, 1, 2]
    m = image_retrieval_metrics(x, y, ks=(1, 2), n_boot=0)
    # neighbours: A0 -> A1 (hit@1); A1 -> A0 (hit@1); B0 -> A1, A0, B1 (relevant at 3); B1 -> B0 (hit@1)
    assert m["queries"] == 4
    assert m["i2i_r@1"] == pytest.approx(3 / 4) and m["i2i_r@2"] == pytest.approx(3 / 4)
    # MAP@R with R = 1 for every query: precision@1 where relevant -> 1, 1, 0, 1
    assert m["i2i_map@r"] == pytest.approx(3 / 4)
    # chance of a relevant among 4 candidates with 1 relevant: k/4
    assert m["i2i_chance@1"] == pytest.approx(1 / 4) and m["i2i_chance@2"] == pytest.approx(2 / 4)


def test_map_at_r_by_hand():
    # class 0 = {0°, 5°, 90°}; class 1 = {3°, 180°}. Query 0°: order 3°(x) 5°(v) 90°(v): R=2,
    # AP@R = (0 + 1/2)/2 = 0.25. Query 5°: 3°(x) 0°(v): 0.25. Query 90°: 5°(v) 3°(x): 1/2 = 0.5.
    # Query 3° (class 1, R=1): nearest 5° -> 0. Query 180°: nearest 90° -> 0.
    m = image_retrieval_metrics(_angles(0, 5, 90, 3, 180), [0, 0, 0, 1, 1], n_boot=0)
    assert m["i2i_map@r"] == pytest.approx((0.25 + 0.25 + 0.5 + 0 + 0) / 5)


def test_knn_matches_scikit_learn_weighted_vote():
    neighbors = pytest.importorskip("sklearn.neighbors")
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16))
    y = rng.integers(0, 4, 300)
    x = centres[y] + 1.2 * rng.normal(size=(300, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    train, test = slice(0, 200), slice(200, 300)
    t = 0.07
    m = knn_classification_metrics(x[train], y[train], test_vectors=x[test], test_labels=y[test], k=10,
                                   temperature=t, n_boot=0)
    clf = neighbors.KNeighborsClassifier(10, metric="cosine", weights=lambda d: np.exp((1 - d) / t))
    pred = clf.fit(x[train], y[train]).predict(x[test])
    assert m["top1"] == pytest.approx(float((pred == y[test]).mean()))
    assert 0.5 < m["top1"] <= 1 and m["chance"] == 0.25 and m["k"] == 10


def test_knn_leave_one_out_never_votes_for_itself():
    # two tight pairs of different classes: with itself voting, k=1 would be 100% trivially
    x = _angles(0, 1, 90, 91)
    m = knn_classification_metrics(x, [0, 1, 0, 1], k=1, n_boot=0)
    assert m["top1"] == 0.0  # each image's only neighbour is its twin of the other class
    m = knn_classification_metrics(x, [0, 0, 1, 1], k=1, n_boot=200)
    assert m["top1"] == 1.0 and m["top1_ci_low"] == 1.0 and m["mean_per_class_recall"] == 1.0


def test_results_rows_and_bad_input():
    x = _angles(0, 10, 20, 100, 200, 300)
    rows = image_task_results(x, [0, 0, 1, 1, -1, 1], model="m", fingerprint="f", dataset="d", knn_k=2, n_boot=50)
    assert [r.task for r in rows] == ["image_retrieval", "knn_classification"]
    assert rows[0].counts == {"images": 5, "classes": 2, "queries": 5} and rows[0].language == "zxx"
    assert "i2i_r@1_ci_low" in rows[0].metrics and "top1_ci_high" in rows[1].metrics
    with pytest.raises(ValueError, match="no class has two or more images"):
        image_retrieval_metrics(x[:3], [0, 1, 2])
    with pytest.raises(ValueError, match="integer class ids"):
        image_retrieval_metrics(x, [0.5] * 6)
    with pytest.raises(ValueError, match="NaN"):
        knn_classification_metrics(np.full((3, 2), np.nan), [0, 1, 0])
    with pytest.raises(ValueError, match="-1"):
        knn_classification_metrics(x, [0, 1, 0, 1, -1, 0])


def test_results_go_through_the_report(tmp_path):
    pytest.importorskip("matplotlib")
    from babelclip import make_report

    rng = np.random.default_rng(0)
    rows = image_task_results(rng.normal(size=(40, 8)), rng.integers(0, 3, 40), model="m", fingerprint="f",
                              dataset="d", n_boot=20)
    make_report(rows, tmp_path / "report")
    table = (tmp_path / "report" / "results.csv").read_text()
    assert "image_retrieval" in table and "knn_classification" in table and "i2i_map@r" in table
