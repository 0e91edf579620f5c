"""sentence-transformers multilingual CLIP: a distilled multilingual text model plus the CLIP
whose text space it imitates.

Reimers & Gurevych 2020, "Making Monolingual Sentence Embeddings Multilingual using Knowledge
Distillation" (EMNLP): ``sentence-transformers/clip-ViT-B-32-multilingual-v1`` is a
multilingual DistilBERT (mean pooling + dense layer) trained so its embeddings match those of
CLIP ViT-B/32's text tower; images are therefore encoded with
``sentence-transformers/clip-ViT-B-32``. Which image model belongs to which text model is data
(:data:`PAIRINGS`). Both towers run through :class:`sentence_transformers.SentenceTransformer`
(its own tokenisation, pooling, dense layers and image processor); we L2-normalise the outputs,
which the published usage leaves to the caller.

Names: ``st:ORG/NAME`` (optionally ``@REVISION``) or a local directory with ``modules.json``;
``image_model=`` (a name or directory) overrides the pairing, and a model that itself accepts
images (a CLIP saved as a SentenceTransformer) is its own image model.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ..languages import Language
from .base import Fingerprint
from .hub import ResolvedWeights, resolve_weights, split_revision
from .options import HubOptions, TextNormalizationOptions, normalization_extra
from .text_languages import tokenizer_languages
from .torch_encoder import TorchEncoder, dtype_name, resolve_dtype, state_dict_hash
from .transformers_parts import image_processor_description

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

log = logging.getLogger(__name__)

#: Multilingual text models → the image model of the CLIP they were distilled from.
PAIRINGS: dict[str, str] = {
    "sentence-transformers/clip-ViT-B-32-multilingual-v1": "sentence-transformers/clip-ViT-B-32",
}


def recognises(path: Path) -> bool:
    """A local SentenceTransformer directory: it lists its modules in ``modules.json``."""
    return (path / "modules.json").is_file()


def _configs_digest(path: Path) -> str:
    """SHA-256 of every JSON/text config under a SentenceTransformer directory (pooling mode,
    dense activation, max length, tokenizer files...), which the weight hash does not cover."""
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if (
            p.is_file()
            and p.suffix in (".json", ".txt", ".model")
            and ".cache" not in p.parts
            and p.name != "README.md"
        ):
            h.update(str(p.relative_to(path)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _load(
    ident: str,
    *,
    device: torch.device,
    dtype: torch.dtype,
    pretrained: bool,
    seed: int,
    revision: str | None,
) -> tuple[Any, ResolvedWeights, str]:
    """A SentenceTransformer from a local dir or the hub, with its weights identity."""
    repo, rev = split_revision(ident)
    resolved = resolve_weights(
        repo, family="st", revision=revision or rev
    )  # fail before the heavy import
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(resolved.path), device=str(device), local_files_only=True)
    if pretrained:
        weights = resolved.identity
    else:  # same architecture, weights redrawn from a seeded normal (tests, baselines)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
        weights = f"random:seed={seed}:{state_dict_hash(model)}"
    model.to(dtype).eval()
    return model, resolved, weights


class STEncoder(TorchEncoder):
    """A SentenceTransformer text model plus a SentenceTransformer CLIP image model."""

    text_language_agnostic = True  # no language input: one embedding per string

    def __init__(
        self,
        text: Any,
        image: Any,
        *,
        name: str,
        weights: str,
        preprocess: dict[str, Any],
        device: Any,
        dtype: Any,
        normalize_text: bool = True,
    ):
        super().__init__(device, dtype)
        self.text, self.image = text, image
        self.text_normalized = normalize_text
        self.languages = tokenizer_languages(getattr(text, "tokenizer", None))
        self.dim = int(text.get_embedding_dimension())
        image_dim = int(image.get_embedding_dimension())
        if image_dim != self.dim:
            raise ValueError(
                f"sentence-transformers model {name!r} gives {self.dim}-dim text embeddings but its image model "
                f"gives {image_dim}; pair it with the CLIP image model it was distilled from"
            )
        self.fingerprint = Fingerprint(
            "st",
            name,
            weights,
            json.dumps(preprocess, sort_keys=True, default=str),
            dtype_name(self.dtype),
            normalization_extra(normalize_text),
        )

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return self.image.preprocess([image.convert("RGB")])["pixel_values"][0]

    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.image({"pixel_values": pixels, "modality": "image"})["sentence_embedding"]

    def _text_features(self, texts: list[str], lang: Language) -> torch.Tensor:
        feats = self.text.preprocess(texts)
        feats = {
            k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in feats.items()
        }
        return self.text(feats)["sentence_embedding"]


@dataclass(frozen=True)
class STOptions(HubOptions, TextNormalizationOptions):
    """Options of :func:`create`, besides ``pretrained``, ``seed`` and ``revision``."""

    family: ClassVar[str] = "sentence-transformers"

    image_model: str | None = None  # the image model (name or directory); default: PAIRINGS


def create(
    ident: str,
    device: str | torch.device | None = "cpu",
    dtype: str | torch.dtype | None = None,
    **opts: Any,
) -> STEncoder:
    """Load ``st:ORG/NAME`` (or a local SentenceTransformer directory) with its paired image model.

    ``pretrained=False`` keeps the architectures but redraws every weight from a seeded normal
    distribution (the files must still be present: sentence-transformers has no config-only build).
    """
    from .torch_encoder import resolve_device

    options = STOptions.from_kwargs(opts)
    pretrained, seed, revision, image_model = options.pretrained, options.seed, options.revision, options.image_model
    dev, dt = resolve_device(device), resolve_dtype(dtype)
    repo, _ = split_revision(ident)
    text, text_res, text_w = _load(
        ident, device=dev, dtype=dt, pretrained=pretrained, seed=seed, revision=revision
    )
    image_ref = image_model or PAIRINGS.get(repo)
    if image_ref is None:
        if not text.supports("image"):
            raise ValueError(
                f"no image model is known for the sentence-transformers model {ident!r} and it does not encode "
                f"images itself; pass image_model='ORG/NAME' or a directory. Known pairings: {PAIRINGS}"
            )
        image, image_res, image_w = text, text_res, text_w
    else:
        image_ref = image_ref.removeprefix("st:")
        image, image_res, image_w = _load(
            image_ref, device=dev, dtype=dt, pretrained=pretrained, seed=seed + 1, revision=None
        )
        if not image.supports("image"):
            raise ValueError(f"the image model {image_ref!r} of {ident!r} does not accept images")
    processor = getattr(image[0], "processor", None)
    image_proc = getattr(processor, "image_processor", processor)
    preprocess = {
        "text": {"max_seq_length": text.max_seq_length, "configs": _configs_digest(text_res.path)},
        "image": {
            "processor": image_processor_description(image_proc)
            if image_proc is not None
            else None,
            "configs": _configs_digest(image_res.path),
        },
    }
    name = repo if not Path(repo).exists() else Path(repo).resolve().name
    weights = text_w if image is text else f"text={text_w};image={image_w}"
    encoder = STEncoder(
        text, image, name=name, weights=weights, preprocess=preprocess, device=dev, dtype=dt,
        normalize_text=options.normalize_text,
    )
    encoder.options = options
    return encoder


OPTIONS = STOptions  # the family's options class (the registry reads its protocol overrides)
