"""``babelclip train``: train a model's text side for one language (LoRA adapter or full), by
distillation over parallel text (``--objective distill``) or lexical specialization on synonym
sets (``--objective lexical``)."""
from __future__ import annotations

import argparse

from ..train.config import OBJECTIVES
from ._cache_flag import add_cache_dir_flag
from ._model_options import add_model_option_flag, model_options


def register(sub: argparse._SubParsersAction) -> None:
    from ..models.registry import DEFAULT_MODEL

    p = sub.add_parser("train", help="train a per-language adapter (or full fine-tune) by distillation or lexical specialization")
    p.add_argument("--model", default=DEFAULT_MODEL, help="model name (see `babelclip models`)")
    add_model_option_flag(p)  # evaluate the result with the same options: `babelclip eval --adapters` checks the base
    p.add_argument("--lang", required=True, help="target language, any code (sw, swh_Latn, SW...)")
    p.add_argument("--objective", choices=OBJECTIVES, default="distill",
                   help="distill: teacher-student over --parallel text; lexical: contrastive InfoNCE on --synonyms sets "
                        "(synonyms in any language are positives, other sets negatives; docs/training.md)")
    p.add_argument("--synonyms", nargs="+", metavar="SOURCE",
                   help="--objective lexical: cldr (every locale's emoji names + distinctive keywords, Babel-Emoji's training "
                        "half only), cldr-names (names only), babelnet:FILE (the synsets listed in FILE, from BabelNet with "
                        "$BABELNET_KEY or its cache), or a JSONL file of sets")
    p.add_argument("--anchor-langs", default=None, metavar="CODES",
                   help="--objective lexical: comma-separated languages whose set members are the anchors (default: every "
                        "language of the sets; for babelnet: en)")
    p.add_argument("--parallel", nargs="+", metavar="SOURCE",
                   help="cldr (emoji names + keywords), cldr-names (names only: the best measured for babel-lite), both of Babel-Emoji's training-half emoji (cldr:all / cldr-names:all: every emoji, marked by the leakage guard), bible, a TSV/JSONL/Tatoeba file or directory, or EN_FILE,TGT_FILE (Moses)")
    p.add_argument("--method", choices=["lora", "full"], default="lora")
    p.add_argument("--out", required=True, help="output directory (adapter, checkpoints, babelclip_adapter.json)")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=None, help="default: 3e-3 (lora, --loss kl), 1e-3 (lora, mse), 2e-5 (full)")
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--lora-alpha", type=int, default=16)
    p.add_argument("--warmup-steps", type=int, default=None, help="linear warm-up steps (default: steps // 10)")
    p.add_argument("--contrastive-weight", type=float, default=0.0)
    p.add_argument("--temperature", type=float, default=0.05, help="InfoNCE temperature (distillation's term and --objective lexical)")
    p.add_argument("--one-way", action="store_true", help="--objective lexical: InfoNCE target -> anchors only (default: both ways)")
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--max-minutes", type=float, default=0.0, help="stop (and save) after this much training time")
    p.add_argument("--level", choices=["output", "tower", "logits"], default=None,
                   help="what is trained on: the model's output embedding, its pooled text tower, or (babel-lite) its head's "
                        "class logits; default for distill: the model family's (logits for babel-lite, measured best in "
                        "docs/training.md; output otherwise); for lexical: the pooled tower where the family has one, else output")
    p.add_argument("--loss", choices=["mse", "kl"], default=None,
                   help="kl: KL(teacher||student) of class distributions; default: kl with --level logits, mse otherwise")
    p.add_argument("--kl-temperature", type=float, default=1.0)
    p.add_argument("--labels", default=None, help="Babel-ImageNet labels file for the evaluations before and after")
    p.add_argument("--tuxpaint", default=None, metavar="DIR",
                   help="Tux Paint stamps folder for text->image retrieval before and after (default: /usr/share/tuxpaint/stamps)")
    add_cache_dir_flag(p, what="the stamp images", deprecated_alias="--cache")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    p.set_defaults(func=run)


