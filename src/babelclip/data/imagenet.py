"""Facts about ImageNet-1k shipped with babelclip: class order, WordNet lemmas and definitions,
OpenAI CLIP's curated English class names and its 80 prompt templates.

These are facts and permissively licensed text (WordNet, MIT), unlike the Babel-ImageNet labels,
which users load from their own copy (see :mod:`babelclip.data.labels`).
"""
from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class ImageNetClass:
    index: int
    wnid: str
    clip_name: str  # OpenAI CLIP's curated English name
    lemmas: tuple[str, ...]  # WordNet 3.0 lemmas, first is the head word
    definition: str


def _lines(name: str) -> list[str]:
    text = resources.files("babelclip").joinpath(f"_data/{name}").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@functools.lru_cache(maxsize=1)
def imagenet_classes() -> tuple[ImageNetClass, ...]:
    """The 1000 classes in the standard order (index = class id used by every release)."""
    rows = csv.DictReader(_lines("imagenet1k.tsv"), delimiter="\t", quoting=csv.QUOTE_NONE)
    return tuple(
        ImageNetClass(i, r["wnid"], r["clip_name"], tuple(s.strip() for s in r["lemmas"].split(",")), r["definition"])
        for i, r in enumerate(rows)
    )


def imagenet_wnids() -> tuple[str, ...]:
    return tuple(c.wnid for c in imagenet_classes())


@functools.lru_cache(maxsize=1)
def openai_templates() -> tuple[str, ...]:
    """OpenAI CLIP's 80 English ImageNet templates, each with one ``{}`` slot."""
    return tuple(_lines("openai_imagenet_templates.txt"))
