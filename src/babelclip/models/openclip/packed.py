"""Packed inference for open_clip's Hugging Face text towers: BERT's architecture and NLLB's encoder.

open_clip's ``HFTextEncoder`` runs ``transformer(input_ids, attention_mask)`` on a padded batch,
pools (mean over the mask, or the first token) and projects. For XLM-R, RoBERTa and BERT towers
(:data:`babelclip.models.packed_bert.PACKABLE`: open_clip's ``xlm-roberta-*`` / ``roberta-*``
configs, M-CLIP-style towers) and NLLB's M2M100 encoder (open_clip's ``nllb-clip-*``, :func:`packed_m2m100`)
:func:`packed_text_forward` computes the same with no padding token through a linear layer
(:mod:`babelclip.models.packed_bert`), calling the tower's own modules;
equal to ``model.encode_text`` up to float rounding (tested on tiny random towers, mean and first
token poolers). It falls back to ``model.encode_text`` whenever that is not guaranteed: training
or autograd, a pooler that reads the transformer's own pooler output, token outputs requested,
or a batch whose first position is padding.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..packed_bert import (
    PACKABLE,
    can_pack,
    fused_linear,
    packed_attention,
    packed_embeddings,
    packed_layers,
    packed_mean,
)

POOLERS = ("MeanPooler", "ClsLastHiddenStatePooler", "ClsPooler")
M2M100 = "M2M100Encoder"  # NLLB-CLIP's text tower: NLLB's encoder (pre-LayerNorm blocks, sinusoidal positions)


def can_pack_m2m100(enc: torch.nn.Module) -> bool:
    """Whether :func:`packed_m2m100` computes what ``enc`` would (inference, no autograd)."""
    return (type(enc).__name__ == M2M100 and type(enc).__module__.startswith("transformers.")
            and not enc.training and not torch.is_grad_enabled())


def packed_m2m100(enc: torch.nn.Module, ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``M2M100Encoder(ids, keep).last_hidden_state`` of the real tokens, packed row by row: the
    encoder's own embeddings, positions, LayerNorms and linear layers, attention per text."""
    emb = enc.embed_tokens(ids)  # scaled by the embedding module itself
    x = (emb + enc.embed_positions(ids, emb).to(emb.device)).reshape(-1, emb.shape[-1])
    x = x.index_select(0, keep.reshape(-1).nonzero().squeeze(1))
    for layer in enc.layers:
        attn = layer.self_attn
        qkv = fused_linear(attn, (attn.q_proj, attn.k_proj, attn.v_proj), layer.self_attn_layer_norm(x))
        x = x + attn.out_proj(packed_attention(qkv, keep, attn.num_heads, attn.scaling))
        x = x + layer.fc2(layer.activation_fn(layer.fc1(layer.final_layer_norm(x))))
    return enc.layer_norm(x)


def _first_tokens(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Each text's first packed token state (texts are packed row after row)."""
    starts = torch.zeros(keep.shape[0], dtype=torch.long, device=x.device)
    starts[1:] = keep.sum(1).cumsum(0)[:-1]
    return x.index_select(0, starts)


def packed_text_forward(model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """``ids -> model.encode_text(ids)`` computed packed, or None where the tower is not of this kind."""
    text = getattr(model, "text", None)
    if type(text).__name__ != "HFTextEncoder" or getattr(text, "output_tokens", False):
        return None
    tower, pooler = text.transformer, type(text.pooler).__name__
    m2m = type(tower).__name__ == M2M100
    if pooler not in POOLERS or not (m2m or type(tower).__name__ in PACKABLE):
        return None
    if pooler == "ClsPooler" and getattr(text.pooler, "use_pooler_output", True) and getattr(tower, "pooler", None) is not None:
        return None  # the transformer's own pooler (dense + tanh) would be read
    mean = pooler == "MeanPooler"
    pad = text.config.pad_token_id

    def forward(ids: torch.Tensor) -> torch.Tensor:
        keep = ids != pad  # HFTextEncoder's own attention mask
        if not (can_pack_m2m100(tower) if m2m else can_pack(tower)) or not keep.any(1).all() or not (mean or keep[:, 0].all()):
            return model.encode_text(ids)
        if m2m:
            x = packed_m2m100(tower, ids, keep)
        else:
            x = packed_layers(tower.encoder.layer, packed_embeddings(tower, ids, keep), keep, tower.config)
        return text.proj(packed_mean(x, keep) if mean else _first_tokens(x, keep))

    return forward
