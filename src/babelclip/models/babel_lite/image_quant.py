"""An int8 EfficientNet-Lite0 for CPU inference (``image_precision="int8"``).

EfficientNet-Lite was designed to be quantised (Tan & Le 2019, arXiv:1905.11946; the Lite
variants drop squeeze-excitation and clip activations with ReLU6 so that fixed ranges suffice).
This module applies post-training static quantisation as in Jacob et al. 2018
(arXiv:1712.05877): weights int8 symmetric per output channel, activations uint8 per tensor
with ranges measured once on a fixed set of calibration images, convolutions and the ReLU6 after
them fused into one int8 convolution whose output range ends at 6 or below (so saturation *is*
the ReLU6), residual additions in int8. Pooling and the final 1280→1000 linear layer stay in
float32: they cost <1% of the time and keep the logits precise.

The activation ranges ship with babelclip (``image_int8.json`` next to this file), and so do the
int8 weights (``image_int8_weights.safetensors``, 3.3 MB), rounded with GPTQ (Frantar et al.
2022, :func:`babelclip_tools.gptq.gptq_round`) against the float network's layer inputs rather
than to nearest: with round-to-nearest, the 0.5-1% weight error alone moved the softmax by a
total-variation distance of 0.065 on stamps (constant white regions make the sums of each
kernel's taps matter), GPTQ roughly halves the int8 tower's distance to float32. Both files are
produced by the build tool ``babelclip-tools int8 --write`` (:mod:`babelclip_tools.int8_calibration`,
about a minute) from Tux Paint stamps and scikit-image sample photos; this runtime module only
reads them, so a load needs no calibration images and is deterministic. The int8 kernels are
PyTorch's quantised CPU operators on the oneDNN engine (VNNI on recent x86 CPUs); they exist
only on CPU.
"""
from __future__ import annotations

import functools
import hashlib
import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from .image_tower import LiteClassifier

RANGES_FILE = Path(__file__).with_name("image_int8.json")
WEIGHTS_FILE = Path(__file__).with_name("image_int8_weights.safetensors")
FORMAT = "babel-lite-int8/1"
ENGINE = "onednn"
INPUT_RANGE = (-1.0, 1.0)  # ImagePreprocess scales pixels to [-1, 1] (mean = std = 0.5)


class Int8Unavailable(RuntimeError):
    """This PyTorch build has no int8 CPU engine to run the quantised image tower."""


def activation_names(model: LiteClassifier) -> list[str]:
    """The activations that get a range, in execution order: every tensor the int8 network
    stores (after each convolution, fused activation, or residual addition)."""
    names = ["input", "stem"]
    for i, blk in enumerate(model.blocks):
        if blk.expand is not None:
            names.append(f"blocks.{i}.expand")
        names += [f"blocks.{i}.depthwise", f"blocks.{i}.project"]
        if blk.residual:
            names.append(f"blocks.{i}.add")
    return names + ["head"]


def _qparams(lo: float, hi: float) -> tuple[float, int]:
    """uint8 affine scale and zero point covering ``[lo, hi]`` (which contains 0)."""
    if not lo <= 0.0 <= hi or hi - lo <= 0:
        raise ValueError(f"an activation range must contain 0 and be non-empty, got [{lo}, {hi}]")
    scale = (hi - lo) / 255.0
    return scale, int(min(255, max(0, round(-lo / scale))))


def weight_scales(w: torch.Tensor) -> torch.Tensor:
    """Symmetric per-output-channel int8 scales: each channel's largest magnitude maps to 127."""
    return w.detach().abs().flatten(1).amax(1).clamp_min(1e-8).double() / 127.0


