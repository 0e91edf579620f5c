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

import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .parallel import ParallelCorpus, ParallelDataError
from .text_side import TrainableText

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)

ADAPTER_META = "babelclip_adapter.json"
FULL_WEIGHTS = "text_module.safetensors"
METHODS = ("lora", "full")
LOSSES = ("mse", "kl")

#: Linear-layer names of attention and feed-forward blocks in the text towers babelclip runs
#: (BERT/XLM-R: query/key/value/dense; CLIP/SigLIP/M2M: q_proj/k_proj/v_proj/out_proj/fc1/fc2;
#: T5-style: q/k/v/o/wi/wo; open_clip's own blocks: c_fc/c_proj).
LORA_TARGET_NAMES = ("query", "key", "value", "dense", "q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2",
                     "q", "k", "v", "o", "wi", "wo", "c_fc", "c_proj")


@dataclass
class DistillConfig:
    """How to train; saved beside every adapter and checkpoint so a run can be repeated."""

    method: Literal["lora", "full"] = "lora"  # per-language adapters (small files) or all text-module weights
    steps: int = 1000  # optimizer steps (the schedule's length; resume continues towards it)
    batch_size: int = 32  # GLOBAL batch: split evenly across torchrun processes, so results match 1 process
    lr: float = 1e-3  # LoRA likes ~1e-3; full fine-tuning wants ~2e-5
    weight_decay: float = 0.0  # AdamW decoupled decay; adapters start at zero, decay pulls them back
    warmup_steps: int = 0  # linear warm-up, then linear decay to 0 at `steps`
    grad_clip: float = 1.0  # max global gradient norm (0 = off): keeps early LoRA steps sane
    loss: Literal["mse", "kl"] = "mse"  # kl: Hinton et al. 2015 on class logits (level="logits"), KL(teacher‖student)
    kl_temperature: float = 1.0  # softening of both distributions for loss="kl" (loss scaled by T²)
    normalize: bool = True  # compare L2-normalised embeddings: MSE = 2 - 2cos, what retrieval scores use
    contrastive_weight: float = 0.0  # weight of the in-batch InfoNCE term (0 = pure MSE as M-CLIP)
    temperature: float = 0.05  # InfoNCE temperature (on cosines)
    lora_r: int = 8  # adapter rank: capacity vs size
    lora_alpha: int = 16  # LoRA scaling alpha/r
    lora_dropout: float = 0.0  # dropout on the adapter input
    lora_targets: tuple[str, ...] | None = None  # linear-layer names; None = every attention/FFN linear
    max_trainable_fraction: float = 0.05  # LoRA must stay "a few %" of the text module; asserted
    checkpoint_every: int = 100  # steps between checkpoints (and at the end)
    keep_checkpoints: int = 2  # older checkpoints are deleted
    max_minutes: float = 0.0  # wall-clock budget (0 = none): stop early, checkpoint, save
    seed: int = 0  # data order, LoRA init, dropout
    teacher_batch_size: int = 64  # batch for the one-off teacher pass
    progress: bool = True  # tqdm progress bar (rank 0 only)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r}; allowed: {', '.join(METHODS)}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss={self.loss!r}; allowed: {', '.join(LOSSES)}")
        for name in ("steps", "batch_size", "checkpoint_every", "lora_r", "teacher_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lora_targets is not None:
            self.lora_targets = tuple(self.lora_targets)


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


# -- distributed helpers ---------------------------------------------------------------------------
def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def _rank_world() -> tuple[int, int]:
    d = _dist()
    return (d.get_rank(), d.get_world_size()) if d else (0, 1)


def init_distributed_from_env() -> bool:
    """Join the process group ``torchrun`` describes (gloo on CPU, NCCL on GPUs); False if not under torchrun."""
    import torch
    import torch.distributed as dist

    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ or dist.is_initialized():
        return dist.is_initialized()
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return True


# -- teacher -----------------------------------------------------------------------------------------
def texts_hash(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:20]


def teacher_embeddings(text: TrainableText, english: list[str], cache_dir: str | os.PathLike | None, batch_size: int = 64,
                       progress: bool = False) -> np.ndarray:
    """The frozen teacher's (unnormalised) embeddings of ``english``, from the cache when present.

    Computed by ``text_forward(..., "en")`` before any training touches the module. Under
    torchrun rank 0 computes and writes, the others wait and read.
    """
    import torch

    path = None
    if cache_dir is not None:
        kind = getattr(text, "kind", "")  # e.g. babel-lite's "output" vs "tower" embeddings
        path = Path(cache_dir) / f"teacher-{text.fingerprint.key}{'-' + kind if kind else ''}-{texts_hash(english)}.npy"
    rank, _ = _rank_world()
    d = _dist()
    cached = [path is not None and path.exists()]
    if d is not None:  # every rank takes rank 0's branch: a rank that saw the file rank 0 just
        d.broadcast_object_list(cached, src=0)  # wrote would skip the barrier below and deadlock
    if cached[0]:
        return np.load(path)
    if rank == 0 or path is None:
        module = text.text_module()
        was_training = module.training
        module.eval()
        out = []
        from tqdm.auto import tqdm

        with torch.no_grad():
            for i in tqdm(range(0, len(english), batch_size), desc="teacher", disable=not progress or rank != 0):
                out.append(text.text_forward(english[i : i + batch_size], "en").float().cpu().numpy())
        module.train(was_training)
        emb = np.concatenate(out).astype(np.float32)
        if path is not None and rank == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
            np.save(tmp, emb)
            os.replace(tmp, path)
    if d is not None and path is not None:
        d.barrier()
        emb = np.load(path)
    return emb


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


# -- checkpoints ---------------------------------------------------------------------------------------
def _trainable_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone() for n, p in module.named_parameters() if p.requires_grad}


