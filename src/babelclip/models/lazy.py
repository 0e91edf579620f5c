"""A model by name whose weights load only when something must be encoded.

A warm run (every embedding it needs already cached) needs of the model only what keys the
cache: its :class:`~babelclip.models.base.Fingerprint`, ``dim`` and the capabilities that shape
the cache's keys (:class:`~babelclip.models.base.EncoderCapabilities`). :func:`lazy_model`
keeps a small record of them, written the first time a model is built, in ``encoders.json`` of
the embedding cache folder it serves; a later call with the same name and options returns a
:class:`LazyEncoder` that builds the real encoder on its first ``encode_*`` call.

Correctness before speed. A record is used only while every file it watched is unchanged (path,
size and mtime): the model's weight files (every file of a local model directory; babel-lite's
pinned weight files and its package) and the source files of ``babelclip.models`` (a code change
can change a fingerprint). Changed weights therefore mean a build and a new fingerprint, never
the old embeddings. When a lazy encoder does build, its real fingerprint must equal the recorded
one, or it raises (and drops the record). Names whose weights cannot be watched cheaply (hub
names resolved through the Hugging Face cache) and ``device="auto"`` are built at once, as before.
Forked language workers inherit a lazy encoder unbuilt: a worker that meets a miss builds its own
copy (a run with every embedding cached builds none; a cold run builds in the parent, for images).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .base import Capabilities, Fingerprint, PixelEncoder, capabilities

log = logging.getLogger(__name__)

RECORD_FILE = "encoders.json"
_CAPS = ("text_language_agnostic", "text_prefix_sharing", "text_normalized", "text_context")


def _files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def watched_files(name: str) -> list[Path] | None:
    """The files whose identity a record of ``name`` depends on, or ``None`` where ``name``'s
    weights are not cheaply watched (no record is kept)."""
    from .registry import DEFAULT_MODEL

    own = _files_under(Path(__file__).resolve().parent)  # babelclip.models: code, configs, babel-lite's data
    if os.path.isdir(name):
        return _files_under(Path(name).resolve()) + own
    if name == DEFAULT_MODEL:
        from .babel_lite.weights import MUSE_FILES, WEIGHT_FILES, locate

        try:
            return [locate(key, verify=False) for key in (*WEIGHT_FILES, *MUSE_FILES)] + own
        except Exception:  # noqa: BLE001 - missing package: the build says what is wrong
            return None
    return None


def _stamp(files: Sequence[Path]) -> list[list[Any]]:
    out = []
    for p in files:
        st = p.stat()
        out.append([str(p), st.st_size, st.st_mtime_ns])
    return out


def _key(name: str, device: str, protocol: str, opts: dict[str, Any]) -> str:
    from .._version import __version__

    ident = str(Path(name).resolve()) if os.path.isdir(name) else name
    blob = json.dumps([ident, device, protocol, sorted((k, repr(v)) for k, v in opts.items()), __version__])
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write(path: Path, key: str, entry: dict[str, Any] | None) -> None:
    records = _read(path)
    if entry is None:
        records.pop(key, None)
    else:
        records[key] = entry
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(records, indent=1), encoding="utf-8")
        tmp.replace(path)
    except OSError as e:  # a read-only cache folder only costs laziness
        log.debug("could not write the model record %s: %s", path, e)


class LazyEncoder(Capabilities):
    """An :class:`~babelclip.models.base.Encoder` from a record: fingerprint, dim and the
    capabilities that key caches at once; the model built on the first ``encode_*`` call (or
    any other method needing it). ``load_seconds``: time spent building (0 until then)."""

    def __init__(self, name: str, build: Any, record: dict[str, Any], forget: Any):
        fp = record["fingerprint"]
        self.fingerprint = Fingerprint(**{**fp, "extra": tuple(tuple(x) for x in sorted(fp["extra"].items()))})
        self.dim = int(record["dim"])
        self.device = record["device"]
        self.languages = tuple(record["languages"]) if record["languages"] is not None else None
        for cap in _CAPS:
            setattr(self, cap, record[cap])
        self.name, self._build, self._forget = name, build, forget
        self._model: Any = None
        self._lock = threading.Lock()
        self.load_seconds = 0.0

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def model(self) -> Any:
        """The real encoder, built now if it was not yet."""
        with self._lock:
            if self._model is None:
                t0 = time.perf_counter()
                log.info("%s: a cache miss: loading the model", self.name)
                model = self._build()
                self.load_seconds = time.perf_counter() - t0
                if model.fingerprint.key != self.fingerprint.key:
                    self._forget()
                    raise RuntimeError(
                        f"{self.name}: the model built has fingerprint {model.fingerprint.key}, but its record "
                        f"said {self.fingerprint.key} (files changed without changing size or mtime?); the "
                        "record is dropped: run again")
                self._model = model
            return self._model

    def encode_images(self, images: Sequence[Any], batch_size: int = 64) -> Any:
        return self.model.encode_images(images, batch_size=batch_size)

    def encode_texts(self, texts: Sequence[str], lang: str, batch_size: int = 256) -> Any:
        return self.model.encode_texts(texts, lang, batch_size=batch_size)

    def _described(self) -> str:
        return self.name

    def count_tokens(self, text: str, lang: str) -> int | None:
        return capabilities(self.model).count_tokens(text, lang)

    def trainable_text(self, level: str = "output") -> Any:
        return capabilities(self.model).trainable_text(level)

    def training_defaults(self, method: str, level: str | None = None, loss: str | None = None) -> Any:
        return capabilities(self.model).training_defaults(method, level, loss)

    def class_prototypes(self) -> Any:
        return capabilities(self.model).class_prototypes()


class LazyPixelEncoder(LazyEncoder):
    """A :class:`LazyEncoder` of a :class:`~babelclip.models.base.PixelEncoder`."""

    def preprocess(self, image: Any) -> Any:
        return self.model.preprocess(image)

    def encode_pixels(self, pixels: Any) -> Any:
        return self.model.encode_pixels(pixels)


def _record_of(encoder: Any, files: list[Path]) -> dict[str, Any]:
    caps = capabilities(encoder)
    return {"files": _stamp(files), "fingerprint": encoder.fingerprint.as_dict(), "dim": int(encoder.dim),
            "device": str(caps.device), "languages": list(caps.languages) if caps.languages is not None else None,
            "pixel": isinstance(encoder, PixelEncoder), **{c: getattr(caps, c) for c in _CAPS}}


def lazy_model(name: str, record_dir: str | os.PathLike | None, *, device: str = "cpu", protocol: str = "default",
               **opts: Any) -> tuple[Any, float]:
    """``create_model(name, device=device, protocol=protocol, **opts)``, lazily where it can be:
    a :class:`LazyEncoder` when ``record_dir`` (the embedding cache folder; ``None``: no
    record) holds a valid record of this name and these options, else the model built now (its
    record written for the next call); with the seconds spent building now."""
    from .registry import create_model

    def build() -> Any:
        if protocol != "default":
            opts["protocol"] = protocol
        return create_model(name, device=device, **opts)

    # device "auto" may resolve otherwise next time (the record's device decides forking): built at once
    files = watched_files(name) if record_dir is not None and device != "auto" else None
    path = Path(record_dir) / RECORD_FILE if record_dir is not None else None
    key = _key(name, device, protocol, dict(opts))
    if files is not None and path is not None:
        entry = _read(path).get(key)
        try:
            valid = entry is not None and entry["files"] == _stamp(files)
        except OSError:
            valid = False
        if valid:
            cls = LazyPixelEncoder if entry["pixel"] else LazyEncoder
            return cls(name, build, entry, lambda: _write(path, key, None)), 0.0
    t0 = time.perf_counter()
    model = build()
    seconds = time.perf_counter() - t0
    if files is not None and path is not None:
        _write(path, key, _record_of(model, files))
    return model, seconds


def load_seconds(encoder: Any, built_now: float) -> float:
    """Seconds spent building the model of ``encoder`` from :func:`lazy_model` (0 for a lazy
    encoder never built); ``built_now``: the build time :func:`lazy_model` returned."""
    return encoder.load_seconds if isinstance(encoder, LazyEncoder) else built_now
