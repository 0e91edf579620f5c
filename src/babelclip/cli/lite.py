"""``babelclip lite``: the embedded default model (re-train its head)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lite", help="the embedded default model babel-lite")
    lsub = p.add_subparsers(dest="lite_command", metavar="ACTION", required=True)
    t = lsub.add_parser("train-head", help="re-train the text head from registry data (≈ minutes on 2 CPU cores)")
    t.add_argument("--out", required=True, help="output model directory (load it with create_model(DIR))")
    t.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same head")
    t.add_argument("--epochs", type=int, default=None, help="training epochs (default: the shipped head's)")
    t.add_argument("--cupl-per-class", type=int, default=None, help="CuPL descriptions per class (0: none)")
    t.set_defaults(func=run_train_head)


def run_train_head(args: argparse.Namespace) -> int:
    from ..models.babel_lite.train_head import TrainConfig, train_head

    cfg = TrainConfig(seed=args.seed)
    if args.epochs is not None:
        cfg.epochs = args.epochs
    if args.cupl_per_class is not None:
        cfg.cupl_per_class = args.cupl_per_class
    out = train_head(args.out, seed=args.seed, cfg=cfg)
    print(f"saved {out}; use it with: babelclip ... --model {out}  or  create_model({str(out)!r})")
    return 0
