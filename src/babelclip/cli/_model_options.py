"""``--model-option KEY=VALUE``: a model family's own options (``create_model(name, KEY=VALUE)``,
:mod:`babelclip.models.options`) from the command line. VALUE is read as JSON where it parses
(``true``, ``3``, ``null``, ``{"a": 1}``), else taken as text (a path, a mapping name); the
family checks each key and value and names the allowed ones when one is wrong."""
from __future__ import annotations

import argparse
import json
from typing import Any


def _pair(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. nllb_mapping=paper), got {text!r}")
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    return key.strip(), parsed


def add_model_option_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-option", dest="model_options", action="append", type=_pair, default=[],
                   metavar="KEY=VALUE",
                   help="an option of the model's family, repeatable (e.g. nllb_mapping=english, "
                        "hf_text_dir=/local/hf/model, pretrained=false); `babelclip models` says each family's")


def model_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--model-option`` pairs as keyword arguments (a key given twice is an error)."""
    out: dict[str, Any] = {}
    for key, value in args.model_options:
        if key in out:
            raise ValueError(f"--model-option {key} given twice ({out[key]!r} and {value!r}); give it once")
        out[key] = value
    return out
