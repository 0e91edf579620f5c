"""Keyword → emoji retrieval: several relevant images per query."""
import numpy as np
import pytest

from babelclip.eval.keyword_retrieval import multi_relevant_metrics


def _ap_by_hand(row, rel):
    order = sorted(range(len(row)), key=lambda j: -row[j])
    found, precisions = 0, []
    for rank, j in enumerate(order, 1):
        if j in rel:
            found += 1
            precisions.append(found / rank)
    return sum(precisions) / len(rel)


def test_any_relevant_in_top_k_and_average_precision():
    scores = np.array([[0.9, 0.8, 0.1, 0.0],   # relevant {1, 2}: best relevant at rank 1 (0-based)
                       [0.1, 0.2, 0.3, 0.4],   # relevant {3}: first
                       [0.5, 0.4, 0.3, 0.2]])  # relevant {2, 3}: ranks 2 and 3
    rel = [[1, 2], [3], [2, 3]]
    m = multi_relevant_metrics(scores, rel, ks=(1, 2), n_boot=0)
    assert m["t2i_r@1"] == pytest.approx(1 / 3) and m["t2i_r@2"] == pytest.approx(2 / 3)
    expected = np.mean([_ap_by_hand(r, set(x)) for r, x in zip(scores, rel)])
    assert m["map"] == pytest.approx(expected)  # (1/2 + 2/3)/2, 1, (1/3 + 2/4)/2
    assert m["map"] == pytest.approx(((0.5 + 2 / 3) / 2 + 1 + (1 / 3 + 0.5) / 2) / 3)


def test_chance_levels_match_random_orders():
    rng = np.random.default_rng(0)
    n, rel = 12, [[0], [1, 2, 3], [4, 5, 6, 7, 8, 9]]
    runs = [multi_relevant_metrics(rng.random((3, n)), rel, ks=(1, 5), n_boot=0) for _ in range(3000)]
    first = runs[0]
    for key in ("t2i_r@1", "t2i_r@5", "map"):
        chance = first[key.replace("r@", "chance@") if "@" in key else "map_chance"]
        assert np.mean([r[key] for r in runs]) == pytest.approx(chance, abs=0.015)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="non-empty lists"):
        multi_relevant_metrics(np.zeros((2, 3)), [[0], []])
    with pytest.raises(ValueError, match="query 0: relevant positions must lie in 0..2"):
        multi_relevant_metrics(np.zeros((1, 3)), [[3]])
