"""The ``babelclip-tools`` command: one subcommand per shipped file it builds (a thin dispatcher;
each calls one library function of its module, imported only when that subcommand runs)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def _int8(args: argparse.Namespace) -> int:
    from .int8_calibration import build_ranges, build_weights

    if not args.write:
        raise ValueError("nothing to do: pass --write to (re)write the int8 ranges and weights")
    build_ranges(**({"out": args.out} if args.out else {}), every=args.every)
    build_weights(**({"out": args.weights_out} if args.weights_out else {}), every=args.every)
    return 0


def _train_lite_muse(args: argparse.Namespace) -> int:
    from .lite_muse import build_v2

    print(build_v2(args.out, seed=args.seed))
    return 0


def _train_lite_adapters(args: argparse.Namespace) -> int:
    from .lite_adapters import DEFAULT_LANGS, AdapterRecipe, build_v21

    given = {k: getattr(args, k) for k in ("steps", "top_layers") if getattr(args, k) is not None}
    recipe = AdapterRecipe(seed=args.seed, **given)
    langs = args.langs.split(",") if args.langs else DEFAULT_LANGS
    base = args.base
    if args.rebuild_base:  # babel-lite 2 from the registry data first: the whole chain in one command
        from .lite_muse import build_v2

        base = build_v2((args.work or Path(args.out) / "work") / "base", seed=args.seed)
    out = build_v21(args.out, langs, recipe, base_dir=base, workers=args.workers, work_dir=args.work)
    print(f"saved {out}; use it with: babelclip ... --model {out}  or  create_model({str(out)!r})")
    return 0


def _train_head(args: argparse.Namespace) -> int:
    from .lite_head import TrainConfig, train_head

    cfg = TrainConfig(seed=args.seed)
    if args.epochs is not None:
        cfg.epochs = args.epochs
    if args.cupl_per_class is not None:
        cfg.cupl_per_class = args.cupl_per_class
    out = train_head(args.out, seed=args.seed, cfg=cfg)
    print(f"saved {out}; use it with: babelclip ... --model {out}  or  create_model({str(out)!r})")
    return 0


def _train_lite_text(args: argparse.Namespace) -> int:
    from .lite_text import LiteTextConfig, train_lite_text

    given = {k: getattr(args, k) for k in ("steps", "top_layers", "batch_size") if getattr(args, k) is not None}
    cfg = LiteTextConfig(seed=args.seed, threads=args.threads, **given)
    out = train_lite_text(args.out, cfg, work_dir=args.work)
    print(f"saved {out}; use it with: babelclip ... --model {out}  or  create_model({str(out)!r})")
    return 0


def _unicode_tables(args: argparse.Namespace) -> int:
    from .unicode_tables import DATA_DIR, generate_tables

    for p in generate_tables(args.ucd_dir, args.out_dir or DATA_DIR):
        print(f"wrote {p}")
    return 0


def _language_table(args: argparse.Namespace) -> int:
    from .language_table import OUT, write_table

    n = write_table(args.out or OUT, check=args.check, reference=args.reference)
    print(f"{args.out or OUT}: {n} records {'up to date' if args.check else 'written'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="babelclip-tools",
                                     description="Build the files shipped inside the babelclip package")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("int8", help="calibrate babel-lite's int8 image tower: activation ranges and GPTQ weights")
    p.add_argument("--write", action="store_true", help="(re)write image_int8.json and image_int8_weights.safetensors")
    p.add_argument("--out", type=Path, default=None, help="activation ranges file (default: the shipped one)")
    p.add_argument("--weights-out", type=Path, default=None, help="int8 weights file (default: the shipped one)")
    p.add_argument("--every", type=int, default=8, help="use every N-th Tux Paint stamp")
    p.set_defaults(func=_int8)

    p = sub.add_parser("train-head", help="re-train babel-lite's text head from registry data (minutes on 2 CPU cores)")
    p.add_argument("--out", required=True, help="output model directory (load it with create_model(DIR))")
    p.add_argument("--seed", type=int, default=0, help="random seed; seed 0 gives the shipped head")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the shipped head's)")
    p.add_argument("--cupl-per-class", type=int, default=None, help="CuPL descriptions per class (0: none)")
    p.set_defaults(func=_train_head)

    p = sub.add_parser("train-lite-muse", help="build babel-lite 2: babel-lite 1 + a head for the multilingual USE text tower (English corpus)")
    p.add_argument("--out", required=True, help="output model directory")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_train_lite_muse)

    p = sub.add_parser("train-lite-adapters", help="build babel-lite 2.1: babel-lite 2 + per-language LoRA updates of mE5 "
                       "(CLDR names, distilled towards English)")
    p.add_argument("--out", required=True, help="output model directory (load it with create_model(DIR))")
    p.add_argument("--langs", default=None, help="comma-separated languages (default: the evaluation sets' languages "
                   "outside mUSE's that CLDR names)")
    p.add_argument("--base", type=Path, default=None, help="base babel-lite directory (default: the shipped babel-lite 2)")
    p.add_argument("--rebuild-base", action="store_true", help="first rebuild babel-lite 2 (train-lite-muse, ~1 min) "
                   "into the work folder and build on it: the whole default model from registry data in one command")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="optimizer steps per language (default 250)")
    p.add_argument("--top-layers", type=int, default=None, help="adapt the top K of mE5's 12 layers (default 6)")
    p.add_argument("--workers", type=int, default=2, help="languages trained at once, one process and thread each")
    p.add_argument("--work", type=Path, default=None, help="checkpoints and lower-layer states (default: OUT/work); "
                   "a killed build started again with the same folder resumes")
    p.set_defaults(func=_train_lite_adapters)

    p = sub.add_parser("train-lite-text", help="train babel-lite 2's multilingual text side (a LoRA of mE5's top layers) from CLDR names")
    p.add_argument("--out", required=True, help="output model directory (load it with create_model(DIR))")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (default 1000; the shipped model's)")
    p.add_argument("--batch-size", type=int, default=None, help="texts per step (default 256)")
    p.add_argument("--top-layers", type=int, default=None, help="adapt the top K of mE5's 12 layers (default 4)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default; 1 on a loaded machine)")
    p.add_argument("--work", type=Path, default=None, help="checkpoints and lower-layer states (default: OUT/work); "
                   "a killed run started again with the same folder resumes")
    p.set_defaults(func=_train_lite_text)

    p = sub.add_parser("unicode-tables", help="script and Han-variant tables from a Unicode Character Database")
    p.add_argument("ucd_dir", help="UCD folder (Debian unicode-data: /usr/share/unicode)")
    p.add_argument("out_dir", nargs="?", default=None, help="output folder (default: the package's _data)")
    p.set_defaults(func=_unicode_tables)

    p = sub.add_parser("language-table", help="babelclip's language table from ISO, CLDR, NLLB, Babel-ImageNet, Tux Paint")
    p.add_argument("--check", action="store_true", help="fail if the shipped table differs from a rebuild")
    p.add_argument("--out", type=Path, default=None, help="table file (default: the shipped one)")
    p.add_argument("--reference", type=Path, default=None,
                   help="Babel-ImageNet reference folder (default: $BABELCLIP_REFERENCE/babel-imagenet, "
                        "else ../shared/reference/babel-imagenet beside the repository)")
    p.set_defaults(func=_language_table)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, ImportError, RuntimeError) as e:
        print(f"babelclip-tools {args.command}: error: {e}", file=sys.stderr)
        return 1
