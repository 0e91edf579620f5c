"""Per-language LoRA adapters for babel-lite: before/after figures with 95% confidence intervals.

For each language: distil babel-lite's class logits (KL to the English side's, by default) on
CLDR emoji names (``--names-only``, best measured) or names and keywords (+ a public-domain
Bible where one exists) for at most ``--max-minutes`` on this machine's CPU cores, then compare
the base model with the model-with-adapters on

- Babel-ImageNet label→class alignment, text only (the language's labels against the English
  CLIP class names of the same classes, among that language's classes; bootstrap CI);
- Tux Paint text→image retrieval R@1/R@5 in that language (bootstrap CI over queries);
- English: the same two figures, which the adapters must not move (they are bitwise unchanged
  by construction; the script checks it).

Evaluation data never enters training: the leakage guard drops copies and the overlap between
CLDR training targets and the evaluation texts is printed beside the results.

    nice -n 10 python bench/train_adapters.py --langs am,km,sw,ka,hy --steps 250 --max-minutes 4.5 --names-only \
        --threads 1 --prototypes head --out bench_out/adapters-kl

``--objective lexical`` trains the same adapters by lexical specialization instead
(:mod:`babelclip.train.lexical`): CLDR synonym sets of the emoji training half (every locale's
name, plus distinctive keywords unless ``--names-only``), the language's members against frozen
anchors in ``--anchor-langs`` (default: every other language), InfoNCE at ``--temperature``,
at ``--level tower`` (the pooled text tower) by default for that objective. The "unseen labels"
column then excludes every member of the language in the sets.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("train_adapters")


def _fmt(m: dict, key: str) -> str:
    lo, hi = m.get(f"{key}_ci_low"), m.get(f"{key}_ci_high")
    return f"{100 * m[key]:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]" if lo is not None else f"{100 * m[key]:.1f}"


def tux_queries(stamps, rows: dict[str, int], tag: str) -> tuple[list[str], list[int]]:
    texts, owners = [], []
    for s in stamps:
        if tag in s.texts and s.id in rows:
            texts.append(s.texts[tag])
            owners.append(rows[s.id])
    return texts, owners


def unseen_labels(raw, tag: str, targets: set[str]):
    """``raw`` restricted, for ``tag``, to labels whose normalised text is no training target:
    alignment on these cannot come from having seen the word itself during training."""
    from dataclasses import replace

    from babelclip.train.leakage import normalise

    return replace(raw, labels={**raw.labels, tag: {i: t for i, t in raw.labels[tag].items() if normalise(t) not in targets}})


def evaluate(encoder, labels, stamps, images, tag: str, class_vectors=None, targets: set[str] | None = None) -> dict:
    """``labels`` = (Babel-ImageNet as released, CLIP English names): the language's labels are
    scored against the CLIP names of their classes (for English: BabelNet lemmas vs CLIP names).
    With ``targets`` (normalised training targets) also on the labels outside them ("unseen")."""
    from babelclip.train.evaluate import label_alignment, text_to_image_recall

    raw, clip = labels
    out = {}
    if tag in raw.labels:
        out["labels"] = label_alignment(encoder, raw, tag, reference=clip, class_vectors=class_vectors)
        if targets:
            out["labels_unseen"] = label_alignment(encoder, unseen_labels(raw, tag, targets), tag, reference=clip,
                                                   class_vectors=class_vectors)
    texts, owners = tux_queries(stamps, images.row_of(), tag)
    if texts:
        out["tuxpaint"] = text_to_image_recall(encoder, images.vectors, texts, owners, tag)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="babel-lite")
    ap.add_argument("--langs", default="am,km,sw,ka,hy")
    ap.add_argument("--out", default="bench_out/adapters")
    ap.add_argument("--steps", type=int, default=3000, help="schedule length; --max-minutes usually stops first")
    ap.add_argument("--max-minutes", type=float, default=15.0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--lora-alpha", type=int, default=16)
    ap.add_argument("--warmup-steps", type=int, default=None, help="default: steps // 10")
    ap.add_argument("--contrastive-weight", type=float, default=0.0)
    ap.add_argument("--temperature", type=float, default=0.05, help="InfoNCE temperature")
    ap.add_argument("--objective", choices=["distill", "lexical"], default="distill")
    ap.add_argument("--anchor-langs", default=None, help="lexical: comma-separated anchor languages (default: all)")
    ap.add_argument("--one-way", action="store_true", help="lexical: InfoNCE target -> anchors only")
    ap.add_argument("--level", choices=["output", "tower", "logits"], default=None,
                    help="default: logits for distill, tower for lexical. logits (with --loss kl): the head's class logits, what the evaluation reads; "
                         "tower: the mean-pooled mE5 embedding (with --loss mse it collapses, docs/training.md); "
                         "output: babel-lite's class-distribution embedding, whose slack coordinate dominates the MSE")
    ap.add_argument("--loss", choices=["mse", "kl"], default="kl")
    ap.add_argument("--kl-temperature", type=float, default=1.0)
    ap.add_argument("--names-only", action="store_true", help="CLDR names only (no keyword lists): half the pairs, shorter texts")
    ap.add_argument("--bible", action="store_true", help="add a usable (public-domain/open) Bible where one exists")
    ap.add_argument("--parallel", default=None, metavar="PATH",
                    help="train on this parallel file (read_parallel: .tsv/.jsonl/...; '{lang}' is replaced by the BCP-47 tag) "
                         "instead of CLDR names")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prototypes", choices=["english", "head"], default="english",
                    help="class side of the label alignment: English CLIP names, or (babel-lite) each class's "
                         "image-side unit vector, i.e. the head's argmax among the language's classes")
    ap.add_argument("--cache-dir", default=None, metavar="DIR|none",
                    help="embedding cache folder ('none': no cache); default: embeddings/ under $BABELCLIP_CACHE")
    args = ap.parse_args()
    args.level = args.level or ("logits" if args.objective == "distill" else "tower")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    import torch

    from babelclip import create_model, get_language
    from babelclip.cache_dir import embeddings_dir, teacher_cache_dir
    from babelclip.data.labels import imagenet_clip_labelset, load_babel_imagenet
    from babelclip.data.tuxpaint import find_stamps, tuxpaint_images
    from babelclip.eval.cache import EmbeddingCache
    from babelclip.eval.encode import encode_images
    from babelclip.train.adapters import load_adapters
    from babelclip.train.distill import DistillConfig, distill
    from babelclip.train.leakage import filter_leakage, labelset_eval_set, tuxpaint_eval_set
    from babelclip.train.lexical import specialize
    from babelclip.train.parallel import ParallelDataError, read_parallel
    from babelclip.train.sources import bible_pairs, cldr_pairs
    from babelclip.train.text_side import trainable_text

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tags = [get_language(c).tag for c in args.langs.split(",")]
    raw = load_babel_imagenet(unknown="skip", allow_download=False)
    labelset = (raw, imagenet_clip_labelset())
    guard_sets = [tuxpaint_eval_set(), labelset_eval_set(raw)]
    stamps, _ = find_stamps()

    base = create_model(args.model)
    t = time.time()
    with EmbeddingCache(embeddings_dir(args.cache_dir), base.fingerprint.key, base.dim) as cache:
        images = encode_images(base, tuxpaint_images(stamps), cache, quiet=False)
    log.info("%d Tux Paint images encoded in %.0f s", len(images.ids), time.time() - t)
    protos = None
    if args.prototypes == "head":
        from babelclip.train.evaluate import head_prototypes

        protos = head_prototypes(base)
    from babelclip.train.leakage import normalise

    corpora = {}
    if args.objective == "lexical":
        from babelclip.train.leakage import filter_synonym_leakage
        from babelclip.train.sources import cldr_synonym_sets

        all_sets = cldr_synonym_sets(keywords="none" if args.names_only else "distinctive")
        for tag in tags:
            corpora[tag] = filter_synonym_leakage(all_sets, guard_sets, tag)
        targets = {tag: {normalise(t) for s in c for t in s.texts(tag)} for tag, (c, _) in corpora.items()}
    else:
        for tag in tags:
            corpus = (read_parallel(args.parallel.format(lang=tag), tag) if args.parallel
                      else cldr_pairs(tag, keywords=not args.names_only))
            if args.bible:
                try:
                    corpus = corpus.merged(bible_pairs(tag))
                except ParallelDataError as e:
                    log.info("no Bible for %s: %s", tag, e)
            corpora[tag] = filter_leakage(corpus.deduplicated(), guard_sets)
        targets = {tag: {normalise(t) for _, t in c.pairs} for tag, (c, _) in corpora.items()}
    before = {tag: evaluate(base, labelset, stamps, images, tag, protos, targets.get(tag)) for tag in ["en", *tags]}
    base_en = base.encode_texts([s.texts["en"] for s in stamps if "en" in s.texts], "en")
    del base

    runs = {}
    for tag in tags:
        adir = out / tag
        corpus, leak = corpora[tag]
        if (adir / "babelclip_adapter.json").exists():
            log.info("%s: adapter exists, reusing %s", tag, adir)
            runs[tag] = {"pairs": len(corpus), "leakage": leak.as_dict(), **json.loads((adir / "babelclip_adapter.json").read_text())["losses"]}
            continue
        model = create_model(args.model)
        warmup = args.warmup_steps if args.warmup_steps is not None else max(1, args.steps // 10)
        cfg = DistillConfig(objective=args.objective, method="lora", steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                            lora_r=args.lora_r, lora_alpha=args.lora_alpha, warmup_steps=warmup,
                            contrastive_weight=args.contrastive_weight, temperature=args.temperature,
                            symmetric=not args.one_way, loss=args.loss, kl_temperature=args.kl_temperature,
                            checkpoint_every=200, max_minutes=args.max_minutes, progress=True)
        t = time.time()
        common = {"resume": True, "cache_dir": teacher_cache_dir(out),
                  "extra_meta": {"model": args.model, "leakage": leak.as_dict(), "level": args.level}}
        text = trainable_text(model, level=args.level)
        if args.objective == "lexical":
            anchors = args.anchor_langs.split(",") if args.anchor_langs else None
            res = specialize(text, corpus, tag, cfg, adir, anchor_langs=anchors, **common)
        else:
            res = distill(text, corpus, cfg, adir, **common)
        runs[tag] = {"pairs": len(corpus), "steps": res.steps_done, "minutes": (time.time() - t) / 60,
                     "first": res.losses[0], "last": float(np.mean(res.losses[-20:])), "leakage": leak.as_dict()}
        del model

    adapted = load_adapters(create_model(args.model), [out / tag for tag in tags])
    after = {tag: evaluate(adapted, labelset, stamps, images, tag, protos, targets.get(tag)) for tag in ["en", *tags]}
    en_same = bool(np.array_equal(adapted.encode_texts([s.texts["en"] for s in stamps if "en" in s.texts], "en"), base_en))

    doc = {"model": args.model, "args": vars(args), "before": before, "after": after, "runs": runs, "english_bitwise_unchanged": en_same}
    (out / f"results-{args.prototypes}.json").write_text(json.dumps(doc, indent=1, default=float), encoding="utf-8")
    print(f"\nEnglish text embeddings bitwise unchanged: {en_same}")
    print("| lang | labels top-1 before | after | unseen labels before | after | Tux R@1 before | after | Tux R@5 before | after "
          "| pairs | steps | min | overlap tux / labels |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for tag in ["en", *tags]:
        b, a, r = before[tag], after[tag], runs.get(tag, {})
        cells = [tag]
        cells += [_fmt(b["labels"], "top1"), _fmt(a["labels"], "top1")] if "labels" in b else ["-", "-"]
        cells += ([f'{_fmt(b["labels_unseen"], "top1")} (n={b["labels_unseen"]["n_classes"]:.0f})', _fmt(a["labels_unseen"], "top1")]
                  if "labels_unseen" in b else ["-", "-"])
        cells += [_fmt(b["tuxpaint"], "r@1"), _fmt(a["tuxpaint"], "r@1"), _fmt(b["tuxpaint"], "r@5"), _fmt(a["tuxpaint"], "r@5")] if "tuxpaint" in b else ["-"] * 4
        lk = r.get("leakage", {})
        ov = lk.get("overlap_fraction", {})
        cells += [str(r.get("pairs", "-")), str(r.get("steps", "-")), f"{r['minutes']:.1f}" if "minutes" in r else "-",
                  " / ".join(f"{100 * v:.1f}%" for v in ov.values()) if ov else "-"]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
