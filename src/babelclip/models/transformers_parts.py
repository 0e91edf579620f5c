"""What the transformers-based families (``hf``, ``mclip``, ``st``) read from transformers objects
the same way: a directory's ``model_type``, a text tower's length limit (and the option that
overrides it), pooled outputs, and an image processor's settings. Imported by those families,
importing none of them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .options import HubOptions


@dataclass(frozen=True)
class TransformersTextOptions(HubOptions):
    """Options of the families whose text tower is a transformers model (hf, mclip)."""

    max_length: int | None = None  # overrides the text truncation length (see text_max_length)

#: Text towers whose learned positions start after the padding index (RoBERTa-style).
_OFFSET_POSITION_TEXT_TYPES = {"altclip_text_model", "xlm-roberta", "roberta"}


def read_model_type(path: Path) -> str:
    """``model_type`` of a local ``config.json``, with a clear error when it is missing."""
    cfg = path / "config.json"
    if not cfg.is_file():
        raise ValueError(
            f"{str(path)!r} has no config.json, so it is not a transformers model directory"
        )
    return str(json.loads(cfg.read_text(encoding="utf-8")).get("model_type", ""))


def text_max_length(tokenizer: Any, text_config: Any, override: int | None = None) -> int:
    """The longest token sequence the text tower accepts.

    An explicit ``override`` wins; otherwise the tokenizer's ``model_max_length`` when it is set
    (tokenizers without one report a huge sentinel), capped by the learned position table.
    """
    if override is not None:
        if override < 2:
            raise ValueError(f"max_length must be at least 2, got {override}")
        return int(override)
    positions = int(text_config.max_position_embeddings)
    if getattr(text_config, "model_type", "") in _OFFSET_POSITION_TEXT_TYPES:
        pad = getattr(text_config, "pad_token_id", None)
        positions -= (1 if pad is None else int(pad)) + 1
    tok_max = int(getattr(tokenizer, "model_max_length", 0) or 0)
    return min(tok_max, positions) if 0 < tok_max < 100_000 else positions


def pooled(output: Any) -> Any:
    """transformers ≥5 returns a model output whose ``pooler_output`` is the projection; older a tensor."""
    import torch

    return output if isinstance(output, torch.Tensor) else output.pooler_output


def image_processor_description(processor: Any) -> dict[str, Any]:
    """Every public setting of an image processor (size, crop, resample, mean/std, ...)."""
    d = {k: v for k, v in processor.to_dict().items() if not k.startswith("_")}
    d["class"] = type(processor).__name__
    return d
