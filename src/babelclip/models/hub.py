"""Find a model's files — a local directory or the Hugging Face cache/hub — or fail at once.

Every adapter that loads hub-hosted weights goes through :func:`resolve_weights`. It

1. accepts a local directory as is (its weights identified by a SHA-256 of the weight files);
2. otherwise looks in the Hugging Face cache first (no network);
3. downloads only when the hub is reachable and offline mode is off;
4. turns every hub failure (offline mode, no network, unknown repo, gated repo, missing files)
   into one :class:`~babelclip.models.base.WeightsNotFoundError` whose message says how to
   provide the weights, raised at once: no retries, no hang, no traceback soup.

The weights identity returned with the path keys embedding caches: ``hf:ORG/NAME@<commit>``
for a hub snapshot (the commit hash is the cache folder name), ``sha256:<hex>`` for a local dir.

Loaders that name the files they need themselves (open_clip: one checkpoint file, an HF text
tower's config, a tokenizer) use :class:`HubFiles` instead: the same order (cache, offline
check, one download), plus one 3-second reachability probe (:func:`hub_reachable`) before the
first download so a dead network fails in seconds. Both build their errors with
:func:`not_found_message` and stop on the one offline check :func:`offline_reason`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..fetch import PROBE_TIMEOUT_S, hf_offline, hub_reachable, offline_reason  # noqa: F401 (re-exported)
from .base import WeightsNotFoundError, hash_files

log = logging.getLogger(__name__)

#: Files that hold parameters, in any format a loader here may read.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")

#: Files a torch loader never needs: other frameworks' copies of the same weights.
IGNORE_PATTERNS = [
    "*.h5",
    "*.msgpack",
    "*.ot",
    "*.tflite",
    "*.onnx",
    "*.onnx_data",
    "onnx/*",
    "openvino/*",
    "coreml/*",
]

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


@dataclass(frozen=True)
class ResolvedWeights:
    """Where a model's files are and which exact weights they are."""

    path: Path  # a local directory holding config, tokenizer and weight files
    identity: str  # "hf:ORG/NAME@<commit>" or "sha256:<hex of the weight files>"
    source: str  # the repo id or the local path the caller asked for


def hf_cache_dir() -> str:
    """The hub cache huggingface_hub reads (``HF_HUB_CACHE``/``HF_HOME``), for messages."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def weight_files(path: str | Path) -> list[Path]:
    """Weight files under ``path`` (recursively: sentence-transformers keeps modules in subdirs)."""
    root = Path(path)
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix in WEIGHT_SUFFIXES and ".cache" not in p.parts
    )


def local_weights_identity(path: str | Path) -> str:
    """``sha256:<hex>`` over the weight files' relative names and bytes, in sorted order."""
    files = weight_files(path)
    if not files:
        raise WeightsNotFoundError(
            f"the directory {str(path)!r} holds no weight files (looked for *{', *'.join(WEIGHT_SUFFIXES)}); "
            "save the model there with save_pretrained()/save() or point at the directory that holds them"
        )
    return "sha256:" + hash_files([str(p) for p in files])


def looks_like_path(ident: str) -> bool:
    """A name that is meant as a file-system path rather than a hub repo id."""
    return (
        ident.startswith(("/", "./", "../", "~", "."))
        or ident.count("/") > 1
        or os.path.exists(ident)
    )


def not_found_message(
    family: str,
    ident: str,
    reason: str,
    *,
    repo: str | None = None,
    cache_dir: str | None = None,
    local_ways: Sequence[str] = (),
) -> str:
    """The one text that says what was missing and every way to provide it.

    ``ident`` is what the user asked for, ``repo`` the hub repo whose files are missing (default:
    ``ident``; open_clip names a text tower's or tokenizer's repo), ``cache_dir`` the hub cache
    that was read (default: huggingface_hub's). ``local_ways`` replace the generic "a local
    directory" way by a family's own (open_clip: a checkpoint file, options).
    """
    prefix = f"{family}:{ident}" if family else ident
    repo = repo or ident
    ways = list(local_ways) or [
        (
            f"a local directory: create_model('/path/to/dir'), where the directory holds the files of "
            f"{repo} (on a machine with network: `hf download {repo} --local-dir /path/to/dir`)"
        )
    ]
    ways += [
        (
            f"a pre-filled Hugging Face cache: copy a cache holding {repo} to {cache_dir or hf_cache_dir()} "
            "(or point HF_HUB_CACHE/HF_HOME at it) and set HF_HUB_OFFLINE=1 so nothing is fetched"
        ),
        "network access to huggingface.co with HF_HUB_OFFLINE unset, to download them once into the cache",
    ]
    return (
        f"cannot load the weights of {prefix!r}: {reason}.\n"
        "Provide them in one of these ways:\n" + ";\n".join(f"  - {w}" for w in ways) + "."
    )


