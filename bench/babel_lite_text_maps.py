"""Cheap multilingual fixes on babel-lite's frozen text tower, against babel-lite 1, per language.

    nice -n 0 python bench/babel_lite_text_maps.py [--work bench_out/text-maps] [--threads 1]

Before training any part of the tower (``babelclip-tools train-lite-text``), three fixes that
touch only the 384-d mE5 embedding or the head, all from CLDR names of the emoji training half
(``cldr_pairs(..., keywords=False, emoji="train")``, no Babel-ImageNet label, no Tux Paint text):

* **mean shift**: ``e - mean(names in X) + mean(their English names)`` (the language's offset
  removed, as in work on the language neutrality of multilingual encoders);
* **Procrustes**: the orthogonal map between the centred name embeddings of X and English;
* **head consistency**: babel-lite's head retrained from scratch with its recipe
  (``babelclip_tools.lite_head``: same corpus, seed, schedule) plus a KL term pulling the head's
  distribution of each X name towards babel-lite 1's distribution of its English name
  (``--beta``; 0 reproduces babel-lite 1's head).

Prints Babel-ImageNet label → class alignment (top-1 of 1000 through the head; evaluation data
only) per language and the mean over the 24 languages of docs/babel-lite.md. Embeddings are
kept in ``--work`` (about 10 CPU-minutes to compute once).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from _reference import BABEL_IMAGENET
from babel_lite_quality import DEFAULT_BABEL_LANGS


def embeddings(model, work: Path, langs: list[str], babel: dict) -> dict[str, torch.Tensor]:
    from babelclip.languages import get_language
    from babelclip.train.sources import cldr_pairs

    path = work / "embeddings.pt"
    cache = torch.load(path) if path.is_file() else {}
    todo = {"lab:EN": babel["EN"][1]}
    for code in langs:
        tag = get_language(code).tag
        pairs = list(cldr_pairs(tag, keywords=False, emoji="train"))
        todo[f"cldr-en:{code}"] = [a for a, _ in pairs]
        todo[f"cldr-x:{code}"] = [b for _, b in pairs]
        todo[f"lab:{code}"] = babel[code][1]
    for key, texts in todo.items():
        if key not in cache:
            with torch.inference_mode():
                cache[key] = model.text.embed(list(texts)).float()
    work.mkdir(parents=True, exist_ok=True)
    torch.save(cache, path)
    return cache


def head_with_consistency(pairs_en: torch.Tensor, pairs_x: torch.Tensor, v1, beta: float):
    """babel-lite's head recipe (``lite_head.fit_head``) plus beta * KL(v1(english) || head(x))."""
    from babelclip_tools.lite_head import TrainConfig, _encode_corpus, build_corpus, fit_head

    cfg = TrainConfig()
    texts, labels, _ = build_corpus(cfg)
    with torch.no_grad():
        target = torch.softmax(v1(pairs_en), -1)

    def consistency(head, gen: torch.Generator) -> torch.Tensor:
        j = torch.randint(len(pairs_x), (cfg.batch_size,), generator=gen)
        return beta * torch.nn.functional.kl_div(torch.log_softmax(head(pairs_x[j]), -1), target[j], reduction="batchmean")

    head, _ = fit_head(_encode_corpus(texts), torch.tensor(labels), cfg, consistency if beta > 0 else None)
    return head


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--langs", default=DEFAULT_BABEL_LANGS)
    ap.add_argument("--work", default="bench_out/text-maps")
    ap.add_argument("--beta", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import babelclip

    t0 = time.perf_counter()
    model = babelclip.create_model("babel-lite@v1")
    babel = json.loads((BABEL_IMAGENET / "babel_imagenet.json").read_text(encoding="utf-8"))
    langs = args.langs.split(",")
    E = embeddings(model, Path(args.work), langs, babel)
    v1 = model.head.float().eval()
    en = torch.cat([E[f"cldr-en:{c}"] for c in langs])
    x = torch.cat([E[f"cldr-x:{c}"] for c in langs])
    head2 = head_with_consistency(en, x, v1, args.beta)

    def top1(head, emb: torch.Tensor, code: str) -> float:
        with torch.no_grad():
            return 100 * float((head(emb).argmax(-1).numpy() == np.asarray(babel[code][0])).mean())

    cols = ("babel-lite 1", "mean shift", "Procrustes", f"head consistency (beta {args.beta:g})")
    rows = {}
    for code in langs:
        lab, xe, xx = E[f"lab:{code}"], E[f"cldr-en:{code}"], E[f"cldr-x:{code}"]
        mu_x, mu_e = xx.mean(0), xe.mean(0)
        u, _, vt = torch.linalg.svd((xx - mu_x).T @ (xe - mu_e))
        rows[code] = [top1(v1, lab, code), top1(v1, lab - mu_x + mu_e, code), top1(v1, (lab - mu_x) @ (u @ vt) + mu_e, code),
                      top1(head2, lab, code)]
    print("Babel-ImageNet label -> class, top-1 % (head over 1000 classes); CLDR training-half names only")
    print(f"  {'lang':5s} {'names':>5s} " + " ".join(f"{c:>22s}" for c in cols))
    for code, r in rows.items():
        print(f"  {code:5s} {len(E[f'cldr-x:{code}']):5d} " + " ".join(f"{v:22.1f}" for v in r))
    mean = np.mean(list(rows.values()), axis=0)
    print(f"  {'mean':5s} {'':5s} " + " ".join(f"{v:22.2f}" for v in mean))
    print(f"  EN (no map): babel-lite 1 {top1(v1, E['lab:EN'], 'EN'):.1f}, head consistency {top1(head2, E['lab:EN'], 'EN'):.1f}")
    print(f"(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
