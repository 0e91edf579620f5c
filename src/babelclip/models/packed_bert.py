"""Packed inference of BERT-style text towers: no padding token through any linear layer.

Texts of a batch differ in length, so a padded batch spends a share of every linear layer on
padding positions whose outputs are discarded. Here the real tokens are packed into one
``(tokens, hidden)`` matrix for all linear layers, LayerNorms and the feed-forward blocks (the
"unpadding" of e.g. Zeng et al. 2022, arXiv:2208.08124); only the attention product runs on a
padded ``(batch, heads, len, len)`` view with padding keys masked out, as the model itself does.
The tower's own submodules are called, so weights (and LoRA layers injected into them) are
shared, and the embeddings module computes positions as the model does (BERT from 0, RoBERTa /
XLM-R from the padding index + 1).

Used by babel-lite's mE5 tower (:mod:`babelclip.models.babel_lite.text_tower`) and by open_clip's
Hugging Face text towers of this architecture (:mod:`babelclip.models.openclip.packed`: XLM-R,
RoBERTa, BERT with a mean or first-token pooler). :func:`can_pack` says when the result is the
model's own computation up to float rounding.
"""
from __future__ import annotations

import itertools

import torch

#: transformers classes whose layers have BERT's structure (attention.self.query/key/value with
#: ``scaling``, attention.output(ctx, x), intermediate, output(h, x)) and absolute positions
PACKABLE = ("BertModel", "RobertaModel", "XLMRobertaModel")


