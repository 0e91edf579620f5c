"""The training loop every objective shares: student preparation (LoRA or full), AdamW with a
linear schedule, data-parallel steps, checkpoints and resume, the final save.

An :class:`Objective` says what one step computes: :func:`~babelclip.train.distill.distill`'s
teacher–student loss over parallel pairs, or :func:`~babelclip.train.lexical.specialize`'s
contrastive loss over synonym sets. :func:`train_objective` does everything else, the same way
for both: batches are a pure function of ``(seed, step)`` (:func:`batch_indices`), so a resumed
run computes what an uninterrupted one does; under ``torchrun`` gradients are averaged across
processes before each step; the result is saved as a LoRA adapter or the text module's weights
with :data:`ADAPTER_META` beside it.
"""
from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..errors import CheckpointError
from ..languages import Language
from .checkpoints import latest_checkpoint, load_checkpoint, save_checkpoint
from .config import LORA_TARGET_NAMES, DistillConfig
from .distributed import allreduce_grads, mean_across, process_group, rank_world
from .text_side import TrainableText

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)

ADAPTER_META = "babelclip_adapter.json"
FULL_WEIGHTS = "text_module.safetensors"


class Objective(Protocol):
    """What a training step computes, over ``len(objective)`` items drawn in batches."""

    lang: Language  # the language whose text side is trained (adapters are per language)

    def __len__(self) -> int: ...

    def loss(self, text: TrainableText, idx: np.ndarray, step: int) -> torch.Tensor:
        """The loss of the global batch ``idx`` at ``step`` as this process sees it (its share
        of the batch under torchrun: :func:`~babelclip.train.distributed.rank_share`)."""
        ...

    def data_meta(self) -> dict[str, Any]:
        """What the run was trained on (source, licence, size...): ``data`` in :data:`ADAPTER_META`."""
        ...


@dataclass
class DistillResult:
    """What a run produced: where the weights are, the loss curve, and the end-of-run evaluation."""

    out_dir: str
    steps_done: int
    losses: list[float]
    n_pairs: int  # items the batches were drawn from: parallel pairs, or synonym sets
    trainable_params: int
    total_params: int
    evaluation: dict[str, Any] = field(default_factory=dict)
    stopped_early: bool = False


# -- student -----------------------------------------------------------------------------------------
def lora_target_modules(module: torch.nn.Module, names: tuple[str, ...] | None = None,
                        layers: tuple[int, ...] | None = None) -> list[str]:
    """Full names of the ``nn.Linear`` layers of ``module`` to adapt (poolers never); with
    ``layers``, only those inside the transformer blocks of these indices (the first numbered
    part of the name: ``encoder.layer.9.attention.self.query`` is in block 9)."""
    import re

    import torch

    wanted = set(names or LORA_TARGET_NAMES)
    out = [
        n for n, m in module.named_modules()
        if isinstance(m, torch.nn.Linear) and n.rsplit(".", 1)[-1] in wanted and "pooler" not in n
    ]
    if layers is not None:
        chosen = set(layers)
        out = [n for n in out if (m := re.search(r"(?:^|\.)(\d+)\.", n)) is not None and int(m.group(1)) in chosen]
    if not out:
        linear = [n for n, m in module.named_modules() if isinstance(m, torch.nn.Linear)][:10]
        raise ValueError(f"no linear layer named {sorted(wanted)} in blocks {layers or 'any'} of the text module; "
                         f"its linear layers include {linear}")
    return out


def attach_lora(module: torch.nn.Module, config: DistillConfig, adapter_name: str = "default"):
    """Wrap ``module`` (in place) with fresh LoRA adapters; returns the ``peft`` model."""
    import peft

    cfg = peft.LoraConfig(
        r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
        target_modules=lora_target_modules(module, config.lora_targets, config.lora_layers), bias="none",
    )
    return peft.get_peft_model(module, cfg, adapter_name=adapter_name)


