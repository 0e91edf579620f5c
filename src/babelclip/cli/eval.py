"""``babelclip eval``: zero-shot classification and retrieval in every language (thin wrapper
over :func:`babelclip.eval.run.evaluate`)."""
from __future__ import annotations

import argparse

from ._cache_flag import add_cache_dir_flag
from ._model_options import add_model_option_flag, model_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a model in every language of a benchmark",
                       description="Examples: babelclip eval --dataset tuxpaint --languages all --out results/ ; "
                       "babelclip eval --benchmark babel-imagenet --images IMAGENET_VAL --labels babel_imagenet.json")
    p.add_argument("--benchmark", "--dataset", dest="dataset", default=None,
                   help="a benchmark of `babelclip benchmarks` (default babel-imagenet), or with --captions "
                        "the name of that caption set")
    p.add_argument("--root", help="the benchmark's folder in its release layout (default: $BABELCLIP_DATA/NAME, "
                   "else ~/.cache/babelclip/benchmarks/NAME); see `babelclip benchmarks`")
    p.add_argument("--model", default=None, help="model name (default: the embedded babel-lite); see `babelclip models`")
    add_model_option_flag(p)
    p.add_argument("--images", help="image folder: ImageNet val (wnid sub-folders or flat + ground truth), "
                   "Tux Paint stamps, or the images of a caption set")
    p.add_argument("--labels", help="Babel-ImageNet label file (babel_imagenet.json); default: a local copy or download")
    p.add_argument("--captions", help="caption JSON for retrieval (XTD / xFlickrCO / XM3600 format)")
    p.add_argument("--languages", default="all", help="'all' or a comma-separated list of codes (de,ja,zh-Hant)")
    p.add_argument("--prompts", default="label", help="comma-separated: label, openai-en, nllb, nllb-raw (the NLLB "
                   "templates exactly as released, as CLIP_benchmark uses them), ensemble")
    p.add_argument("--tasks", default="all", help="task kinds to run, comma-separated: zeroshot_classification, "
                   "retrieval, keyword_retrieval, image (image->image retrieval and k-NN by class); or -KIND to "
                   "leave one out (default: all the benchmark has)")
    p.add_argument("--protocol", default="default", choices=("default", "paper"),
                   help="paper: the Babel-ImageNet reference evaluation's choices where babelclip's defaults "
                        "differ (docs/results.md); recorded in every result")
    p.add_argument("--adapters", nargs="+", metavar="DIR", default=None,
                   help="babelclip train output folders (LoRA adapters, or one full fine-tune) to load onto --model; "
                        "results where CLDR training text meets Babel-Emoji evaluation emoji are marked")
    p.add_argument("--verify-images", action="store_true",
                   help="key cached image embeddings by a SHA-256 of each file's bytes, not path+size+mtime "
                        "(an image rewritten with the same size and mtime is encoded again)")
    p.add_argument("--nllb-prompts", help="path of nllb_dist13b_prompts.json (default: a local copy or download)")
    p.add_argument("--fixed-k", type=int, default=0, help="score K sampled classes per language (several repeats)")
    p.add_argument("--repeats", type=int, default=5, help="repetitions of --fixed-k sampling")
    p.add_argument("--out", default="results", help="output folder for results.json and results.csv")
    p.add_argument("--overwrite", action="store_true",
                   help="replace results of another model or benchmark already in --out (a re-run of the same "
                        "model and benchmark replaces its own results without it)")
    p.add_argument("--formats", default="", help="also write these beside results.json: clip-benchmark "
                   "(CLIP_benchmark's JSON, in OUT/clip_benchmark/), mteb (MTEB-style JSON per task, in OUT/mteb/)")
    p.add_argument("--no-download", dest="download", action="store_false",
                   help="never download a missing benchmark file (say what to place where instead)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    p.add_argument("--amp", action="store_true",
                   help="half-precision autocast on a CUDA device (faster; can change a near-tie ranking, so off by default)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=0, help="data-loader processes for image decoding")
    p.add_argument("--language-workers", default="auto", type=_workers,
                   help="processes evaluating languages in parallel on the CPU: a number, or 'auto' "
                        "(one per available core, at most torch's thread count; 1 on a GPU)")
    add_cache_dir_flag(p)
    p.set_defaults(func=run)


def _workers(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'auto', got {text!r}")
    return n


def _with_adapters(args: argparse.Namespace, model: str) -> tuple[object, object]:
    """The model to evaluate (``model``, or with ``--adapters`` a :class:`BuildLater` that loads
    them onto it once the run's outputs are checked) and the leakage guard's marking of the
    results (``None`` without adapters)."""
    if not args.adapters:
        return model, None
    from ..eval.model_source import BuildLater
    from ..train.adapters import adapted_name, load_adapters, load_full_finetune, read_adapter_meta
    from ..train.leakage import adapter_emoji_training, mark_emoji_results

    full = [d for d in args.adapters if read_adapter_meta(d).get("method") == "full"]  # each checked first
    if full and len(args.adapters) > 1:
        raise ValueError(f"--adapters: {full[0]} is a full fine-tune; give it alone (it replaces every language)")

    def build() -> object:
        from ..models.registry import create_model

        kw = {} if args.protocol == "default" else {"protocol": args.protocol}
        base = create_model(model, device=args.device, **kw, **model_options(args))
        return load_full_finetune(base, full[0]) if full else load_adapters(base, args.adapters)

    trained = adapter_emoji_training(args.adapters)
    name = adapted_name(args.adapters)
    encoder = BuildLater(name, build) if name is not None else build()
    return encoder, (lambda results: mark_emoji_results(results, trained)) if trained else None


def run(args: argparse.Namespace) -> int:
    from ..eval.classification import FixedK
    from ..eval.run import evaluate
    from ..models.registry import DEFAULT_MODEL

    model, annotate = _with_adapters(args, args.model or DEFAULT_MODEL)
    results = evaluate(
        model, dataset=args.dataset, tasks=args.tasks, protocol=args.protocol, verify_images=args.verify_images,
        annotate=annotate, images=args.images, labels=args.labels,
        captions=args.captions, root=args.root, languages=args.languages, overwrite=args.overwrite,
        download=args.download, formats=args.formats, prompts=args.prompts, nllb_prompts=args.nllb_prompts,
        out=args.out, batch_size=args.batch_size, device=args.device, cache_dir=args.cache_dir,
        num_workers=args.workers, language_workers=args.language_workers, fixed_k=FixedK(args.fixed_k, args.repeats) if args.fixed_k else None,
        quiet=args.quiet, amp=args.amp, model_options=None if args.adapters else model_options(args),
    )
    if results:
        print(f"{len(results)} results ({len({r.language for r in results})} languages) written to "
              f"{args.out}/results.json and {args.out}/results.csv")
    return 0