def pad_batch(ids: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id lists → ``(input_ids, attention_mask)``, right-padded to the longest."""
    width = max((len(x) for x in ids), default=0)
    batch = torch.full((len(ids), width), pad, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for r, x in enumerate(ids):
        batch[r, : len(x)] = torch.tensor(x, dtype=torch.long)
        mask[r, : len(x)] = 1
    return batch, mask


def can_pack(tower: torch.nn.Module) -> bool:
    """Whether :func:`packed_mean_embeddings` computes exactly what ``tower`` would.

    True for an encoder-only model of :data:`PACKABLE` with absolute positions, in eval mode,
    outside autograd (the packed path is for inference; training keeps transformers' own forward).
    """
    cfg = getattr(tower, "config", None)
    return (
        type(tower).__name__ in PACKABLE
        and type(tower).__module__.startswith("transformers.")
        and not tower.training
        and not torch.is_grad_enabled()
        and not cfg.is_decoder
        and not cfg.add_cross_attention
        and getattr(cfg, "position_embedding_type", "absolute") == "absolute"
        and getattr(cfg, "chunk_size_feed_forward", 0) == 0
    )


def fused_linear(owner: torch.nn.Module, parts: tuple[torch.nn.Module, ...], x: torch.Tensor) -> torch.Tensor:
    """``cat([p(x) for p in parts], dim=1)``; one matrix product when all are plain ``nn.Linear``
    layers with biases (the fused weight is kept on ``owner`` until any of them changes), else one
    call each (e.g. LoRA-wrapped layers)."""
    if not all(type(m) is torch.nn.Linear and m.bias is not None for m in parts):
        return torch.cat([m(x) for m in parts], dim=1)
    tensors = tuple(t for m in parts for t in (m.weight, m.bias))
    versions = tuple(t._version for t in tensors)
    fused = owner.__dict__.get("_babelclip_qkv")  # holds the tensors it was made from, so none is freed and reused
    if fused is None or fused[1] != versions or any(a is not b for a, b in zip(fused[0], tensors)):
        fused = (tensors, versions, torch.cat([m.weight for m in parts]), torch.cat([m.bias for m in parts]))
        owner.__dict__["_babelclip_qkv"] = fused
    return torch.nn.functional.linear(x, fused[2], fused[3])


#: at most this many runs of equal-length texts per batch take the mask-free path of :func:`packed_attention`
MAX_LENGTH_RUNS = 8


def packed_attention(qkv: torch.Tensor, keep: torch.Tensor, heads: int, scale: float) -> torch.Tensor:
    """Self-attention of packed ``[q | k | v]`` rows (``(tokens, 3*hidden)``, the real tokens of
    ``keep``, text after text); the context comes back packed, ``(tokens, hidden)``.

    Texts arrive sorted by length (babelclip batches them so), so a batch is a few runs of texts
    of one length whose rows are contiguous: each run is a ``(texts, heads, length, length)``
    attention with no mask and no padding at all. Otherwise (many runs, e.g. training batches in
    data order) on a padded ``(n, heads, width, width)`` view with padding keys masked out."""
    n, width = keep.shape
    hidden = qkv.shape[1] // 3
    lengths = keep.sum(1)
    breaks = (lengths[1:] != lengths[:-1]).nonzero().squeeze(1) + 1
    if len(breaks) < MAX_LENGTH_RUNS:
        bounds, lens, row, out = [0, *breaks.tolist(), n], lengths.tolist(), 0, []
        for a, b in itertools.pairwise(bounds):
            size = (b - a) * lens[a]
            if size:
                q, k, v = qkv[row : row + size].view(b - a, lens[a], 3, heads, -1).unbind(2)
                ctx = torch.nn.functional.scaled_dot_product_attention(
                    q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale=scale)
                out.append(ctx.transpose(1, 2).reshape(size, hidden))
            row += size
        return torch.cat(out) if len(out) != 1 else out[0]
    flat = keep.reshape(-1).nonzero().squeeze(1)
    grid = qkv.new_zeros(n * width, qkv.shape[1]).index_copy_(0, flat, qkv).view(n, width, -1)
    q, k, v = (t.reshape(n, width, heads, -1).transpose(1, 2) for t in grid.split(hidden, dim=2))
    ctx = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :], scale=scale)
    return ctx.transpose(1, 2).reshape(n * width, hidden).index_select(0, flat)


def packed_mean_embeddings(tower: torch.nn.Module, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``mean_pool(tower(input_ids, mask).last_hidden_state, mask)`` without computing padding
    (see the module docstring)."""
    keep = mask.bool()
    x = packed_layers(tower.encoder.layer, packed_embeddings(tower, input_ids, keep), keep, tower.config)
    return packed_mean(x, keep)


def packed_embeddings(tower: torch.nn.Module, input_ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """The tower's input embeddings of the real tokens only, packed row by row: ``(tokens, hidden)``."""
    flat = keep.reshape(-1).nonzero().squeeze(1)  # positions of real tokens in the (n*width) grid
    return tower.embeddings(input_ids=input_ids).reshape(-1, tower.config.hidden_size).index_select(0, flat)


def packed_layers(layers, x: torch.Tensor, keep: torch.Tensor, cfg) -> torch.Tensor:
    """Run BERT ``layers`` on packed token states ``x`` (``(tokens, hidden)``: the rows of
    ``keep``'s true positions, row by row) and return them packed the same way.

    The packed rows of a batch are the concatenation of each text's token states, so states cached
    per text after some layer continue through the rest here (``babelclip-tools
    train-lite-text`` trains the top layers on cached lower-layer states). Differentiable."""
    for layer in layers:
        sa = layer.attention.self
        qkv = fused_linear(sa, (sa.query, sa.key, sa.value), x)
        x = layer.attention.output(packed_attention(qkv, keep, cfg.num_attention_heads, sa.scaling), x)
        x = layer.output(layer.intermediate(x), x)
    return x


def packed_mean(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean over each text's packed token states (``keep`` as in :func:`packed_layers`)."""
    n, width = keep.shape
    rows = keep.reshape(-1).nonzero().squeeze(1) // width
    sums = x.new_zeros(n, x.shape[1]).index_add_(0, rows, x)
    return sums / keep.sum(1, keepdim=True).clamp_min(1).to(x.dtype)


def masked_mean(tower: torch.nn.Module, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
    """The mean of ``tower(**tokens)``'s last hidden state over the attention mask (a text with no
    token: over one): packed (:func:`packed_mean_embeddings`) where that is the same computation,
    else through the tower's forward (training, token types, other inputs or architectures)."""
    types = tokens.get("token_type_ids")
    if can_pack(tower) and not set(tokens) - {"input_ids", "attention_mask", "token_type_ids"} and (
            types is None or not bool(types.any())):
        return packed_mean_embeddings(tower, tokens["input_ids"], tokens["attention_mask"])
    hidden = tower(**tokens)[0]
    mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
