"""M-CLIP: a multilingual text encoder distilled into a frozen CLIP's text space, paired with
that CLIP's image tower.

Carlsson et al. 2022, "Cross-lingual and Multilingual CLIP" (LREC), code in
FreddeFrallan/Multilingual-CLIP (``multilingual_clip.pt_multilingual_clip.MultilingualCLIP``).
The text side is a pre-trained transformer (XLM-R, M-BERT, LaBSE) whose last hidden states are
mean-pooled over the attention mask and mapped by one linear layer (``LinearTransformation``)
into the CLIP embedding space; the image side is the unchanged CLIP vision tower the text
encoder was distilled towards. Which tower belongs to which checkpoint is data
(:data:`PAIRINGS`), from the model cards. Unlike the published code we L2-normalise both sides
(done once in :class:`~babelclip.models.torch_encoder.TorchEncoder`) and truncate texts to the
text model's length limit instead of failing on long inputs. A transformers CLIP tower sees
OpenAI CLIP's torchvision preprocessing, as the reference code pairs them
(:mod:`~babelclip.models.clip_preprocess`; ``image_preprocess="tower"``: its own processor).

Accepted names:

- ``mclip:M-CLIP/XLM-Roberta-Large-Vit-B-32`` (hub; a snapshot holds ``config.json`` with
  ``model_type: "M-CLIP"``, ``modelBase``, ``transformerDimensions``, ``numDims``, the
  tokenizer and one weight file with ``transformer.*`` and ``LinearTransformation.*``);
  a local copy of such a snapshot works too;
- a local directory in babelclip's format: ``mclip_config.json`` ::

      {"name": "...", "text_model": "text", "head": "head.safetensors",
       "image_model": "image" | "hf:openai/clip-vit-base-patch32" | "openclip:ARCH@TAG"}

  where ``text_model`` is a transformers model directory with its tokenizer, ``head`` holds
  ``weight``/``bias`` of the linear layer, and ``image_model`` is a babelclip model name or a
  directory (relative to this one) loaded through the ``tower_factory`` the registry passes
  (:func:`babelclip.create_model`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ..languages import Language
from .base import Encoder, Fingerprint, TextSide, TrainableText, reject_level
from .hub import preprocess_files_digest, resolve_weights, split_revision, weight_files
from .options import OptionsError, TextNormalizationOptions, normalization_extra
from .packed_bert import masked_mean
from .text_languages import tokenizer_languages
from .tokenizer_cache import cached_tokenizer
from .torch_encoder import TorchEncoder, dtype_name, resolve_dtype, state_dict_hash
from .transformers_parts import TransformersTextOptions, read_model_type, text_max_length

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

log = logging.getLogger(__name__)

#: Published M-CLIP text encoders → the image tower each was distilled towards (model cards).
#: OpenAI's ViT weights are loaded through transformers; ViT-B/16+ exists only in open_clip.
PAIRINGS: dict[str, str] = {
    "M-CLIP/XLM-Roberta-Large-Vit-B-32": "hf:openai/clip-vit-base-patch32",
    "M-CLIP/XLM-Roberta-Large-Vit-L-14": "hf:openai/clip-vit-large-patch14",
    "M-CLIP/LABSE-Vit-L-14": "hf:openai/clip-vit-large-patch14",
    "M-CLIP/XLM-Roberta-Large-Vit-B-16Plus": "openclip:ViT-B-16-plus-240@laion400m_e32",
}

LOCAL_CONFIG = "mclip_config.json"
IMAGE_PREPROCESSING = ("reference", "tower")


def recognises(path: Path) -> bool:
    """A local M-CLIP directory: babelclip's layout (``mclip_config.json``), or a copy of a
    published snapshot (a ``config.json`` of ``model_type`` ``M-CLIP``)."""
    if (path / LOCAL_CONFIG).is_file():
        return True
    try:
        return read_model_type(path) == "M-CLIP"
    except (ValueError, OSError):  # no config.json, or not JSON: not an M-CLIP snapshot
        return False


@dataclass(frozen=True)
class MCLIPLayout:
    """Where the parts of one M-CLIP model are, whichever format it came in."""

    name: str
    text_dir: Path  # holds the tokenizer (and, in babelclip's format, the transformer)
    text_config_dir: Path  # holds the transformer's config.json
    image_model: str  # a babelclip model name or a directory
    weights: list[Path]  # files holding the transformer and head parameters
    identity: str  # weights identity of the text side
    head_prefix: str  # key prefix of the head in the weight files; "" = a separate head file
    head_file: Path | None = None


class MCLIPTextTower(torch.nn.Module):
    """Transformer → mean over the attention mask → linear map into the CLIP space."""

    def __init__(self, transformer: torch.nn.Module, in_dim: int, out_dim: int):
        super().__init__()
        self.transformer = transformer
        self.head = torch.nn.Linear(in_dim, out_dim)

    def forward(self, **tokens: torch.Tensor) -> torch.Tensor:
        return self.head(masked_mean(self.transformer, tokens))  # packed for BERT / XLM-R at inference


class MCLIPEncoder(TorchEncoder):
    """M-CLIP text tower plus the paired CLIP image encoder (any babelclip TorchEncoder)."""

    text_language_agnostic = True  # XLM-R tokenizers take no language: one embedding per string

    def __init__(
        self,
        text: MCLIPTextTower,
        tokenizer: Any,
        image: TorchEncoder,
        *,
        layout: MCLIPLayout,
        text_weights: str,
        device: Any,
        dtype: Any,
        max_length: int | None = None,
        image_transform: tuple[Any, dict[str, Any]] | None = None,
        normalize_text: bool = True,
    ):
        super().__init__(device, dtype)
        self.text_normalized = normalize_text
        self.text = text.to(self.device, self.dtype).eval()
        self.image_transform = image_transform[0] if image_transform else None
        self.tokenizer, self.image, self.languages = tokenizer, image, tokenizer_languages(tokenizer)
        self.dim = int(text.head.out_features)
        if image.dim != self.dim:
            raise ValueError(
                f"M-CLIP {layout.name!r}: the text head maps to {self.dim} dims but the image tower "
                f"{layout.image_model!r} gives {image.dim}; pair the text encoder with the CLIP it was trained for"
            )
        self.max_length = text_max_length(tokenizer, text.transformer.config, max_length)
        self.text_context = self.max_length
        preprocess = {
            "text": {
                "tokenizer": type(tokenizer).__name__,
                "vocab_size": len(tokenizer),
                "max_length": self.max_length,
                "padding": "longest",
                "pooling": "mean",
                "files": preprocess_files_digest(layout.text_dir),
            },
            "image": image_transform[1] if image_transform
            else json.loads(image.fingerprint.preprocess)
            if image.fingerprint.preprocess.startswith("{")
            else image.fingerprint.preprocess,
        }
        self.fingerprint = Fingerprint(
            family="mclip",
            name=layout.name,
            weights=f"text={text_weights};image={image.fingerprint.family}:{image.fingerprint.name}:{image.fingerprint.weights}",
            preprocess=json.dumps(preprocess, sort_keys=True, default=str),
            dtype=dtype_name(self.dtype),
            extra=normalization_extra(normalize_text),
        )

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        if self.image_transform is not None:
            return self.image_transform(image)
        return self.image.preprocess(image)

    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.image._image_features(pixels)

    def _text_features(self, texts: list[str], lang: Language) -> torch.Tensor:
        tok = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        return self.text(**{k: v.to(self.device) for k, v in tok.items()})

    def trainable_text(self, level: str = "output") -> TrainableText:
        """The transformer (not the linear head: it maps into the frozen CLIP space) through
        :meth:`_text_features`."""
        reject_level(self, level)
        return TextSide(self, self.text.transformer, self._text_features)


def _read_weight_files(files: list[Path]) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for f in files:
        if f.suffix == ".safetensors":
            from safetensors.torch import load_file

            state.update(load_file(str(f)))
        else:
            state.update(torch.load(str(f), map_location="cpu", weights_only=True))
    return state


def _layout(
    ident: str, pretrained: bool, image_model: str | None, revision: str | None
) -> MCLIPLayout:
    """Find config, tokenizer, weights and image tower of a local or hub M-CLIP model."""
    repo, rev = split_revision(ident)
    root = Path(repo)
    if (root / LOCAL_CONFIG).is_file():
        cfg = json.loads((root / LOCAL_CONFIG).read_text(encoding="utf-8"))
        missing = [
            k
            for k in ("text_model", "head", "image_model")
            if k not in cfg and not (k == "image_model" and image_model)
        ]
        if missing:
            raise ValueError(
                f"{root / LOCAL_CONFIG} lacks the keys {missing}; it needs text_model, head and image_model"
            )
        text_dir, head = root / cfg["text_model"], root / cfg["head"]
        files = [*weight_files(text_dir), head] if pretrained else []
        if pretrained and not head.is_file():
            raise FileNotFoundError(
                f"M-CLIP head weights {str(head)!r} named in {LOCAL_CONFIG} do not exist"
            )
        identity = resolve_weights(
            str(text_dir), family="mclip", require_weights=pretrained
        ).identity
        if pretrained:
            from .base import hash_files

            identity += ";head=sha256:" + hash_files([str(head)])
        return MCLIPLayout(
            cfg.get("name", root.resolve().name),
            text_dir,
            text_dir,
            image_model or cfg["image_model"],
            files,
            identity,
            "",
            head,
        )
    # the published format, from the hub or a local snapshot
    resolved = resolve_weights(
        repo,
        family="mclip",
        revision=revision or rev,
        require_weights=pretrained,
        allow_patterns=None if pretrained else ["*.json", "*.txt", "*.model"],
    )
    cfg = json.loads((resolved.path / "config.json").read_text(encoding="utf-8"))
    if cfg.get("model_type") != "M-CLIP" or "modelBase" not in cfg:
        raise ValueError(
            f"{ident!r} is not an M-CLIP model: its config.json lacks model_type 'M-CLIP' and modelBase"
        )
    base = cfg["modelBase"]
    local_base = next(
        (p for p in (Path(base), resolved.path / base) if (p / "config.json").is_file()), None
    )
    base_dir = (
        local_base
        or resolve_weights(
            base, family="mclip", allow_patterns=["config.json"], require_weights=False
        ).path
    )
    name = repo if not root.exists() else root.resolve().name
    image = image_model or PAIRINGS.get(repo)
    if image is None:
        raise ValueError(
            f"no image tower is known for the M-CLIP model {ident!r}; pass image_model='hf:ORG/NAME', "
            f"'openclip:ARCH@TAG' or a directory. Known pairings: {json.dumps(PAIRINGS, indent=1)}"
        )
    files = weight_files(resolved.path) if pretrained else []
    files = [f for f in files if f.parent == resolved.path]
    return MCLIPLayout(
        name, resolved.path, base_dir, image, files, resolved.identity, "LinearTransformation."
    )


def _build_text(layout: MCLIPLayout, pretrained: bool, seed: int) -> tuple[MCLIPTextTower, Any]:
    import transformers

    config = transformers.AutoConfig.from_pretrained(str(layout.text_config_dir))
    torch.manual_seed(seed)
    transformer = transformers.AutoModel.from_config(config)
    if (
        layout.head_file is not None
    ):  # babelclip's format: a separate head file (read even for its shape)
        head_state = _read_weight_files([layout.head_file])
        body = _read_weight_files(layout.weights[:-1]) if pretrained else {}
    else:  # the published format: one state dict, transformer.* and LinearTransformation.*
        state = _read_weight_files(layout.weights) if pretrained else {}
        head_state = {
            k[len(layout.head_prefix) :]: v
            for k, v in state.items()
            if k.startswith(layout.head_prefix)
        }
        body = {
            k[len("transformer.") :]: v for k, v in state.items() if k.startswith("transformer.")
        }
    if head_state:
        out_dim = int(head_state["weight"].shape[0])
    else:
        out_dim = int(
            json.loads((layout.text_dir / "config.json").read_text(encoding="utf-8"))["numDims"]
        )
    tower = MCLIPTextTower(transformer, config.hidden_size, out_dim)
    if pretrained:
        missing, _ = transformer.load_state_dict(body, strict=False)
        # the pooler is unused (we mean-pool) and position_ids is a buffer older files lack
        missing = [
            k for k in missing if not k.startswith("pooler.") and not k.endswith("position_ids")
        ]
        if missing:
            raise ValueError(
                f"M-CLIP {layout.name!r}: the weight files lack {len(missing)} transformer tensors, e.g. {missing[:3]}"
            )
        tower.head.load_state_dict(head_state)
    tokenizer = cached_tokenizer(lambda: transformers.AutoTokenizer.from_pretrained(str(layout.text_dir)), layout.text_dir, "AutoTokenizer")
    return tower, tokenizer


@dataclass(frozen=True)
class MCLIPOptions(TransformersTextOptions, TextNormalizationOptions):
    """Options of :func:`create`: those of ``hf`` (an ``hf:`` name may resolve to M-CLIP), and
    the image tower to pair."""

    family: ClassVar[str] = "M-CLIP"

    image_model: str | None = None  # a babelclip model name or directory; default: PAIRINGS
    image_opts: dict[str, Any] | None = None  # passed on to the image tower's create_model
    # "reference": a transformers CLIP tower sees OpenAI CLIP's torchvision preprocessing, as the
    # M-CLIP, CLIP_benchmark and Babel-ImageNet code run it (models/clip_preprocess.py);
    # "tower": the tower's own image processor
    image_preprocess: str = "reference"

    def validate(self) -> None:
        if self.image_preprocess not in IMAGE_PREPROCESSING:
            raise OptionsError(f"M-CLIP option image_preprocess={self.image_preprocess!r}; "
                               f"allowed: {', '.join(IMAGE_PREPROCESSING)}")


def _image_transform(image: TorchEncoder, mode: str) -> tuple[Any, dict[str, Any]] | None:
    """The reference preprocessing for a transformers CLIP tower (open_clip towers already run
    open_clip's, the reference's own), or None: the tower's own."""
    from .hf import HFEncoder

    if mode == "reference" and isinstance(image, HFEncoder) and image.arch.model_class == "CLIPModel":
        from .clip_preprocess import reference_transform

        return reference_transform(image.image_processor)
    return None


