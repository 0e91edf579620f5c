"""Speed of babel-lite on CPU: load time, image and text encoding throughput (prints figures).

    nice -n 0 python bench/babel_lite_speed.py [--images N] [--threads T]

Image throughput is end to end from PNG files on disk (Tux Paint stamps, RGBA): decode +
cut-out preprocessing overlapped with the network by ``BabelLite.encode_images``. The raw
network is also timed per batch size, against the unmodified ``efficientnet-lite-pytorch``
module, to show where the study's batch-32 slowdown came from.
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpus {os.cpu_count()}, load average {os.getloadavg()}")

    first, second = load_time()
    print(f"load time create_model('babel-lite'), fresh process: first {first:.1f} s, second {second:.1f} s")

    from PIL import Image

    import babelclip

    model = babelclip.create_model("babel-lite")
    from efficientnet_lite_pytorch import EfficientNet

    from babelclip.models.babel_lite.weights import locate

    naive = EfficientNet.from_name("efficientnet-lite0")
    naive.load_state_dict(torch.load(locate("image"), weights_only=True))
    naive.eval()
    print("network only (img/s): batch | naive module | babel-lite (BN folded, channels-last, micro-batch 8)")
    with torch.inference_mode():
        for bs in (1, 8, 32):
            x = torch.randn(bs, 3, 224, 224)
            r_naive = _rate(lambda x=x: naive(x), bs, repeat=max(1, 32 // bs))
            r_ours = _rate(lambda x=x: model.image_distribution(x), bs, repeat=max(1, 32 // bs))
            print(f"  {bs:>3} | {r_naive:6.1f} | {r_ours:6.1f}")

    paths = sorted(glob.glob("/usr/share/tuxpaint/stamps/**/*.png", recursive=True))[: args.images]
    t = time.perf_counter()
    for p in paths:
        model.preprocess(Image.open(p))
    print(f"decode + preprocess only: {len(paths) / (time.perf_counter() - t):.0f} img/s (one thread)")
    for bs in (8, 64):
        t = time.perf_counter()
        model.encode_images([Image.open(p) for p in paths], batch_size=bs)
        print(f"encode_images end to end from PNG files, batch {bs}: {len(paths) / (time.perf_counter() - t):.0f} img/s ({len(paths)} stamps)")

    from babelclip.data.imagenet import imagenet_classes

    labels = [f"a photo of a {c.clip_name}." for c in imagenet_classes()]
    names = [c.clip_name for c in imagenet_classes()]
    for what, texts in (("short labels (class names)", names), ("'a photo of a {name}.'", labels)):
        r = _rate(lambda texts=texts: model.encode_texts(texts, "en", batch_size=256), len(texts))
        print(f"encode_texts {what}: {r:.0f} texts/s")


if __name__ == "__main__":
    main()
