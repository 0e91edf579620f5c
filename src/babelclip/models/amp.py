"""Half-precision autocast on a CUDA device: an opt-in speed path (``babelclip eval --amp``).

``torch.autocast("cuda", dtype=torch.float16)`` runs matrix products and attention in float16
and keeps reductions (layer norms, softmax) in float32, as CLIP_benchmark's default ``--amp``
does on a GPU. It changes embeddings in their last digits, so it can change a ranking where two
scores nearly tie: it is off by default, and an encoder under it has its own fingerprint
(``dtype`` gains ``+autocast-float16``), so its embeddings never mix with float32 ones in a cache.
Autocast is requested only for a model on a CUDA device; anywhere else :func:`with_autocast`
raises, naming the device (on a CPU, float32 is both the exact and here the faster path).
"""
from __future__ import annotations

import dataclasses
from typing import Any

from .base import PixelEncoder, capabilities

AMP_TAG = "autocast-float16"


def autocast_dtype(device: Any) -> Any:
    """The autocast dtype for a model on ``device``: float16 on CUDA, else ``None`` (no autocast)."""
    if not str(device).startswith("cuda"):
        return None
    import torch

    return torch.float16


class AutocastEncoder:
    """``inner`` with every ``encode_*`` call under ``torch.autocast("cuda", float16)``; every
    other attribute is ``inner``'s, except the fingerprint (module docstring)."""

    def __init__(self, inner: Any):
        device = capabilities(inner).device
        self._dtype = autocast_dtype(device)
        if self._dtype is None:
            raise ValueError(f"half-precision autocast (--amp) runs on a CUDA device, and this model is on "
                             f"{device}: use --device cuda, or leave --amp out (float32)")
        self.inner = inner
        self.fingerprint = dataclasses.replace(inner.fingerprint, dtype=f"{inner.fingerprint.dtype}+{AMP_TAG}")
        self.dim = inner.dim

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _autocast(self) -> Any:
        import torch

        return torch.autocast("cuda", dtype=self._dtype)

    def encode_texts(self, texts: Any, lang: str, batch_size: int = 256) -> Any:
        with self._autocast():
            return self.inner.encode_texts(texts, lang, batch_size=batch_size)

    def encode_images(self, images: Any, batch_size: int = 64) -> Any:
        with self._autocast():
            return self.inner.encode_images(images, batch_size=batch_size)


class AutocastPixelEncoder(AutocastEncoder):
    """An :class:`AutocastEncoder` of a :class:`~babelclip.models.base.PixelEncoder`."""

    def preprocess(self, image: Any) -> Any:
        return self.inner.preprocess(image)

    def encode_pixels(self, pixels: Any) -> Any:
        with self._autocast():
            return self.inner.encode_pixels(pixels)


def with_autocast(encoder: Any) -> AutocastEncoder:
    """``encoder`` under half-precision autocast (a CUDA device only; see the module docstring)."""
    cls = AutocastPixelEncoder if isinstance(encoder, PixelEncoder) else AutocastEncoder
    return cls(encoder)
