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
   prefix. Texts are sorted, a dynamic programme over their token trie (:func:`.causal_plan.plan_prefixes`)
   picks the groups and prefix lengths that run the fewest positions, every group's prefix runs
   once (all prefixes batched together), and each text's remaining positions attend to its
   group's cached keys and values, as prefix caching does in LLM serving (cf. Hydragen,
   Juravsky et al. 2024, arXiv:2402.05099). Batches mix texts of many groups: each row carries
   its own prefix length, start position and key mask, so a group of 20 texts pays off as well
   as one of 700. A batch gathers each row's prefix keys/values once, into buffers with room
   for the row's own positions, which each block fills in place (no concatenation per block).
   Texts with identical tokens (different strings that clean to the same ids) run once.

All three need open_clip's plain ``ResidualAttentionBlock`` (:func:`plain_causal_blocks`); the
planning (numpy) and the knobs (:class:`.causal_plan.CausalTextConfig`) live in :mod:`.causal_plan`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .causal_plan import DEFAULT_CONFIG, CausalTextConfig, PrefixPlan, batches, plan_prefixes


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


def encode_text_prefix(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """open_clip's ``CLIP.encode_text`` on the first ``L`` positions only (L = ids.shape[1]).

    With a causal mask, position ``i`` attends to positions ``<= i``; the pooled EOT position lies
    inside the prefix, so cutting the positional embedding and the mask to ``L`` computes the same
    features as the full context (checked against ``encode_text`` in the tests). Used where the
    blocks are not the plain ones the faster paths re-implement.
    """
    from open_clip.transformer import text_global_pool

    n = ids.shape[1]
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(ids).to(cast) + model.positional_embedding[:n].to(cast)
    x = model.transformer(x, attn_mask=model.attn_mask[:n, :n])
    x = text_global_pool(
        x, ids, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None)
    )
    return project(model, x)


# -- one residual block ----------------------------------------------------------------------------
KV = tuple[torch.Tensor, torch.Tensor]  # keys, values: (B, heads, positions, head_dim)


def _heads(blk: torch.nn.Module, t: torch.Tensor, parts: int) -> torch.Tensor:
    """``(B, L, parts * width)`` → ``(parts, B, heads, L, head_dim)``."""
    b, n, _ = t.shape
    heads = blk.attn.num_heads
    return t.view(b, n, parts, heads, -1).permute(2, 0, 3, 1, 4)


def _pad(t: torch.Tensor, extra: int) -> torch.Tensor:
    """Keys (or values) ``(B, heads, L, d)`` followed by ``extra`` zero positions."""
    return torch.cat([t, t.new_zeros(*t.shape[:2], extra, t.shape[3])], dim=2) if extra else t


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


@dataclass(frozen=True)
class _Keys:
    """Where a batch's ``n`` queries per text look. ``room``: per block, key and value buffers
    ``(B, heads, P + n + pad, head_dim)`` holding each row's prefix in ``[0, P)`` (its first
    ``past_len[b]`` positions real, the rest masked), with room at ``[P, P + n)`` that the block
    fills with its own keys/values (so a prefix is copied once per row, not once per block and
    again when joined), zeros after; ``None`` when no row has a prefix. ``pad``: zero positions
    after the texts' own (:func:`kv_padding`). ``mask``: boolean ``(B or 1, 1, n, P + n + pad)``,
    ``None`` for plain causal attention (no prefix, no padding)."""

    room: list[KV] | None
    start: int
    pad: int
    mask: torch.Tensor | None


def _layout(n: int, p: int, room: list[KV] | None, past_len: torch.Tensor | None, device: torch.device) -> _Keys:
    """The attention layout of ``n`` own positions per text after per-row prefixes of at most
    ``p`` positions (module doc, 3); ``room`` as in :class:`_Keys`, sized ``p + n + pad``."""
    pad = kv_padding(p + n, device)
    if p == 0 and pad == 0:
        return _Keys(None, 0, 0, None)
    own = torch.ones(n, n, dtype=torch.bool, device=device).tril()
    if p == 0 or bool((past_len == p).all()):  # one mask for every row
        mask = torch.cat([own.new_ones(n, p), own, own.new_zeros(n, pad)], dim=1)
        return _Keys(room if p else None, p, pad, mask)
    b = len(past_len)
    seen = (torch.arange(p, device=device) < past_len[:, None])[:, None, :].expand(b, n, p)
    mask = torch.cat([seen, own.expand(b, n, n), own.new_zeros(b, n, pad)], dim=2)[:, None]
    return _Keys(room, p, pad, mask)


