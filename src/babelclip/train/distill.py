"""Teacher–student distillation of a text encoder into a new language, full or with LoRA adapters.

The method of Reimers & Gurevych (2020, "Making Monolingual Sentence Embeddings Multilingual
using Knowledge Distillation") as M-CLIP used it for CLIP text towers (Carlsson et al. 2022,
"Cross-lingual and Multilingual CLIP"): for parallel pairs (English *e*, target *t*), the frozen
teacher — the model's own text side, before any training — embeds *e*; the student embeds *t*
and learns to land on the teacher's point::

    loss = mean_i ‖s(t_i) − T(e_i)‖²  +  w · InfoNCE(s(t), T(e); τ)

with both sides L2-normalised by default (so the MSE term is 2 − 2·cos, the quantity retrieval
uses). The optional InfoNCE term (van den Oord et al. 2018; in-batch negatives, temperature τ)
pushes a target away from the *other* pairs' teachers. With ``loss="kl"`` the embeddings are class logits
(babel-lite's head, ``level="logits"``) and the loss is ``KL(softmax(T(e)/T) ‖ softmax(s(t)/T))·T²``
(Hinton et al. 2015, "Distilling the Knowledge in a Neural Network"): on babel-lite this is what
improved Swahili and the other weak languages, where MSE on the pooled mE5 embedding made the
student's embeddings collapse towards their common direction (measured in docs/training.md). Teacher embeddings are computed once and
cached on disk (``.npy`` keyed by the model fingerprint and a hash of the texts).

``method="lora"`` trains per-language low-rank adapters (Hu et al. 2021, "LoRA") through
``peft`` on the text module's attention and feed-forward linear layers — a few % of its
parameters at most, asserted — saved as a small separate directory; ``method="full"`` trains
every parameter of the text module. Both checkpoint every ``checkpoint_every`` steps (trainable
weights, optimizer, scheduler, RNG, step, data position) and resume to the same result as an
uninterrupted run. Under ``torchrun`` each process takes an equal share of every global batch
and gradients are averaged across processes (what DDP does) before each step. The loop itself is
:mod:`babelclip.train.loop`, shared with the lexical objective (:mod:`babelclip.train.lexical`).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .checkpoints import latest_checkpoint
from .config import DistillConfig
from .distributed import init_distributed_from_env, rank_share
from .loop import (
    ADAPTER_META,
    FULL_WEIGHTS,
    DistillResult,
    attach_lora,
    batch_indices,
    check_run_start,
    count_params,
    lora_target_modules,
    train_objective,
)
from .parallel import MULTILINGUAL, ParallelCorpus, ParallelDataError
from .teacher import teacher_embeddings, texts_hash
from .text_side import TrainableText, language_agnostic

__all__ = ["ADAPTER_META", "FULL_WEIGHTS", "DistillConfig", "DistillResult", "attach_lora", "batch_indices",
           "count_params", "distill", "distill_loss", "init_distributed_from_env", "latest_checkpoint",
           "lora_target_modules", "teacher_embeddings", "texts_hash"]

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, config: DistillConfig) -> torch.Tensor:
    """Per-batch loss of the module docstring (mean over the batch)."""
    import torch
    import torch.nn.functional as F

    if config.loss == "kl":
        tau = config.kl_temperature
        loss = F.kl_div(F.log_softmax(student / tau, -1), F.log_softmax(teacher / tau, -1), log_target=True,
                        reduction="batchmean") * tau**2
    else:
        if config.normalize:
            student, teacher = F.normalize(student, dim=-1), F.normalize(teacher, dim=-1)
        loss = ((student - teacher) ** 2).sum(-1).mean()
    if config.contrastive_weight:
        logits = F.normalize(student, dim=-1) @ F.normalize(teacher, dim=-1).T / config.temperature
        loss = loss + config.contrastive_weight * F.cross_entropy(logits, torch.arange(len(student), device=student.device))
    return loss


def _check_start(text: TrainableText, corpus: ParallelCorpus, config: DistillConfig, out: Path, resume: bool) -> None:
    if corpus.lang is MULTILINGUAL and not language_agnostic(text):
        raise ParallelDataError("a corpus mixing languages needs a text side whose embeddings do not depend on the "
                                "language (its encoder declares text_language_agnostic); train one language at a time")
    if corpus.lang.tag == "en":
        raise ParallelDataError("English is the teacher: distil into another language (English is never changed)")
    if not len(corpus):
        raise ParallelDataError(f"no training pairs for {corpus.lang.tag} ({corpus.source})")
    check_run_start(config, out, resume)


class _Distillation:
    """The :class:`~babelclip.train.loop.Objective` of distillation: a batch of pairs, the
    student's embeddings of their targets against the teacher's of their English sides."""

    def __init__(self, corpus: ParallelCorpus, teacher: torch.Tensor, config: DistillConfig):
        self.lang, self.corpus, self.teacher, self.config = corpus.lang, corpus, teacher, config
        self.targets = [t for _, t in corpus.pairs]

    def __len__(self) -> int:
        return len(self.corpus)

    def loss(self, text: TrainableText, idx: np.ndarray, step: int) -> torch.Tensor:
        import torch

        mine = rank_share(idx)
        student = text.text_forward([self.targets[i] for i in mine], self.lang)
        return distill_loss(student.float(), self.teacher[torch.as_tensor(mine)].to(student.device), self.config)

    def data_meta(self) -> dict[str, Any]:
        c = self.corpus
        return {"source": c.source, "licence": c.licence, "pairs": len(c), **c.meta}


def distill(
    text: TrainableText,
    corpus: ParallelCorpus,
    config: DistillConfig,
    out_dir: str | os.PathLike,
    *,
    resume: bool = False,
    cache_dir: str | os.PathLike | None = None,
    eval_fn: Callable[[TrainableText], dict[str, Any]] | None = None,
    interrupt_at: int | None = None,
    extra_meta: dict[str, Any] | None = None,
) -> DistillResult:
    """Train ``text``'s module so its ``corpus.lang`` embeddings match its own English ones.

    Writes to ``out_dir``: checkpoints (:mod:`babelclip.train.checkpoints`), then the adapter
    (``method="lora"``: peft's ``adapter_config.json`` + ``adapter_model.safetensors``) or the
    text module's weights (``"full"``), and :data:`ADAPTER_META` naming the base model's
    fingerprint, the language, the data (source, licence, size), the config, the loss curve and
    ``eval_fn``'s result. ``resume`` continues from the newest usable checkpoint;
    ``interrupt_at`` stops after that step as a killed run would (checkpointing first), for
    tests and time-boxed jobs. A loss or weight that stops being finite ends the run with
    :class:`~babelclip.errors.CheckpointError` before anything is saved for that step.
    """
    import torch

    out = Path(out_dir)
    _check_start(text, corpus, config, out, resume)
    english = [e for e, _ in corpus.pairs]
    teacher = torch.from_numpy(teacher_embeddings(
        text, english, cache_dir if cache_dir is not None else out / "teacher_cache", config.teacher_batch_size, config.progress
    ))
    return train_objective(text, _Distillation(corpus, teacher, config), config, out, resume=resume, eval_fn=eval_fn,
                           interrupt_at=interrupt_at, extra_meta=extra_meta)
