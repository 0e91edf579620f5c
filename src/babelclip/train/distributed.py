"""Data parallelism for training under ``torchrun``: join the process group, average gradients
across processes (DDP's all-reduce, done explicitly), and agree on scalars."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch


def process_group():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def rank_world() -> tuple[int, int]:
    d = process_group()
    return (d.get_rank(), d.get_world_size()) if d else (0, 1)


def quiet_other_ranks() -> int:
    """This process's rank; on ranks other than 0, babelclip's log shows warnings and errors only
    (each rank runs the same steps: their info lines and progress would repeat rank 0's)."""
    import logging

    rank, _ = rank_world()
    if rank != 0:
        logging.getLogger("babelclip").setLevel(logging.WARNING)
    return rank


def init_distributed_from_env() -> bool:
    """Join the process group ``torchrun`` describes (gloo on CPU, NCCL on GPUs); False if not under torchrun."""
    import torch
    import torch.distributed as dist

    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ or dist.is_initialized():
        return dist.is_initialized()
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return True



def allreduce_grads(params: list[torch.Tensor], world: int) -> None:
    """Average gradients across processes (one flat all-reduce): DDP's step, done explicitly."""
    import torch

    d = process_group()
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


def gather_with_grad(t: torch.Tensor) -> torch.Tensor:
    """Every process's ``t`` (equal shapes) concatenated in rank order, differentiable: the
    backward sums the gathered gradient across processes and hands each its own rows, so after
    :func:`allreduce_grads` averages, the gradient is that of the loss over the whole gather."""
    import torch

    d = process_group()
    if d is None or d.get_world_size() == 1:
        return t

    class _Gather(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            parts = [torch.empty_like(x) for _ in range(d.get_world_size())]
            d.all_gather(parts, x.contiguous())
            ctx.n, ctx.rank = len(x), d.get_rank()
            return torch.cat(parts)

        @staticmethod
        def backward(ctx, grad):
            grad = grad.contiguous().clone()
            d.all_reduce(grad)
            return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]

    return _Gather.apply(t)


def rank_share(idx):
    """This process's share of a global batch: every ``world``-th item from its rank (all of a
    batch smaller than the number of processes)."""
    rank, world = rank_world()
    return idx[rank::world] if len(idx) >= world else idx


def mean_across(x: float) -> float:
    import torch

    d = process_group()
    if d is None:
        return x
    t = torch.tensor([x], dtype=torch.float64)
    d.all_reduce(t)
    return float(t.item()) / d.get_world_size()
