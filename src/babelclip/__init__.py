"""babelclip: evaluate and improve multilingual vision-language models in every language.

The public API is small and explicit; heavy dependencies (torch, open_clip, transformers) are
imported only when a model is created or a task runs.
"""
from __future__ import annotations

from .data.labels import LabelSet, load_babel_imagenet
from .data.prompts import PromptSet
from .eval.report import make_report
from .eval.results import Result, load_results
from .eval.run import evaluate
from ._version import __version__
from .languages import Language, all_languages, get_language, resolve_languages
from .models.base import Encoder, Fingerprint, WeightsNotFoundError
from .models.registry import DEFAULT_MODEL, create_model, list_models


__all__ = [
    "DEFAULT_MODEL",
    "Encoder",
    "Fingerprint",
    "LabelSet",
    "Language",
    "PromptSet",
    "Result",
    "WeightsNotFoundError",
    "__version__",
    "all_languages",
    "create_model",
    "evaluate",
    "get_language",
    "list_models",
    "load_babel_imagenet",
    "load_results",
    "make_report",
    "resolve_languages",
]
