"""babel-lite as a :class:`~babelclip.models.torch_encoder.TorchEncoder`.

A saved babel-lite is a directory with ``babel_lite.json`` (architecture, preprocessing,
representation, training record) and the head's weights; the backbones come from the pinned
registry packages (:mod:`.weights`). The shipped head lives next to this file.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from ...languages import Language, xlmr_languages
from ..base import Fingerprint, TrainingDefaults, default_training, hash_files
from ..options import FamilyOptions, OptionsError
from ..torch_encoder import TorchEncoder, dtype_name, normalize_rows
from .head import (
    REPRESENTATIONS,
    HeadConfig,
    TextHead,
    class_prototypes,
    embed_distribution,
    representation_dim,
)
from .image_tower import ImagePreprocess, load_efficientnet_lite0
from .muse_text import MuseText
from .text_tower import TextEncoder, TextPreprocess, load_tokenizer, load_tower, mean_pool
from .trainable import PooledTowerText
from .weights import MUSE_FILES, weights_digest

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

log = logging.getLogger(__name__)

CONFIG_NAME = "babel_lite.json"
HEAD_NAME = "head.safetensors"
LORA_NAME = "text_lora.safetensors"
FORMATS = ("babel-lite/1", "babel-lite/2")  # 2: may carry a text-tower LoRA (``text.lora``)
PACKAGE_DIR = Path(__file__).parent
#: Shipped variants by name (``babel-lite@v1``, ``babel-lite@v2``, ``babel-lite@v2.1``). The default is
#: babel-lite 2.1 (``v2_1/``): babel-lite 2 plus per-language LoRA updates of mE5 for 20 languages
#: outside mUSE's (:mod:`.language_lora`). babel-lite 2 (``v2/``: babel-lite 1's head and config plus
#: the multilingual USE tower's head, mixed for texts in mUSE's languages, :mod:`.muse_text`) and
#: babel-lite 1 (English-trained head only, the package directory) stay loadable by name for
#: comparison (docs/babel-lite.md).
V2_DIR = PACKAGE_DIR / "v2"
V21_DIR = PACKAGE_DIR / "v2_1"
VARIANTS = {"": V21_DIR, "default": V21_DIR, "v1": PACKAGE_DIR, "v2": V2_DIR, "v2.1": V21_DIR}
IMAGE_MICRO_BATCH = 8  # larger batches spill EfficientNet's activations out of cache (see bench)


IMAGE_PRECISIONS = ("float32", "int8")


def _image_tower(verify: bool, precision: str, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """The classifier in the requested precision; int8 runs on CPU in float32 only."""
    if precision not in IMAGE_PRECISIONS:
        raise ValueError(f"babel-lite: unknown image_precision {precision!r}; allowed: {', '.join(IMAGE_PRECISIONS)}")
    tower = load_efficientnet_lite0(verify)
    if precision == "float32":
        return tower.to(device, dtype)
    if device.type != "cpu" or dtype != torch.float32:
        raise ValueError(f"babel-lite: image_precision='int8' runs on device 'cpu' with dtype float32, not {device.type}/{dtype_name(dtype)}")
    from .image_quant import quantize_classifier

    return quantize_classifier(tower)


def _precision_extra(precision: str) -> tuple[tuple[str, str], ...]:
    """Fingerprint entry: int8 embeddings differ from float32 ones and must never share a cache."""
    if precision == "float32":
        return ()  # unchanged from before the option existed: float32 caches stay valid
    from .image_quant import ENGINE, ranges_digest

    return (("image_precision", f"{precision}:{ENGINE}:ranges={ranges_digest()}:torch={torch.__version__}"),)


def read_config(model_dir: Path) -> dict[str, Any]:
    path = model_dir / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir} is not a babel-lite model directory: {CONFIG_NAME} is missing")
    cfg = json.loads(path.read_text(encoding="utf-8"))
    if cfg.get("format") not in FORMATS:
        raise ValueError(f"{path}: unsupported format {cfg.get('format')!r}; expected one of {', '.join(FORMATS)}")
    return cfg


def load_text_tower(model_dir: Path, cfg: dict[str, Any], verify: bool) -> torch.nn.Module:
    """mE5 from the pinned package, with the model's LoRA update merged in if it has one
    (``text.lora``: babel-lite 2, :mod:`.text_lora`)."""
    tower = load_tower(verify)
    lora = cfg["text"].get("lora")
    if lora:
        from .text_lora import merge_lora

        tower = merge_lora(tower, model_dir / lora["file"], float(lora["alpha"]) / float(lora["r"]))
    return tower


def _second_digest(second: dict[str, Any] | None) -> str:
    """Fingerprint part of a second text tower: its pinned files and languages ("" without one,
    so babel-lite 1's fingerprint is what it was)."""
    if not second:
        return ""
    return "|second=" + ",".join(f.sha256 for f in MUSE_FILES.values()) + ":" + ",".join(sorted(second["languages"]))


def weight_files(model_dir: Path, cfg: dict[str, Any]) -> list[str]:
    """The model directory's own weight files (head, LoRA): what its fingerprint hashes."""
    files = [cfg["head"]["file"], *([cfg["text"]["lora"]["file"]] if cfg["text"].get("lora") else []),
             *([cfg["text"]["second"]["head"]["file"]] if cfg["text"].get("second") else []),
             *([cfg["text"]["adapters"]["file"]] if cfg["text"].get("adapters") else [])]
    return [str(model_dir / f) for f in files]


def load_head(model_dir: Path, cfg: dict[str, Any]) -> TextHead:
    from safetensors.torch import load_file

    head = TextHead(HeadConfig(**cfg["head"]["config"]))
    state = {k: v.float() for k, v in load_file(str(model_dir / cfg["head"]["file"])).items()}
    head.load_state_dict(state)
    return head.eval()


def _language_lora(tower: torch.nn.Module, model_dir: Path, adapters: dict[str, Any] | None):
    """The per-language updates of ``text.adapters`` (babel-lite 2.1), or None."""
    if not adapters:
        return None
    from .language_lora import LanguageLora

    return LanguageLora(tower, model_dir / adapters["file"], float(adapters["alpha"]) / float(adapters["r"]),
                        languages=adapters["languages"])


class BabelLite(PooledTowerText, TorchEncoder):
    """EfficientNet-Lite0 + multilingual-e5-small + a trained class head (see docs/babel-lite.md).

    ``encode_texts`` = normalise(embed(softmax(head(mean_pool(text_tower(tokenize(texts)))))))
    ``encode_images`` = normalise(embed(softmax(classifier(pixels)))), embed per
    :func:`~.head.embed_distribution`. ``text_tower`` is a plain ``BertModel`` that adapters
    may wrap or replace.
    """

    # multilingual-e5 has no language token: the same string embeds the same in every language,
    # so the evaluation cache encodes it once across languages.
    text_language_agnostic = True

    def __init__(self, model_dir: str | Path = V21_DIR, device: str | torch.device | None = "cpu",
                 dtype: str | torch.dtype | None = None, verify: bool = True, representation: str | None = None,
                 image_precision: str = "float32"):
        super().__init__(device, dtype)
        self.model_dir = Path(model_dir)
        self.config = read_config(self.model_dir)
        self.representation = representation or self.config["representation"]
        self.image_prep = ImagePreprocess(**{k: tuple(v) if isinstance(v, list) else v for k, v in self.config["image"]["preprocess"].items()})
        self.text_prep = TextPreprocess(**self.config["text"]["preprocess"])
        self.text_context = self.text_prep.max_length
        self.languages = xlmr_languages()  # multilingual-e5: XLM-R's tokenizer and CC-100 pre-training
        self.image_temperature = float(self.config["image"].get("temperature", 1.0))
        self.text_temperature = float(self.config["text"].get("temperature", 1.0))
        self.image_precision = image_precision
        self.image_tower = _image_tower(verify, image_precision, self.device, self.dtype)
        self.text = TextEncoder(load_text_tower(self.model_dir, self.config, verify).to(self.device, self.dtype),
                                load_tokenizer(max_length=self.text_prep.max_length), self.text_prep)
        self.head = load_head(self.model_dir, self.config).to(self.device, self.dtype)
        second = self.config["text"].get("second")
        self.second = MuseText(self.model_dir, second, verify) if second else None
        self.language_lora = _language_lora(self.text.tower, self.model_dir, self.config["text"].get("adapters"))
        self._text_lock = threading.Lock()
        if self.second is not None or self.language_lora is not None:  # a text's vector depends on its language
            self.text_language_agnostic = False
        self.dim = representation_dim(self.head.cfg.num_classes, self.representation)
        head_hash = hash_files(weight_files(self.model_dir, self.config))
        prep = {"image": self.image_prep.as_dict(), "text": self.text_prep.as_dict(), "representation": self.representation,
                "temperatures": [self.image_temperature, self.text_temperature]}
        self.fingerprint = Fingerprint(
            family="babel-lite",
            name=self.config.get("name", "babel-lite"),
            weights=hashlib.sha256(f"{weights_digest()}|head={head_hash}{_second_digest(second)}".encode()).hexdigest(),
            preprocess=json.dumps(prep, sort_keys=True),
            dtype=dtype_name(self.dtype),
            extra=_precision_extra(image_precision),
        )

    # -- the pieces an adapter needs -----------------------------------------------------------
    @property
    def text_tower(self) -> torch.nn.Module:
        return self.text.tower

    @text_tower.setter
    def text_tower(self, module: torch.nn.Module) -> None:
        self.text.tower = module

    def tokenize(self, texts: Sequence[str], lang: str | Language | None = None) -> list[list[int]]:
        return self.text.tokenize(list(texts), lang)

    def count_tokens(self, text: str, lang: str) -> int | None:
        return len(self.tokenize([text], lang)[0])

    mean_pool = staticmethod(mean_pool)

    def text_distribution(self, texts: Sequence[str], lang: Language | None = None) -> torch.Tensor:
        """Per text, the head's distribution ``q`` over the 1000 classes; with a second text tower
        (babel-lite 2) and ``lang`` among its languages, the mean of the two heads' distributions;
        with per-language adapters (babel-lite 2.1) and ``lang`` among theirs, mE5 runs with that
        language's update (:mod:`.language_lora`)."""
        if self.language_lora is None:
            emb = self.text.embed(list(texts), lang, self.device)
        else:  # babel-lite 2.1: the language's own LoRA update of mE5, if it has one
            with self._text_lock:
                self.language_lora.activate(self.language_lora.tag_for(lang))
                emb = self.text.embed(list(texts), lang, self.device)
        q = torch.softmax(self.head(emb).float() / self.text_temperature, dim=-1)
        if self.second is not None and self.second.covers(lang):
            q = (q + self.second.distribution(list(texts)).to(q.device)) / 2
        return q

    def image_distribution(self, pixels: torch.Tensor) -> torch.Tensor:
        """Per preprocessed image, the classifier's own distribution ``p`` over the classes."""
        outs = []
        for s in range(0, len(pixels), IMAGE_MICRO_BATCH):
            x = pixels[s : s + IMAGE_MICRO_BATCH].contiguous(memory_format=torch.channels_last)
            outs.append(self.image_tower(x).float())
        logits = torch.cat(outs) if outs else torch.zeros(0, self.head.cfg.num_classes)
        return torch.softmax(logits / self.image_temperature, dim=-1)

    # -- capabilities (models/base.py: EncoderCapabilities; trainable_text: .trainable) ----------
    def training_defaults(self, method: str, level: str | None = None, loss: str | None = None) -> TrainingDefaults:
        """Distil the head's class logits with KL (measured best on babel-lite, docs/training.md)."""
        return default_training(method, level, loss, preferred_level="logits")

    def class_prototypes(self) -> np.ndarray:
        """Each ImageNet class's image-side unit vector: a text's cosine to them ranks the classes
        as its head's logits do (what decides babel-lite's zero-shot)."""
        return class_prototypes(self.head.cfg.num_classes, self.representation)

    # -- TorchEncoder hooks ---------------------------------------------------------------------
    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return self.image_prep(image)

    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        return embed_distribution(self.image_distribution(pixels), "image", self.representation)

    def _text_features(self, texts: list[str], lang: Language) -> torch.Tensor:
        return embed_distribution(self.text_distribution(texts, lang), "text", self.representation)

    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 64) -> np.ndarray:
        """As :meth:`TorchEncoder.encode_images`, with the next batch preprocessed in a thread
        while the network runs (PIL and torch both release the GIL)."""
        if not len(images):
            return np.zeros((0, self.dim), np.float32)
        chunks = [images[i : i + batch_size] for i in range(0, len(images), batch_size)]

        def prep(chunk) -> torch.Tensor:
            return torch.stack([self.preprocess(im) for im in chunk])

        out = []
        with ThreadPoolExecutor(max_workers=1) as pool:
            nxt = pool.submit(prep, chunks[0])
            for i in range(len(chunks)):
                pixels = nxt.result()
                if i + 1 < len(chunks):
                    nxt = pool.submit(prep, chunks[i + 1])
                out.append(self.encode_pixels(pixels))
        return np.concatenate(out)


