"""OpenAI CLIP's image preprocessing, as the reference evaluation code applies it to CLIP towers.

OpenAI's ``clip.load`` (and open_clip, for the same checkpoints) preprocess with torchvision:
resize the shortest side to the input size (bicubic), centre-crop, RGB, scale to [0, 1],
normalise. transformers' ``CLIPImageProcessor`` does the same steps its own way; on odd sizes
its centre crop starts one pixel off torchvision's (``(h - s) // 2`` against
``round((h - s) / 2)``), so a tower run through it sees other pixels than the published numbers
were measured on. M-CLIP's own code, CLIP_benchmark and Babel-ImageNet pair the M-CLIP text
encoders with this pipeline; :mod:`babelclip.models.mclip` does too.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any


def reference_transform(processor: Any) -> tuple[Callable[[Any], Any], dict[str, Any]]:
    """OpenAI CLIP's torchvision pipeline sized and normalised as ``processor`` (a transformers
    CLIP image processor) says, and its description for a fingerprint."""
    from torchvision import transforms as T

    crop = processor.crop_size
    size = crop if isinstance(crop, int) else int(crop["height"])  # a dict, or transformers' SizeDict
    mean, std = [float(m) for m in processor.image_mean], [float(s) for s in processor.image_std]
    transform = T.Compose([
        T.Resize(size, interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(size),
        _to_rgb,
        T.ToTensor(),
        T.Normalize(mean, std),
    ])
    description = {"pipeline": "openai-clip (torchvision): resize shortest side bicubic, centre crop",
                   "size": size, "mean": mean, "std": std}
    return transform, description


def _to_rgb(image: Any) -> Any:
    return image.convert("RGB")
