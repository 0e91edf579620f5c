"""The frozen teacher's embeddings of the English side, computed once and cached on disk."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from .distributed import process_group, rank_world
from .text_side import TextSide, TrainableText


def texts_hash(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:20]


def teacher_embeddings(text: TrainableText, english: list[str], cache_dir: str | os.PathLike | None, batch_size: int = 64,
                       progress: bool = False, lang: str = "en") -> np.ndarray:
    """The frozen teacher's (unnormalised) embeddings of ``english``, from the cache when present.

    Computed by ``text_forward(..., lang)`` before any training touches the module (``lang``:
    English for distillation's teacher; the anchors' language for the lexical objective). Under
    torchrun rank 0 computes and writes, the others wait and read.
    """
    import torch

    path = None
    if cache_dir is not None:
        kind = text.kind if isinstance(text, TextSide) else ""  # e.g. babel-lite's "output" vs "tower" embeddings
        where = f"{'-' + kind if kind else ''}{'-' + lang if lang != 'en' else ''}"
        path = Path(cache_dir) / f"teacher-{text.fingerprint.key}{where}-{texts_hash(english)}.npy"
    rank, _ = rank_world()
    d = process_group()
    cached = [path is not None and path.exists()]
    if d is not None:  # every rank takes rank 0's branch: a rank that saw the file rank 0 just
        d.broadcast_object_list(cached, src=0)  # wrote would skip the barrier below and deadlock
    if cached[0]:
        return np.load(path)
    if rank == 0 or path is None:
        module = text.text_module()
        was_training = module.training
        module.eval()
        out = []
        from tqdm.auto import tqdm

        # each distinct text once: a corpus mixing many languages repeats its English side per language
        unique = list(dict.fromkeys(english))
        with torch.no_grad():
            for i in tqdm(range(0, len(unique), batch_size), desc="teacher", disable=not progress or rank != 0):
                out.append(text.text_forward(unique[i : i + batch_size], lang).float().cpu().numpy())
        module.train(was_training)
        row = {t: r for r, t in enumerate(unique)}
        emb = np.concatenate(out).astype(np.float32)[[row[t] for t in english]]
        if path is not None and rank == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
            np.save(tmp, emb)
            os.replace(tmp, path)
    if d is not None and path is not None:
        d.barrier()
        emb = np.load(path)
    return emb