def _qweight(w: torch.Tensor, int_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric per-output-channel int8 weights: ``int_weight`` (the shipped, data-aware
    rounding, see :func:`babelclip_tools.gptq.gptq_round`) if given, else round-to-nearest."""
    scales = weight_scales(w)
    zeros = torch.zeros_like(scales, dtype=torch.long)
    if int_weight is None:
        return torch.quantize_per_channel(w.detach().float(), scales, zeros, 0, torch.qint8)
    if int_weight.shape != w.shape:
        raise ValueError(f"shipped int8 weights have shape {tuple(int_weight.shape)}, the layer {tuple(w.shape)}")
    # q * scale re-quantises to exactly q (the error is far below half a step)
    return torch.quantize_per_channel((int_weight.double().flatten(1) * scales[:, None]).view(w.shape).float(),
                                      scales, zeros, 0, torch.qint8)


def _qconv(conv: torch.nn.Conv2d, out_range: tuple[float, float], relu: bool,
           int_weight: torch.Tensor | None = None) -> torch.nn.Module:
    from torch.ao.nn import intrinsic, quantized

    cls = intrinsic.quantized.ConvReLU2d if relu else quantized.Conv2d
    q = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.groups, bias=True)
    q.set_weight_bias(_qweight(conv.weight, int_weight), conv.bias.detach().float())
    q.scale, q.zero_point = _qparams(*out_range)
    return q


class _QBlock(torch.nn.Module):
    def __init__(self, blk: torch.nn.Module, ranges: dict[str, tuple[float, float]], prefix: str,
                 int_weights: dict[str, torch.Tensor]):
        super().__init__()
        from torch.ao.nn.quantized import QFunctional

        def conv(name: str, relu: bool) -> torch.nn.Module:
            key = f"{prefix}.{name}"
            return _qconv(getattr(blk, name), ranges[key], relu, int_weights.get(key))

        self.expand = conv("expand", relu=True) if blk.expand is not None else None
        self.depthwise = conv("depthwise", relu=True)
        self.project = conv("project", relu=False)
        self.add = None
        if blk.residual:
            self.add = QFunctional()
            self.add.scale, self.add.zero_point = _qparams(*ranges[f"{prefix}.add"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return self.add.add(y, x) if self.add is not None else y


class QuantizedLite(torch.nn.Module):
    """EfficientNet-Lite0 with int8 convolutions: float pixels in, float32 logits out."""

    def __init__(self, model: LiteClassifier, ranges: dict[str, tuple[float, float]], float_blocks: int = 0,
                 int_weights: dict[str, torch.Tensor] | None = None):
        super().__init__()
        int_weights = {} if int_weights is None else int_weights
        missing = set(activation_names(model)) - set(ranges)
        if missing:
            raise ValueError(f"int8 ranges lack activations {sorted(missing)[:5]}...; regenerate them with babelclip-tools int8 --write")
        if not 0 <= float_blocks < len(model.blocks):
            raise ValueError(f"float_blocks must be in [0, {len(model.blocks) - 1}], got {float_blocks}")
        self.float_prefix = None
        if float_blocks:
            # the first, high-resolution layers are the most sensitive to int8 weights
            self.float_prefix = torch.nn.Sequential(model.stem, model.stem_act, *model.blocks[:float_blocks])
            last = float_blocks - 1
            boundary = f"blocks.{last}.add" if model.blocks[last].residual else f"blocks.{last}.project"
            self.in_scale, self.in_zero_point = _qparams(*ranges[boundary])
            self.stem = torch.nn.Identity()
        else:
            self.in_scale, self.in_zero_point = _qparams(*ranges["input"])
            self.stem = _qconv(model.stem, ranges["stem"], relu=True, int_weight=int_weights.get("stem"))
        self.blocks = torch.nn.Sequential(*[_QBlock(b, ranges, f"blocks.{i}", int_weights)
                                            for i, b in enumerate(model.blocks) if i >= float_blocks])
        self.head = _qconv(model.head, ranges["head"], relu=True, int_weight=int_weights.get("head"))
        self.fc = model.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a batch of images. A batch of one runs as a pair of copies: with AMX, oneDNN
        computes a single image with other kernels than a batch (measured on a Xeon with AMX: an
        image's logits alone and inside batches of 2-32 differed by up to 0.07, batches of 2-32
        agreed to 2e-6), so that every batch size gives an image the same logits."""
        if len(x) == 1:
            return self(torch.cat([x, x]))[:1]
        x = x.float().contiguous(memory_format=torch.channels_last)
        if self.float_prefix is not None:
            x = self.float_prefix(x)
        q = torch.quantize_per_tensor(x, self.in_scale, self.in_zero_point, torch.quint8)
        q = self.head(self.blocks(self.stem(q)))
        return self.fc(q.dequantize().mean((2, 3)))


@contextmanager
def _engine(name: str) -> Iterator[None]:
    """Select the quantised engine while weights are packed (they keep it afterwards)."""
    if name not in torch.backends.quantized.supported_engines:
        raise Int8Unavailable(
            f"image_precision='int8' needs PyTorch's {name!r} quantised CPU engine, which this build lacks "
            f"(it has {torch.backends.quantized.supported_engines}); use image_precision='float32'"
        )
    before = torch.backends.quantized.engine
    torch.backends.quantized.engine = name
    try:
        with warnings.catch_warnings():  # torch.ao's deprecation notices, once per load
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.ao")
            warnings.filterwarnings("ignore", message=r".*quantiz.*deprecated", category=UserWarning)
            yield
    finally:
        torch.backends.quantized.engine = before


def read_ranges(path: Path = RANGES_FILE) -> dict[str, tuple[float, float]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is missing: the int8 image tower needs its activation ranges; "
                                "reinstall babelclip or regenerate them with babelclip-tools int8 --write") from None
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: unsupported format {data.get('format')!r}; expected {FORMAT!r}")
    return {k: (float(v[0]), float(v[1])) for k, v in data["ranges"].items()}


def read_int_weights(path: Path = WEIGHTS_FILE) -> dict[str, torch.Tensor]:
    """The shipped int8 convolution weights (name → int8 tensor; the scales follow from the
    float weights, :func:`weight_scales`)."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the int8 image tower needs its rounded weights; "
                                "reinstall babelclip or regenerate them with babelclip-tools int8 --write")
    return load_file(str(path))


def ranges_digest(path: Path = RANGES_FILE, weights: Path = WEIGHTS_FILE) -> str:
    """Identifies the shipped int8 numerics (activation ranges and rounded weights) in the
    model's fingerprint. The weights enter by name and content, not file bytes: safetensors
    writes its metadata in no fixed order, so a rebuild with identical weights keeps the digest."""
    h = hashlib.sha256(path.read_bytes())
    if weights.is_file():
        for name, q in sorted(read_int_weights(weights).items()):
            h.update(name.encode())
            h.update(q.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@functools.cache
def cpu_has_int8_dot_products() -> bool | None:
    """Whether this CPU has VNNI (or AMX) int8 dot products, read from ``/proc/cpuinfo``; ``None``
    where that cannot be read. Without them oneDNN's u8 x s8 products go through 16-bit
    intermediate sums that saturate on full-range weights and activations: on an AVX2-only
    AMD EPYC the shipped int8 tower disagreed with float32 on 2 of 4 sample photos (softmax
    total-variation distance up to 0.33), against none on a VNNI machine."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return None
    return any(f in flags.split() for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


def quantize_classifier(model: LiteClassifier, ranges: dict[str, tuple[float, float]] | None = None,
                        float_blocks: int = 0, int_weights: dict[str, torch.Tensor] | None = None) -> QuantizedLite:
    """The int8 version of a (folded, float32) :class:`LiteClassifier`; ``ranges`` and
    ``int_weights`` default to the shipped ones (``int_weights={}``: round to nearest); the first
    ``float_blocks`` MBConv blocks (and the stem) stay float32 if > 0."""
    ranges = read_ranges() if ranges is None else ranges
    int_weights = read_int_weights() if int_weights is None else int_weights
    if cpu_has_int8_dot_products() is False:
        warnings.warn("this CPU has no VNNI int8 dot products: the int8 image tower's 16-bit intermediate sums "
                      "saturate here and it agrees with float32 noticeably less often than measured on VNNI "
                      "machines; prefer image_precision='float32' on this machine", RuntimeWarning, stacklevel=2)
    with _engine(ENGINE):
        q = QuantizedLite(model.float(), ranges, float_blocks, int_weights).eval()
    return q
