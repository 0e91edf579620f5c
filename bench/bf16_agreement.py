"""bfloat16 autocast on the CPU against float32: speed of the text and image forwards, and how many
images keep their top-1 class (Babel-ImageNet, raw NLLB prompts, one language, a tiny model of
``_families.py``). Prints figures; babelclip keeps float32 (this changes rankings).

Only meaningful on a CPU with native bfloat16 (``avx512_bf16`` or ``amx_bf16`` in ``lscpu``);
elsewhere the script says so and stops.

    python bench/bf16_agreement.py --family xlmr --language ja --threads 1
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from _families import FAMILIES, model_dir
from _reference import BABEL_IMAGENET as REF


def cpu_bf16() -> list[str]:
    flags = Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").exists() else []
    return sorted({f for f in flags if f in ("avx512_bf16", "amx_bf16")})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--family", default="xlmr", choices=FAMILIES)
    ap.add_argument("--language", default="ja")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-classes", type=int, default=200, help="the language's first N classes (their prompts and images)")
    ap.add_argument("--work", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "babelclip-bench-families"))
    args = ap.parse_args()
    have = cpu_bf16()
    if not have:
        print("this CPU has no native bfloat16 (avx512_bf16 / amx_bf16): not measured")
        return 0
    import json

    import numpy as np
    import torch
    from vs_clip_benchmark import make_imagenet

    from babelclip.data.images import imagenet_val
    from babelclip.models.registry import create_model

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    make_imagenet(work / "imagenet", 2)
    enc = create_model(str(model_dir(work, args.family)))
    labels = json.loads((REF / "babel_imagenet.json").read_text(encoding="utf-8"))[args.language.upper()]
    templates = json.loads((REF / "nllb_dist13b_prompts.json").read_text(encoding="utf-8"))[args.language.upper()]
    labels = [labels[0][: args.max_classes], labels[1][: args.max_classes]]
    texts = list(dict.fromkeys(t.replace("{}", lab, 1) for lab in labels[1] for t in templates))
    source = imagenet_val(work / "imagenet")
    classes = set(labels[0])  # ImageNet class indices, the order of source.classes
    keep = [i for i, it in enumerate(source.items) if it.label in classes]
    from PIL import Image

    pixels = torch.stack([enc.preprocess(Image.open(source.items[i].path).convert("RGB")) for i in keep])
    out = {}
    for name, ctx in (("float32", None), ("bfloat16", torch.bfloat16)):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=ctx, enabled=ctx is not None):
            tv = enc.encode_texts(texts, args.language)
            t_text = time.perf_counter() - t
            iv = enc.encode_pixels(pixels)
        row = {s: i for i, s in enumerate(texts)}
        w = np.stack([tv[[row[tpl.replace("{}", lab, 1)] for tpl in templates]].mean(0) for lab in labels[1]])
        w /= np.linalg.norm(w, axis=1, keepdims=True)
        out[name] = ((iv @ w.T).argmax(1), t_text, time.perf_counter() - t - t_text)
    same = int((out["float32"][0] == out["bfloat16"][0]).sum())
    print(f"CPU bfloat16 flags: {', '.join(have)}; family {args.family}, language {args.language}: "
          f"{len(texts)} distinct prompts, {len(keep)} images, load average {os.getloadavg()[0]:.1f}")
    for name, (_, tt, ti) in out.items():
        print(f"  {name:8s} text {tt:7.2f} s, images {ti:6.2f} s")
    print(f"  top-1 class identical for {same} of {len(keep)} images ({100 * same / len(keep):.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
