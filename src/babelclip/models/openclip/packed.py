"""Packed inference for open_clip's Hugging Face text towers of BERT's architecture.

open_clip's ``HFTextEncoder`` runs ``transformer(input_ids, attention_mask)`` on a padded batch,
pools (mean over the mask, or the first token) and projects. For XLM-R, RoBERTa and BERT towers
(:data:`babelclip.models.packed_bert.PACKABLE`: open_clip's ``xlm-roberta-*`` / ``roberta-*``
configs, M-CLIP-style towers) :func:`packed_text_forward` computes the same with no padding token
through a linear layer (:mod:`babelclip.models.packed_bert`), calling the tower's own modules;
equal to ``model.encode_text`` up to float rounding (tested on tiny random towers, mean and first
token poolers). It falls back to ``model.encode_text`` whenever that is not guaranteed: training
or autograd, a pooler that reads the transformer's own pooler output, token outputs requested,
or a batch whose first position is padding.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..packed_bert import can_pack, packed_embeddings, packed_layers, packed_mean

POOLERS = ("MeanPooler", "ClsLastHiddenStatePooler", "ClsPooler")


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
    if pooler not in POOLERS or type(tower).__name__ not in ("BertModel", "RobertaModel", "XLMRobertaModel"):
        return None
    if pooler == "ClsPooler" and getattr(text.pooler, "use_pooler_output", True) and getattr(tower, "pooler", None) is not None:
        return None  # the transformer's own pooler (dense + tanh) would be read
    mean = pooler == "MeanPooler"
    pad = text.config.pad_token_id

    def forward(ids: torch.Tensor) -> torch.Tensor:
        keep = ids != pad  # HFTextEncoder's own attention mask
        if not can_pack(tower) or not keep.any(1).all() or not (mean or keep[:, 0].all()):
            return model.encode_text(ids)
        x = packed_layers(tower.encoder.layer, packed_embeddings(tower, ids, keep), keep, tower.config)
        return text.proj(packed_mean(x, keep) if mean else _first_tokens(x, keep))

    return forward