def count_params(module: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(module.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


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


def check_run_start(config: DistillConfig, out: Path, resume: bool) -> None:
    """Before any work: the batch splits evenly across processes, and ``out`` holds no other run
    (or, with ``resume``, the one to continue)."""
    _, world = rank_world()
    if config.batch_size % world:
        raise ValueError(f"batch_size {config.batch_size} must be divisible by the {world} processes")
    if resume and latest_checkpoint(out) is None:
        log.warning("--resume: no checkpoint under %s, starting from step 0", out)
    if not resume and latest_checkpoint(out) is not None:
        raise ValueError(f"{out} already holds checkpoints of a run: pass resume=True (--resume) or use another directory")


def _step(run: _Run, idx, step: int) -> float:
    """One optimizer step on the global batch ``idx`` (each process its share); the mean loss."""
    import torch

    config, params, world = run.config, run.params, run.world
    loss = run.objective.loss(run.text, idx, step)
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


def train_objective(
    text: TrainableText,
    objective: Objective,
    config: DistillConfig,
    out: Path,
    *,
    resume: bool = False,
    eval_fn: Callable[[TrainableText], dict[str, Any]] | None = None,
    interrupt_at: int | None = None,
    extra_meta: dict[str, Any] | None = None,
) -> DistillResult:
    """Train ``text``'s module on ``objective`` from step 0 (or the newest checkpoint with
    ``resume``) to ``config.steps``; save the weights and :data:`ADAPTER_META` to ``out``.

    ``interrupt_at`` stops after that step as a killed run would (checkpointing first);
    ``eval_fn`` runs on the trained text side and its result is saved with the weights.
    """
    import torch

    rank, world = rank_world()
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
    run = _Run(text, objective, config, out, module, params, optimizer, scheduler, rank, world)
    stopped = run.train(start, losses, interrupt_at)
    module.eval()
    if stopped == "interrupted":
        return DistillResult(str(out), len(losses), losses, len(objective), trainable, total, stopped_early=True)
    evaluation = eval_fn(text) if eval_fn is not None else {}
    if rank == 0:
        _save_final(out, text, peft_model, module, objective, config, losses, evaluation, trainable, total, extra_meta or {})
    if d is not None:
        d.barrier()
    return DistillResult(str(out), len(losses), losses, len(objective), trainable, total, evaluation, stopped == "over_time")


class _Run:
    """The training loop's state: steps from ``start`` to ``config.steps``, checkpointing."""

    def __init__(self, text, objective, config, out, module, params, optimizer, scheduler, rank, world):
        self.text, self.objective, self.config, self.out = text, objective, config, out
        self.module, self.params, self.optimizer, self.scheduler = module, params, optimizer, scheduler
        self.rank, self.world = rank, world

    def train(self, start: int, losses: list[float], interrupt_at: int | None) -> str:
        """Run the steps, appending to ``losses``; returns ``"done"``, ``"interrupted"`` or ``"over_time"``."""
        from tqdm.auto import tqdm

        config = self.config
        self.module.train()
        t0 = time.monotonic()
        bar = tqdm(total=config.steps, initial=start, desc=f"{config.objective} {self.objective.lang.tag}",
                   disable=not config.progress or self.rank != 0)
        try:
            for step in range(start, config.steps):
                idx, pos = batch_indices(len(self.objective), step, config.batch_size, config.seed)
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


def _save_final(out: Path, text: TrainableText, peft_model, module, objective: Objective, config: DistillConfig,
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
        "lang": objective.lang.tag,
        "base_fingerprint": text.fingerprint.as_dict(),
        "base_key": text.fingerprint.key,
        "weights_sha256": _file_sha(files),
        "data": objective.data_meta(),
        "config": asdict(config),
        "params": {"trainable": trainable, "total_text_module": total},
        "losses": {"first": losses[0] if losses else None, "last": losses[-1] if losses else None, "steps": len(losses)},
        "evaluation": evaluation,
        **extra,
    }
    (out / ADAPTER_META).write_text(json.dumps(meta, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    log.info("saved %s %s weights to %s", objective.lang.tag, config.method, out)