@dataclass(frozen=True)
class BabelLiteOptions(FamilyOptions):
    """Options of :func:`create` (see there)."""

    family: ClassVar[str] = "babel-lite"

    verify: bool = True  # check the SHA-256 of the backbone weight files
    representation: str | None = None  # "inner" or "sqrt"; None: the saved one
    image_precision: str = "float32"  # or "int8" (CPU, float32 only)

    def validate(self) -> None:
        if self.representation is not None and self.representation not in REPRESENTATIONS:
            raise OptionsError(f"babel-lite: unknown representation {self.representation!r}; "
                               f"allowed: {', '.join(REPRESENTATIONS)}")
        if self.image_precision not in IMAGE_PRECISIONS:
            raise OptionsError(f"babel-lite: unknown image_precision {self.image_precision!r}; "
                               f"allowed: {', '.join(IMAGE_PRECISIONS)}")


def create(ident: str = "", device: str | torch.device | None = "cpu", dtype: str | None = None, **opts: Any) -> BabelLite:
    """``ident`` "" → the shipped model; a directory holding ``babel_lite.json`` → a saved variant.

    Options: ``verify`` (default True: check the weight files' SHA-256), ``representation``
    (``"inner"`` or ``"sqrt"``, overrides the saved one), ``image_precision``
    (``"float32"``, the default, or ``"int8"``: an image tower ~6x cheaper per x86 CPU core,
    whose top-1 equals float32's on 95.4% of held-out images, see :mod:`.image_quant` and
    docs/babel-lite.md).
    """
    model_dir = VARIANTS.get(ident, Path(ident))
    if not model_dir.is_dir():
        raise ValueError(f"babel-lite: {ident!r} is neither a shipped variant ({', '.join(repr(v) for v in VARIANTS)}) "
                         f"nor a directory holding {CONFIG_NAME}")
    options = BabelLiteOptions.from_kwargs(opts)
    encoder = BabelLite(model_dir, device=device, dtype=dtype, **options.as_dict())
    encoder.options = options
    return encoder


__all__ = ["BabelLite", "BabelLiteOptions", "create", "normalize_rows"]
