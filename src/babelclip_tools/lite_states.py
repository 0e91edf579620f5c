"""Training mE5's top layers on cached lower-layer states: what makes babel-lite 2 affordable.

A LoRA over all 12 layers costs a full forward and backward per text; at ~1.3 s per step of 32
texts on one core, 30 minutes see ~90 pairs per language, too few to move 110 languages at once
(docs/babel-lite.md). Adapting only the top ``k`` layers lets the lower ``12 - k`` run **once**
per distinct text: their output states are cached (float16, packed: one row per token) and
every step starts from them. With k = 4 a step of 256 texts takes about as long as a step of 32
through the whole tower did, so the same budget sees ~8x the pairs (and each text's lower layers
are computed once instead of at every visit).

:class:`LowerStates` holds the cache; :class:`TopLayersKL` is the training objective for
:func:`babelclip.train.loop.train_objective`: KL(teacher ‖ student) of the head's class
distributions (Hinton et al. 2015), the teacher being babel-lite 1 on the English name (computed
once per name), the student the top layers (with their LoRA) on the other language's name.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from babelclip.languages import Language
from babelclip.models.packed_bert import (
    packed_embeddings,
    packed_layers,
    packed_mean,
    pad_batch,
)
from babelclip.train.distributed import rank_share
from babelclip.train.parallel import MULTILINGUAL

log = logging.getLogger(__name__)


@dataclass
class LowerStates:
    """Token states after the first ``below`` layers of the tower, for each of ``texts``."""

    texts: list[str]
    below: int
    states: torch.Tensor  # (tokens, hidden) float16, text after text
    offsets: torch.Tensor  # (len(texts) + 1,) start row of each text
    index: dict[str, int] = field(init=False)  # text -> its position in ``texts``

    def __post_init__(self) -> None:
        self.index = {t: i for i, t in enumerate(self.texts)}

    @classmethod
    def compute(cls, model, texts: list[str], below: int, batch: int = 256) -> LowerStates:
        """Run ``model``'s tokenizer, embeddings and first ``below`` layers over ``texts``, in
        length-sorted batches with no padding through any linear layer."""
        tower = model.text_tower
        ids = model.tokenize(texts)
        lens = torch.tensor([len(x) for x in ids], dtype=torch.long)
        offsets = torch.zeros(len(ids) + 1, dtype=torch.long)
        offsets[1:] = lens.cumsum(0)
        states = torch.empty(int(offsets[-1]), tower.config.hidden_size, dtype=torch.float16)
        order = sorted(range(len(ids)), key=lambda i: int(lens[i]))
        with torch.inference_mode():
            for s in range(0, len(order), batch):
                idx = order[s : s + batch]
                input_ids, mask = pad_batch([ids[i] for i in idx], tower.config.pad_token_id)
                keep = mask.bool()
                x = packed_embeddings(tower, input_ids, keep)
                x = packed_layers(tower.encoder.layer[:below], x, keep, tower.config).half()
                pos = 0
                for i in idx:  # packed rows are text after text, in batch order
                    n = int(lens[i])
                    states[offsets[i] : offsets[i] + n] = x[pos : pos + n]
                    pos += n
        return cls(list(texts), below, states, offsets)

    @staticmethod
    def key(texts: list[str], below: int, tower_key: str) -> str:
        h = hashlib.sha256(f"{tower_key}|{below}|".encode())
        for t in texts:
            h.update(t.encode("utf-8") + b"\0")
        return h.hexdigest()[:16]

    @classmethod
    def cached(cls, model, texts: list[str], below: int, work: Path, tower_key: str) -> LowerStates:
        """:meth:`compute`, kept in ``work`` under a key of the texts, ``below`` and the tower."""
        path = Path(work) / f"lower-states-{cls.key(texts, below, tower_key)}.pt"
        if path.is_file():
            blob = torch.load(path, weights_only=True)
            log.info("lower-layer states from %s", path)
            return cls(list(texts), below, blob["states"], blob["offsets"])
        out = cls.compute(model, texts, below)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"states": out.states, "offsets": out.offsets}, tmp)
        tmp.replace(path)
        return out

    def batch(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Packed float32 states of ``texts`` and their ``keep`` mask (rows = texts)."""
        rows = [self.index[t] for t in texts]
        lens = self.offsets[1:][rows] - self.offsets[:-1][rows]
        keep = torch.arange(int(lens.max()))[None, :] < lens[:, None]
        x = torch.cat([self.states[self.offsets[r] : self.offsets[r + 1]] for r in rows]).float()
        return x, keep


class TopLayersKL:
    """The :class:`~babelclip.train.loop.Objective` of babel-lite 2: items are ``(english,
    student text)`` pairs; the loss is KL(teacher ‖ student) of the head's class distributions,
    the student running the tower's top layers from :class:`LowerStates`."""

    lang: Language = MULTILINGUAL

    def __init__(self, model, items: list[tuple[str, str]], states: LowerStates, teacher: dict[str, torch.Tensor],
                 data_meta: dict[str, Any]):
        self.model, self.items, self.states, self.teacher, self._meta = model, items, states, teacher, data_meta
        self.layers = model.text_tower.encoder.layer[states.below :]
        self.cfg = model.text_tower.config

    def __len__(self) -> int:
        return len(self.items)

    def student_logits(self, texts: list[str]) -> torch.Tensor:
        x, keep = self.states.batch(texts)
        pooled = packed_mean(packed_layers(self.layers, x, keep, self.cfg), keep)
        return self.model.head(pooled) / float(self.model.text_temperature)

    def loss(self, text, idx: np.ndarray, step: int) -> torch.Tensor:
        self.layers.train(False)  # no dropout: the cached lower layers ran without it too
        batch = [self.items[i] for i in rank_share(idx)]
        target = torch.stack([self.teacher[e] for e, _ in batch])
        logp = torch.log_softmax(self.student_logits([t for _, t in batch]), -1)
        return torch.nn.functional.kl_div(logp, target, reduction="batchmean")

    def data_meta(self) -> dict[str, Any]:
        return dict(self._meta)


def teacher_distributions(model, english: list[str], batch: int = 256) -> dict[str, torch.Tensor]:
    """babel-lite 1's class distribution of each English name (the frozen model, before any LoRA)."""
    with torch.inference_mode():
        probs = torch.cat([model.text_distribution(english[i : i + batch]) for i in range(0, len(english), batch)])
    return {e: p.clone() for e, p in zip(english, probs)}
