"""Per-language LoRA updates of babel-lite's text tower, shipped inside the model.

babel-lite 2.1 keeps, for each of a list of languages, the LoRA factors that ``babelclip train
--lang XX`` distils for that language (docs/training.md: KL of the head's class distribution
towards the English name's, CLDR names), all in one file: ``<tag>/<linear name>.lora_A`` (r × in)
and ``<tag>/<linear name>.lora_B`` (out × r), float16, the linear names as in ``BertModel``
(e.g. ``encoder.layer.0.attention.self.query``). The model's ``babel_lite.json`` gives the scale
(``text.adapters``: ``alpha / r``) and the languages.

A text in one of those languages (its BCP-47 tag equal to the adapter's) runs through the tower
with ``W + scale · B @ A`` in place of each adapted weight ``W``; any other language runs through
``W`` itself, the very tensors it ran through before, so its outputs are bit for bit the model
without adapters. The update is swapped in when the language changes (a dozen small matrix
products), not kept per language, so memory stays one tower; the packed fast path
(:func:`babelclip.models.packed_bert.packed_mean_embeddings`) reads the swapped weights as any others.
No ``peft`` at run time. :class:`LanguageLora` is not thread-safe on its own; the model holds a
lock around a swap and the forward that follows it.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ...languages import Language, get_language
from .text_lora import LoraFileError, pair_factors

SEP = "/"


def language_factors(path: str | Path) -> dict[str, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """``{tag: {linear name: (A, B)}}`` from a saved file (tags as written: canonical BCP-47)."""
    from safetensors.torch import load_file

    by_lang: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in load_file(str(path)).items():
        tag, sep, rest = key.partition(SEP)
        if not sep or not rest:
            raise LoraFileError(f"{path}: tensor {key!r} is not named LANG{SEP}LINEAR.lora_A/B")
        by_lang.setdefault(tag, {})[rest] = value
    return {tag: pair_factors(state, f"{path} [{tag}]") for tag, state in sorted(by_lang.items())}


def save_language_factors(factors: dict[str, dict[str, tuple[torch.Tensor, torch.Tensor]]], path: str | Path) -> None:
    """Write ``{tag: {linear name: (A, B)}}`` as one float16 safetensors file."""
    from safetensors.torch import save_file

    from .text_lora import SUFFIX_A, SUFFIX_B

    state = {}
    for tag, per in sorted(factors.items()):
        if get_language(tag).tag != tag:
            raise ValueError(f"adapter language {tag!r} is not a canonical tag (expected {get_language(tag).tag!r})")
        for name, (a, b) in sorted(per.items()):
            state[f"{tag}{SEP}{name}{SUFFIX_A}"] = a.detach().to(torch.float16).contiguous()
            state[f"{tag}{SEP}{name}{SUFFIX_B}"] = b.detach().to(torch.float16).contiguous()
    save_file(state, str(path))


class LanguageLora:
    """The per-language updates of one tower (see the module docstring)."""

    def __init__(self, tower: torch.nn.Module, path: str | Path, scale: float, languages=None):
        self.scale = float(scale)
        self.factors = language_factors(path)
        if languages is not None and sorted(languages) != sorted(self.factors):
            raise LoraFileError(f"{path}: holds adapters for {sorted(self.factors)}, the config lists {sorted(languages)}")
        names = sorted({n for per in self.factors.values() for n in per})
        self.linears: dict[str, torch.nn.Linear] = {}
        for name in names:
            try:
                linear = tower.get_submodule(name)
            except AttributeError:
                raise LoraFileError(f"{path}: the text tower has no layer {name!r}") from None
            if not isinstance(linear, torch.nn.Linear):
                raise LoraFileError(f"{path}: {name!r} is a {type(linear).__name__}, not a linear layer")
            self.linears[name] = linear
        for tag, per in self.factors.items():
            for name, (a, b) in per.items():
                w = self.linears[name].weight
                if (b.shape[0], a.shape[1]) != tuple(w.shape) or a.shape[0] != b.shape[1]:
                    raise LoraFileError(f"{path}: {tag}'s factors of {name!r} are {tuple(a.shape)} and {tuple(b.shape)}, "
                                        f"which do not fit its weight {tuple(w.shape)}")
        self.base = {name: linear.weight for name, linear in self.linears.items()}
        self.active: str | None = None
        self.overridden: set[str] = set()  # languages whose update a loaded user adapter replaces

    def override(self, tags) -> None:
        """Run ``tags`` on the base weights from now on: a user's adapter for them (``babelclip
        eval --adapters``, trained from the base tower, see ``trainable_text``) replaces the
        shipped update instead of stacking on it."""
        self.overridden.update(tags)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.factors)

    def tag_for(self, lang: Language | None) -> str | None:
        """The adapter ``lang`` runs through, or None (exact tag match: ``sr-Latn``'s adapter is
        not ``sr-Cyrl``'s)."""
        return lang.tag if lang is not None and lang.tag in self.factors and lang.tag not in self.overridden else None

    def activate(self, tag: str | None) -> None:
        """Put ``tag``'s update into the tower (None: the base weights themselves)."""
        if tag == self.active:
            return
        per = self.factors[tag] if tag is not None else {}
        with torch.inference_mode(False), torch.no_grad():  # normal tensors: the fused-qkv cache tracks their versions
            self._swap(per)
        self.active = tag

    def _swap(self, per: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        for name, linear in self.linears.items():
            w = self.base[name]
            if name in per:
                a, b = per[name]
                delta = (b.float() @ a.float()).to(w.dtype).to(w.device) * self.scale
                linear.weight = torch.nn.Parameter(w.detach() + delta, requires_grad=False)
            else:
                linear.weight = w
