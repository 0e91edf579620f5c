"""Training checkpoints: plain data, loaded with ``torch.load(weights_only=True)``, checked before use.

A checkpoint (``OUT/checkpoints/step-XXXXXXXX.pt``) holds the trainable weights, optimizer and
scheduler state, RNG states, step, data position, loss curve and config — only tensors, numbers,
strings and lists/dicts/tuples of them, so it loads with ``weights_only=True`` and a file planted
in the output folder cannot run code (it fails to load, and is refused).

On resume the newest checkpoint is checked before anything is copied into the model: it must
load (a truncated file does not), hold exactly the model's trainable weights with their shapes,
and every weight, optimizer tensor and loss must be finite. One that fails is refused with a
warning naming the file and why, renamed ``*.refused`` (kept for inspection, out of the way of
later resumes and of the pruning of old checkpoints), and the previous one is tried. A config
that differs from the run's is not damage but a different run: that raises at once.
"""
from __future__ import annotations

import logging
import math
import os
import random
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import CheckpointError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .config import DistillConfig

log = logging.getLogger(__name__)

PATTERN = "step-*.pt"
# Fields that change how a run is watched or stored, not what it computes: they may differ on resume.
FREE_FIELDS = ("progress", "max_minutes", "checkpoint_every", "keep_checkpoints", "teacher_batch_size")


def checkpoint_dir(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir, "checkpoints")


def latest_checkpoint(out_dir: str | os.PathLike) -> Path | None:
    """The newest ``checkpoints/step-*.pt`` under ``out_dir``, or None."""
    ckpts = sorted(checkpoint_dir(out_dir).glob(PATTERN))
    return ckpts[-1] if ckpts else None


def _rng_state() -> dict[str, Any]:
    """Every RNG the loop touches, as tensors and plain containers (no numpy objects)."""
    import torch

    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": random.getstate(),
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))


def assert_finite_weights(module: torch.nn.Module, step: int) -> None:
    """Refuse to go on (and to save) once a trainable weight is NaN or infinite."""
    import torch

    bad = [n for n, p in module.named_parameters() if p.requires_grad and not bool(torch.isfinite(p).all())]
    if bad:
        raise CheckpointError(f"training diverged at step {step}: weights not finite ({', '.join(bad[:3])}); "
                              "nothing saved for this step — lower the learning rate (--lr) or keep grad_clip on")


def save_checkpoint(out_dir: Path, step: int, pos: tuple[int, int], module, optimizer, scheduler,
                    losses: list[float], config: DistillConfig) -> Path:
    """Write ``checkpoints/step-XXXXXXXX.pt`` atomically, then prune all but the newest
    ``config.keep_checkpoints``."""
    import torch

    assert_finite_weights(module, step)
    d = checkpoint_dir(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    state = {
        "format": "babelclip.checkpoint/2",
        "step": step, "data_position": list(pos),
        "trainable": {n: p.detach().cpu().clone() for n, p in module.named_parameters() if p.requires_grad},
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": _rng_state(),
        "losses": [float(x) for x in losses], "config": asdict(config),
    }
    path = d / f"step-{step:08d}.pt"
    tmp = path.with_suffix(".tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)  # a run killed mid-write never leaves a half checkpoint
    finally:
        if tmp.exists():
            tmp.unlink()
    for old in sorted(d.glob(PATTERN))[: -config.keep_checkpoints]:
        old.unlink()
    log.info("checkpoint %s", path)
    return path


def _tensors(obj: Any):
    import torch

    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


def _read(path: Path) -> dict[str, Any]:
    """The checkpoint's contents, or :class:`CheckpointError` saying why it cannot be used."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated zip, foreign pickle, I/O error: all "cannot be read"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: cannot be read safely — truncated, damaged or not written by babelclip "
                              f"({type(e).__name__}: {first[:200]})") from None
    need = ("step", "trainable", "optimizer", "scheduler", "rng", "losses", "config")
    if not isinstance(state, dict) or any(k not in state for k in need):
        raise CheckpointError(f"{path}: not a babelclip checkpoint (expected keys {', '.join(need)})")
    return state


def _check_config(path: Path, state: dict[str, Any], config: DistillConfig) -> None:
    saved = {k: v for k, v in state["config"].items() if k not in FREE_FIELDS}
    now = {k: v for k, v in asdict(config).items() if k in saved}
    for key in ("lora_targets", "lora_layers"):  # JSON keeps tuples as lists
        if saved.get(key) is not None:
            saved[key] = tuple(saved[key])
    if saved != now:
        diff = {k: (saved[k], now.get(k)) for k in saved if saved[k] != now.get(k)}
        raise ValueError(f"cannot resume from {path}: its config differs from this run's (saved, now): {diff}")


def _check_contents(path: Path, state: dict[str, Any], module) -> None:
    """The weights are exactly the module's trainable ones, with their shapes, and all finite."""
    import torch

    params = {n: p for n, p in module.named_parameters() if p.requires_grad}
    saved = state["trainable"]
    missing, extra = sorted(set(params) - set(saved)), sorted(set(saved) - set(params))
    if missing or extra:
        raise CheckpointError(f"{path}: its weights do not match the model's trainable weights "
                              f"(missing {missing[:3]}, unknown {extra[:3]}); it belongs to another model or setup")
    shapes = [n for n, t in saved.items() if not isinstance(t, torch.Tensor) or tuple(t.shape) != tuple(params[n].shape)]
    if shapes:
        raise CheckpointError(f"{path}: weight shapes differ from the model's ({', '.join(shapes[:3])})")
    bad = [n for n, t in saved.items() if not bool(torch.isfinite(t).all())]
    if bad or not all(bool(torch.isfinite(t).all()) for t in _tensors(state["optimizer"]) if t.is_floating_point()):
        raise CheckpointError(f"{path}: weights or optimizer state not finite (NaN/inf: {', '.join(bad[:3]) or 'optimizer'})")
    if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in state["losses"]):
        raise CheckpointError(f"{path}: its loss curve holds values that are not finite")


def _refuse(path: Path, why: CheckpointError) -> None:
    aside = path.with_name(path.name + ".refused")
    log.warning("%s; moved aside to %s, trying the previous checkpoint", why, aside.name)
    os.replace(path, aside)


def load_checkpoint(out_dir: Path, module, optimizer, scheduler, config: DistillConfig) -> tuple[int, list[float]]:
    """Restore the newest usable checkpoint under ``out_dir`` into module, optimizer, scheduler
    and RNGs; returns ``(step, losses)``, ``(0, [])`` when there is none. Unusable checkpoints
    are refused (module docstring); the weights of a refused one never reach the model."""
    import torch

    for path in sorted(checkpoint_dir(out_dir).glob(PATTERN), reverse=True):
        try:
            state = _read(path)
            _check_config(path, state, config)
            _check_contents(path, state, module)
        except CheckpointError as e:
            if "do not match" in str(e) or "shapes differ" in str(e):
                # another model's checkpoint: falling back would resume the wrong run
                raise CheckpointError(f"{e}; delete it or train into another output folder") from None
            _refuse(path, e)
            continue
        params = dict(module.named_parameters())
        with torch.no_grad():
            for n, t in state["trainable"].items():
                params[n].copy_(t)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        log.info("resumed from %s (step %d, data position %s)", path, state["step"], state["data_position"])
        return int(state["step"]), [float(x) for x in state["losses"]]
    if any(checkpoint_dir(out_dir).glob(PATTERN + ".refused")):
        log.warning("--resume: no usable checkpoint under %s (refused ones renamed *.refused); starting from step 0",
                    checkpoint_dir(out_dir))
    return 0, []