def _keys(n: int, past: list[KV] | None, past_len: torch.Tensor | None, device: torch.device) -> _Keys:
    """:func:`_layout` for prefixes given as per-block keys/values ``(B, heads, P, head_dim)``
    (copied into buffers with room for the own positions)."""
    if past is None:
        return _layout(n, 0, None, None, device)
    p = past[0][0].shape[2]
    extra = n + kv_padding(p + n, device)
    return _layout(n, p, [(_pad(k, extra), _pad(v, extra)) for k, v in past], past_len, device)


def _fill(room: KV, start: int, k: torch.Tensor, v: torch.Tensor) -> KV:
    """Own keys/values ``(B, heads, n, d)`` written into their slots of a block's buffers."""
    n = k.shape[2]
    room[0][:, :, start : start + n] = k
    room[1][:, :, start : start + n] = v
    return room


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keys: _Keys, block: int) -> torch.Tensor:
    """Causal attention of the ``n`` queries ``q`` over their own keys after their prefix's."""
    if keys.mask is None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    if keys.room is not None:
        k, v = _fill(keys.room[block], keys.start, k, v)
    else:
        k, v = _pad(k, keys.pad), _pad(v, keys.pad)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=keys.mask)


def _residual_tail(blk: torch.nn.Module, x: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
    x = x + blk.ls_1(blk.attn.out_proj(attended))
    return x + blk.ls_2(blk.mlp(blk.ln_2(x)))


def _block(blk: torch.nn.Module, x: torch.Tensor, keys: _Keys | None, block: int | None) -> tuple[torch.Tensor, KV]:
    """A block on ``x`` ``(B, L, width)`` (after each row's prefix, per ``keys``; plain causal
    when ``None``); returns the output and this block's own keys/values."""
    att = blk.attn
    b, n, width = x.shape
    q, k, v = _heads(blk, F.linear(blk.ln_1(x), att.in_proj_weight, att.in_proj_bias), 3)
    keys = _keys(n, None, None, x.device) if keys is None else keys
    o = _attention(q, k, v, keys, block or 0)
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


def _last_block_pooled(blk: torch.nn.Module, x: torch.Tensor, pool: torch.Tensor, keys: _Keys,
                       past_len: torch.Tensor | None) -> torch.Tensor:
    """The last block's output at the pooled positions only (equivalence 2): keys and values at
    every position, the rest once per text. ``pool``: each row's pooled index within ``x``."""
    b, n, width = x.shape
    h = blk.ln_1(x)
    k, v = _block_keys_values(blk, h)
    own = torch.arange(n, device=x.device) <= pool[:, None]  # causal row of each pooled query
    if keys.room is not None:
        k, v = _fill(keys.room[-1], keys.start, k, v)
        seen = torch.arange(keys.start, device=x.device) < past_len[:, None]
        own = torch.cat([seen, own, own.new_zeros(b, keys.pad)], dim=1)
    rows = torch.arange(b, device=x.device)
    q = _in_proj(blk, h[rows, pool], slice(None, width)).view(b, blk.attn.num_heads, 1, -1)
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=own[:, None, None, :])
    return _residual_tail(blk, x[rows, pool], o.reshape(b, width))


