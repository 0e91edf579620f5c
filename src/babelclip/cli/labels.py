"""``babelclip labels audit|clean|build``: label-set quality report, cleaning, building."""

from __future__ import annotations

import argparse


def _add_input(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--file", help="a label file in the release format (default: find/download the release)"
    )
    p.add_argument(
        "--release", choices=("92", "298"), help="Babel-ImageNet release (default: from the file name, else 92)"
    )
    p.add_argument(
        "--english", choices=("babelnet", "clip"), default="babelnet", help="English labels to use"
    )
    p.add_argument(
        "--skip-unknown",
        action="store_true",
        help="leave out language codes the table does not know",
    )


def _load(args: argparse.Namespace):
    from ..data.labels import load_babel_imagenet

    return load_babel_imagenet(
        args.file,
        release=args.release,
        english=args.english,
        unknown="skip" if args.skip_unknown else "error",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("labels", help="audit, clean or build multilingual label sets")
    s = p.add_subparsers(dest="labels_command", metavar="ACTION")

    a = s.add_parser(
        "audit", help="per-language report: coverage, collisions, disambiguators, scripts"
    )
    _add_input(a)
    a.add_argument("--examples", type=int, default=0, help="collision groups to show per language")
    a.set_defaults(func=run_audit)

    c = s.add_parser(
        "clean", help="apply named cleaning policies, print the diff, write the result"
    )
    _add_input(c)
    c.add_argument(
        "--policy",
        action="append",
        required=True,
        help="normalise-script | strip-disambiguators | resolve-collisions | drop-collisions (repeatable)",
    )
    c.add_argument("-o", "--output", help="write the cleaned set here (release format + metadata)")
    c.set_defaults(func=run_clean)

    b = s.add_parser("build", help="build labels for WordNet synsets from BabelNet or OMW")
    b.add_argument(
        "--wnids", default="imagenet", help="'imagenet' or a text file with one wnid per line"
    )
    b.add_argument("--langs", required=True, help="comma-separated language codes")
    b.add_argument(
        "--source",
        action="append",
        choices=("babelnet", "omw"),
        required=True,
        help="repeatable, in order",
    )
    b.add_argument(
        "--omw-lexicon",
        action="append",
        help="wn lexicon ids/specifiers to use (default: all installed)",
    )
    b.add_argument("--name", default="custom", help="name of the built label set")
    b.add_argument("-o", "--output", required=True, help="output JSON (release format + metadata)")
    b.set_defaults(func=run_build)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def run_audit(args: argparse.Namespace) -> int:
    from ..data.audit import audit, format_audit

    ls = _load(args)
    print(
        f"# {ls.id}  ({len(ls.languages())} languages; skipped: {', '.join(ls.skipped) or 'none'})"
    )
    print(format_audit(audit(ls), ls, examples=args.examples))
    return 0


def run_clean(args: argparse.Namespace) -> int:
    from ..data.clean import clean, format_diff
    from ..data.labels import save_labelset

    cleaned, diff = clean(_load(args), args.policy)
    print(format_diff(diff))
    print(f"# {cleaned.id}: {len(diff)} changes")
    if args.output:
        print(f"# written {save_labelset(cleaned, args.output)}")
    return 0


def run_build(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..build.builder import build_labelset
    from ..data.imagenet import imagenet_wnids
    from ..data.labels import save_labelset

    if args.wnids == "imagenet":
        wnids = list(imagenet_wnids())
    else:
        wnids = [
            w.strip()
            for w in Path(args.wnids).read_text(encoding="utf-8").splitlines()
            if w.strip() and not w.startswith("#")
        ]
    sources = []
    for name in args.source:
        if name == "babelnet":
            from ..build.babelnet import BabelNetSource

            sources.append(BabelNetSource())
        else:
            from ..build.omw import OMWSource

            sources.append(OMWSource(args.omw_lexicon))
    ls = build_labelset(wnids, args.langs.split(","), sources, name=args.name)
    for tag in ls.languages():
        print(f"{tag}\t{len(ls.labels[tag])}/{len(wnids)} classes")
    print(f"# written {save_labelset(ls, args.output)}")
    return 0
