"""babel-lite 2's second tower outside its languages: would mixing mUSE in help a language?

    nice -n 0 python bench/babel_lite_muse_languages.py [--langs HE,HI,BN,VI,ID,SW,AM,KM,EL,FI,FA]

For each Babel-ImageNet language given (by default the languages of docs/babel-lite.md's set
that mUSE was not trained on), label → class top-1 (head over 1000 classes) with mE5's head
alone (what babel-lite 2 uses there, = babel-lite 1), mUSE's head alone, and their mixture (what
babel-lite 2 uses for its 15 language codes). Evaluation data only: a language chosen from these
figures would be chosen on the test set, so they are a diagnosis, not a selection.

``--cldr``: the candidate selector from training data instead: for each language's CLDR names of
the emoji training half, how often the name's top class (mE5 alone, or the mixture) equals the
top class babel-lite 1 gives its English name, with a paired bootstrap CI of the change.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from _reference import BABEL_IMAGENET


def cldr_agreement(model, codes: list[str]) -> None:
    from babelclip.languages import get_language
    from babelclip.train.sources import cldr_pairs

    rng = np.random.default_rng(0)
    print(f"  {'lang':5s} {'names':>5s} {'mE5':>6s} {'mixture':>8s}  change [95 % CI]")
    for code in codes:
        pairs = list(cldr_pairs(get_language(code).tag, keywords=False, emoji="train"))
        en, xs = [a for a, _ in pairs], [b for _, b in pairs]
        with torch.inference_mode():
            teacher = model.head(model.text.embed(en)).argmax(-1)
            q1 = torch.softmax(model.head(model.text.embed(xs)), -1)
            q2 = model.second.distribution(xs)
        a1 = (q1.argmax(-1) == teacher).float().numpy()
        d = ((q1 + q2) / 2).argmax(-1).eq(teacher).float().numpy() - a1
        lo, hi = np.percentile([d[rng.integers(0, len(d), len(d))].mean() for _ in range(1000)], [2.5, 97.5])
        print(f"  {code:5s} {len(d):5d} {100 * a1.mean():6.1f} {100 * (a1 + d).mean():8.1f}  {100 * d.mean():+.1f} "
              f"[{100 * lo:+.1f}, {100 * hi:+.1f}]", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--langs", default="HE,HI,BN,VI,ID,SW,AM,KM,EL,FI,FA")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cldr", action="store_true", help="the CLDR-names agreement instead of the labels")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import babelclip

    model = babelclip.create_model("babel-lite@v2")
    if args.cldr:
        return cldr_agreement(model, args.langs.split(","))
    babel = json.loads((BABEL_IMAGENET / "babel_imagenet.json").read_text(encoding="utf-8"))
    print(f"  {'lang':5s} {'n':>5s} {'mE5 head':>9s} {'mUSE head':>10s} {'mixture':>8s}")
    for code in args.langs.split(","):
        idx, labels = np.asarray(babel[code][0]), babel[code][1]
        with torch.inference_mode():
            q1 = torch.softmax(model.head(model.text.embed(labels)), -1)
            q2 = model.second.distribution(labels)
        r = [100 * float((q.argmax(-1).numpy() == idx).mean()) for q in (q1, q2, (q1 + q2) / 2)]
        print(f"  {code:5s} {len(labels):5d} {r[0]:9.1f} {r[1]:10.1f} {r[2]:8.1f}", flush=True)


if __name__ == "__main__":
    main()
