"""Data-aware int8 weight rounding for babel-lite's image tower: GPTQ (Frantar et al. 2022).

A build tool: it produced the shipped ``image_int8_weights.safetensors``
(:func:`babelclip_tools.int8_calibration.build_weights`); the runtime only reads that file
(:mod:`babelclip.models.babel_lite.image_quant`).
"""
from __future__ import annotations

from collections.abc import Iterable

import torch

from babelclip.models.babel_lite.image_quant import weight_scales
from babelclip.models.babel_lite.image_tower import LiteClassifier


def input_moments(model: LiteClassifier, batches: Iterable[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each convolution's second moment ``E[p pᵀ]`` of its input patches ``p`` (float64), over
    all images and output positions: the Hessian of the layer's squared output error in its
    weights. A 1x1 or full convolution shares one matrix over its output channels; a depthwise
    one has one per channel (shape ``(C, k², k²)``)."""
    convs = {n: c for n, c in model.named_modules() if isinstance(c, torch.nn.Conv2d)}
    sums: dict[str, torch.Tensor] = {}
    rows: dict[str, int] = dict.fromkeys(convs, 0)

    def hook(name: str, conv: torch.nn.Conv2d):
        def record(_m, inp: tuple[torch.Tensor, ...], _out) -> None:
            x = inp[0].float()
            if conv.groups == 1 and conv.kernel_size == (1, 1):
                p = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1]).double()
                h, r = p.T @ p, p.shape[0]
            else:
                p = torch.nn.functional.unfold(x, conv.kernel_size, padding=conv.padding, stride=conv.stride)
                if conv.groups == 1:
                    p = p.transpose(1, 2).reshape(-1, p.shape[1]).double()
                    h, r = p.T @ p, p.shape[0]
                else:  # depthwise: per channel, its own k*k taps
                    k2 = conv.kernel_size[0] * conv.kernel_size[1]
                    p = p.view(x.shape[0], x.shape[1], k2, -1).permute(1, 0, 3, 2).reshape(x.shape[1], -1, k2).double()
                    h, r = p.transpose(1, 2) @ p, p.shape[1]
            sums[name] = sums[name] + h if name in sums else h
            rows[name] += r

        return record

    handles = [c.register_forward_hook(hook(n, c)) for n, c in convs.items()]
    try:
        with torch.inference_mode():
            for x in batches:
                model(x.contiguous(memory_format=torch.channels_last))
    finally:
        for h in handles:
            h.remove()
    if not sums:
        raise ValueError("input_moments needs at least one batch of images")
    return {n: sums[n] / rows[n] for n in convs}


def gptq_round(w: torch.Tensor, moments: torch.Tensor, damp: float = 0.01) -> torch.Tensor:
    """int8 weights (per-output-channel symmetric scales, :func:`weight_scales`) rounded to
    minimise the layer's expected squared output error ``E||(Q - W) p||²`` rather than each
    weight's own error: GPTQ (Frantar et al. 2022, arXiv:2210.17323; the Optimal Brain
    Quantiser of Frantar & Alistarh 2022). Weights are rounded one input position at a time and
    the rounding error is pushed onto the not-yet-rounded ones through the inverse of
    ``moments`` (``E[p pᵀ]``, :func:`input_moments`; dampened by ``damp`` times its mean
    diagonal). Taps that are zero in every channel (the zero rows of the even-padding kernels)
    stay zero. Round-to-nearest is the special case of a diagonal ``moments``.
    """
    flat = w.detach().flatten(1).double()
    rows, d = flat.shape
    scales = weight_scales(w)
    keep = (flat != 0).any(0).double()  # structural zero taps stay zero
    h = moments.double() if moments.dim() == 3 else moments.double().unsqueeze(0)
    if h.shape[-1] != d or h.shape[0] not in (1, rows):
        raise ValueError(f"moments of shape {tuple(moments.shape)} do not fit weights {tuple(w.shape)}")
    h = h * keep[:, None] * keep[None, :] + torch.diag(1 - keep)
    diag = torch.diagonal(h, dim1=-2, dim2=-1)
    h = h + (damp * diag.mean(-1) + 1e-6)[:, None, None] * torch.eye(d, dtype=h.dtype)
    upper = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    q = torch.zeros_like(flat)
    for i in range(d):
        q[:, i] = torch.round(flat[:, i] / scales).clamp(-127, 127)
        err = (flat[:, i] - q[:, i] * scales) / upper[:, i, i]
        flat[:, i + 1 :] -= err[:, None] * upper[:, i, i + 1 :]
    q[:, keep == 0] = 0
    return q.to(torch.int8).view(w.shape)
