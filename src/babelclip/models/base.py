"""The one interface every model family implements, the optional capabilities an encoder may
declare beyond it, and the fingerprint that keys caches.

- :class:`Encoder` — what every model is: ``encode_images``, ``encode_texts(texts, lang)``.
- :class:`EncoderCapabilities` — what a model may offer besides, declared by the family that
  knows (never probed by name): language-agnostic texts, shared-prefix batching, a trainable
  text side (:class:`TrainableText`), training defaults (:class:`TrainingDefaults`), class
  prototypes. :class:`Capabilities` holds the defaults (every torch encoder inherits them);
  :func:`capabilities` gives any encoder's declarations, defaults for one that declares none.
- :class:`PixelEncoder` — an encoder whose image preprocessing can run apart from the model
  (in data-loader workers).

Kept free of torch so that ``import babelclip`` stays fast; the shared torch machinery lives
in :mod:`babelclip.models.torch_encoder`.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from PIL import Image

    from ..languages import Language


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
    dot product is a cosine similarity for every model (the one exception is opt-in: an encoder
    created with a protocol option for raw text embeddings declares ``text_normalized = False``,
    :class:`EncoderCapabilities`). ``lang`` is any code the language
    table knows (BCP-47, NLLB, Babel-ImageNet, ...); it travels per call so models with
    language tokens tag every text correctly without global state.

    What an encoder may offer beyond these two methods is declared through
    :class:`EncoderCapabilities`.
    """

    fingerprint: Fingerprint
    dim: int

    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 64) -> np.ndarray: ...

    def encode_texts(self, texts: Sequence[str], lang: str, batch_size: int = 256) -> np.ndarray: ...


# -- optional capabilities -------------------------------------------------------------------------
TEXT_LEVELS = ("output", "tower", "logits")  # which text embedding training distils (TrainableText)


@runtime_checkable
class TrainableText(Protocol):
    """What training needs from a model's text side: the module whose weights are trained (LoRA
    attaches to its linear layers) and unnormalised embeddings computed through it, *with*
    gradients, for texts of one language."""

    fingerprint: Fingerprint  # of the base model: keys the teacher cache and names adapters' base

    def text_module(self) -> torch.nn.Module: ...

    def text_forward(self, texts: list[str], lang: str | Language) -> torch.Tensor: ...


@dataclass
class TextSide:
    """A :class:`TrainableText` over an encoder: a module and a forward that runs through it."""

    encoder: Encoder
    module: torch.nn.Module
    forward: Callable[[list[str], Language], torch.Tensor]
    kind: str = "output"  # which embedding `forward` returns (TEXT_LEVELS); part of the teacher-cache key

    @property
    def fingerprint(self) -> Fingerprint:
        return self.encoder.fingerprint

    def text_module(self) -> torch.nn.Module:
        return self.module

    def text_forward(self, texts: list[str], lang: str | Language) -> torch.Tensor:
        from ..languages import get_language

        return self.forward(list(texts), get_language(lang))


@dataclass(frozen=True)
class TrainingDefaults:
    """What ``babelclip train`` uses where the user names nothing (measured: docs/training.md)."""

    level: str  # one of TEXT_LEVELS
    loss: str  # "mse" or "kl" (KL of class distributions: only on level "logits")
    lr: float


def default_training(method: str, level: str | None = None, loss: str | None = None, *,
                     preferred_level: str = "output") -> TrainingDefaults:
    """Defaults for what is not given: ``preferred_level`` (the family's), then ``kl`` on logits
    and ``mse`` otherwise, then the learning rate of ``method`` and loss: 2e-5 for full
    fine-tuning, 3e-3 for LoRA with ``kl``, 1e-3 for LoRA with ``mse``."""
    level = level or preferred_level
    loss = loss or ("kl" if level == "logits" else "mse")
    lr = 2e-5 if method == "full" else 3e-3 if loss == "kl" else 1e-3
    return TrainingDefaults(level, loss, lr)