# -- whole tower ------------------------------------------------------------------------------------
def _embed(model: torch.nn.Module, ids: torch.Tensor, start: torch.Tensor | int) -> torch.Tensor:
    """Token plus positional embeddings of ``ids`` ``(B, L)`` whose first token sits at position
    ``start`` (one for all rows, or one per row; positions past the context are clamped: they
    lie after every row's pooled position, where nothing reads them)."""
    cast = model.transformer.get_cast_dtype()
    pe = model.positional_embedding
    if isinstance(start, int):
        pos = pe[start : start + ids.shape[1]]
    else:
        at = (start[:, None] + torch.arange(ids.shape[1], device=ids.device)).clamp_(max=pe.shape[0] - 1)
        pos = pe[at]
    return model.token_embedding(ids).to(cast) + pos.to(cast)


def encode_causal(model: torch.nn.Module, ids: torch.Tensor, pool: torch.Tensor | None = None,
                  past: list[KV] | None = None, past_len: torch.Tensor | None = None) -> torch.Tensor:
    """Features of ``ids`` ``(B, L)`` (trimmed: ``L`` = longest pooled position + 1).

    Optionally each row is the rest of a text after a prefix of ``past_len[b]`` tokens whose
    per-block keys/values are ``past`` (``(B, heads, P, head_dim)``, the first ``past_len[b]``
    positions of row ``b`` real, the others masked), so row ``b`` starts at that position.
    ``pool``: each row's pooled index within ``ids`` (default: where ``encode_text`` pools).
    """
    return _encode_rows(model, ids, pool, _keys(ids.shape[1], past, past_len, ids.device), past_len)


def _encode_rows(model: torch.nn.Module, ids: torch.Tensor, pool: torch.Tensor | None, keys: _Keys,
                 past_len: torch.Tensor | None) -> torch.Tensor:
    """:func:`encode_causal` with the attention layout given (prefixes already in buffers)."""
    blocks = model.transformer.resblocks
    x = _embed(model, ids, 0 if past_len is None else past_len)
    for i, blk in enumerate(blocks[:-1]):
        x, _ = _block(blk, x, keys, i)
    pool = pool_positions(model, ids) if pool is None else pool
    return project(model, _last_block_pooled(blocks[-1], x, pool, keys, past_len))


# -- running a plan ---------------------------------------------------------------------------------
def _prefix_pass(model: torch.nn.Module, tokens: np.ndarray, plen: np.ndarray, budget: int,
                 max_rows: int | None) -> tuple[torch.Tensor, np.ndarray]:
    """Every block's keys/values along each group's prefix ``tokens[g, :plen[g]]``, batched.

    Returns a table ``(blocks * 2, sum(plen) + 1, heads, head_dim)`` (block ``b``'s keys at
    ``2b``, values at ``2b + 1``), group ``g`` at positions ``offset[g] : offset[g] + plen[g]``,
    a zero position last (what masked positions and the own positions' room gather), and
    ``offset``."""
    blocks = model.transformer.resblocks
    dev = model.positional_embedding.device
    order = np.argsort(plen, kind="stable")
    offset = np.empty(len(plen), dtype=np.int64)
    offset[order] = np.cumsum(plen[order]) - plen[order]
    parts: list[torch.Tensor] = []
    for s, e in batches(plen[order], budget, max_rows):
        rows = order[s:e]
        width = int(plen[rows[-1]])
        ids = torch.from_numpy(np.ascontiguousarray(tokens[rows, :width])).to(dev)
        real = torch.from_numpy(np.arange(width) < plen[rows][:, None]).to(dev)
        x = _embed(model, ids, 0)
        kv = []
        for b, blk in enumerate(blocks):
            if b < len(blocks) - 1:
                x, (k, v) = _block(blk, x, None, None)
            else:
                k, v = _block_keys_values(blk, blk.ln_1(x))
            kv += [k, v]
        # (B, heads, L, d) each -> (B, L, blocks * 2, heads, d) -> the real positions, in row order
        parts.append(torch.stack(kv, dim=2).transpose(1, 3)[real])
    table = torch.cat(parts)
    table = torch.cat([table, table.new_zeros(1, *table.shape[1:])])
    return table.transpose(0, 1).contiguous(), offset  # each block's keys, values: one gather source each


