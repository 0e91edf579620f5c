"""The trainable text side of an encoder: the one hook distillation and adapters need.

Every model family keeps its text tower in its own attribute and runs it its own way; training
needs just two things from it, named by the :class:`TrainableText` protocol:

- ``text_module()``: the ``torch.nn.Module`` whose weights are trained (LoRA attaches to its
  linear layers; full fine-tuning trains all of them);
- ``text_forward(texts, lang)``: unnormalised embeddings of texts in one language, *with*
  gradients, computed through that module.

:func:`trainable_text` builds one for any encoder babelclip creates:

- babel-lite (and anything exposing ``text_tower``, ``tokenize(texts, lang)`` and ``mean_pool``):
  the module is ``text_tower``; ``level="output"`` (default) distils the encoder's own output
  (head included, the space ``encode_texts`` returns), ``level="tower"`` the mean-pooled tower
  embedding (Reimers & Gurevych 2020 distil the sentence embedding), ``level="logits"`` the head's
  class logits divided by the text temperature (for ``loss="kl"``, the best measured on babel-lite);
- transformers dual encoders (``hf:``): ``model.text_model`` through ``get_text_features``;
- open_clip with a Hugging Face text tower: ``model.text`` (``HFTextEncoder``), open_clip's own
  text transformer otherwise, through ``encode_text``.

The forward of the last two is the encoder's own ``_text_features`` hook, called with gradients
enabled, so training sees exactly what evaluation sees.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from ..languages import Language, get_language
from ..models.base import Encoder, Fingerprint

if TYPE_CHECKING:  # pragma: no cover
    import torch


@runtime_checkable
class TrainableText(Protocol):
    """What training needs from a model's text side (see the module docstring)."""

    fingerprint: Fingerprint  # of the base model: keys the teacher cache and names adapters' base

    def text_module(self) -> torch.nn.Module: ...

    def text_forward(self, texts: list[str], lang: str | Language) -> torch.Tensor: ...


@dataclass
class EncoderTextSide:
    """A :class:`TrainableText` over an encoder: a module and a forward that runs through it."""

    encoder: Encoder
    module: torch.nn.Module
    forward: Callable[[list[str], Language], torch.Tensor]
    kind: str = "output"  # which embedding `forward` returns; part of the teacher-cache key

    @property
    def fingerprint(self) -> Fingerprint:
        return self.encoder.fingerprint

    def text_module(self) -> torch.nn.Module:
        return self.module

    def text_forward(self, texts: list[str], lang: str | Language) -> torch.Tensor:
        return self.forward(list(texts), get_language(lang))


def _tower_forward(encoder) -> Callable[[list[str], Language], torch.Tensor]:
    """tokenize → pad → ``text_tower`` → ``mean_pool`` (the babel-lite shape)."""
    import torch

    def forward(texts: list[str], lang: Language) -> torch.Tensor:
        ids: Sequence[Sequence[int]] = encoder.tokenize(texts, lang)
        tower = encoder.text_tower
        pad = getattr(tower.config, "pad_token_id", 0) or 0
        width = max(len(x) for x in ids)
        device = next(tower.parameters()).device
        batch = torch.full((len(ids), width), pad, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for r, x in enumerate(ids):
            batch[r, : len(x)] = torch.as_tensor(list(x), dtype=torch.long)
            mask[r, : len(x)] = 1
        batch, mask = batch.to(device), mask.to(device)
        return encoder.mean_pool(tower(input_ids=batch, attention_mask=mask).last_hidden_state, mask)

    return forward


def _logits_forward(encoder) -> Callable[[list[str], Language], torch.Tensor]:
    """The pooled tower through the encoder's class head: logits / text temperature (pre-softmax)."""
    tower = _tower_forward(encoder)

    def forward(texts: list[str], lang: Language) -> torch.Tensor:
        return encoder.head(tower(texts, lang)) / float(getattr(encoder, "text_temperature", 1.0))

    return forward


LEVELS = ("output", "tower", "logits")


def trainable_text(encoder: Encoder | TrainableText, level: Literal["output", "tower", "logits"] = "output") -> TrainableText:
    """The :class:`TrainableText` of ``encoder`` (returned as is if it already is one)."""
    if level not in LEVELS:
        raise ValueError(f"level={level!r}; allowed: {', '.join(LEVELS)}")
    if isinstance(encoder, TrainableText) and not hasattr(encoder, "encode_texts"):
        return encoder
    hook = getattr(encoder, "_text_features", None)
    if all(hasattr(encoder, a) for a in ("text_tower", "tokenize", "mean_pool")):
        if level == "tower":
            return EncoderTextSide(encoder, encoder.text_tower, _tower_forward(encoder), "tower")
        if level == "logits":
            if not hasattr(encoder, "head"):
                raise ValueError(f"level='logits' needs an encoder with a class head (babel-lite); {type(encoder).__name__} has none")
            return EncoderTextSide(encoder, encoder.text_tower, _logits_forward(encoder), "logits")
        return EncoderTextSide(encoder, encoder.text_tower, hook)
    if level in ("tower", "logits"):
        raise ValueError(
            f"level={level!r} needs an encoder exposing text_tower, tokenize and mean_pool; "
            f"{type(encoder).__name__} does not: use level='output'"
        )
    model = getattr(encoder, "model", None)
    family = getattr(encoder.fingerprint, "family", "")
    if family in ("hf", "mclip") and model is not None and hook is not None:
        module = getattr(model, "text_model", None) or getattr(model, "transformer", None)
        if module is not None:
            return EncoderTextSide(encoder, module, hook)
    if family == "openclip" and model is not None and hook is not None:
        module = getattr(model, "text", None) or getattr(model, "transformer", None)
        if module is not None:
            return EncoderTextSide(encoder, module, hook)
    raise TypeError(
        f"cannot train the text side of {type(encoder).__name__} (family {family!r}): it needs "
        "text_tower + tokenize + mean_pool (babel-lite style), or an hf/openclip encoder with "
        "`model.text_model` / `model.text` and `_text_features`; or pass an object implementing "
        "babelclip.train.text_side.TrainableText"
    )
