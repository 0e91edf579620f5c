"""A model with per-language adapters: each ``encode_texts(texts, lang)`` goes to ``lang``'s adapter.

:class:`AdaptedEncoder` wraps an :class:`~babelclip.models.base.Encoder` and the LoRA adapters
:func:`~babelclip.train.distill.distill` saved for it. A call in a language with an adapter runs
the text module with that adapter active; any other language — English always — runs with every
adapter disabled, which in ``peft`` computes the base layer alone, so those outputs are bitwise
the base model's. Images never pass through an adapter.

Adapters record the fingerprint of the model they were trained on; loading one onto another
model raises :class:`AdapterMismatchError`. The wrapped model's fingerprint adds the adapters'
languages and weight hashes, so cached embeddings of the base model and of every adapter set
never mix.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..languages import get_language
from ..models.base import Encoder, Fingerprint
from .distill import ADAPTER_META, FULL_WEIGHTS
from .text_side import TrainableText, trainable_text

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

log = logging.getLogger(__name__)


class AdapterMismatchError(ValueError):
    """Adapters trained for one base model, loaded onto another."""


def read_adapter_meta(path: str | os.PathLike) -> dict:
    """The :data:`~babelclip.train.distill.ADAPTER_META` of an adapter directory (clear error if absent)."""
    p = Path(path) / ADAPTER_META
    if not p.exists():
        raise FileNotFoundError(f"{path} is not a babelclip adapter directory: {ADAPTER_META} is missing")
    return json.loads(p.read_text(encoding="utf-8"))


def _with_training(base: str, full_lang: str | None) -> str:
    """The name of model ``base`` with LoRA adapters (``full_lang`` None) or a full fine-tune for ``full_lang``."""
    return f"{base}+full-{full_lang}" if full_lang else f"{base}+adapters"


def adapted_name(adapter_dirs: Sequence[str | os.PathLike]) -> str | None:
    """The model name an encoder with these adapters (or this one full fine-tune) records, read
    from their meta before any model is built; ``None`` where a meta does not name its base model
    (the name is then known only once the adapters are loaded)."""
    metas = [read_adapter_meta(d) for d in adapter_dirs]
    names = {m.get("base_fingerprint", {}).get("name") for m in metas}
    if not metas or None in names or len(names) != 1:
        return None
    [base] = names
    full = [m for m in metas if m.get("method") == "full"]
    return _with_training(base, full[0]["lang"] if full else None)


def check_base(meta: dict, encoder_fp: Fingerprint, where: str | os.PathLike) -> None:
    if meta.get("base_key") != encoder_fp.key:
        base = meta.get("base_fingerprint", {})
        raise AdapterMismatchError(
            f"adapter {where} was trained for base model {base.get('family')}:{base.get('name')} "
            f"(fingerprint {meta.get('base_key')}), not for {encoder_fp.family}:{encoder_fp.name} "
            f"(fingerprint {encoder_fp.key}); train an adapter for this model or load the model it was made for"
        )


class AdaptedEncoder:
    """``base`` + per-language LoRA adapters (see the module docstring).

    The base encoder's text module receives the adapters in place: use this wrapper, not the
    base object, from then on.
    """

    # Each language may run through its own adapter, so a text's embedding depends on its
    # language even when the base model's does not (never inherit the base's flag).
    text_language_agnostic = False

    def __init__(self, base: Encoder, adapter_dirs: Sequence[str | os.PathLike], text: TrainableText | None = None):
        import peft

        if not adapter_dirs:
            raise ValueError("no adapter directories given")
        self.base = base
        self.text = text or trainable_text(base)
        self.dim = base.dim
        self.adapters: dict[str, str] = {}  # tag -> weights sha256
        self._peft = None
        module = self.text.text_module()
        for d in adapter_dirs:
            meta = read_adapter_meta(d)
            check_base(meta, base.fingerprint, d)
            if meta.get("method") != "lora":
                raise ValueError(
                    f"{d} holds a full fine-tune ({FULL_WEIGHTS}), not an adapter: load it with "
                    "babelclip.train.adapters.load_full_finetune"
                )
            tag = get_language(meta["lang"]).tag
            if tag == "en":
                raise ValueError(f"{d}: an English adapter is refused; English always runs on the base model")
            if tag in self.adapters:
                raise ValueError(f"two adapters for {tag}: {d} and an earlier one")
            if self._peft is None:
                self._peft = peft.PeftModel.from_pretrained(module, str(d), adapter_name=tag)
            else:
                self._peft.load_adapter(str(d), adapter_name=tag)
            self.adapters[tag] = meta["weights_sha256"]
        self._peft.eval()
        shipped = getattr(base, "language_lora", None)  # babel-lite 2.1's own per-language updates
        if shipped is not None:
            shipped.override(self.adapters)
        fp = base.fingerprint
        self.fingerprint = replace(
            fp, name=_with_training(fp.name, None),
            extra=(*fp.extra, ("adapters", ",".join(f"{t}:{h[:16]}" for t, h in sorted(self.adapters.items())))),
        )
        log.info("adapters for %s on %s", ", ".join(self.adapters), fp.name)

    @contextlib.contextmanager
    def _route(self, tag: str) -> Iterator[None]:
        if tag in self.adapters:
            self._peft.set_adapter(tag)
            yield
        else:
            with self._peft.disable_adapter():
                yield

    def encode_texts(self, texts: Sequence[str], lang: str, batch_size: int = 256) -> np.ndarray:
        tag = get_language(lang).tag
        with self._route(tag):
            return self.base.encode_texts(texts, tag, batch_size=batch_size)

    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 64) -> np.ndarray:
        return self.base.encode_images(images, batch_size=batch_size)

    def __getattr__(self, name: str):  # encode_pixels, preprocess, device...: the base model's
        if name in ("base", "_peft"):
            raise AttributeError(name)
        return getattr(self.base, name)

    def __repr__(self) -> str:
        return f"AdaptedEncoder({self.base!r}, languages={sorted(self.adapters)})"


def load_adapters(base: Encoder, adapter_dirs: Sequence[str | os.PathLike]) -> AdaptedEncoder:
    """``base`` with the adapters saved in ``adapter_dirs`` (one directory per language)."""
    return AdaptedEncoder(base, adapter_dirs)


def load_full_finetune(base: Encoder, path: str | os.PathLike) -> Encoder:
    """Replace ``base``'s text-module weights by a full fine-tune saved by ``distill(method="full")``.

    Unlike adapters this changes every language, English included; the fingerprint says so.
    """
    from safetensors.torch import load_file

    meta = read_adapter_meta(path)
    check_base(meta, base.fingerprint, path)
    if meta.get("method") != "full":
        raise ValueError(f"{path} holds a LoRA adapter; load it with load_adapters")
    module = trainable_text(base).text_module()
    module.load_state_dict(load_file(str(Path(path) / FULL_WEIGHTS)))
    fp = base.fingerprint
    base.fingerprint = replace(fp, name=_with_training(fp.name, meta["lang"]), weights=meta["weights_sha256"])
    return base
