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
and gradients are averaged across processes (what DDP does) before each step.
"""
from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import CheckpointError
from .checkpoints import latest_checkpoint, load_checkpoint, save_checkpoint
from .config import LORA_TARGET_NAMES, DistillConfig
from .distributed import (
    allreduce_grads,
    init_distributed_from_env,
    mean_across,
    process_group,
    rank_world,
)
from .parallel import ParallelCorpus, ParallelDataError
from .teacher import teacher_embeddings, texts_hash
from .text_side import TrainableText

__all__ = ["ADAPTER_META", "FULL_WEIGHTS", "DistillConfig", "DistillResult", "distill", "distill_loss",
           "init_distributed_from_env", "latest_checkpoint", "teacher_embeddings", "texts_hash"]

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)

ADAPTER_META = "babelclip_adapter.json"
FULL_WEIGHTS = "text_module.safetensors"
@dataclass
class DistillResult:
    """What a run produced: where the weights are, the loss curve, and the end-of-run evaluation."""

    out_dir: str
    steps_done: int
    losses: list[float]
    n_pairs: int
    trainable_params: int
    total_params: int
    evaluation: dict[str, Any] = field(default_factory=dict)
    stopped_early: bool = False


# -- student -----------------------------------------------------------------------------------------
def lora_target_modules(module: torch.nn.Module, names: tuple[str, ...] | None = None) -> list[str]:
    """Full names of the ``nn.Linear`` layers of ``module`` to adapt (poolers never)."""
    import torch

    wanted = set(names or LORA_TARGET_NAMES)
    out = [
        n for n, m in module.named_modules()
        if isinstance(m, torch.nn.Linear) and n.rsplit(".", 1)[-1] in wanted and "pooler" not in n
    ]
    if not out:
        linear = [n for n, m in module.named_modules() if isinstance(m, torch.nn.Linear)][:10]
        raise ValueError(f"no linear layer named {sorted(wanted)} in the text module; its linear layers include {linear}")
    return out


def attach_lora(module: torch.nn.Module, config: DistillConfig, adapter_name: str = "default"):
    """Wrap ``module`` (in place) with fresh LoRA adapters; returns the ``peft`` model."""
    import peft

    cfg = peft.LoraConfig(
        r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
        target_modules=lora_target_modules(module, config.lora_targets), bias="none",
    )
    return peft.get_peft_model(module, cfg, adapter_name=adapter_name)


def count_params(module: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(module.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


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


def batch_indices(n: int, step: int, batch_size: int, seed: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The global batch of ``step``: a fresh permutation per epoch (seeded), full batches only.

    A pure function of ``step``, so resuming needs no data-loader state; returns (indices,
    (epoch, batch in epoch)) — the data position saved in checkpoints.
    """
    per_epoch = max(1, n // batch_size)
    epoch, i = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return order[i * batch_size : (i + 1) * batch_size], (epoch, i)


# -- the loop ------------------------------------------------------------------------------------------
def _file_sha(paths: list[Path]) -> str:
    from ..models.base import hash_files

    return hash_files([str(p) for p in sorted(paths)])


def _prepare_student(module, config: DistillConfig):
    """Make the trainable part trainable: fresh LoRA adapters, or every weight; returns
    ``(peft model or None, trainable count, total count)``."""
    peft_model = None
    if config.method == "lora":
        peft_model = attach_lora(module, config)
    else:
        for p in module.parameters():
            p.requires_grad_(True)
    trainable, total = count_params(module)
    if config.method == "lora" and trainable > config.max_trainable_fraction * total:
        raise AssertionError(
            f"LoRA trains {trainable} of {total} parameters ({100 * trainable / total:.2f}%), more than "
            f"max_trainable_fraction={config.max_trainable_fraction}: lower lora_r or lora_targets"
        )
    log.info("%s: training %d of %d text-module parameters (%.3f%%)", config.method, trainable, total, 100 * trainable / total)
    return peft_model, trainable, total


def _optimizer(params: list, config: DistillConfig):
    """AdamW with linear warm-up, then linear decay to 0 at ``config.steps``."""
    import torch

    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)

    def schedule(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        return max(0.0, (config.steps - step) / max(1, config.steps - config.warmup_steps))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def _check_start(corpus: ParallelCorpus, config: DistillConfig, out: Path, resume: bool, world: int) -> None:
    if corpus.lang.tag == "en":
        raise ParallelDataError("English is the teacher: distil into another language (English is never changed)")
    if not len(corpus):
        raise ParallelDataError(f"no training pairs for {corpus.lang.tag} ({corpus.source})")
    if config.batch_size % world:
        raise ValueError(f"batch_size {config.batch_size} must be divisible by the {world} processes")
    if resume and latest_checkpoint(out) is None:
        log.warning("--resume: no checkpoint under %s, starting from step 0", out)
    if not resume and latest_checkpoint(out) is not None:
        raise ValueError(f"{out} already holds checkpoints of a run: pass resume=True (--resume) or use another directory")


def _step(run: _Run, idx, step: int) -> float:
    """One optimizer step on this rank's share of the global batch ``idx``; the mean loss."""
    import torch

    config, params, world = run.config, run.params, run.world
    mine = idx[run.rank::world] if len(idx) >= world else idx
    student = run.text.text_forward([run.targets[i] for i in mine], run.corpus.lang)
    loss = distill_loss(student.float(), run.teacher[torch.as_tensor(mine)].to(student.device), config)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    allreduce_grads(params, world)
    if config.grad_clip:
        torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
    run.optimizer.step()
    run.scheduler.step()
    value = mean_across(float(loss.detach()))
    if not math.isfinite(value):
        raise CheckpointError(f"training diverged at step {step + 1}: loss not finite ({value}); nothing saved "
                              "for this step — lower the learning rate (--lr) or keep grad_clip on")
    return value


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
    rank, world = rank_world()
    _check_start(corpus, config, out, resume, world)
    english = [e for e, _ in corpus.pairs]
    teacher = torch.from_numpy(teacher_embeddings(
        text, english, cache_dir if cache_dir is not None else out / "teacher_cache", config.teacher_batch_size, config.progress
    ))
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    np.random.seed(config.seed)
    module = text.text_module()
    peft_model, trainable, total = _prepare_student(module, config)
    params = [p for p in module.parameters() if p.requires_grad]
    d = process_group()
    if d is not None:  # identical start on every rank
        with torch.no_grad():
            for p in params:
                d.broadcast(p.data, 0)
    optimizer, scheduler = _optimizer(params, config)
    start, losses = load_checkpoint(out, module, optimizer, scheduler, config) if resume else (0, [])
    run = _Run(text, corpus, config, out, module, params, optimizer, scheduler, teacher, rank, world)
    stopped = run.train(start, losses, interrupt_at)
    module.eval()
    if stopped == "interrupted":
        return DistillResult(str(out), len(losses), losses, len(corpus), trainable, total, stopped_early=True)
    evaluation = eval_fn(text) if eval_fn is not None else {}
    if rank == 0:
        _save_final(out, text, peft_model, module, corpus, config, losses, evaluation, trainable, total, extra_meta or {})
    if d is not None:
        d.barrier()
    return DistillResult(str(out), len(losses), losses, len(corpus), trainable, total, evaluation, stopped == "over_time")


class _Run:
    """The training loop's state: steps from ``start`` to ``config.steps``, checkpointing."""

    def __init__(self, text, corpus, config, out, module, params, optimizer, scheduler, teacher, rank, world):
        self.text, self.corpus, self.config, self.out = text, corpus, config, out
        self.module, self.params, self.optimizer, self.scheduler = module, params, optimizer, scheduler
        self.teacher, self.rank, self.world = teacher, rank, world
        self.targets = [t for _, t in corpus.pairs]

    def train(self, start: int, losses: list[float], interrupt_at: int | None) -> str:
        """Run the steps, appending to ``losses``; returns ``"done"``, ``"interrupted"`` or ``"over_time"``."""
        from tqdm.auto import tqdm

        config = self.config
        self.module.train()
        t0 = time.monotonic()
        bar = tqdm(total=config.steps, initial=start, desc=f"distil {self.corpus.lang.tag}",
                   disable=not config.progress or self.rank != 0)
        try:
            for step in range(start, config.steps):
                idx, pos = batch_indices(len(self.corpus), step, config.batch_size, config.seed)
                losses.append(_step(self, idx, step))
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
                done = step + 1
                # every rank must agree to stop, or the others would wait forever in the next all-reduce
                over_time = bool(config.max_minutes) and mean_across(
                    float(time.monotonic() - t0 > 60 * config.max_minutes)) > 0
                if (done % config.checkpoint_every == 0 or done in (config.steps, interrupt_at) or over_time) \
                        and self.rank == 0:
                    save_checkpoint(self.out, done, pos, self.module, self.optimizer, self.scheduler, losses, config)
                if done == interrupt_at:
                    return "interrupted"
                if over_time:
                    log.warning("time budget of %.1f min reached at step %d of %d", config.max_minutes, done, config.steps)
                    return "over_time"
        finally:
            bar.close()
        return "done"


def _save_final(out: Path, text: TrainableText, peft_model, module, corpus: ParallelCorpus, config: DistillConfig,
                losses: list[float], evaluation: dict, trainable: int, total: int, extra: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if peft_model is not None:
        peft_model.save_pretrained(str(out))  # the adapter only: adapter_config.json + adapter_model.safetensors
        files = [out / "adapter_model.safetensors", out / "adapter_config.json"]
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(out / FULL_WEIGHTS))
        files = [out / FULL_WEIGHTS]
    meta = {
        "format": "babelclip.adapter/1",
        "method": config.method,
        "lang": corpus.lang.tag,
        "base_fingerprint": text.fingerprint.as_dict(),
        "base_key": text.fingerprint.key,
        "weights_sha256": _file_sha(files),
        "data": {"source": corpus.source, "licence": corpus.licence, "pairs": len(corpus), **corpus.meta},
        "config": asdict(config),
        "params": {"trainable": trainable, "total_text_module": total},
        "losses": {"first": losses[0] if losses else None, "last": losses[-1] if losses else None, "steps": len(losses)},
        "evaluation": evaluation,
        **extra,
    }
    (out / ADAPTER_META).write_text(json.dumps(meta, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    log.info("saved %s %s weights to %s", corpus.lang.tag, config.method, out)
