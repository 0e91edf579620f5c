"""Exact, fast forward passes of open_clip's causal text tower (``CLIP.encode_text``) for prompt sets.

A zero-shot classifier encodes templates x labels: tens of thousands of short texts that share
most of their tokens. Three equivalences of a causal tower pooled at one position (the end token)
make that cheap without changing the result beyond float rounding (each is tested against
``CLIP.encode_text`` on the full padded context):

1. **Trimming.** Position ``i`` attends to positions ``<= i`` only, so tokens after the pooled
   position are inert: each batch is cut at its longest text (sorted by length first).
2. **The last block at the pooled position only.** Nothing reads the last block's output at any
   other position, so there it computes keys and values (2 of a block's ~12 ``width^2``
   products per position); query, attention output, MLP and residuals run once per text.
3. **Shared prefixes computed once.** Texts that begin with the same tokens ("a photo of a" +
   label, or a label + the templates that start with it) have identical hidden states along that
   prefix. Texts are sorted, grouped by a common prefix, the prefix runs once per group, and
   the group's suffixes attend to its cached keys and values, as prefix caching does in LLM
   serving (cf. Hydragen, Juravsky et al. 2024, arXiv:2402.05099). A small cost model picks the
   grouping that runs the fewest positions, including no grouping at all.

All three need open_clip's plain ``ResidualAttentionBlock`` (:func:`plain_causal_blocks`).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

CAUSAL_BATCH = 128  # texts per batch without a shared prefix: small batches stay in the CPU caches
# Suffixes per batch under one shared prefix. Measured on 10 languages' prompts (431k texts, CPU
# time, one thread, median of 4): 256 -> 26.6 s, 128 -> 25.6 s, 96 -> 25.1 s.
SUFFIX_BATCH = 96
# The cost model of plan_groups, in token positions. Fixed cost of a group (its prefix pass and
# its batches' launch overheads), and the extra cost of a suffix position over a plain one
# (attention over the concatenated prefix with an explicit mask instead of the causal kernel).
# Tuned with the benchmark's 64-wide tower on Babel-ImageNet prompts (CPU time, 12 languages x
# 15k prompts): grouping cut Greek by ~38%, Chinese ~20%, the 12 languages ~10% in all; German
# and Swahili prompts are too short to gain.
GROUP_OVERHEAD_POSITIONS = 512
SUFFIX_SURCHARGE = 0.5


def plain_causal_blocks(model: torch.nn.Module) -> bool:
    """Text blocks this module re-implements exactly: open_clip's ``ResidualAttentionBlock``
    with a plain ``nn.MultiheadAttention`` (packed q/k/v projection, no extra key/value bias, no
    cross-attention), batch-first."""
    from open_clip.transformer import ResidualAttentionBlock

    tr = getattr(model, "transformer", None)
    blocks = list(getattr(tr, "resblocks", []))
    return bool(blocks) and getattr(tr, "batch_first", False) and all(
        type(b) is ResidualAttentionBlock
        and type(b.attn) is torch.nn.MultiheadAttention
        and b.attn.in_proj_weight is not None
        and b.attn.bias_k is None
        and not b.attn.add_zero_attn
        and not hasattr(b, "ln_1_kv")
        for b in blocks
    )


def pool_positions(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """The position ``text_global_pool`` reads for ``argmax``/``eos`` pooling."""
    if model.text_pool_type == "eos":
        return (ids == model.text_eos_id).int().argmax(dim=-1)
    return ids.argmax(dim=-1)


def project(model: torch.nn.Module, pooled: torch.Tensor) -> torch.Tensor:
    """``ln_final`` and the text projection on the pooled rows (``CLIP.encode_text``'s tail)."""
    x = model.ln_final(pooled)
    proj = model.text_projection
    if proj is None:
        return x
    return proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj


# -- one residual block ----------------------------------------------------------------------------
KV = tuple[torch.Tensor, torch.Tensor]  # keys, values: (1, heads, P, head_dim) of a shared prefix


def _heads(blk: torch.nn.Module, t: torch.Tensor, parts: int) -> torch.Tensor:
    """``(B, L, parts * width)`` → ``(parts, B, heads, L, head_dim)``."""
    b, n, _ = t.shape
    heads = blk.attn.num_heads
    return t.view(b, n, parts, heads, -1).permute(2, 0, 3, 1, 4)


def _with_past(t: torch.Tensor, past: torch.Tensor | None, pad: int = 0) -> torch.Tensor:
    """``t``'s keys (or values) after the shared prefix's (one copy per text; ``past``: none when
    ``None``) and before ``pad`` zero positions, in one concatenation."""
    parts = [] if past is None else [past.expand(t.shape[0], -1, -1, -1)]
    parts.append(t)
    if pad:
        parts.append(t.new_zeros(*t.shape[:2], pad, t.shape[3]))
    return torch.cat(parts, dim=2) if len(parts) > 1 else t


@functools.cache
def _cpu_vector_lanes() -> int:
    """float32 lanes of the CPU kernels' vectors: 16 with AVX-512, else 8."""
    return 16 if torch.backends.cpu.get_cpu_capability().startswith("AVX512") else 8


def kv_padding(kv_len: int, device: torch.device) -> int:
    """Zero keys/values to append so that CPU flash attention runs on whole vectors.

    PyTorch's CPU flash-attention kernel handles a key length that is not a multiple of its
    vector width in a slower remainder path: measured with 128 texts x 4 heads of 16 dims, one
    thread, AVX-512, causal attention over 15 keys cost 1.43 ms and over 16 keys 0.56 ms, over
    31 keys 2.83 ms and 32 keys 1.28 ms. Padding the keys to the next multiple with masked-out
    zeros (an explicit mask instead of ``is_causal``) cost 0.69 ms for 15 and 1.54 ms for 31;
    it pays once the remainder exceeds about a third of the width (break-even at 5 of 16).
    Padded keys are masked, so each query's output is unchanged up to float rounding. Not on
    other devices, where an explicit mask would cost a faster kernel.
    """
    if device.type != "cpu":
        return 0
    lanes = _cpu_vector_lanes()
    tail = kv_len % lanes
    return lanes - tail if tail > lanes // 3 else 0


def _causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, past: KV | None = None) -> torch.Tensor:
    """Causal attention of the ``n`` queries ``q`` over their own keys ``k`` / values ``v``,
    after a shared prefix's ``past`` keys/values (``P`` positions all of them see), if any. The
    prefix and the padding of :func:`kv_padding` join the keys in one copy."""
    n = q.shape[2]
    kv_len = n + (0 if past is None else past[0].shape[2])
    pad = kv_padding(kv_len, q.device)
    if pad == 0 and past is None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    k = _with_past(k, None if past is None else past[0], pad)
    v = _with_past(v, None if past is None else past[1], pad)
    mask = torch.ones(n, kv_len + pad, dtype=torch.bool, device=q.device).tril(kv_len - n)  # row i sees keys <= P + i
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def _residual_tail(blk: torch.nn.Module, x: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
    x = x + blk.ls_1(blk.attn.out_proj(attended))
    return x + blk.ls_2(blk.mlp(blk.ln_2(x)))


def _block(blk: torch.nn.Module, x: torch.Tensor, past: KV | None) -> tuple[torch.Tensor, KV]:
    """A block on ``x`` ``(B, L, width)`` at positions ``P..P+L-1`` after a shared prefix whose
    keys/values are ``past`` (all visible); returns the output and this block's keys/values."""
    att = blk.attn
    b, n, width = x.shape
    q, k, v = _heads(blk, F.linear(blk.ln_1(x), att.in_proj_weight, att.in_proj_bias), 3)
    o = _causal_attention(q, k, v, past)
    return _residual_tail(blk, x, o.transpose(1, 2).reshape(b, n, width)), (k, v)


def _in_proj(blk: torch.nn.Module, h: torch.Tensor, rows: slice) -> torch.Tensor:
    """Part of the packed q/k/v projection of normalised input ``h``: ``rows`` of the weight
    (``[:width]`` queries, ``[width:]`` keys and values)."""
    att = blk.attn
    bias = att.in_proj_bias
    return F.linear(h, att.in_proj_weight[rows], None if bias is None else bias[rows])


def _block_keys_values(blk: torch.nn.Module, h: torch.Tensor) -> KV:
    """A block's keys and values from its normalised input ``h`` ``(B, L, width)``."""
    return tuple(_heads(blk, _in_proj(blk, h, slice(h.shape[-1], None)), 2))


def _last_block_pooled(blk: torch.nn.Module, x: torch.Tensor, pool: torch.Tensor, past: KV | None) -> torch.Tensor:
    """The last block's output at the pooled positions only (equivalence 2): keys and values at
    every position, the rest once per text. ``pool``: each row's pooled index within ``x``."""
    b, n, width = x.shape
    h = blk.ln_1(x)
    k, v = _block_keys_values(blk, h)
    if past is not None:
        k, v = _with_past(k, past[0]), _with_past(v, past[1])
    rows = torch.arange(b, device=x.device)
    q = _in_proj(blk, h[rows, pool], slice(None, width)).view(b, blk.attn.num_heads, 1, -1)
    p = 0 if past is None else past[0].shape[2]
    keys = torch.arange(p + n, device=x.device) <= (pool + p)[:, None]  # causal row of each pooled query
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=keys[:, None, None, :])
    return _residual_tail(blk, x[rows, pool], o.reshape(b, width))