def _snapshot_identity(repo_id: str, path: Path) -> str:
    # huggingface_hub stores a snapshot under .../snapshots/<commit hash>
    return f"hf:{repo_id}@{path.name}"


def resolve_weights(
    ident: str,
    *,
    family: str = "",
    revision: str | None = None,
    allow_patterns: Sequence[str] | None = None,
    require_weights: bool = True,
) -> ResolvedWeights:
    """A local directory holding ``ident``'s files, or :class:`WeightsNotFoundError` at once.

    ``ident`` is a local directory or a hub repo id ``ORG/NAME``; ``family`` only shapes the
    error message. ``allow_patterns`` limits what is fetched (e.g. ``["config.json"]`` when
    only an architecture is needed, with ``require_weights=False``).
    """
    if os.path.isdir(os.path.expanduser(ident)):
        path = Path(os.path.expanduser(ident)).resolve()
        identity = local_weights_identity(path) if require_weights else "local:" + str(path)
        return ResolvedWeights(path, identity, ident)
    if looks_like_path(ident) or not _REPO_ID.match(ident):
        raise WeightsNotFoundError(
            not_found_message(
                family,
                ident,
                "it is neither an existing local directory nor a hub repo id ORG/NAME",
            )
        )

    import huggingface_hub
    from huggingface_hub import errors

    kwargs = {
        "revision": revision,
        "allow_patterns": list(allow_patterns) if allow_patterns else None,
        "ignore_patterns": IGNORE_PATTERNS,
    }

    def usable(p: str) -> bool:
        return not require_weights or bool(weight_files(p))

    # 1. the cache, no network at all
    try:
        cached = huggingface_hub.snapshot_download(ident, local_files_only=True, **kwargs)
        if usable(cached):
            log.debug("found %s in the Hugging Face cache at %s", ident, cached)
            return ResolvedWeights(Path(cached), _snapshot_identity(ident, Path(cached)), ident)
        reason_cached = "the Hugging Face cache holds its config but no weight files"
    except (
        errors.LocalEntryNotFoundError,
        FileNotFoundError,
        errors.OfflineModeIsEnabled,
        ValueError,
    ):
        reason_cached = f"it is not in the Hugging Face cache ({hf_cache_dir()})"

    # 2. offline: stop here, never touch the network
    blocked = offline_reason()
    if blocked:
        raise WeightsNotFoundError(not_found_message(family, ident, f"{reason_cached} and {blocked}"))

    # 3. one download attempt; every failure becomes the same clear error
    try:
        # model_info makes one request (list_repo_files would retry with back-off for ~25 s)
        files = [
            s.rfilename for s in huggingface_hub.model_info(ident, revision=revision).siblings or []
        ]
        if any(f.endswith(".safetensors") for f in files):  # the same weights twice: fetch one copy
            kwargs["ignore_patterns"] = [*IGNORE_PATTERNS, "*.bin", "*.pt", "*.pth"]
        path = huggingface_hub.snapshot_download(ident, **kwargs)
    except errors.GatedRepoError:
        raise WeightsNotFoundError(
            not_found_message(
                family,
                ident,
                "the repository is gated: accept its licence on huggingface.co and log in (`hf auth login`)",
            )
        ) from None
    except (errors.RepositoryNotFoundError, errors.RevisionNotFoundError) as e:
        raise WeightsNotFoundError(
            not_found_message(
                family, ident, f"the hub has no such repository or revision ({type(e).__name__})"
            )
        ) from None
    except Exception as e:  # network down, DNS failure, HTTP errors: all mean "not available here"
        log.debug("hub download of %s failed", ident, exc_info=True)
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsNotFoundError(
            not_found_message(
                family, ident, f"{reason_cached} and the download failed ({first_line})"
            )
        ) from None
    if not usable(path):
        raise WeightsNotFoundError(
            not_found_message(family, ident, "the downloaded snapshot holds no weight files")
        )
    return ResolvedWeights(Path(path), _snapshot_identity(ident, Path(path)), ident)


