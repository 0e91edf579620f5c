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
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .base import Encoder, OtherFamilyError
from .options import FamilyOptions

log = logging.getLogger(__name__)

DEFAULT_MODEL = "babel-lite"


@dataclass(frozen=True)
class Family:
    """A model family: the module holding its adapter and what it accepts."""

    prefix: str
    module: str
    description: str
    extra: str  # the pip extra that installs its dependencies
    local_files: str  # what its local directories hold (the module's ``recognises`` decides)
    pairs_towers: bool = False  # its create() builds a paired image tower by name: gets ``tower_factory``

    def load(self) -> ModuleType:
        """The family's module: ``create(ident, device, dtype, **options)``, ``recognises(path)``
        and ``OPTIONS`` (its :class:`~babelclip.models.options.FamilyOptions` subclass)."""
        try:
            return importlib.import_module(self.module)
        except ImportError as e:
            if (e.name or "").startswith("babelclip"):
                raise  # our own module is broken: not a missing extra
            raise ImportError(
                f"model family {self.prefix!r} needs optional dependencies that are not installed "
                f"({e}); install them with: pip install 'babelclip[{self.extra}]'"
            ) from e

    def build(self, ident: str, *, device: Any, dtype: Any, protocol: str, opts: dict[str, Any]) -> Encoder:
        """The family's encoder for ``ident``: ``protocol``'s option overrides (the family's
        ``OPTIONS.protocol_options``) under the explicit ``opts``, which win."""
        module = self.load()
        merged = {**module.OPTIONS.protocol_options(protocol), **opts}
        if self.pairs_towers:
            return module.create(ident, device=device, dtype=dtype, tower_factory=create_model, **merged)
        return module.create(ident, device=device, dtype=dtype, **merged)


FAMILIES: dict[str, Family] = {
    f.prefix: f
    for f in [
        Family("openclip", "babelclip.models.openclip", "open_clip architectures: ARCH@TAG or ARCH@/path/to/weights", "openclip",
               "open_clip_config.json"),
        Family("hf", "babelclip.models.hf", "transformers CLIPModel, SiglipModel, AltCLIPModel, ChineseCLIPModel", "hf",
               "config.json"),
        Family("mclip", "babelclip.models.mclip", "M-CLIP: XLM-R/M-BERT text + linear head, paired CLIP vision tower", "mclip",
               "mclip_config.json, or config.json of model_type M-CLIP", pairs_towers=True),
        Family("st", "babelclip.models.sentence_transformers", "sentence-transformers multilingual CLIP (text model + paired image model)", "st",
               "modules.json"),
        Family("babel-lite", "babelclip.models.babel_lite", "the embedded default: EfficientNet-Lite0 + multilingual-e5-small (+ multilingual USE v3 for 15 languages), offline", "lite",
               "babel_lite.json"),
    ]
}

#: The order in which families are asked whether a local directory is theirs: most specific
#: first (sentence-transformers and M-CLIP directories hold a config.json too).
LOCAL_DIR_ORDER = ("babel-lite", "openclip", "st", "mclip", "hf")


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
    """What the zoo records about a model (languages, parameters, paper), or ``{}``; the
    default model, which the zoo does not list, is described by its family."""
    if name == DEFAULT_MODEL:
        return {"description": FAMILIES["babel-lite"].description, **_zoo().get(name, {})}
    return _zoo().get(name, {})


def detect_local_family(path: Path) -> str:
    """Which family a local model directory belongs to: the first of :data:`LOCAL_DIR_ORDER`
    whose module's ``recognises(path)`` says so."""
    unchecked = []
    for prefix in LOCAL_DIR_ORDER:
        family = FAMILIES[prefix]
        try:
            module = family.load()
        except ImportError:  # its extra is not installed: it cannot tell (said below if no one can)
            unchecked.append(f"{prefix} (pip install 'babelclip[{family.extra}]')")
            continue
        if module.recognises(path):
            return prefix
    expected = ", ".join(f"{FAMILIES[p].local_files} ({p})" for p in LOCAL_DIR_ORDER)
    raise ValueError(
        f"cannot tell which model family the directory {str(path)!r} holds: expected one of {expected}"
        + (f"; not asked, their dependencies are missing: {', '.join(unchecked)}" if unchecked else "")
    )


def split_name(name: str) -> tuple[str, str]:
    """``"openclip:ARCH@TAG"`` → ``("openclip", "ARCH@TAG")``; a local dir → (family, path)."""
    if os.path.isdir(name):
        return detect_local_family(Path(name)), name
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


def create_model(name: str = DEFAULT_MODEL, *, device: str = "cpu", dtype: str | None = None,
                 protocol: str = "default", **opts: Any) -> Encoder:
    """Build an :class:`~babelclip.models.base.Encoder` by name.

    ``device`` is ``cpu``, ``cuda``, ``mps`` or ``auto``; ``dtype`` ``float32`` (default),
    ``float16`` or ``bfloat16``. Family-specific options pass through ``opts`` (for example
    ``pretrained=False`` builds random weights, used by the offline tests). ``protocol``
    (:data:`~babelclip.models.options.PROTOCOLS`): ``default`` changes nothing; ``paper`` sets
    the family options that reproduce the Babel-ImageNet reference evaluation
    (docs/protocols.md); options given in ``opts`` win over the protocol's.
    """
    FamilyOptions.protocol_options(protocol)  # an unknown protocol fails before anything loads
    family, ident = split_name(name)
    try:
        return FAMILIES[family].build(ident, device=device, dtype=dtype, protocol=protocol, opts=opts)
    except OtherFamilyError as e:  # e.g. hf:M-CLIP/... resolves to an M-CLIP text encoder
        if e.family == family or e.family not in FAMILIES:
            raise
        log.info("%s: %s; loading it as %s", name, e, e.family)
        return FAMILIES[e.family].build(ident, device=device, dtype=dtype, protocol=protocol, opts=opts)


def reference_name(name: str) -> tuple[str, str]:
    """``(model, pretrained)`` as CLIP_benchmark names a model: open_clip's architecture and tag
    for ``openclip:ARCH@TAG``, else the name itself and ""."""
    family, _, rest = name.partition(":")
    if family == "openclip" and rest:
        model, _, pretrained = rest.partition("@")
        return model, pretrained
    return name, ""
