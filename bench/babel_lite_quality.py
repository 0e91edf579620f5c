"""Quality of babel-lite (prints figures for docs/babel-lite.md).

    nice -n 0 python bench/babel_lite_quality.py [--babel PATH] [--babel-langs DE,FR,...|all] [--tux-langs de,fr,...|all]

1. English zero-shot agreement with the underlying classifier: over Tux Paint PNG stamps and
   scikit-image photos, how often the zero-shot prediction from the 1000 English prompts
   "a photo of a {CLIP name}." equals the ImageNet classifier's own top-1.
2. Multilingual text→class alignment on the Babel-ImageNet labels (evaluation only): how often a
   label's text distribution puts its own class first (top-1 and top-5 of 1000), per language.
3. Tux Paint text→image retrieval per language over the PNG stamps (SVG stamps skipped: no
   renderer installed): R@1 / R@5 against chance; a query is a distinct description, relevant
   are all stamps carrying it.
4. Representations compared on the same retrieval: the exact inner product <q,p> (shipped;
   identical ranking to log<q,p>), the Bhattacharyya coefficient sqrt(p)·sqrt(q), tempered
   variants, and cosine of centred log-probabilities.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from _reference import BABEL_IMAGENET  # bench/ is the script folder, so on sys.path

STAMPS = "/usr/share/tuxpaint/stamps"
DEFAULT_BABEL = str(BABEL_IMAGENET / "babel_imagenet.json")  # $BABELCLIP_REFERENCE or ../shared/reference
DEFAULT_BABEL_LANGS = "DE,FR,ES,IT,PT,PL,RU,TR,AR,HE,HI,BN,JA,ZH,KO,TH,VI,ID,SW,AM,KM,EL,FI,FA"
DEFAULT_TUX_LANGS = "de,fr,es,it,pt,nl,pl,ru,uk,cs,sv,fi,hu,el,tr,ja,ko,zh_CN,zh_TW,ar,he,hi,th,vi,id,ka,hy,am,km,gu,ml,zu,ach,ff,son,iu"


def read_stamps() -> tuple[list[str], dict[str, list[str | None]], int]:
    """PNG paths, per language the description of each (None when missing), SVG-only count."""
    paths, texts = [], defaultdict(list)
    svg_only = 0
    for txt in sorted(glob.glob(f"{STAMPS}/**/*.txt", recursive=True)):
        png = txt[:-4] + ".png"
        if not os.path.exists(png):
            svg_only += os.path.exists(txt[:-4] + ".svg")
            continue
        lines = Path(txt).read_text(encoding="utf-8", errors="replace").splitlines()
        per = {"en": lines[0].strip()} if lines else {}
        for line in lines[1:]:
            code, sep, val = line.partition(".utf8=")
            if sep and val.strip():
                per[code.strip()] = val.strip()
        i = len(paths)
        paths.append(png)
        for lang in set(texts) | set(per):
            texts[lang].extend([None] * (i - len(texts[lang])))
            texts[lang].append(per.get(lang))
    for lang in texts:
        texts[lang].extend([None] * (len(paths) - len(texts[lang])))
    return paths, texts, svg_only


def recall_at(scores: np.ndarray, rel: list[set[int]], ks=(1, 5)) -> list[float]:
    order = np.argsort(-scores, axis=1)[:, : max(ks)]
    return [100 * float(np.mean([bool(set(order[i, :k]) & rel[i]) for i in range(len(rel))])) for k in ks]


def queries(descs: list[str | None]) -> tuple[list[str], list[set[int]]]:
    groups: dict[str, set[int]] = defaultdict(set)
    for i, d in enumerate(descs):
        if d:
            groups[d].add(i)
    qs = sorted(groups)
    return qs, [groups[q] for q in qs]


def scorers(zt: torch.Tensor, zi: torch.Tensor) -> dict[str, np.ndarray]:
    """Text×image scores under each representation (rankings are what matter)."""
    q, p = torch.softmax(zt, -1), torch.softmax(zi, -1)
    out = {"inner <q,p> (shipped)": (q @ p.T).numpy(), "sqrt: Bhattacharyya": (q.sqrt() @ p.sqrt().T).numpy()}
    for t in (0.5, 2.0):
        qt, pt = torch.softmax(zt / t, -1).sqrt(), torch.softmax(zi / t, -1).sqrt()
        out[f"sqrt, tempered T={t}"] = (qt @ pt.T).numpy()
    lq = torch.log_softmax(zt, -1)
    lp = torch.log_softmax(zi, -1)
    lq, lp = torch.nn.functional.normalize(lq - lq.mean(-1, keepdim=True), dim=-1), torch.nn.functional.normalize(lp - lp.mean(-1, keepdim=True), dim=-1)
    out["cosine of centred log-probs"] = (lq @ lp.T).numpy()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--babel", default=DEFAULT_BABEL)
    ap.add_argument("--babel-langs", default=DEFAULT_BABEL_LANGS, help="comma-separated Babel-ImageNet codes, or 'all'")
    ap.add_argument("--tux-langs", default=DEFAULT_TUX_LANGS, help="comma-separated Tux Paint locales, or 'all' (covering >= --tux-min)")
    ap.add_argument("--tux-min", type=float, default=0.5, help="with --tux-langs all: languages covering at least this share of stamps")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared, loaded machine)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average {os.getloadavg()}, torch threads {torch.get_num_threads()}")

    from PIL import Image

    import babelclip
    from babelclip.data.imagenet import imagenet_classes

    t0 = time.perf_counter()
    model = babelclip.create_model("babel-lite")
    classes = imagenet_classes()

    def text_logits(texts: list[str]) -> torch.Tensor:
        with torch.inference_mode():
            out = [model.head(model.text.embed(texts[i : i + 1024])).float() for i in range(0, len(texts), 1024)]
        return torch.cat(out) / model.text_temperature

    # -- images ------------------------------------------------------------------------------
    paths, stamp_texts, svg_only = read_stamps()
    from skimage import data as skd

    photos = [Image.fromarray(getattr(skd, n)()) for n in ("chelsea", "coffee", "astronaut", "rocket")]
    images = [Image.open(p) for p in paths]
    with torch.inference_mode():
        pix = torch.stack([model.preprocess(im) for im in images + photos])
        zi = torch.cat([model.image_tower(pix[i : i + 8].contiguous(memory_format=torch.channels_last)).float() for i in range(0, len(pix), 8)])
    zi = zi / model.image_temperature
    print(f"{len(paths)} PNG stamps + {len(photos)} photos encoded; {svg_only} SVG-only stamps skipped (no SVG renderer)")

    # 1. zero-shot agreement (English)
    zt = text_logits([f"a photo of a {c.clip_name}." for c in classes])
    clf = zi.argmax(-1)
    print("\n1. English zero-shot agreement with the classifier's own top-1 (1000 classes, prompt 'a photo of a {}.')")
    for name, s in scorers(zt, zi).items():
        pred = torch.from_numpy(s).argmax(0)
        print(f"  {name:32s} {100 * (pred == clf).float().mean():5.1f}%   (n={len(clf)})")

    # 2. Babel-ImageNet text→class
    babel = json.loads(Path(args.babel).read_text(encoding="utf-8"))
    langs = sorted(babel) if args.babel_langs == "all" else [c for c in args.babel_langs.split(",") if c in babel and c != "EN"]
    print("\n2. Babel-ImageNet labels → own class, text only (top-1 / top-5 of 1000; chance 0.1 / 0.5)")
    rows = []
    for code in ["EN", *langs]:
        if code not in babel:
            continue
        idx, labels = babel[code]
        pred = text_logits(labels).topk(5, -1).indices
        tgt = torch.tensor(idx)[:, None]
        top1, top5 = 100 * (pred[:, :1] == tgt).any(-1).float().mean().item(), 100 * (pred == tgt).any(-1).float().mean().item()
        rows.append((code, len(labels), top1, top5))
        print(f"  {code:7s} n={len(labels):4d}  top-1 {top1:5.1f}  top-5 {top5:5.1f}")
    non_en = [r for r in rows if r[0] != "EN"]
    if non_en:
        print(f"  mean over {len(non_en)} non-English languages: top-1 {np.mean([r[2] for r in non_en]):.1f}, top-5 {np.mean([r[3] for r in non_en]):.1f}")

    # 3 + 4. Tux Paint retrieval
    n = len(paths)
    zi_st = zi[:n]
    cover = {lang: sum(d is not None for d in ds) / n for lang, ds in stamp_texts.items()}
    if args.tux_langs == "all":
        tux_langs = ["en"] + sorted(l for l, c in cover.items() if c >= args.tux_min and l != "en")
    else:
        tux_langs = ["en"] + [l for l in args.tux_langs.split(",") if l in stamp_texts and l != "en"]
    print(f"\n3. Tux Paint text→image retrieval over {n} PNG stamps (chance R@1 {100 / n:.2f}, R@5 {500 / n:.2f}; shipped representation)")
    per_rep = defaultdict(list)
    for lang in tux_langs:
        qs, rel = queries(stamp_texts[lang])
        zq = text_logits(qs)
        for k, (name, s) in enumerate(scorers(zq, zi_st).items()):
            r1, r5 = recall_at(s, rel)
            per_rep[name].append((lang, r1, r5))
            if k == 0:
                print(f"  {lang:7s} queries={len(qs):4d}  R@1 {r1:5.1f}  R@5 {r5:5.1f}")
    print("\n4. Representations on Tux Paint retrieval: EN R@1/R@5 | mean over other languages R@1/R@5")
    for name, rs in per_rep.items():
        en = rs[0]
        other = rs[1:]
        print(f"  {name:32s} EN {en[1]:5.1f} / {en[2]:5.1f} | others ({len(other)}) {np.mean([r[1] for r in other]):5.1f} / {np.mean([r[2] for r in other]):5.1f}")
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