def check_sources(args: argparse.Namespace) -> None:
    """Each objective takes its own data: --parallel for distill, --synonyms for lexical."""
    from ..errors import BabelclipError

    if args.objective == "lexical":
        if not args.synonyms:
            raise BabelclipError("--objective lexical trains on synonym sets: give --synonyms SOURCE... "
                                 "(cldr, cldr-names, babelnet:FILE or a JSONL file)")
        if args.parallel:
            raise BabelclipError("--parallel is distillation's data; --objective lexical takes --synonyms only")
    else:
        if not args.parallel:
            raise BabelclipError("--objective distill needs --parallel SOURCE... (or use --objective lexical with --synonyms)")
        if args.synonyms or args.anchor_langs or args.one_way:
            raise BabelclipError("--synonyms, --anchor-langs and --one-way belong to --objective lexical; "
                                 f"allowed objectives: {', '.join(OBJECTIVES)}")


def _defaults(args: argparse.Namespace, encoder):
    """Level, loss and learning rate the user leaves out: the model family's for distillation (a
    saved babel-lite directory is babel-lite too); for the lexical objective the pooled tower
    where the family offers one (the text tower's own space, where the InfoNCE is computed)."""
    from ..models.base import capabilities, default_training

    caps = capabilities(encoder)
    if args.objective == "distill":
        return caps.training_defaults(args.method, level=args.level, loss=args.loss)
    level = args.level
    if level is None:
        try:
            caps.trainable_text("tower")
            level = "tower"
        except (ValueError, TypeError):
            level = "output"
    return default_training(args.method, level, "mse")  # the loss field is unused by the lexical objective


def _lexicon(args: argparse.Namespace):
    """The builder's BabelNet client when a babelnet: source is named (key from $BABELNET_KEY)."""
    if not any(s.startswith("babelnet:") for s in args.synonyms or ()):
        return None
    from ..build.babelnet import BabelNetSource

    return BabelNetSource()


def run(args: argparse.Namespace) -> int:
    from ..models.registry import create_model
    from ..train.distill import DistillConfig, init_distributed_from_env
    from ..train.distributed import quiet_other_ranks
    from ..train.evaluate import before_after_table
    from ..train.recipe import train_language

    check_sources(args)
    init_distributed_from_env()
    rank = quiet_other_ranks()
    encoder = create_model(args.model, **model_options(args))
    defaults = _defaults(args, encoder)
    config = DistillConfig(
        objective=args.objective, method=args.method, steps=args.steps, batch_size=args.batch_size,
        lr=args.lr if args.lr is not None else defaults.lr, lora_r=args.lora_r, lora_alpha=args.lora_alpha,
        warmup_steps=args.warmup_steps if args.warmup_steps is not None else max(1, args.steps // 10),
        contrastive_weight=args.contrastive_weight, temperature=args.temperature, symmetric=not args.one_way,
        loss=defaults.loss, kl_temperature=args.kl_temperature, checkpoint_every=args.checkpoint_every,
        max_minutes=args.max_minutes, seed=args.seed, progress=not args.quiet,
    )
    anchors = args.anchor_langs.split(",") if args.anchor_langs else None
    rep = train_language(args.model, args.lang, args.parallel or (), args.out, config, resume=args.resume,
                         labels_path=args.labels, level=defaults.level, encoder=encoder, tuxpaint_root=args.tuxpaint,
                         cache_dir=args.cache_dir, synonyms=args.synonyms or (), anchor_langs=anchors, lexicon=_lexicon(args))
    if rank != 0:  # under torchrun the report is rank 0's alone
        return 0
    r = rep.result
    unit = rep.leakage.unit
    print(f"{unit}: {rep.n_pairs_read} read, {rep.leakage.n_dropped} dropped by the leakage guard; {rep.leakage.summary()}")
    print(f"steps: {r.steps_done}; loss {r.losses[0]:.4f} -> {r.losses[-1]:.4f}; trained {r.trainable_params} "
          f"of {r.total_params} parameters")
    if r.evaluation:
        print("evaluation, % with 95% CIs (change: after - before, paired bootstrap); "
              f"figures in {r.out_dir}/babelclip_adapter.json:")
        print("\n".join(before_after_table(r.evaluation)))
    else:
        print("evaluation: none (no Babel-ImageNet labels or Tux Paint descriptions for this language here)")
    print(f"saved to {r.out_dir}")
    return 0
