"""Shared machinery for PyTorch encoders: batching, device/dtype, inference mode, normalisation.

A family adapter subclasses :class:`TorchEncoder` and implements three small hooks
(``preprocess``, ``_image_features``, ``_text_features``); everything a caller sees — batching,
``torch.inference_mode``, float32 L2-normalised numpy output — is done here once for all.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..languages import Language, get_language
from .base import Capabilities, Fingerprint
from .options import FamilyOptions

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/"auto" picks cuda, then mps, then cpu; anything else must be available."""
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use 'cpu'")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} requested but MPS is not available; use 'cpu'")
    return dev


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; allowed: {', '.join(DTYPES)}") from None


def dtype_name(dtype: torch.dtype) -> str:
    return {v: k for k, v in DTYPES.items()}[dtype]


def state_dict_hash(module: torch.nn.Module) -> str:
    """SHA-256 of a module's parameters and buffers: identifies randomly initialised weights."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def float_rows(x: torch.Tensor) -> np.ndarray:
    """float32 rows as they are, on the CPU as numpy (``text_normalized = False``)."""
    return x.float().cpu().numpy()


def normalize_rows(x: torch.Tensor) -> np.ndarray:
    """float32, unit L2 norm per row, on the CPU as numpy."""
    x = x.float()
    x = torch.nn.functional.normalize(x, dim=-1)
    return x.cpu().numpy()


class TorchEncoder(Capabilities):
    """Base class of every torch-backed :class:`~babelclip.models.base.Encoder`.

    Subclasses set ``self.fingerprint`` and ``self.dim`` and implement
    :meth:`preprocess` (one PIL image to a CHW tensor), :meth:`_image_features` (a batch of
    preprocessed pixels to raw embeddings) and :meth:`_text_features` (texts of one language to
    raw embeddings). Inputs arrive on ``self.device`` in ``self.dtype``. Optional capabilities
    (:class:`~babelclip.models.base.EncoderCapabilities`) start at their defaults; a family
    overrides what it offers.
    """

    fingerprint: Fingerprint
    dim: int
    options: FamilyOptions | None = None  # the family options it was created with (create_model sets them)

    def __init__(self, device: str | torch.device | None = "cpu", dtype: str | torch.dtype | None = None):
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype)

    # -- hooks -------------------------------------------------------------------------------
    def preprocess(self, image: Image.Image) -> torch.Tensor:
        raise NotImplementedError

    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _text_features(self, texts: list[str], lang: Language) -> torch.Tensor:
        raise NotImplementedError

    # -- public API --------------------------------------------------------------------------
    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 64) -> np.ndarray:
        """PIL images → ``(n, dim)`` unit-norm float32 array."""
        out = []
        for i in range(0, len(images), batch_size):
            pixels = torch.stack([self.preprocess(im) for im in images[i : i + batch_size]])
            out.append(self.encode_pixels(pixels))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def encode_pixels(self, pixels: torch.Tensor) -> np.ndarray:
        """Already preprocessed ``(n, C, H, W)`` pixels → unit-norm embeddings.

        Lets a data loader decode and preprocess in worker processes while the model runs.
        """
        with torch.inference_mode():
            feats = self._image_features(pixels.to(self.device, self.dtype, non_blocking=pixels.is_pinned()))
        return normalize_rows(feats)

    def encode_texts(self, texts: Sequence[str], lang: str, batch_size: int = 256) -> np.ndarray:
        """Texts, all in language ``lang`` → ``(n, dim)`` unit-norm float32 array (rows as the
        tower gives them where the encoder declares ``text_normalized = False``)."""
        if isinstance(texts, str):
            raise TypeError("encode_texts expects a sequence of strings, got a single str")
        language = get_language(lang)
        rows = normalize_rows if self.text_normalized else float_rows
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                out.append(rows(self._text_features(list(texts[i : i + batch_size]), language)))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def __repr__(self) -> str:
        fp = self.fingerprint
        return f"{type(self).__name__}({fp.family}:{fp.name}, dim={self.dim}, device={self.device})"