def _rng_state() -> dict[str, Any]:
    import torch

    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _set_rng_state(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def latest_checkpoint(out_dir: str | os.PathLike) -> Path | None:
    """The newest ``checkpoints/step-*.pt`` under ``out_dir``, or None."""
    ckpts = sorted(Path(out_dir, "checkpoints").glob("step-*.pt"))
    return ckpts[-1] if ckpts else None


def _save_checkpoint(out_dir: Path, step: int, pos: tuple[int, int], module, optimizer, scheduler, losses, config) -> None:
    import torch

    d = out_dir / "checkpoints"
    d.mkdir(parents=True, exist_ok=True)
    state = {
        "step": step, "data_position": list(pos), "trainable": _trainable_state(module),
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": _rng_state(),
        "losses": list(losses), "config": asdict(config),
    }
    path = d / f"step-{step:08d}.pt"
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # a run killed mid-write never leaves a half checkpoint
    for old in sorted(d.glob("step-*.pt"))[: -config.keep_checkpoints]:
        old.unlink()
    log.info("checkpoint %s", path)


def _load_checkpoint(path: Path, module, optimizer, scheduler, config: DistillConfig) -> tuple[int, list[float]]:
    import torch

    state = torch.load(path, map_location="cpu", weights_only=False)
    # Fields that change how the run is watched or stored, not what it computes, may differ.
    free = ("progress", "max_minutes", "checkpoint_every", "keep_checkpoints", "teacher_batch_size")
    saved = {k: v for k, v in state["config"].items() if k not in free}
    now = {k: v for k, v in asdict(config).items() if k in saved}
    if saved.get("lora_targets") is not None:
        saved["lora_targets"] = tuple(saved["lora_targets"])
    if saved != now:
        diff = {k: (saved[k], now[k]) for k in saved if saved[k] != now.get(k)}
        raise ValueError(f"cannot resume from {path}: its config differs from this run's (saved, now): {diff}")
    params = dict(module.named_parameters())
    missing = [n for n in state["trainable"] if n not in params]
    if missing:
        raise ValueError(f"checkpoint {path} holds weights this model lacks: {missing[:5]}")
    with torch.no_grad():
        for n, t in state["trainable"].items():
            params[n].copy_(t)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    _set_rng_state(state["rng"])
    log.info("resumed from %s (step %d, data position %s)", path, state["step"], state["data_position"])
    return int(state["step"]), list(state["losses"])


# -- the loop ------------------------------------------------------------------------------------------
def _allreduce_grads(params: list[torch.Tensor], world: int) -> None:
    """Average gradients across processes (one flat all-reduce): DDP's step, done explicitly."""
    import torch

    d = _dist()
    if d is None or world == 1:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    d.all_reduce(flat)
    flat /= world
    off = 0
    for p, g in zip(params, grads):
        p.grad = flat[off : off + g.numel()].view_as(g).clone()
        off += g.numel()


def _mean_across(x: float) -> float:
    import torch

    d = _dist()
    if d is None:
        return x
    t = torch.tensor([x], dtype=torch.float64)
    d.all_reduce(t)
    return float(t.item()) / d.get_world_size()


def _file_sha(paths: list[Path]) -> str:
    from ..models.base import hash_files

    return hash_files([str(p) for p in sorted(paths)])


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

    Writes to ``out_dir``: checkpoints, then the adapter (``method="lora"``: peft's
    ``adapter_config.json`` + ``adapter_model.safetensors``) or the text module's weights
    (``"full"``), and :data:`ADAPTER_META` naming the base model's fingerprint, the language,
    the data (source, licence, size), the config, the loss curve and ``eval_fn``'s result.
    ``resume`` continues from the last checkpoint; ``interrupt_at`` stops after that step as a
    killed run would (checkpointing first), for tests and time-boxed jobs.
    """
    import torch
    from tqdm.auto import tqdm

    lang = corpus.lang
    if lang.tag == "en":
        raise ParallelDataError("English is the teacher: distil into another language (English is never changed)")
    if not len(corpus):
        raise ParallelDataError(f"no training pairs for {lang.tag} ({corpus.source})")
    out = Path(out_dir)
    rank, world = _rank_world()
    if config.batch_size % world:
        raise ValueError(f"batch_size {config.batch_size} must be divisible by the {world} processes")
    ckpt = latest_checkpoint(out) if resume else None
    if resume and ckpt is None:
        log.warning("--resume: no checkpoint under %s, starting from step 0", out)
    if not resume and latest_checkpoint(out) is not None:
        raise ValueError(f"{out} already holds checkpoints of a run: pass resume=True (--resume) or use another directory")

    english = [e for e, _ in corpus.pairs]
    targets = [t for _, t in corpus.pairs]
    teacher = torch.from_numpy(teacher_embeddings(
        text, english, cache_dir if cache_dir is not None else out / "teacher_cache", config.teacher_batch_size, config.progress
    ))

    torch.manual_seed(config.seed)
    random.seed(config.seed)
    np.random.seed(config.seed)
    module = text.text_module()
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
    params = [p for p in module.parameters() if p.requires_grad]
    d = _dist()
    if d is not None:  # identical start on every rank
        with torch.no_grad():
            for p in params:
                d.broadcast(p.data, 0)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)

    def schedule(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        return max(0.0, (config.steps - step) / max(1, config.steps - config.warmup_steps))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    start, losses = 0, []
    if ckpt is not None:
        start, losses = _load_checkpoint(ckpt, module, optimizer, scheduler, config)

    module.train()
    t0 = time.monotonic()
    stopped = False
    pos = (0, 0)
    bar = tqdm(total=config.steps, initial=start, desc=f"distil {lang.tag}", disable=not config.progress or rank != 0)
    step = start
    for step in range(start, config.steps):
        idx, pos = batch_indices(len(corpus), step, config.batch_size, config.seed)
        mine = idx[rank::world] if len(idx) >= world else idx
        student = text.text_forward([targets[i] for i in mine], lang)
        loss = distill_loss(student.float(), teacher[torch.as_tensor(mine)].to(student.device), config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        _allreduce_grads(params, world)
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        scheduler.step()
        losses.append(_mean_across(float(loss.detach())))
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
        done = step + 1
        # every rank must agree to stop, or the others would wait forever in the next all-reduce
        over_time = bool(config.max_minutes) and _mean_across(float(time.monotonic() - t0 > 60 * config.max_minutes)) > 0
        save = done % config.checkpoint_every == 0 or done in (config.steps, interrupt_at) or over_time
        if save and rank == 0:
            _save_checkpoint(out, done, pos, module, optimizer, scheduler, losses, config)
        if done == interrupt_at:
            bar.close()
            module.eval()
            return DistillResult(str(out), done, losses, len(corpus), trainable, total, stopped_early=True)
        if over_time:
            log.warning("time budget of %.1f min reached at step %d of %d", config.max_minutes, done, config.steps)
            stopped = True
            break
    bar.close()
    module.eval()
    steps_done = len(losses)
    evaluation = eval_fn(text) if eval_fn is not None else {}
    if rank == 0:
        _save_final(out, text, peft_model, module, corpus, config, losses, evaluation, trainable, total, extra_meta or {})
    if d is not None:
        d.barrier()
    return DistillResult(str(out), steps_done, losses, len(corpus), trainable, total, evaluation, stopped)


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
