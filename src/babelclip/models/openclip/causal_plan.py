"""Which texts of a prompt set share which token prefixes, and how rows are batched (numpy only).

The planning half of open_clip's causal speed path (:mod:`.causal_tower` runs the plan): texts
are sorted so that those beginning alike are neighbours, :func:`plan_prefixes` picks the groups
and prefix lengths that run the fewest token positions under a small cost model, and
:func:`batches` cuts length-sorted rows into batches of bounded size. Every knob of the speed
path is a field of :class:`CausalTextConfig`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CausalTextConfig:
    """The knobs of open_clip's causal speed path (none changes a result beyond float rounding).

    Measured on Babel-ImageNet prompt sets at 1-2 CPU threads (bench/README.md).
    """

    # Token positions per batch (texts x longest suffix): small batches keep a block's activations
    # in the CPU caches; larger ones only add padding.
    batch_positions: int = 1536
    # The cost model of plan_prefixes, in token positions. A text's copy of each of its group's
    # prefix keys/values costs this fraction of a position (gathered once per row, not computed)...
    prefix_surcharge: float = 0.05
    # ...and a group's own row in the batched prefix pass costs this many positions: below it,
    # sharing a short prefix among few texts is not worth a group.
    group_overhead_positions: float = 2


DEFAULT_CONFIG = CausalTextConfig()


@dataclass(frozen=True)
class PrefixPlan:
    """Which leading tokens of each row of a lexicographically sorted token matrix run once in a
    shared prefix: ``prefix[i]`` tokens (0: none), shared by the rows of the same ``group[i]``
    (contiguous runs; a group's id is its first row). ``positions``: token positions the plan
    runs (before batch padding), against ``total`` without sharing."""

    prefix: np.ndarray
    group: np.ndarray
    positions: int
    total: int


def neighbour_overlap(mat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Tokens row ``i`` of sorted ``mat`` shares with row ``i - 1`` (0 for the first), capped
    one short of the shorter of the two: a shared prefix leaves each text its pooled position."""
    lcp = np.zeros(len(mat), dtype=np.int64)
    if len(mat) > 1:
        lcp[1:] = np.cumprod(mat[1:] == mat[:-1], axis=1).sum(axis=1)
        lcp[1:] = np.minimum(lcp[1:], np.minimum(lengths[1:], lengths[:-1]) - 1)
    return np.maximum(lcp, 0)


def plan_prefixes(mat: np.ndarray, lengths: np.ndarray, surcharge: float | None = None,
                  overhead: float | None = None) -> PrefixPlan:
    """The cheapest sharing of prefixes among the sorted rows of ``mat`` (token ids, -1 after
    each pooled position; ``lengths`` = pooled position + 1), by dynamic programming over the
    tree of LCP intervals (the branching nodes of the rows' token trie).

    An interval of rows whose neighbours all share at least ``d`` tokens (``d``: its smallest
    overlap) either runs as one group, its ``d``-token prefix once and each row's remaining
    positions after it, for ``d + sum(len - d) + surcharge * d * rows + overhead`` positions, or
    leaves each sub-interval (and each single row, ``len``) to choose for itself, whichever is
    cheaper; the shallowest interval that groups wins. ``surcharge`` prices a row's copy of one
    prefix position's keys/values, ``overhead`` a group's own row in the batched prefix pass
    (defaults: :class:`CausalTextConfig`). Vectorised by depth: one pass per distinct overlap
    value, deepest first, then the decisions shallowest first.
    """
    surcharge = DEFAULT_CONFIG.prefix_surcharge if surcharge is None else surcharge
    overhead = DEFAULT_CONFIG.group_overhead_positions if overhead is None else overhead
    n = len(mat)
    lengths = np.asarray(lengths, dtype=np.int64)
    lcp = neighbour_overlap(mat, lengths)
    child_starts, child_cost = np.arange(n), lengths.astype(np.float64)  # leaves: single rows
    levels = []
    for t in np.unique(lcp[lcp > 0])[::-1]:  # the intervals change only at overlaps present
        starts = np.flatnonzero(lcp < t)
        size = np.diff(np.append(starts, n))
        depth = np.minimum.reduceat(np.where(lcp < t, np.iinfo(np.int64).max, lcp), starts)
        grouped = depth + np.add.reduceat(lengths, starts) - size * depth + surcharge * depth * size + overhead
        children = np.add.reduceat(child_cost, np.searchsorted(child_starts, starts))
        take = (size > 1) & (grouped < children)
        levels.append((starts, size, take, np.where(take, depth, 0)))
        child_starts, child_cost = starts, np.where(take, grouped, children)
    prefix = np.zeros(n, dtype=np.int64)
    group = np.arange(n)
    done = np.zeros(n, dtype=bool)
    for starts, size, take, depth in reversed(levels):
        rows = np.repeat(take, size) & ~done
        prefix[rows] = np.repeat(depth, size)[rows]
        group[rows] = np.repeat(starts, size)[rows]
        done |= rows
    later = np.zeros(n, dtype=bool)
    later[1:] = group[1:] == group[:-1]  # every row of a group but its first reuses the prefix
    return PrefixPlan(prefix, group, int(lengths.sum() - prefix[later].sum()), int(lengths.sum()))


def batches(lengths: np.ndarray, budget: int, max_rows: int | None = None) -> list[tuple[int, int]]:
    """Consecutive slices of ascending ``lengths`` with ``rows * longest <= budget`` (>= 1 row),
    and at most ``max_rows`` rows."""
    out, s, n = [], 0, len(lengths)
    cap = max_rows or n
    while s < n:
        e = min(n, s + max(1, min(cap, budget // int(lengths[s]))))
        while e - s > 1 and (e - s) * int(lengths[e - 1]) > budget:
            e = s + max(1, budget // int(lengths[e - 1]))
        out.append((s, e))
        s = e
    return out
