"""One way in: ``create_model(name)`` and ``list_models()``.

Names are ``FAMILY:ID`` (``openclip:xlm-roberta-base-ViT-B-32@laion5b_s13b_b90k``,
``hf:google/siglip-base-patch16-256-multilingual``, ``mclip:M-CLIP/XLM-Roberta-Large-Vit-B-32``,
``st:sentence-transformers/clip-ViT-B-32-multilingual-v1``), a bare registered name
(``babel-lite``), or a local directory whose files say which family it is.

Adapters are imported only when a model of their family is created, so listing and importing
stay cheap.
"""
from __future__ import annotations

import fnmatch
import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import Encoder

DEFAULT_MODEL = "babel-lite"


@dataclass(frozen=True)
class Family:
    """A model family: the module holding its adapter and what it accepts."""

    prefix: str
    module: str
    description: str
    extra: str  # the pip extra that installs its dependencies

    def factory(self):
        try:
            mod = importlib.import_module(self.module)
        except ImportError as e:
            if (e.name or "").startswith("babelclip"):
                raise  # our own module is broken: not a missing extra
            raise ImportError(
                f"model family {self.prefix!r} needs optional dependencies that are not installed "
                f"({e}); install them with: pip install 'babelclip[{self.extra}]'"
            ) from e
        return mod.create


FAMILIES: dict[str, Family] = {
    f.prefix: f
    for f in [
        Family("openclip", "babelclip.models.openclip", "open_clip architectures: ARCH@TAG or ARCH@/path/to/weights", "openclip"),
        Family("hf", "babelclip.models.hf", "transformers CLIPModel, SiglipModel, AltCLIPModel, ChineseCLIPModel", "hf"),
        Family("mclip", "babelclip.models.mclip", "M-CLIP: XLM-R/M-BERT text + linear head, paired CLIP vision tower", "hf"),
        Family("st", "babelclip.models.sentence_transformers", "sentence-transformers multilingual CLIP (text model + paired image model)", "st"),
        Family("babel-lite", "babelclip.models.babel_lite", "the embedded default: EfficientNet-Lite0 + multilingual-e5-small, offline", "lite"),
    ]
}


def _zoo() -> dict[str, dict[str, Any]]:
    """Known models of the field (data, not code): ``models/zoo.json``."""
    path = Path(__file__).with_name("zoo.json")
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def list_models(pattern: str = "*") -> list[str]:
    """Names ``create_model`` accepts, filtered by a shell-style pattern (``"openclip:*nllb*"``)."""
    names = [DEFAULT_MODEL, *sorted(_zoo())]
    return [n for n in dict.fromkeys(names) if fnmatch.fnmatch(n, pattern)]


def model_info(name: str) -> dict[str, Any]:
    """What the zoo records about a model (languages, parameters, paper), or ``{}``."""
    return _zoo().get(name, {})


def _detect_local_family(path: Path) -> str:
    """Which family a local model directory belongs to, read from the files it holds."""
    if (path / "babel_lite.json").exists():
        return "babel-lite"
    if (path / "open_clip_config.json").exists():
        return "openclip"
    if (path / "modules.json").exists():
        return "st"
    if (path / "mclip_config.json").exists():
        return "mclip"
    if (path / "config.json").exists():
        return "hf"
    raise ValueError(
        f"cannot tell which model family the directory {str(path)!r} holds: expected one of "
        "open_clip_config.json (open_clip), config.json (transformers), modules.json "
        "(sentence-transformers), mclip_config.json (M-CLIP) or babel_lite.json (babel-lite)"
    )


def split_name(name: str) -> tuple[str, str]:
    """``"openclip:ARCH@TAG"`` → ``("openclip", "ARCH@TAG")``; a local dir → (family, path)."""
    if os.path.isdir(name):
        return _detect_local_family(Path(name)), name
    if name == DEFAULT_MODEL or name.startswith(DEFAULT_MODEL + "@"):
        return "babel-lite", name.partition("@")[2]
    prefix, sep, ident = name.partition(":")
    if not sep or prefix not in FAMILIES or not ident:
        raise ValueError(
            f"unknown model name {name!r}: use FAMILY:ID with FAMILY one of "
            f"{', '.join(p for p in FAMILIES if p != 'babel-lite')}, the name {DEFAULT_MODEL!r}, "
            "or a local model directory; `babelclip models` lists known names"
        )
    return prefix, ident


def create_model(name: str = DEFAULT_MODEL, *, device: str = "cpu", dtype: str | None = None, **opts: Any) -> Encoder:
    """Build an :class:`~babelclip.models.base.Encoder` by name.

    ``device`` is ``cpu``, ``cuda``, ``mps`` or ``auto``; ``dtype`` ``float32`` (default),
    ``float16`` or ``bfloat16``. Family-specific options pass through ``opts`` (for example
    ``pretrained=False`` builds random weights, used by the offline tests).
    """
    family, ident = split_name(name)
    return FAMILIES[family].factory()(ident, device=device, dtype=dtype, **opts)
