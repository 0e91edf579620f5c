"""Babel-ImageNet, babelclip against CLIP_benchmark: same model, same images, same labels and prompts.

A benchmark that PRINTS figures (not a pass/fail test). It

1. builds a ~3.4M-parameter open_clip model (random weights, seed 0), registers its config with
   ``open_clip.add_model_config`` and saves a checkpoint both tools load
   (CLIP_benchmark: ``--model bench-clip-3m --pretrained CKPT``; babelclip:
   ``openclip:bench-clip-3m@CKPT``);
2. lays out synthetic images as an ImageNet folder (``ROOT/val/<wnid>/*.JPEG`` for all 1000
   wnids, ``--per-class`` deterministic procedurally coloured JPEGs each, and ``ROOT/meta.bin``
   as torchvision's ``ImageNet`` expects);
3. runs CLIP_benchmark 1.6.2 in-process, one ``main_eval`` call per language as its CLI does
   (``clip_benchmark eval --dataset babel_imagenet --language XX --no_amp --num_workers 0``);
4. runs babelclip's engine (``encode_images`` + ``zero_shot_classification``) on the same
   model, images and labels with CLIP_benchmark's prompt protocol for ``babel_imagenet``: the
   NLLB-translated templates of the language, RAW (no whitespace normalisation, duplicates
   kept, so each duplicate weighs in the class mean exactly as in CLIP_benchmark), cold (empty
   cache) and warm (same cache), with as many language worker processes as CLIP_benchmark gets
   torch threads (``--threads``; see ``babelclip.eval.workers``), so both use the same cores;
5. prints per-language accuracy from both, the max abs difference, image forward passes, wall
   times and their ratios, and where babelclip's time goes.

Measured differences (see bench/README.md): acc1 and mean per-class recall equal exactly; top-5
can differ where two classes of a language share a label (Hindi classes 337 and 360 are both
"ऊदबिलाव"): identical class embeddings tie exactly, babelclip breaks ties by class order,
torch.topk in CLIP_benchmark the other way. Not a numerical difference: the two classifiers agree
to 1.5e-7.

CLIP_benchmark's prompt protocol for babel_imagenet (clip_benchmark/datasets/builder.py): class
names ``babel_imagenet.json[LANG]``, templates ``nllb_dist13b_prompts.json[LANG]`` with ``{}``
replaced by ``{c}`` and ``.format(c=label)``; languages without NLLB templates (BR, FY, LA) raise
KeyError there, so the full run is the 90 languages of both files (EN + 89 of the 92).

NumPy >= 2.3 makes CLIP_benchmark's ``accuracy`` crash (``float()`` of a 1-element array); this
script replaces ``clip_benchmark.metrics.zeroshot_classification.accuracy`` in-process by the
same computation ending in ``.item()`` (nothing else is patched).

``--no_amp`` is passed to CLIP_benchmark: its default autocast on CPU runs in bfloat16, which
would not be the float32 computation babelclip does (an equality comparison needs the same
precision).

Run (from the repository root, venv active)::

    python bench/vs_clip_benchmark.py --threads 2                     # all 90 languages, both tools
    python bench/vs_clip_benchmark.py --threads 2 --only-clip-benchmark   # ~15 min, kept in --work
    python bench/vs_clip_benchmark.py --threads 2 --skip-clip-benchmark   # babelclip against it
    python bench/vs_clip_benchmark.py --languages de,ja,fi,om,zh --threads 1 --workers 1
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from _reference import BABEL_IMAGENET  # bench/ is the script folder, so on sys.path

os.environ.setdefault("TQDM_DISABLE", "1")  # CLIP_benchmark's per-class progress bars

REF = BABEL_IMAGENET  # $BABELCLIP_REFERENCE, else ../shared/reference beside the repository
ARCH = "bench-clip-3m"
# ~3.4M parameters, most of them the 49408 x 64 token embedding: the size the issue measured.
CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 2},
}


# -- timing helpers ---------------------------------------------------------------------------
class Clock:
    """Accumulated seconds and call/item counts per label (wrapping functions in place)."""

    def __init__(self) -> None:
        self.s: dict[str, float] = defaultdict(float)
        self.n: dict[str, int] = defaultdict(int)

    def wrap(self, owner, attr: str, label: str, count=None):
        orig = getattr(owner, attr)

        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return orig(*a, **k)
            finally:
                self.s[label] += time.perf_counter() - t
                self.n[label] += count(a, k) if count else 1

        setattr(owner, attr, timed)
        return orig

    @contextlib.contextmanager
    def span(self, label: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.s[label] += time.perf_counter() - t


# -- fixtures -----------------------------------------------------------------------------------
def make_model(work: Path) -> Path:
    """Register the config with open_clip and save seeded random weights; return the checkpoint."""
    import open_clip
    import torch

    cfg_dir = work / "model_configs"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    (cfg_dir / f"{ARCH}.json").write_text(json.dumps(CONFIG, indent=2))
    open_clip.add_model_config(cfg_dir)
    ckpt = work / f"{ARCH}.pt"
    if not ckpt.exists():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = open_clip.create_model(ARCH, pretrained=None)
        torch.save(model.state_dict(), ckpt)
    return ckpt


def make_imagenet(root: Path, per_class: int) -> int:
    """ROOT/val/<wnid>/*.JPEG (deterministic colour field + noise) and ROOT/meta.bin."""
    import numpy as np
    import torch
    from PIL import Image

    from babelclip.data.imagenet import imagenet_wnids

    wnids = imagenet_wnids()
    stamp = root / f".done-{per_class}"
    if stamp.exists():
        return len(wnids) * per_class
    val_wnids = []
    for c, w in enumerate(wnids):
        d = root / "val" / w
        d.mkdir(parents=True, exist_ok=True)
        for j in range(per_class):
            rng = np.random.default_rng([c, j])
            base = rng.integers(0, 256, 3)
            yy, xx = np.mgrid[0:64, 0:64]
            grad = ((xx + yy * (c % 7)) % 64)[..., None] * 2
            px = np.clip(base + grad + rng.normal(0, 25, (64, 64, 3)), 0, 255).astype(np.uint8)
            n = c * per_class + j + 1
            Image.fromarray(px).save(d / f"ILSVRC2012_val_{n:08d}.JPEG", quality=90)
            val_wnids.append(w)
    torch.save(({w: (w,) for w in wnids}, val_wnids), root / "meta.bin")
    stamp.touch()
    return len(wnids) * per_class


# -- CLIP_benchmark -------------------------------------------------------------------------------
def _patch_clip_benchmark_numpy() -> None:
    """CLIP_benchmark 1.6.2's ``accuracy`` ends in float() of a 1-element array: an error in
    NumPy >= 2.3. Same computation, ``.item()`` instead."""
    from clip_benchmark.metrics import zeroshot_classification as zc

    def accuracy(output, target, topk=(1,)):
        pred = output.topk(max(topk), 1, True, True)[1].t()
        correct = pred.eq(target.view(1, -1).expand_as(pred))
        n = len(target)
        return [correct[:k].reshape(-1).float().sum().item() / n for k in topk]

    zc.accuracy = accuracy


def run_clip_benchmark(codes: list[str], root: Path, ckpt: Path, out: Path, batch_size: int) -> dict:
    import open_clip
    import clip_benchmark.cli as cb
    from open_clip.tokenizer import SimpleTokenizer

    _patch_clip_benchmark_numpy()
    clock = Clock()
    clock.wrap(SimpleTokenizer, "__call__", "tokenise", lambda a, k: len(a[1]))
    clock.wrap(open_clip.CLIP, "encode_text", "text forward", lambda a, k: a[1].shape[0])
    clock.wrap(open_clip.CLIP, "encode_image", "image forward", lambda a, k: a[1].shape[0])
    clock.wrap(cb, "load_clip", "model load")
    clock.wrap(cb, "build_dataset", "dataset build")
    out.mkdir(parents=True, exist_ok=True)
    per_lang, acc = {}, {}
    t0 = time.perf_counter()
    for code in codes:
        argv = ["clip_benchmark", "eval", "--dataset", "babel_imagenet", "--dataset_root", str(root),
                "--model", ARCH, "--pretrained", str(ckpt), "--language", code, "--no_amp",
                "--num_workers", "0", "--batch_size", str(batch_size), "--quiet",
                "--output", str(out / "{language}.json")]
        old = sys.argv
        sys.argv = argv
        try:
            t = time.perf_counter()
            _, base = cb.get_parser_args()
            with contextlib.redirect_stdout(open(os.devnull, "w")):
                cb.main_eval(base)
            per_lang[code] = time.perf_counter() - t
        finally:
            sys.argv = old
        acc[code] = json.loads((out / f"{code}.json").read_text())["metrics"]
    total = time.perf_counter() - t0
    for k in ("tokenise", "text forward", "image forward", "model load", "dataset build"):
        clock.s.setdefault(k, 0.0)
    return {"total": total, "per_lang": per_lang, "acc": acc, "clock": clock}


# -- babelclip --------------------------------------------------------------------------------------
def raw_nllb_prompts(codes: list[str]):
    """CLIP_benchmark's templates: the file's list for the language, exactly as released."""
    from babelclip.data.labels import resolve_code
    from babelclip.data.prompts import PromptSet

    doc = json.loads((REF / "nllb_dist13b_prompts.json").read_text(encoding="utf-8"))
    per = {resolve_code(c.upper(), "nllb"): tuple(doc[c.upper()]) for c in codes}
    return PromptSet(name="nllb-raw", per_language=per)


def run_babelclip(codes: list[str], root: Path, ckpt: Path | None, cache_dir: Path, batch_size: int,
                  n_boot: int, prompts=None, workers: int = 1, model: str = "", model_options: dict | None = None) -> dict:
    """One full babelclip evaluation (model load to metrics) with a time profile (``model``: a
    model name instead of this script's architecture with ``ckpt``; ``model_options``: its family's
    options, as ``--model-option``)."""
    import babelclip.eval.classification as cls_mod
    import babelclip.eval.encode as enc_mod
    from babelclip.data.labels import load_babel_imagenet, resolve_code
    from babelclip.eval.cache import EmbeddingCache
    from babelclip.data.images import imagenet_val
    from babelclip.models.registry import create_model

    clock = Clock()
    t0 = time.perf_counter()
    with clock.span("model load"):
        enc = create_model(model or f"openclip:{ARCH}@{ckpt}", **(model_options or {}))
    clock.wrap(enc, "_image_features", "image forward", lambda a, k: a[0].shape[0])
    clock.wrap(enc, "tokenize", "tokenise", lambda a, k: len(a[0]))
    clock.wrap(enc, "_text_features", "text forward (incl. tokenise)", lambda a, k: len(a[0]))
    if getattr(enc, "trim_hf", False):  # the token-sorted path of HF towers: ids once, then the tower
        clock.wrap(enc, "_hf_seqs", "tokenise (HF, once per call)", lambda a, k: len(a[0]))
        clock.wrap(enc.model, "encode_text", "text forward (HF tower)", lambda a, k: a[0].shape[0])
    orig_get = clock.wrap(EmbeddingCache, "get_texts", "cache: read texts", lambda a, k: len(a[2]))
    orig_put = clock.wrap(EmbeddingCache, "put_texts", "cache: write texts", lambda a, k: len(a[2]))
    orig_gblk = clock.wrap(EmbeddingCache, "get_text_block", "cache: read text blocks", lambda a, k: len(a[2]))
    orig_pblk = clock.wrap(EmbeddingCache, "put_text_block", "cache: write text blocks", lambda a, k: len(a[2]))
    orig_metrics = clock.wrap(cls_mod, "_metrics", "metrics")
    orig_weights = clock.wrap(cls_mod, "_weights", "classifier weights")
    orig_etexts = clock.wrap(cls_mod, "encode_texts", "encode_texts (total)")
    try:
        with clock.span("labels + images listing"):
            labels = load_babel_imagenet(REF / "babel_imagenet.json")
            source = imagenet_val(root)
            tags = [resolve_code(c.upper(), "labels") for c in codes]
            prompts = prompts or raw_nllb_prompts(codes)
        with EmbeddingCache(cache_dir, enc.fingerprint.key, enc.dim) as cache:
            with clock.span("images (total)"):
                emb = enc_mod.encode_images(enc, source, cache, batch_size=batch_size)
            with clock.span("classification (total)"):
                results = cls_mod.zero_shot_classification(
                    enc, emb, source.classes, labels, [prompts], cache, languages=tags, n_boot=n_boot,
                    workers=workers)
    finally:
        cls_mod._metrics, cls_mod._weights, cls_mod.encode_texts = orig_metrics, orig_weights, orig_etexts
        EmbeddingCache.get_texts, EmbeddingCache.put_texts = orig_get, orig_put
        EmbeddingCache.get_text_block, EmbeddingCache.put_text_block = orig_gblk, orig_pblk
    total = time.perf_counter() - t0
    acc = {r.language: r.metrics for r in results}
    return {"total": total, "acc": acc, "clock": clock, "tags": dict(zip(codes, tags)),
            "n_encoded": emb.n_encoded, "n_cached": emb.n_cached, "n_images": len(source.items)}


def sanity_checks(codes: list[str], ckpt: Path, per_lang: int = 300) -> None:
    """babelclip's two text shortcuts against open_clip itself, on the prompts of this run:
    word-memo tokenisation == ``SimpleTokenizer`` ids; prefix-shared text forward ==
    ``CLIP.encode_text`` (float rounding)."""
    import random

    import numpy as np
    import torch

    from babelclip.languages import get_language
    from babelclip.models.registry import create_model

    labels = json.loads((REF / "babel_imagenet.json").read_text(encoding="utf-8"))
    prompts = json.loads((REF / "nllb_dist13b_prompts.json").read_text(encoding="utf-8"))
    enc = create_model(f"openclip:{ARCH}@{ckpt}")
    rng = random.Random(0)
    texts = {c: [rng.choice(prompts[c.upper()]).replace("{}", rng.choice(labels[c.upper()][1]))
                 for _ in range(per_lang)] for c in codes}
    mismatch, n = 0, 0
    for c, ts in texts.items():
        fast = enc.tokenize(ts, get_language(c)) if enc._fast else None
        if fast is not None:
            ref = enc.tokenizer(ts)[:, : fast.shape[1]]
            mismatch += int((fast != ref).any(dim=1).sum())
            n += len(ts)
    print(f"tokeniser check: {mismatch} of {n} sampled prompts differ from open_clip's SimpleTokenizer "
          f"(word-memo fast path {'on' if enc._fast else 'off'})")
    sample = [t for ts in texts.values() for t in ts][:3000]
    with torch.inference_mode():
        ref = torch.nn.functional.normalize(enc.model.encode_text(enc.tokenizer(sample)), dim=-1).numpy()
    ours = enc.encode_texts(sample, codes[0])
    print(f"text forward check: max |ours - open_clip encode_text| over {len(sample)} prompts = "
          f"{float(np.abs(ours - ref).max()):.2e} (prefix sharing {'on' if getattr(enc, 'share_prefixes', False) else 'off'})")


# -- report -------------------------------------------------------------------------------------------
def _profile(title: str, clock: Clock, total: float) -> None:
    print(f"\n{title} (wall {total:.1f} s)")
    for k, v in sorted(clock.s.items(), key=lambda kv: -kv[1]):
        n = clock.n.get(k)
        print(f"  {k:32s} {v:8.2f} s  {100 * v / total:5.1f}%" + (f"  ({n} items)" if n else ""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "babelclip-bench-vs-cb"),
                    help="folder for model, images, caches, outputs (reused: images and checkpoint are kept)")
    ap.add_argument("--languages", default="", help="comma-separated Babel-ImageNet file codes (de,ja,...)")
    ap.add_argument("--max-languages", type=int, default=0, help="only the first N languages (file order)")
    ap.add_argument("--per-class", type=int, default=2, help="images per ImageNet class")
    ap.add_argument("--batch-size", type=int, default=64, help="image batch size for both tools")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave torch's default)")
    ap.add_argument("--workers", type=int, default=0,
                    help="babelclip language worker processes (0: as many as torch threads, the same cores CB gets)")
    ap.add_argument("--n-boot", type=int, default=1000, help="babelclip bootstrap resamples (its CLI default)")
    ap.add_argument("--keep-cache", action="store_true", help="keep babelclip's embedding cache (~0.9 GB for 90 languages)")
    ap.add_argument("--skip-clip-benchmark", action="store_true",
                    help="only babelclip (reads an earlier CB run at the same --threads, if any)")
    ap.add_argument("--only-clip-benchmark", action="store_true", help="only CLIP_benchmark (stores its figures for later runs)")
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    labels = json.loads((REF / "babel_imagenet.json").read_text(encoding="utf-8"))
    prompts = json.loads((REF / "nllb_dist13b_prompts.json").read_text(encoding="utf-8"))
    runnable = [c.lower() for c in labels if c in prompts]
    if args.languages:
        codes = [c.strip().lower() for c in args.languages.split(",") if c.strip()]
        bad = [c for c in codes if c not in runnable]
        if bad:
            sys.exit(f"languages {bad} are not runnable by CLIP_benchmark's babel_imagenet; allowed: {', '.join(runnable)}")
    else:
        codes = runnable
    if args.max_languages:
        codes = codes[: args.max_languages]
    n_classes = sum(len(labels[c.upper()][0]) for c in codes)
    n_prompts = sum(len(labels[c.upper()][0]) * len(prompts[c.upper()]) for c in codes)

    ckpt = make_model(work)
    import open_clip

    n_params = sum(p.numel() for p in open_clip.create_model(ARCH, pretrained=None).parameters())
    root = work / "imagenet"
    n_images = make_imagenet(root, args.per_class)
    print(f"model {ARCH}: {n_params / 1e6:.2f}M parameters, checkpoint {ckpt}")
    print(f"images: {n_images} ({args.per_class} per class) under {root}")
    print(f"languages: {len(codes)} ({', '.join(codes)}); {n_classes} language-classes, {n_prompts} prompts "
          f"(CLIP_benchmark protocol: raw NLLB templates)")
    print(f"torch threads: {torch.get_num_threads()}, load average: {os.getloadavg()[0]:.1f}")

    cb_file = work / f"clip_benchmark_runs_{torch.get_num_threads()}threads.json"  # one per thread count
    cb = None
    if not args.skip_clip_benchmark:
        r = run_clip_benchmark(codes, root, ckpt, work / "cb_out", args.batch_size)
        cb = {"total": r["total"], "per_lang": r["per_lang"], "acc": r["acc"], "codes": codes,
              "threads": torch.get_num_threads(), "load_after": os.getloadavg()[0],
              "profile": dict(r["clock"].s), "counts": dict(r["clock"].n)}
        cb_file.write_text(json.dumps(cb, indent=1))
        _profile("CLIP_benchmark profile", r["clock"], r["total"])
    elif cb_file.exists():
        cb = json.loads(cb_file.read_text())
        print(f"(CLIP_benchmark figures read from {cb_file}, languages {len(cb['codes'])})")

    if args.only_clip_benchmark:
        return 0
    sanity_checks(codes, ckpt)
    cache_dir = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
    workers = args.workers or torch.get_num_threads()
    print(f"babelclip language workers: {workers}" + (" (the profiles below miss the workers' own time)" if workers > 1 else ""))
    cold = run_babelclip(codes, root, ckpt, cache_dir, args.batch_size, args.n_boot, workers=workers)
    _profile("babelclip cold profile", cold["clock"], cold["total"])
    warm = run_babelclip(codes, root, ckpt, cache_dir, args.batch_size, args.n_boot, workers=workers)
    if not args.keep_cache:
        import shutil

        shutil.rmtree(cache_dir, ignore_errors=True)
    _profile("babelclip warm profile", warm["clock"], warm["total"])

    # per-language table
    print(f"\n{'lang':6s} {'classes':>7s} {'CB acc1':>9s} {'ours acc1':>9s} {'CB acc5':>9s} {'ours acc5':>9s} "
          f"{'CB mpcr':>9s} {'ours mpcr':>9s} {'CB s':>6s} {'dup':>4s}")
    max_d = {"acc1": 0.0, "acc5": 0.0, "mean_per_class_recall": 0.0}
    compared = 0
    for c in codes:
        ours = cold["acc"].get(cold["tags"][c], {})
        theirs = (cb or {}).get("acc", {}).get(c)
        o1, o5, om = ours.get("top1", float("nan")), ours.get("top5", float("nan")), ours.get("mean_per_class_recall", float("nan"))
        if theirs:
            compared += 1
            for k, o in (("acc1", o1), ("acc5", o5), ("mean_per_class_recall", om)):
                max_d[k] = max(max_d[k], abs(theirs[k] - o))
        t1 = theirs["acc1"] if theirs else float("nan")
        t5 = theirs["acc5"] if theirs else float("nan")
        tm = theirs["mean_per_class_recall"] if theirs else float("nan")
        secs = cb["per_lang"].get(c, float("nan")) if cb else float("nan")
        names = labels[c.upper()][1]
        dup = len(names) - len(set(names))  # classes sharing a label: identical scores, exact ties
        print(f"{c:6s} {len(labels[c.upper()][0]):7d} {t1:9.5f} {o1:9.5f} {t5:9.5f} {o5:9.5f} {tm:9.5f} {om:9.5f} {secs:6.1f} {dup:4d}")
    warm_same = all(cold["acc"][t] == warm["acc"][t] for t in cold["acc"])

    print("(dup: classes whose label another class of the language also has. Their class embeddings are "
          "identical, so their scores tie exactly; babelclip ranks a tie by class order (metrics.target_ranks), "
          "CLIP_benchmark by torch.topk's order, so top-k can differ by whole images there.)")
    print("\nSUMMARY")
    print(f"  languages compared: {compared} / {len(codes)}")
    print("  max |CB - ours|: " + ", ".join(f"{k} {v:.2e}" for k, v in max_d.items()))
    print(f"  image forward passes, babelclip cold: {cold['clock'].n['image forward']} for {cold['n_images']} images "
          f"(n_encoded {cold['n_encoded']}); warm: {warm['clock'].n.get('image forward', 0)} (cached {warm['n_cached']})")
    if cb:
        print(f"  image forward passes, CLIP_benchmark: {cb['counts'].get('image forward', 0)}")
    print(f"  warm results identical to cold: {warm_same}")
    print(f"  wall babelclip: cold {cold['total']:.1f} s, warm {warm['total']:.2f} s "
          f"({100 * warm['total'] / cold['total']:.1f}% of cold)")
    if cb:
        print(f"  wall CLIP_benchmark: {cb['total']:.1f} s ({cb['total'] / max(len(cb['codes']), 1):.2f} s per language)")
        if cb["codes"] == codes:
            print(f"  speed-up cold: {cb['total'] / cold['total']:.1f}x, warm: {cb['total'] / warm['total']:.0f}x")
        else:  # CB ran on other languages: scale its per-prompt rate to this run's prompts
            cb_prompts = sum(len(labels[c.upper()][0]) * len(prompts[c.upper()]) for c in cb["codes"])
            est = cb["total"] / cb_prompts * n_prompts
            print(f"  CLIP_benchmark extrapolated to these {n_prompts} prompts at its {1e3 * cb['total'] / cb_prompts:.3f} "
                  f"ms per prompt: {est:.0f} s; speed-up cold about {est / cold['total']:.1f}x (different runs, "
                  "so different machine load)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
