"""babel-lite's trainable text side: a text tower whose mean-pooled output feeds a class head.

:class:`PooledTowerText` gives any encoder of that shape (``text_tower``, ``tokenize(texts,
lang)``, ``mean_pool``, ``head``, ``text_temperature``) its
:class:`~babelclip.models.base.TrainableText` at three levels; the module trained is always
``text_tower``:

- ``"output"``: the encoder's own output (head included, the space ``encode_texts`` returns);
- ``"tower"``: the mean-pooled tower embedding (Reimers & Gurevych 2020 distil the sentence
  embedding);
- ``"logits"``: the head's class logits divided by the text temperature (for ``loss="kl"``, the
  best measured on babel-lite, docs/training.md).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..base import TEXT_LEVELS, TextSide, TrainableText

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ...languages import Language


class PooledTowerText:
    """Mixin: :meth:`trainable_text` for a mean-pooled text tower under a class head."""

    text_temperature: float = 1.0

    def trainable_text(self, level: str = "output") -> TrainableText:
        if level not in TEXT_LEVELS:
            raise ValueError(f"level={level!r}; allowed: {', '.join(TEXT_LEVELS)}")
        lora = getattr(self, "language_lora", None)
        if lora is not None:  # babel-lite 2.1: train on the base tower; from now on this object runs every
            lora.override(lora.languages)  # language on it, as `eval --adapters` runs a trained language
            lora.activate(None)
        if level == "tower":
            return TextSide(self, self.text_tower, self._tower_forward, "tower")
        if level == "logits":
            return TextSide(self, self.text_tower, self._logits_forward, "logits")
        return TextSide(self, self.text_tower, self._text_features)

    def _tower_forward(self, texts: list[str], lang: Language) -> torch.Tensor:
        """tokenize → pad → ``text_tower`` → ``mean_pool`` (the tower read at call time: adapters
        may wrap or replace it)."""
        import torch

        ids: Sequence[Sequence[int]] = self.tokenize(texts, lang)
        tower = self.text_tower
        pad = getattr(tower.config, "pad_token_id", 0) or 0
        width = max(len(x) for x in ids)
        device = next(tower.parameters()).device
        batch = torch.full((len(ids), width), pad, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for r, x in enumerate(ids):
            batch[r, : len(x)] = torch.as_tensor(list(x), dtype=torch.long)
            mask[r, : len(x)] = 1
        batch, mask = batch.to(device), mask.to(device)
        return self.mean_pool(tower(input_ids=batch, attention_mask=mask).last_hidden_state, mask)

    def _logits_forward(self, texts: list[str], lang: Language) -> torch.Tensor:
        """The pooled tower through the class head: logits / text temperature (pre-softmax)."""
        return self.head(self._tower_forward(texts, lang)) / float(self.text_temperature)