class HubFiles:
    """Named files of hub repos for one model: the cache first, then — when downloads are allowed
    and one probe (per instance) finds the hub reachable — one download; otherwise at once a
    :class:`WeightsNotFoundError` naming the model, the missing piece and every way to provide it.

    For loaders that know which files they need (open_clip: a checkpoint, an HF text tower's
    config, a tokenizer) where :func:`resolve_weights` would fetch a whole snapshot.
    """

    def __init__(self, family: str, model: str, cache_dir: str | None = None, local_ways: Sequence[str] = ()):
        self.family, self.model, self.cache_dir, self.local_ways = family, model, cache_dir, tuple(local_ways)
        self._online: bool | None = None

    def _why_not_download(self) -> str | None:
        blocked = offline_reason()
        if blocked:
            return blocked
        if self._online is None:
            self._online = hub_reachable()
        if not self._online:
            from huggingface_hub import constants

            return f"the Hugging Face Hub ({constants.ENDPOINT}) cannot be reached"
        return None

    def missing(self, what: str, repo: str, reason: str) -> WeightsNotFoundError:
        cache = self.cache_dir or hf_cache_dir()
        return WeightsNotFoundError(
            not_found_message(
                self.family,
                self.model,
                f"{what} ({repo!r} on the Hugging Face Hub) is not in the hub cache ({cache}) and {reason}",
                repo=repo,
                cache_dir=cache,
                local_ways=self.local_ways,
            )
        )

    def file(self, repo: str, filenames: Sequence[str], what: str) -> str:
        """Local path of the first of ``filenames`` the repo has (cached, else downloaded)."""
        from huggingface_hub import hf_hub_download, try_to_load_from_cache
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

        for name in filenames:
            hit = try_to_load_from_cache(repo, name, cache_dir=self.cache_dir)
            if isinstance(hit, str):
                return hit
        reason = self._why_not_download()
        if reason:
            raise self.missing(what, repo, reason)
        for name in filenames:
            try:
                return hf_hub_download(repo, name, cache_dir=self.cache_dir)
            except LocalEntryNotFoundError as e:  # connection lost mid-way: no further tries
                raise self.missing(what, repo, f"the download failed ({e.__class__.__name__})") from None
            except EntryNotFoundError:
                continue  # the repo lacks this file name: try the next
            except Exception as e:  # noqa: BLE001 - any hub failure becomes one clear error
                raise self.missing(what, repo, f"the download failed ({e.__class__.__name__}: {e})") from None
        raise self.missing(what, repo, f"the repo has none of {list(filenames)}")

    def snapshot(self, repo: str, markers: Sequence[str], patterns: Sequence[str], what: str) -> str:
        """Local directory of a repo's files matching ``patterns``; cached when any of ``markers``
        (files every such snapshot holds) is in the cache."""
        from huggingface_hub import snapshot_download, try_to_load_from_cache

        for marker in markers:
            hit = try_to_load_from_cache(repo, marker, cache_dir=self.cache_dir)
            if isinstance(hit, str):
                return os.path.dirname(hit)
        reason = self._why_not_download()
        if reason:
            raise self.missing(what, repo, reason)
        try:
            return snapshot_download(repo, allow_patterns=list(patterns), cache_dir=self.cache_dir)
        except Exception as e:  # noqa: BLE001
            raise self.missing(what, repo, f"the download failed ({e.__class__.__name__}: {e})") from None


#: Files that shape tokenisation or preprocessing without being weights.
PREPROCESS_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
    "preprocessor_config.json",
    "processor_config.json",
)


def preprocess_files_digest(path: str | Path) -> str:
    """Short SHA-256 of the tokenizer/processor files directly in ``path`` (``""`` if none).

    A local directory's weights hash does not cover its tokenizer; this does, so two
    directories with the same weights but different vocabularies never share a fingerprint.
    """
    files = [str(Path(path) / n) for n in PREPROCESS_FILES if (Path(path) / n).is_file()]
    return hash_files(files)[:16] if files else ""


def split_revision(ident: str) -> tuple[str, str | None]:
    """``"ORG/NAME@REV"`` → ``("ORG/NAME", "REV")``; an existing path is returned whole."""
    if os.path.exists(os.path.expanduser(ident)) or "@" not in ident:
        return ident, None
    name, _, rev = ident.rpartition("@")
    return name, rev or None