# -- whole tower ------------------------------------------------------------------------------------
def _embed(model: torch.nn.Module, ids: torch.Tensor, start: int) -> torch.Tensor:
    cast = model.transformer.get_cast_dtype()
    return model.token_embedding(ids).to(cast) + model.positional_embedding[start : start + ids.shape[1]].to(cast)


def prefix_keys_values(model: torch.nn.Module, prefix: torch.Tensor) -> list[KV]:
    """Every block's keys/values along one token prefix ``(P,)`` (the last block needs no more)."""
    blocks = model.transformer.resblocks
    x, past = _embed(model, prefix[None], 0), []
    for blk in blocks[:-1]:
        x, kv = _block(blk, x, None)
        past.append(kv)
    past.append(_block_keys_values(blocks[-1], blocks[-1].ln_1(x)))
    return past


def encode_causal(model: torch.nn.Module, ids: torch.Tensor, pool: torch.Tensor | None = None,
                  past: list[KV] | None = None) -> torch.Tensor:
    """Features of ``ids`` ``(B, L)`` (trimmed: ``L`` = longest pooled position + 1), optionally
    the suffixes of texts after a shared prefix whose per-block keys/values are ``past``;
    ``pool``: each row's pooled index within ``ids`` (default: where ``encode_text`` pools)."""
    blocks = model.transformer.resblocks
    start = 0 if past is None else past[0][0].shape[2]
    x = _embed(model, ids, start)
    for i, blk in enumerate(blocks[:-1]):
        x, _ = _block(blk, x, None if past is None else past[i])
    pool = pool_positions(model, ids) if pool is None else pool
    return project(model, _last_block_pooled(blocks[-1], x, pool, None if past is None else past[-1]))


