"""transformers dual encoders: CLIP, SigLIP, AltCLIP and Chinese-CLIP behind one adapter.

Names are ``hf:ORG/NAME`` (optionally ``@REVISION``) or a local directory holding
``config.json``. The architecture is chosen by the config's ``model_type`` — never by the
model's name — and each model is run with its own tokenizer and image processor, so text and
pixels are exactly what the model saw in training:

- CLIP (Radford et al. 2021), AltCLIP (Chen et al. 2022), Chinese-CLIP (Yang et al. 2022):
  dynamic padding with an attention mask.
- SigLIP (Zhai et al. 2023): text padded to the full ``max_length`` *without* an attention
  mask, as the model was trained (the text embedding is read at the last position, so any
  other padding changes it).

Images go through the model's own image processor one image at a time (resize, crop,
rescale, normalise), so pixels equal those of the Hugging Face processor.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ..languages import Language
from .base import Fingerprint, OtherFamilyError, TextSide, TrainableText, reject_level
from .hub import ResolvedWeights, preprocess_files_digest, resolve_weights, split_revision
from .text_languages import tokenizer_languages
from .tokenizer_cache import cached_tokenizer
from .torch_encoder import TorchEncoder, dtype_name, state_dict_hash
from .transformers_parts import (
    TransformersTextOptions,
    image_processor_description,
    pooled,
    read_model_type,
    text_max_length,
)

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HFArchitecture:
    """How one transformers model class is run."""

    model_class: str  # attribute of the transformers package
    pad_to_max_length: bool  # SigLIP: pad every text to max_length (trained that way)
    attention_mask: bool  # pass the tokenizer's attention mask to the text tower


#: model_type in config.json → how to run it. Data, not name matching.
ARCHITECTURES: dict[str, HFArchitecture] = {
    "clip": HFArchitecture("CLIPModel", pad_to_max_length=False, attention_mask=True),
    "siglip": HFArchitecture("SiglipModel", pad_to_max_length=True, attention_mask=False),
    "altclip": HFArchitecture("AltCLIPModel", pad_to_max_length=False, attention_mask=True),
    "chinese_clip": HFArchitecture(
        "ChineseCLIPModel", pad_to_max_length=False, attention_mask=True
    ),
}

#: Files worth fetching for a transformers model (weights in safetensors or pickle form).
_HUB_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors", "*.bin"]
_CONFIG_PATTERNS = ["*.json", "*.txt", "*.model"]


def recognises(path: Path) -> bool:
    """A local directory of this family: a transformers ``config.json`` (asked after the
    families whose directories also hold one: sentence-transformers, M-CLIP)."""
    return (path / "config.json").is_file()


class HFEncoder(TorchEncoder):
    """A transformers dual encoder run with its own tokenizer and image processor."""

    text_language_agnostic = True  # its tokenizers take no language: one embedding per string

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        image_processor: Any,
        arch: HFArchitecture,
        *,
        name: str,
        weights: str,
        files_digest: str,
        device: str | torch.device | None,
        dtype: str | torch.dtype | None,
        max_length: int | None = None,
    ):
        super().__init__(device, dtype)
        self.model = model.to(self.device, self.dtype).eval()
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.arch = arch
        self.max_length = text_max_length(tokenizer, model.config.text_config, max_length)
        self.text_context = self.max_length
        self.languages = tokenizer_languages(tokenizer)
        self.padding = "max_length" if arch.pad_to_max_length else "longest"
        self.dim = (
            int(model.config.projection_dim)
            if hasattr(model.config, "projection_dim")
            else int(model.config.text_config.hidden_size)
        )
        preprocess = {
            "image": image_processor_description(image_processor),
            "text": {
                "tokenizer": type(tokenizer).__name__,
                "vocab_size": len(tokenizer),
                "max_length": self.max_length,
                "padding": self.padding,
                "attention_mask": arch.attention_mask,
                "files": files_digest,
            },
        }
        self.fingerprint = Fingerprint(
            family="hf",
            name=name,
            weights=weights,
            preprocess=json.dumps(preprocess, sort_keys=True, default=str),
            dtype=dtype_name(self.dtype),
            extra=(("model_class", arch.model_class),),
        )

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return self.image_processor(images=image.convert("RGB"), return_tensors="pt")[
            "pixel_values"
        ][0]

    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        return pooled(self.model.get_image_features(pixel_values=pixels))

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Token ids (and the attention mask where the model uses one), on the model's device."""
        tok = self.tokenizer(
            texts,
            padding=self.padding,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        keys = ["input_ids", "attention_mask"] if self.arch.attention_mask else ["input_ids"]
        return {k: tok[k].to(self.device) for k in keys}

    def _text_features(self, texts: list[str], lang: Language) -> torch.Tensor:
        # None of these models takes a language token: ``lang`` is validated by the caller only.
        return pooled(self.model.get_text_features(**self.tokenize(texts)))

    def trainable_text(self, level: str = "output") -> TrainableText:
        """``model.text_model`` through ``get_text_features`` (:meth:`_text_features`)."""
        reject_level(self, level)
        return TextSide(self, self.model.text_model, self._text_features)


def _load_parts(
    path: Path, arch: HFArchitecture, torch_dtype: torch.dtype, pretrained: bool, seed: int
):
    import transformers

    cls = getattr(transformers, arch.model_class)
    if pretrained:
        model = cls.from_pretrained(str(path), dtype=torch_dtype)
    else:
        config = transformers.AutoConfig.from_pretrained(str(path))
        torch.manual_seed(seed)
        model = cls(config)
    tokenizer = cached_tokenizer(lambda: transformers.AutoTokenizer.from_pretrained(str(path)), path, "AutoTokenizer")
    image_processor = transformers.AutoImageProcessor.from_pretrained(str(path))
    return model, tokenizer, image_processor


@dataclass(frozen=True)
class HFOptions(TransformersTextOptions):
    """Options of :func:`create`: ``pretrained``, ``seed``, ``revision``, ``max_length``."""

    family: ClassVar[str] = "hf"


def create(
    ident: str,
    device: str | torch.device | None = "cpu",
    dtype: str | torch.dtype | None = None,
    **opts: Any,
) -> TorchEncoder:
    """Load ``hf:ORG/NAME[@REV]`` or a local transformers directory (options: :class:`HFOptions`).

    ``pretrained=False`` builds the architecture from its config with random weights
    (``seed``), used by tests; ``max_length`` overrides the text truncation length.
    A config of ``model_type`` ``M-CLIP`` (a published M-CLIP text encoder) raises
    :class:`~babelclip.models.base.OtherFamilyError`: the registry hands it, with every option,
    to ``mclip``.
    """
    # the options hf knows are checked before any download; the others only once the files
    # show that the model is hf's own (an M-CLIP name may carry M-CLIP's options)
    options = HFOptions.from_kwargs({k: v for k, v in opts.items() if k in HFOptions.names()})
    repo, rev = split_revision(ident)
    revision = options.revision or rev
    resolved: ResolvedWeights = resolve_weights(
        repo,
        family="hf",
        revision=revision,
        allow_patterns=_HUB_PATTERNS if options.pretrained else _CONFIG_PATTERNS,
        require_weights=options.pretrained,
    )
    model_type = read_model_type(resolved.path)
    if model_type == "M-CLIP":
        # the registry hands the name on as given, so mclip's pairing table sees the hub id
        raise OtherFamilyError("mclip", f"{ident!r} is an M-CLIP text encoder (model_type 'M-CLIP')")
    options = HFOptions.from_kwargs(opts)
    if model_type not in ARCHITECTURES:
        raise ValueError(
            f"{ident!r} is a transformers model of type {model_type!r}, which babelclip cannot run as an "
            f"image-text encoder; supported model_type values: {', '.join(sorted(ARCHITECTURES))} (and M-CLIP)"
        )
    arch = ARCHITECTURES[model_type]
    from .torch_encoder import resolve_dtype

    model, tokenizer, image_processor = _load_parts(
        resolved.path, arch, resolve_dtype(dtype), options.pretrained, options.seed
    )
    weights = (
        resolved.identity if options.pretrained
        else f"random:seed={options.seed}:{state_dict_hash(model)}"
    )
    name = repo if not Path(repo).exists() else Path(repo).resolve().name
    log.info("loaded %s (%s) from %s", name, arch.model_class, resolved.path)
    encoder = HFEncoder(
        model,
        tokenizer,
        image_processor,
        arch,
        name=name,
        weights=weights,
        files_digest=preprocess_files_digest(resolved.path),
        device=device,
        dtype=dtype,
        max_length=options.max_length,
    )
    encoder.options = options
    return encoder


OPTIONS = HFOptions  # the family's options class (the registry reads its protocol overrides)