def encode_shared_prefixes(model: torch.nn.Module, ids: torch.Tensor, pool: torch.Tensor,
                           batch_size: int | None = None, config: CausalTextConfig = DEFAULT_CONFIG) -> torch.Tensor:
    """``CLIP.encode_text(ids)`` for many texts, with equivalences 1-3 (see the module doc).
    Batches hold at most ``batch_size`` texts and ``config.batch_positions`` token positions;
    ``config`` also prices the sharing of prefixes (:func:`.causal_plan.plan_prefixes`)."""
    budget = config.batch_positions
    ids_np, pool_np = ids.cpu().numpy(), pool.cpu().numpy()
    n = len(ids_np)
    if n == 0:
        return torch.zeros(0, project(model, model.positional_embedding[:1]).shape[1], device=ids.device)
    lengths = pool_np + 1
    mat = np.where(np.arange(ids_np.shape[1]) < lengths[:, None], ids_np, -1)
    order = np.lexsort(mat.T[::-1])  # shared prefixes become neighbours
    mat, lengths = mat[order], lengths[order]
    distinct = np.ones(n, dtype=bool)
    distinct[1:] = (mat[1:] != mat[:-1]).any(axis=1)  # identical ids (texts that clean alike) run once
    copy_of = np.cumsum(distinct) - 1
    mat, lengths = mat[distinct], lengths[distinct]
    feats = _encode_planned(model, np.maximum(mat, 0), lengths, plan_prefixes(mat, lengths, config.prefix_surcharge, config.group_overhead_positions), budget,
                            batch_size)
    out = feats.new_empty(n, feats.shape[1])
    out[torch.from_numpy(order).to(feats.device)] = feats[torch.from_numpy(copy_of).to(feats.device)]
    return out


def _encode_planned(model: torch.nn.Module, tok: np.ndarray, lengths: np.ndarray, plan: PrefixPlan,
                    budget: int, max_rows: int | None) -> torch.Tensor:
    """Features of the rows of ``tok`` (sorted, distinct) under ``plan``: the groups' prefixes in
    one batched pass, then every row's own positions in batches of similar suffix length."""
    dev = model.positional_embedding.device
    prefix = plan.prefix
    heads = np.flatnonzero((prefix > 0) & (plan.group == np.arange(len(tok))))  # each group's first row
    slot = np.zeros(len(tok), dtype=np.int64)  # row -> its group's first row in the flat table
    if len(heads):
        table, offset = _prefix_pass(model, tok[heads], prefix[heads], budget, max_rows)
        slot[prefix > 0] = offset[np.searchsorted(heads, plan.group[prefix > 0])]
        zero_row = table.shape[1] - 1
    own = lengths - prefix
    order = np.lexsort((prefix, own))  # by suffix length, then prefix length: little padding
    out: torch.Tensor | None = None
    for s, e in batches(own[order], budget, max_rows):
        rows = order[s:e]
        p, width = prefix[rows], int(own[rows[-1]])
        cols = np.minimum(p[:, None] + np.arange(width), tok.shape[1] - 1)
        ids = torch.from_numpy(tok[rows[:, None], cols]).to(dev)
        pool = torch.from_numpy(own[rows] - 1).to(dev)
        pb = int(p.max())
        if pb == 0:
            feats = encode_causal(model, ids, pool)
        else:  # each block's buffers (B, heads, pb + width + pad, d): the prefix gathered, room after it
            span = pb + width + kv_padding(pb + width, dev)
            at = np.where(np.arange(span) < p[:, None], slot[rows][:, None] + np.arange(span), zero_row)
            at = torch.from_numpy(at.reshape(-1)).to(dev)
            bufs = [t.index_select(0, at).view(len(rows), span, *t.shape[1:]).transpose(1, 2) for t in table]
            past_len = torch.from_numpy(p).to(dev)
            keys = _layout(width, pb, list(zip(bufs[0::2], bufs[1::2])), past_len, dev)
            feats = _encode_rows(model, ids, pool, keys, past_len)
        if out is None:
            out = torch.empty(len(tok), feats.shape[1], dtype=torch.float32, device=feats.device)
        out[torch.from_numpy(rows).to(dev)] = feats.float()
    return out
