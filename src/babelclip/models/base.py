"""The one interface every model family implements, and the fingerprint that keys caches.

Kept free of torch so that ``import babelclip`` stays fast; the shared torch machinery lives
in :mod:`babelclip.models.torch_encoder`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image


class WeightsNotFoundError(RuntimeError):
    """Raised at once when a model's weights are neither local nor downloadable.

    The message says which weights were looked for and how to provide them (a local path,
    a pre-filled cache, or network access), so no hub time-out or traceback soup reaches the user.
    """


class OtherFamilyError(ValueError):
    """A family's ``create`` found that the files a name resolves to belong to another family
    (``hf:M-CLIP/...`` is an M-CLIP text encoder): the registry hands the same name and options
    to ``family`` instead, so no family imports another."""

    def __init__(self, family: str, message: str):
        super().__init__(message)
        self.family = family


@dataclass(frozen=True)
class Fingerprint:
    """Everything that changes an embedding: two models that differ here never share a cache.

    ``weights`` identifies the exact parameters (a SHA-256 of the weight files, a hub revision,
    or a hash of a randomly initialised state dict); ``preprocess`` describes image
    preprocessing and text formatting (prefixes, max length, language-token scheme).
    """

    family: str
    name: str
    weights: str
    preprocess: str
    dtype: str = "float32"
    extra: tuple[tuple[str, str], ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["extra"] = dict(self.extra)
        return d

    @property
    def key(self) -> str:
        """A short stable hex digest, usable as a directory name."""
        blob = json.dumps(self.as_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:20]


@runtime_checkable
class Encoder(Protocol):
    """A multilingual image–text model.

    Both methods return float32 arrays of shape ``(n, dim)`` whose rows have unit L2 norm, so a
    dot product is a cosine similarity for every model. ``lang`` is any code the language
    table knows (BCP-47, NLLB, Babel-ImageNet, ...); it travels per call so models with
    language tokens tag every text correctly without global state.

    An encoder may declare ``text_language_agnostic = True`` when a text's embedding does not
    depend on ``lang`` (no language token reaches the model): the evaluation caches then keep
    one embedding per distinct text for all languages (see :mod:`babelclip.eval.encode`).
    An encoder that computes shared text prefixes once (open_clip's causal towers) declares
    ``text_prefix_sharing = True``: the caches then hand it texts in lexicographic rather than
    length order, so texts that begin alike arrive in the same call.
    """

    fingerprint: Fingerprint
    dim: int

    def encode_images(self, images: Sequence["Image.Image"], batch_size: int = 64) -> np.ndarray: ...

    def encode_texts(self, texts: Sequence[str], lang: str, batch_size: int = 256) -> np.ndarray: ...


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32); zero rows stay zero instead of becoming NaN."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, eps)


def hash_files(paths: Sequence[str], chunk: int = 1 << 20) -> str:
    """SHA-256 over the bytes of several files, in order."""
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            while block := f.read(chunk):
                h.update(block)
    return h.hexdigest()
