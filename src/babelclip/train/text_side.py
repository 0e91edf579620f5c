"""The trainable text side of an encoder: the one hook distillation and adapters need.

Training needs two things from a model's text side, named by the
:class:`~babelclip.models.base.TrainableText` protocol: ``text_module()``, the
``torch.nn.Module`` whose weights are trained (LoRA attaches to its linear layers; full
fine-tuning trains all of them), and ``text_forward(texts, lang)``, unnormalised embeddings of
texts in one language computed through that module *with* gradients.

Each family declares its own through :class:`~babelclip.models.base.EncoderCapabilities`
(``trainable_text(level)``), so this module knows no family: babel-lite offers three levels
(its output, its pooled tower, its head's logits: :mod:`babelclip.models.babel_lite.trainable`);
transformers and open_clip towers their output, through the encoder's own ``_text_features``
hook, so training sees exactly what evaluation sees.
"""
from __future__ import annotations

from typing import Literal

from ..models.base import TEXT_LEVELS, Encoder, TextSide, TrainableText, capabilities

LEVELS = TEXT_LEVELS
EncoderTextSide = TextSide  # the name before the text side moved to models/base.py

__all__ = ["LEVELS", "EncoderTextSide", "TextSide", "TrainableText", "language_agnostic", "trainable_text"]


def language_agnostic(text: TrainableText) -> bool:
    """Whether the language changes nothing in ``text``'s embeddings (as its encoder declares)."""
    return isinstance(text, TextSide) and bool(capabilities(text.encoder).text_language_agnostic)


def trainable_text(encoder: Encoder | TrainableText, level: Literal["output", "tower", "logits"] = "output") -> TrainableText:
    """The :class:`TrainableText` of ``encoder`` at ``level`` (returned as is if it already is one)."""
    if level not in LEVELS:
        raise ValueError(f"level={level!r}; allowed: {', '.join(LEVELS)}")
    if isinstance(encoder, TrainableText) and not isinstance(encoder, Encoder):
        return encoder
    return capabilities(encoder).trainable_text(level)
