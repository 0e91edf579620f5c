"""Speed of babel-lite on CPU: load time, image and text encoding throughput (prints figures).

    nice -n 0 python bench/babel_lite_speed.py [--images N] [--threads T] [--quality]

``--quality`` instead compares the int8 image tower with float32 on every Tux Paint stamp and
scikit-image sample photo: top-1 agreement and total-variation distance of the distributions.

Image throughput is end to end from PNG files on disk (Tux Paint stamps, RGBA): decode +
cut-out preprocessing overlapped with the network by ``BabelLite.encode_images``. The raw
network is also timed per batch size, against the unmodified ``efficientnet-lite-pytorch``
module, to show where the study's batch-32 slowdown came from, and float32 against int8
(``image_precision="int8"``), interleaved A/B/A/B on one process (the machine may be shared).
"""
from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import time

import torch


def _rate(fn, n_items: int, repeat: int = 1) -> float:
    fn()  # warm-up
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return n_items * repeat / (time.perf_counter() - t)


def load_time() -> tuple[float, float]:
    code = "import time;t=time.perf_counter();import babelclip;m=babelclip.create_model('babel-lite');print(time.perf_counter()-t)"
    times = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()[-1]) for _ in range(2)]
    return times[0], times[1]


def texts_only(model=None) -> None:
    import babelclip

    model = model or babelclip.create_model("babel-lite")
    from babelclip.data.imagenet import imagenet_classes

    labels = [f"a photo of a {c.clip_name}." for c in imagenet_classes()]
    names = [c.clip_name for c in imagenet_classes()]
    v1 = babelclip.create_model("babel-lite@v1")
    for what, texts in (("short labels (class names)", names), ("'a photo of a {name}.'", labels)):
        # babel-lite 2 runs its second tower (mUSE, numpy) for its 15 language codes only
        for version, m, lang in (("v1", v1, "en"), ("v2, en (mE5 + mUSE)", model, "en"), ("v2, hi (mE5 only)", model, "hi")):
            rates = [_rate(lambda texts=texts, m=m, lang=lang: m.encode_texts(texts, lang, batch_size=256), len(texts)) for _ in range(3)]
            print(f"encode_texts {what}, {version}: best {max(rates):.0f} texts/s (3 rounds: {', '.join(f'{r:.0f}' for r in rates)})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--quality", action="store_true", help="int8 vs float32 agreement instead of speed")
    ap.add_argument("--text-only", action="store_true", help="only the text encoding rates")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpus {os.cpu_count()}, load average {os.getloadavg()}")
    if args.quality:
        return quality()

    if args.text_only:
        return texts_only()
    first, second = load_time()
    print(f"load time create_model('babel-lite'), fresh process: first {first:.1f} s, second {second:.1f} s")

    from PIL import Image

    import babelclip

    model = babelclip.create_model("babel-lite")
    t = time.perf_counter()
    int8 = babelclip.create_model("babel-lite", image_precision="int8")
    print(f"load time image_precision='int8' (warm process): {time.perf_counter() - t:.1f} s")
    from efficientnet_lite_pytorch import EfficientNet

    from babelclip.models.babel_lite.weights import locate

    naive = EfficientNet.from_name("efficientnet-lite0")
    naive.load_state_dict(torch.load(locate("image"), weights_only=True))
    naive.eval()
    print("network only (img/s, best of 3 interleaved rounds): batch | naive module | babel-lite float32 "
          "(BN folded, channels-last, micro-batch 8) | babel-lite int8 | int8/float32")
    with torch.inference_mode():
        for bs in (1, 8, 32):
            x = torch.randn(bs, 3, 224, 224).clamp(-1, 1)
            rates = [[_rate(lambda x=x, m=m: m(x), bs, repeat=max(2, 32 // bs)) for m in
                      (naive, model.image_distribution, int8.image_distribution)] for _ in range(3)]
            r_naive, r_ours, r_int8 = (max(col) for col in zip(*rates))
            print(f"  {bs:>3} | {r_naive:6.1f} | {r_ours:6.1f} | {r_int8:6.1f} | {r_int8 / r_ours:4.2f}x")

    paths = sorted(glob.glob("/usr/share/tuxpaint/stamps/**/*.png", recursive=True))[: args.images]
    t = time.perf_counter()
    for p in paths:
        model.preprocess(Image.open(p))
    print(f"decode + preprocess only: {len(paths) / (time.perf_counter() - t):.0f} img/s (one thread)")
    for rnd in range(2):
        for name, m in (("float32", model), ("int8", int8)):
            for bs in (8, 64):
                t = time.perf_counter()
                m.encode_images([Image.open(p) for p in paths], batch_size=bs)
                print(f"[{rnd}] encode_images {name} end to end from PNG files, batch {bs}: "
                      f"{len(paths) / (time.perf_counter() - t):.0f} img/s ({len(paths)} stamps), load average {os.getloadavg()[0]:.1f}")

    texts_only(model)


def quality() -> None:
    """int8 vs float32 image tower on all Tux Paint stamps + scikit-image photos: the shipped
    int8 tower (GPTQ-rounded weights) and, for comparison, round-to-nearest weights and the
    first block kept in float32."""
    from babelclip.models.babel_lite import image_quant
    from babelclip.models.babel_lite.image_tower import ImagePreprocess, load_efficientnet_lite0
    from babelclip_tools.int8_calibration import calibration_paths, load_calibration_image

    fp32 = load_efficientnet_lite0().eval()
    paths = calibration_paths(every=1)
    calib = set(calibration_paths())
    held = torch.tensor([pth not in calib for pth in paths])
    prep = ImagePreprocess()
    x = torch.stack([prep(load_calibration_image(p)) for p in paths]).contiguous(memory_format=torch.channels_last)
    print(f"images: {len(paths)} ({int(held.sum())} not used for calibration)")

    def probs(model) -> torch.Tensor:
        with torch.inference_mode():
            return torch.cat([torch.softmax(model(x[i : i + 16]), -1) for i in range(0, len(x), 16)])

    p = probs(fp32)
    variants = {"int8 shipped (GPTQ weights)": image_quant.quantize_classifier(fp32),
                "int8 round-to-nearest weights": image_quant.quantize_classifier(fp32, int_weights={}),
                "int8 GPTQ, stem + block 0 float32": image_quant.quantize_classifier(fp32, float_blocks=1)}
    for name, model in variants.items():
        q = probs(model)
        agree = p.argmax(1) == q.argmax(1)
        tv = 0.5 * (p - q).abs().sum(1)
        print(f"{name}: top-1 agreement with float32: all {agree.float().mean():.4f}, held-out {agree[held].float().mean():.4f}; "
              f"total-variation distance mean {tv.mean():.4f} (held-out {tv[held].mean():.4f}), median {tv.median():.4f}, "
              f"p95 {tv.quantile(0.95):.4f}, max {tv.max():.4f}")


if __name__ == "__main__":
    main()