# -- grouping by shared prefixes --------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """Groups of rows of the sorted token matrix: ``starts[g]:starts[g + 1]`` share ``prefix[g]``
    tokens (0: no shared prefix, run as plain trimmed batches); ``positions``: token positions
    the plan runs (before batch padding), against ``total`` without sharing."""

    starts: np.ndarray
    prefix: np.ndarray
    positions: int
    total: int


def plan_groups(mat: np.ndarray, lengths: np.ndarray, overhead: int | None = None) -> Plan:
    """Group the lexicographically sorted rows of ``mat`` (token ids, -1 after each pooled
    position; ``lengths`` = pooled position + 1) into runs with a shared prefix.

    For a threshold ``T`` the runs are the maximal stretches whose neighbours share at least
    ``T`` tokens; a run's shared prefix is its smallest neighbour overlap (sorted order), capped
    one short of its shortest text so that every text keeps its pooled position in the suffix.
    A run costs ``P + (1 + SUFFIX_SURCHARGE) * sum(len - P) + overhead`` positions grouped, or
    ``sum(len)`` ungrouped, whichever is less (``overhead``: default
    :data:`GROUP_OVERHEAD_POSITIONS`). Every ``T`` is tried and the cheapest plan kept.
    """
    overhead = GROUP_OVERHEAD_POSITIONS if overhead is None else overhead
    n = len(mat)
    total = int(lengths.sum())
    if n < 2:
        return Plan(np.array([0, n]), np.zeros(min(n, 1), dtype=np.int64), total, total)
    same = np.ones_like(mat, dtype=bool)
    same[1:] = mat[1:] == mat[:-1]
    lcp = np.cumprod(same, axis=1).sum(axis=1)  # overlap with the previous row
    lcp[0] = 0
    best: Plan | None = None
    best_cost = float(total)
    for t in range(2, int(lengths.max()) + 1):
        starts = np.flatnonzero(lcp < t)
        size = np.diff(np.append(starts, n))
        lcp_in = np.where(lcp < t, np.iinfo(np.int64).max, lcp)  # a run's first row does not count
        shared = np.minimum.reduceat(lcp_in, starts)
        shared = np.minimum(shared, np.minimum.reduceat(lengths, starts) - 1)
        shared_positions = (size - 1) * shared
        surcharge = SUFFIX_SURCHARGE * (np.add.reduceat(lengths, starts) - size * shared)
        worth = (size > 1) & (shared_positions - surcharge - overhead > 0)
        prefix = np.where(worth, shared, 0)
        cost = total - float(np.where(worth, shared_positions - surcharge - overhead, 0).sum())
        if best is None or cost < best_cost:
            best_cost = cost
            best = Plan(np.append(starts, n), prefix, total - int(np.where(worth, shared_positions, 0).sum()), total)
        if len(starts) == n:  # every later threshold splits into singletons too
            break
    return best


def encode_shared_prefixes(model: torch.nn.Module, ids: torch.Tensor, pool: torch.Tensor,
                           batch_size: int = CAUSAL_BATCH) -> torch.Tensor:
    """``CLIP.encode_text(ids)`` for many texts, with equivalences 1-3 (see the module doc)."""
    ids_np, pool_np = ids.cpu().numpy(), pool.cpu().numpy()
    lengths = pool_np + 1
    mat = np.where(np.arange(ids_np.shape[1]) < lengths[:, None], ids_np, -1)
    order = np.lexsort(mat.T[::-1])  # shared prefixes become neighbours
    plan = plan_groups(mat[order], lengths[order])
    dev = ids.device
    out: torch.Tensor | None = None
    plain: list[np.ndarray] = []

    def put(rows: np.ndarray, feats: torch.Tensor) -> None:
        nonlocal out
        if out is None:
            out = torch.empty(len(ids), feats.shape[1], dtype=torch.float32, device=feats.device)
        out[torch.from_numpy(rows).to(feats.device)] = feats.float()

    for g in range(len(plan.prefix)):
        rows = order[plan.starts[g] : plan.starts[g + 1]]
        p = int(plan.prefix[g])
        if p == 0:
            plain.append(rows)
            continue
        past = prefix_keys_values(model, ids[int(rows[0]), :p])
        rows = rows[np.argsort(lengths[rows], kind="stable")]  # little padding inside a batch
        for s in range(0, len(rows), SUFFIX_BATCH):
            r = rows[s : s + SUFFIX_BATCH]
            end = int(lengths[r].max())
            sel = torch.from_numpy(r).to(dev)
            put(r, encode_causal(model, ids[sel, p:end], pool[sel] - p, past))
    if plain:
        rows = np.concatenate(plain)
        rows = rows[np.argsort(lengths[rows], kind="stable")]
        for s in range(0, len(rows), batch_size):
            r = rows[s : s + batch_size]
            sel = torch.from_numpy(r).to(dev)
            put(r, encode_causal(model, ids[sel, : int(lengths[r].max())], pool[sel]))
    return out
