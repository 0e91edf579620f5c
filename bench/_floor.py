"""The compute floor of a Babel-ImageNet run on one model: the forward passes of each distinct
tokenised text at its own length and of each image once, nothing else (no tokenising, no I/O,
no cache, no metrics; batches of texts of one length, so no padding at all), in wall seconds and
in CPU seconds of the process (on a shared machine only the CPU seconds mean anything; with one
thread they are the wall time an idle core would take).

"Own length" is what the tower needs to give its result: up to the pooled token for causal and
padding-masked (HF) towers; the full context for a tower that attends to padding and pools at a
fixed position (SigLIP's ``pool_type="last"``), since any shorter input changes its result.
"""
from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path


def distinct_prompts(ref: Path, codes: list[str], agnostic: bool) -> dict[str, list[str]]:
    """Per language (or one pool ``"*"`` for a tower without language tokens): the distinct raw
    NLLB prompts, as CLIP_benchmark builds them (template ``{}`` filled with each label)."""
    labels = json.loads((ref / "babel_imagenet.json").read_text(encoding="utf-8"))
    prompts = json.loads((ref / "nllb_dist13b_prompts.json").read_text(encoding="utf-8"))
    out: dict[str, dict[str, None]] = defaultdict(dict)
    for c in codes:
        key = "*" if agnostic else c
        for lab in labels[c.upper()][1]:
            for t in prompts[c.upper()]:
                out[key][t.replace("{}", lab, 1)] = None
    return {k: list(v) for k, v in out.items()}


def compute_floor(model_dir: Path, ref: Path, codes: list[str], image_root: Path, batch: int = 256) -> dict:
    """Seconds of text and image forward passes (``model.encode_text`` / ``encode_image``)."""
    import torch
    from PIL import Image

    from babelclip.data.images import imagenet_val
    from babelclip.languages import get_language
    from babelclip.models.registry import create_model

    enc = create_model(str(model_dir))
    model = enc.model
    full = not (enc.trim_clip or enc.trim_hf)  # pads to the context: that IS its own length
    groups: dict[int, list[torch.Tensor]] = defaultdict(list)
    n_texts = 0
    for lang, texts in distinct_prompts(ref, codes, enc.text_language_agnostic).items():
        tag = get_language(codes[0] if lang == "*" else lang)
        for i in range(0, len(texts), 4096):
            ids = enc.tokenize(texts[i: i + 4096], tag)
            pad = enc._hf.pad_token_id if enc._hf is not None else 0
            lengths = (ids != pad).sum(1) if not enc.trim_clip else enc._pool_index(ids) + 1
            for row, n in zip(ids, lengths.tolist()):
                groups[ids.shape[1] if full else int(n)].append(row[: ids.shape[1] if full else int(n)])
            n_texts += len(ids)
    from babelclip.models.openclip.causal_tower import encode_text_prefix

    forward = (lambda x: encode_text_prefix(model, x)) if enc.trim_clip else model.encode_text
    text_s, text_cpu = 0.0, 0.0  # wall seconds; CPU seconds of this process (what a loaded machine leaves intact)
    with torch.inference_mode():
        for n, rows in groups.items():
            for i in range(0, len(rows), batch):
                x = torch.stack(rows[i: i + batch])
                t, c = time.perf_counter(), time.process_time()
                forward(x)
                text_s += time.perf_counter() - t
                text_cpu += time.process_time() - c
        items = imagenet_val(image_root).items
        image_s, image_cpu = 0.0, 0.0
        for i in range(0, len(items), 64):
            px = torch.stack([enc.preprocess(Image.open(it.path).convert("RGB")) for it in items[i: i + 64]])
            t, c = time.perf_counter(), time.process_time()
            model.encode_image(px)
            image_s += time.perf_counter() - t
            image_cpu += time.process_time() - c
    mean_len = sum(n * len(r) for n, r in groups.items()) / max(n_texts, 1)
    return {"text": text_s, "images": image_s, "total": text_s + image_s, "cpu_text": text_cpu,
            "cpu_images": image_cpu, "cpu_total": text_cpu + image_cpu, "texts": n_texts,
            "n_images": len(items), "mean_tokens": mean_len, "full_context": full}
