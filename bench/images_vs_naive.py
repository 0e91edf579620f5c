"""The image-dominated case: end-to-end images/s on real photos, babelclip against a naive loop.

A benchmark that PRINTS figures (not a pass/fail test). Images: the Tux Paint PNG stamps (photo
cut-outs and clip art, Debian ``tuxpaint-stamps-default``; ``--images DIR`` for any folder).
For each model it times, on the same files and the same model object:

- **naive**: what a user writes first: for each batch, open and decode every file in turn
  (``PIL.Image.open``), run the model's preprocessing, stack, one forward, normalise;
- **babelclip**: :func:`babelclip.eval.encode.encode_images` as ``babelclip eval`` calls it (a
  data loader decoding in ``--workers`` processes while the model runs, the batch written to a
  fresh embedding cache), for each worker count;

and prints images/s, and the largest difference between the two sets of vectors over the
RGB/RGBA files (the same computation: ~0). Palette and grey images with transparency differ by
design: babelclip decodes them to RGBA, so a model's preprocessing composites them like any
RGBA image, where the naive loop hands PIL's palette image to the preprocessing as is (open_clip's
``convert("RGB")`` then drops the transparency). Models: ``babel-lite`` (the embedded default,
EfficientNet-Lite0) and ``vit-b-32`` (open_clip's ViT-B-32 image tower at its real size, random
weights built from its config: no CLIP weights exist offline).

    python bench/images_vs_naive.py [--models babel-lite,vit-b-32] [--limit 400] [--workers 0,1,2] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

TUX = Path("/usr/share/tuxpaint/stamps")


def vit_b_32_dir(work: Path) -> Path:
    """open_clip's ViT-B-32 as a ``local-dir`` folder with random weights (seed 0)."""
    import open_clip

    root = work / "vit-b-32-random"
    ckpt = root / "open_clip_pytorch_model.bin"
    if not ckpt.exists():
        root.mkdir(parents=True, exist_ok=True)
        cfg = open_clip.get_model_config("ViT-B-32")
        pre = {"mean": list(open_clip.OPENAI_DATASET_MEAN), "std": list(open_clip.OPENAI_DATASET_STD),
               "interpolation": "bicubic", "resize_mode": "shortest"}
        (root / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": pre}))
        torch.manual_seed(0)
        torch.save(open_clip.create_model("ViT-B-32", pretrained=None).state_dict(), ckpt)
    return root


def naive(encoder, paths: list[str], batch: int) -> tuple[np.ndarray, float]:
    from PIL import Image

    t0 = time.perf_counter()
    out = []
    for i in range(0, len(paths), batch):
        pixels = torch.stack([encoder.preprocess(Image.open(p)) for p in paths[i : i + batch]])
        with torch.inference_mode():
            v = encoder.encode_pixels(pixels)
        v = np.asarray(v, dtype=np.float32)
        out.append(v / np.linalg.norm(v, axis=1, keepdims=True))
    return np.concatenate(out), time.perf_counter() - t0


def with_babelclip(encoder, source, batch: int, workers: int) -> tuple[np.ndarray, float]:
    from babelclip.eval.cache import EmbeddingCache
    from babelclip.eval.encode import encode_images

    with tempfile.TemporaryDirectory() as d, EmbeddingCache(Path(d), encoder.fingerprint.key, encoder.dim) as cache:
        t0 = time.perf_counter()
        got = encode_images(encoder, source, cache, batch_size=batch, num_workers=workers)
        return got.vectors, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="babel-lite,vit-b-32")
    ap.add_argument("--images", default=str(TUX), help="a folder of images (default: the Tux Paint stamps)")
    ap.add_argument("--limit", type=int, default=400, help="first N images (sorted paths)")
    ap.add_argument("--workers", default="0,1,2")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "babelclip-bench-images"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import babelclip
    from babelclip.data.images import ImageSource, image_folder

    full = image_folder(args.images)
    items = [it for it in full.items if it.path.lower().endswith((".png", ".jpg", ".jpeg"))][: args.limit]
    source = ImageSource(full.name, items)
    paths = [it.path for it in items]
    from PIL import Image

    def plain(p: str) -> bool:
        with Image.open(p) as im:
            return im.mode in ("RGB", "RGBA") and "transparency" not in im.info

    same = np.array([plain(p) for p in paths])
    mb = sum(os.path.getsize(p) for p in paths) / 1e6
    print(f"{len(paths)} images from {args.images} ({mb:.0f} MB; {int((~same).sum())} palette or grey with "
          f"transparency), batch {args.batch}, {args.threads} torch threads, load average {os.getloadavg()[0]:.1f}")
    for name in args.models.split(","):
        ident = str(vit_b_32_dir(Path(args.work))) if name == "vit-b-32" else name
        encoder = babelclip.create_model(ident)
        naive(encoder, paths[: args.batch], args.batch)  # warm-up: lazy loads, allocator
        want, t_naive = naive(encoder, paths, args.batch)
        print(f"\n{name}: naive loop {len(paths) / t_naive:7.1f} images/s ({t_naive:.1f} s)")
        for w in (int(x) for x in args.workers.split(",")):
            got, t = with_babelclip(encoder, source, args.batch, w)
            diff = float(np.abs(got - want)[same].max()) if got.shape == want.shape else float("nan")
            print(f"{name}: babelclip, {w} decode workers {len(got) / t:7.1f} images/s ({t:.1f} s, "
                  f"{t_naive / t:.2f}x the naive loop; max |difference| on RGB(A) files {diff:.1e})")


if __name__ == "__main__":
    main()