@runtime_checkable
class EncoderCapabilities(Protocol):
    """What an encoder may declare beyond :class:`Encoder`; :class:`Capabilities` holds the defaults.

    - ``text_language_agnostic``: a text's embedding does not depend on ``lang`` (no language
      token reaches the model): the evaluation caches keep one embedding per distinct text for
      all languages (see :mod:`babelclip.eval.encode`).
    - ``text_prefix_sharing``: the encoder computes shared text prefixes once (open_clip's causal
      towers): the caches hand it texts in lexicographic rather than length order, so texts that
      begin alike arrive in the same call.
    - ``text_normalized``: ``encode_texts`` returns unit rows (the :class:`Encoder` rule). False
      only where a protocol option asked for raw text embeddings (M-CLIP's and
      sentence-transformers' ``normalize_text=False``, the reference code's scoring:
      docs/protocols.md); evaluation then scores them as they are, without re-normalising.
    - ``device``: where it runs ("cpu" unless it says otherwise): data loaders pin memory for a
      GPU, evaluation runs its language workers only on the CPU.
    - ``text_context``: the text tower's context in tokens (longer texts are truncated), or
      ``None`` where it does not say; ``count_tokens(text, lang)``: the tokens ``text`` takes in
      it, ``None`` where the family does not count (callers estimate). Search warns with them.
    - ``languages``: the BCP-47 tags (from the language table) of the languages the model
      handles, where its family knows them (:mod:`babelclip.models.text_languages`: NLLB's for an
      NLLB tokenizer, XLM-R's CC-100 languages for XLM-R's, English for CLIP's BPE); ``None``:
      not declared (the search page then offers every language, saying so).
    - ``trainable_text(level)``: its :class:`TrainableText` (``level`` one of TEXT_LEVELS, where
      it offers them); ``TypeError`` where its text side cannot be trained.
    - ``training_defaults(method, level, loss)``: what training uses where the caller gives nothing.
    - ``class_prototypes()``: one unit row per class in the encoder's own class space (babel-lite's
      image side of each ImageNet class), or ``None`` where its texts are not class distributions.
    """

    text_language_agnostic: bool
    text_prefix_sharing: bool
    text_normalized: bool
    device: Any
    text_context: int | None
    languages: tuple[str, ...] | None

    def count_tokens(self, text: str, lang: str) -> int | None: ...

    def trainable_text(self, level: str = "output") -> TrainableText: ...

    def training_defaults(self, method: str, level: str | None = None,
                          loss: str | None = None) -> TrainingDefaults: ...

    def class_prototypes(self) -> np.ndarray | None: ...


class Capabilities:
    """The defaults of :class:`EncoderCapabilities`: what an encoder has that declares nothing."""

    text_language_agnostic: bool = False
    text_prefix_sharing: bool = False
    text_normalized: bool = True
    device: Any = "cpu"  # a torch encoder's torch.device
    text_context: int | None = None
    languages: tuple[str, ...] | None = None

    def _described(self) -> str:
        return type(self).__name__

    def count_tokens(self, text: str, lang: str) -> int | None:
        return None

    def trainable_text(self, level: str = "output") -> TrainableText:
        raise TypeError(
            f"cannot train the text side of {self._described()}: its family declares no trainable "
            "text side (EncoderCapabilities.trainable_text); pass an object implementing "
            "babelclip.models.base.TrainableText instead"
        )

    def training_defaults(self, method: str, level: str | None = None,
                          loss: str | None = None) -> TrainingDefaults:
        return default_training(method, level, loss)

    def class_prototypes(self) -> np.ndarray | None:
        return None


class _Undeclared(Capabilities):
    """The defaults, for an encoder that declares no capabilities (one written against Encoder only)."""

    def __init__(self, encoder: Any):
        self._encoder = encoder

    def _described(self) -> str:
        return type(self._encoder).__name__


def capabilities(encoder: Any) -> EncoderCapabilities:
    """``encoder``'s declared capabilities: itself when it declares them, else the defaults."""
    return encoder if isinstance(encoder, EncoderCapabilities) else _Undeclared(encoder)


@runtime_checkable
class PixelEncoder(Protocol):
    """An encoder whose image preprocessing runs apart from the model, so a data loader can
    decode and preprocess in worker processes while the model runs."""

    def preprocess(self, image: Image.Image) -> Any: ...

    def encode_pixels(self, pixels: Any) -> np.ndarray: ...


def reject_level(encoder: Any, level: str) -> None:
    """The error for a ``level`` other than "output" from an encoder that only offers its output."""
    if level not in TEXT_LEVELS:
        raise ValueError(f"level={level!r}; allowed: {', '.join(TEXT_LEVELS)}")
    if level != "output":
        raise ValueError(
            f"level={level!r} needs an encoder exposing text_tower, tokenize and mean_pool; "
            f"{type(encoder).__name__} does not: use level='output'"
        )


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