def create(
    ident: str,
    device: str | torch.device | None = "cpu",
    dtype: str | torch.dtype | None = None,
    *,
    tower_factory: Callable[..., Encoder],
    **opts: Any,
) -> Encoder:
    """Load an M-CLIP model (hub ``ORG/NAME``, a local snapshot, or babelclip's local format).

    ``image_model`` overrides the paired image tower; ``image_opts`` pass through to its
    ``tower_factory`` call (the registry passes :func:`babelclip.create_model`, so the tower may
    be any family's name or directory without this module knowing the registry).
    ``pretrained=False`` gives random weights (``seed``) on both sides.
    """
    options = MCLIPOptions.from_kwargs(opts)
    pretrained, seed = options.pretrained, options.seed
    layout = _layout(ident, pretrained, options.image_model, options.revision)
    text, tokenizer = _build_text(layout, pretrained, seed)
    ref = layout.image_model
    if ":" not in ref and (Path(ident) / ref).is_dir():
        ref = str(Path(ident) / ref)
    image = tower_factory(
        ref,
        device=device,
        dtype=dtype,
        **{"pretrained": pretrained, "seed": seed, **(options.image_opts or {})},
    )
    if not isinstance(image, TorchEncoder):
        raise TypeError(
            f"the M-CLIP image tower {ref!r} must be a torch encoder, got {type(image).__name__}"
        )
    text_weights = layout.identity if pretrained else f"random:seed={seed}:{state_dict_hash(text)}"
    encoder = MCLIPEncoder(
        text,
        tokenizer,
        image,
        layout=layout,
        text_weights=text_weights,
        device=device,
        dtype=resolve_dtype(dtype),
        max_length=options.max_length,
        image_transform=_image_transform(image, options.image_preprocess),
        normalize_text=options.normalize_text,
    )
    encoder.options = options
    return encoder


OPTIONS = MCLIPOptions  # the family's options class (the registry reads its protocol overrides)
