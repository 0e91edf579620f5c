"""Getting files from the network, or failing at once: the one offline check for models and data.

Model weights (:mod:`babelclip.models.hub`) and benchmark files (:mod:`babelclip.data`) share

* :func:`offline_reason` — why nothing may be downloaded (``HF_HUB_OFFLINE`` /
  ``TRANSFORMERS_OFFLINE`` / ``BABELCLIP_OFFLINE`` set), checked before any network access;
* :func:`hub_reachable` — one short TCP connect to the Hugging Face endpoint;
* :func:`download` — one plain HTTP(S) (or ``file://``) download into a file, written atomically
  (temp file + rename), optionally validated before it is kept, every failure one
  :class:`DownloadError` that says what to place where instead.

It lives outside ``models`` and ``data`` so both can use it without importing each other.
"""
from __future__ import annotations

import logging
import os
import socket
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 3.0  # one TCP connect before a hub download: a dead network fails fast
DOWNLOAD_TIMEOUT_S = 30.0  # per socket operation of a plain download (not the whole transfer)
_TRUTHY = {"1", "on", "yes", "true"}


class DownloadError(FileNotFoundError):
    """A file could not be fetched; the message says what was wanted and how to provide it."""


def _env_true(*names: str) -> bool:
    return any(os.environ.get(v, "").strip().lower() in _TRUTHY for v in names)


def hf_offline() -> bool:
    """True when downloads are disabled (``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` set truthy).

    Read from the environment at call time as well as from huggingface_hub's constants, so
    setting the variable after import still takes effect.
    """
    env = _env_true("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    try:
        from huggingface_hub import constants

        return env or bool(constants.HF_HUB_OFFLINE)
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        return env


def offline_reason() -> str | None:
    """Why nothing may be downloaded (downloads disabled), or ``None``: the one offline check."""
    if hf_offline():
        return "downloads are disabled (HF_HUB_OFFLINE is set)"
    if _env_true("BABELCLIP_OFFLINE"):
        return "downloads are disabled (BABELCLIP_OFFLINE is set)"
    return None


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """One TCP connect to the hub endpoint (or the HTTPS proxy): a dead network fails in seconds."""
    from huggingface_hub import constants

    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    url = urlparse(proxy or constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=timeout).close()
        return True
    except OSError:
        return False


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    what: str,
    instead: str,
    validate: Callable[[bytes], None] | None = None,
) -> Path:
    """Fetch ``url`` into ``dest`` (atomically) and return ``dest``.

    ``what`` names the file in messages ("the XM3600 captions"), ``instead`` says how to provide
    it without a network ("place captions.jsonl at /data/xm3600/"). Offline mode fails before
    any connection; ``validate(body)`` may raise ValueError to refuse a body (nothing is kept).
    ``file://`` URLs (mirrors, tests) are read without the offline check.
    """
    dest = Path(dest)
    if not url.startswith("file:"):
        blocked = offline_reason()
        if blocked:
            raise DownloadError(f"cannot download {what} from {url}: {blocked}; instead, {instead}")
    log.info("downloading %s: %s -> %s", what, url, dest)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
            body = resp.read()
    except OSError as e:
        raise DownloadError(f"cannot download {what} from {url} ({e}); instead, {instead}") from None
    if validate is not None:
        try:
            validate(body)
        except ValueError as e:
            raise ValueError(f"download of {url} is not {what} ({e}); nothing was kept") from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def extract(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Unpack a ``.tar[.gz]`` or ``.zip`` archive into ``dest`` (members may not leave it)."""
    import tarfile
    import zipfile

    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            root = dest.resolve()
            for name in zf.namelist():
                if not (dest / name).resolve().is_relative_to(root):
                    raise ValueError(f"{archive}: member {name!r} would be written outside {dest}")
            zf.extractall(dest)
    else:
        with tarfile.open(archive) as tf:
            tf.extractall(dest, filter="data")
    return dest
