"""Prompt templates per language: label-only, OpenAI's 80 English templates, NLLB translations.

A template holds exactly one ``{}`` slot for the class label. Sets:

- :func:`label_only` — ``"{}"``, the label alone (Babel-ImageNet's main setting).
- :func:`openai_english` — the 80 templates of Radford et al. (2021), for every language. This is
  also :data:`english_templates_native_labels`: English templates around native-language labels
  ("a photo of a Schleie."), the other setting of the Babel-ImageNet paper. Both names return
  the same set, named ``"openai-en"``.
- :func:`load_nllb_prompts` — the 80 templates machine-translated with NLLB-1.3B-distilled into
  90 languages, released with Babel-ImageNet (``nllb_dist13b_prompts.json``).

Released templates are cleaned by :func:`normalise_template` (rule below) and de-duplicated
(first occurrence kept, counts recorded in :attr:`PromptSet.counts`). ``raw=True`` (the prompt set
``nllb-raw``) keeps them exactly as released, duplicates included, as CLIP_benchmark 1.6.2 and the
Babel-ImageNet reference code use them: every template filled with the label (the file's templates
have one ``{}`` each, so filling the first slot equals their ``str.format``), the class embedding
the mean over all of them, so a template listed twice weighs twice.

Languages with no translated templates (Breton, West Frisian and Latin in the NLLB release) are
handled by an explicit ``fallback`` policy, never silently: ``"english"`` uses the English
templates, ``"label"`` the label alone, ``"skip"`` none (the language gets no result for the set, as
in the Babel-ImageNet reference code), ``"error"`` raises. Every language that fell back is
recorded in :attr:`PromptSet.fallbacks` and logged once, so results can report it.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..languages import UnknownLanguageError
from .imagenet import openai_templates
from .labels import read_json, release_file, resolve_code

log = logging.getLogger(__name__)

Fallback = Literal["english", "label", "error", "skip"]
FALLBACKS: tuple[str, ...] = ("english", "label", "error", "skip")
NLLB_PROMPTS_FILE = "nllb_dist13b_prompts.json"
SLOT = "{}"

_WS = re.compile(r"\s+")
_OPEN_QUOTES = "\"'«„“‘「『‹"
_CLOSE_QUOTES = "\"'»“”’」』›"
_QUOTED_SLOT = re.compile(rf"([{_OPEN_QUOTES}])\s*\{{\}}\s*([{_CLOSE_QUOTES}])")
_SLOT_PUNCT = re.compile(r"\{\}\s+([.,。、])")


def normalise_template(t: str) -> str:
    """Whitespace normalisation of one template, in this order:

    1. every run of whitespace becomes one space; leading and trailing space is removed
       (``" {}  悪い写真"`` -> ``"{} 悪い写真"``);
    2. spaces between a quote and the slot are removed (``'" {} "'`` -> ``'"{}"'``, also for
       « », „ “, 「 」 and the other quote characters listed in ``_OPEN_QUOTES``/``_CLOSE_QUOTES``);
    3. spaces between the slot and a directly following ``.``, ``,``, ``。`` or ``、`` are removed
       (``"a photo of a {} ."`` -> ``"a photo of a {}."``).

    Words and other punctuation are never changed, so a correct template stays as it is.
    """
    t = _WS.sub(" ", t).strip()
    t = _QUOTED_SLOT.sub(r"\1{}\2", t)
    return _SLOT_PUNCT.sub(r"{}\1", t)


def validate_template(t: object, where: str) -> str:
    """Return ``t`` if it is a string with exactly one ``{}`` and no other brace; else raise."""
    if not isinstance(t, str):
        raise ValueError(f"{where}: template {t!r} is not a string")
    rest = t.replace(SLOT, "", 1)
    if t.count(SLOT) != 1 or "{" in rest or "}" in rest:
        raise ValueError(
            f"{where}: template {t!r} has {t.count(SLOT)} '{{}}' slots; allowed: exactly one '{{}}' "
            "and no other braces"
        )
    return t


@dataclass
class PromptSet:
    """Templates per language (``per_language``, keyed by BCP-47 tag) or for every language
    (``default``), with an explicit fallback for languages that have neither."""

    name: str
    per_language: dict[str, tuple[str, ...]] = field(default_factory=dict)
    default: tuple[str, ...] | None = None
    fallback: Fallback = "error"
    # tag -> (templates in the file, unique as released, unique after normalisation)
    counts: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    fallbacks: dict[str, str] = field(default_factory=dict)  # tag -> policy used, filled on use
    source: str = ""

    def __post_init__(self) -> None:
        if self.fallback not in FALLBACKS:
            raise ValueError(f"fallback={self.fallback!r}; allowed: {', '.join(FALLBACKS)}")

    def languages(self) -> list[str]:
        """Tags with their own templates (empty for sets that apply to every language)."""
        return list(self.per_language)

    def has(self, lang: str) -> bool:
        """Whether ``lang`` has templates of its own (no fallback needed)."""
        return self.default is not None or resolve_code(lang, self.name) in self.per_language

    def templates(self, lang: str) -> list[str]:
        """Templates for ``lang`` (any code); applies and records the fallback policy."""
        if self.default is not None:
            return list(self.default)
        tag = resolve_code(lang, self.name)
        if tag in self.per_language:
            return list(self.per_language[tag])
        if self.fallback == "error":
            raise KeyError(
                f"prompt set {self.name!r} has no templates for {tag}; it has {len(self.per_language)} "
                "languages. Choose fallback='english' (the 80 OpenAI templates) or 'label' (label only)"
            )
        if tag not in self.fallbacks:
            log.warning(
                "prompt set %s: no templates for %s, falling back to %s",
                self.name,
                tag,
                self.fallback,
            )
        self.fallbacks[tag] = self.fallback
        if self.fallback == "skip":
            return []
        return list(openai_templates()) if self.fallback == "english" else [SLOT]

    def with_fallback(self, fallback: Fallback) -> PromptSet:
        """The same templates under another fallback policy (fresh fallback record)."""
        return PromptSet(
            self.name, self.per_language, self.default, fallback, self.counts, {}, self.source
        )


def label_only() -> PromptSet:
    """The label alone, ``"{}"``, in every language."""
    return PromptSet(name="label", default=(SLOT,))


def openai_english() -> PromptSet:
    """OpenAI CLIP's 80 English ImageNet templates (Radford et al., 2021), for every language."""
    return PromptSet(name="openai-en", default=tuple(openai_templates()))


# English templates around native-language labels: the very same set, named for the setting.
english_templates_native_labels = openai_english


def dedupe(templates: list[str]) -> tuple[str, ...]:
    """Unique templates, first occurrence order."""
    return tuple(dict.fromkeys(templates))


def load_nllb_prompts(
    path: str | os.PathLike | None = None,
    *,
    fallback: Fallback = "english",
    unknown: Literal["error", "skip"] = "error",
    allow_download: bool = True,
    raw: bool = False,
) -> PromptSet:
    """The NLLB-translated templates released with Babel-ImageNet, normalised and de-duplicated
    (``nllb``), or with ``raw=True`` exactly as released (``nllb-raw``: module docstring).

    Source order as for the labels: ``path``, clip-benchmark's copy, cache, download.
    """
    p = release_file(NLLB_PROMPTS_FILE, path, allow_download=allow_download)
    doc = read_json(p, '{"CODE": ["template with {}", ...], ...}')
    return prompts_from_dict(doc, source=p, name="nllb-raw" if raw else "nllb", fallback=fallback, unknown=unknown,
                             raw=raw)


def prompts_from_dict(
    doc: object,
    source: str | os.PathLike,
    name: str,
    *,
    fallback: Fallback = "english",
    unknown: Literal["error", "skip"] = "error",
    raw: bool = False,
) -> PromptSet:
    """Validate, normalise and de-duplicate ``{code: [template, ...]}`` (``raw``: validate only)."""
    if not isinstance(doc, dict):
        raise ValueError(
            f'{source}: top level is {type(doc).__name__}; expected {{"CODE": [templates]}}'
        )
    per_language: dict[str, tuple[str, ...]] = {}
    counts: dict[str, tuple[int, int, int]] = {}
    skipped: list[str] = []
    for code, templates in doc.items():
        where = f"{source}: language {code!r}"
        if not isinstance(templates, list) or not templates:
            raise ValueError(f"{where}: expected a non-empty list of templates")
        try:
            tag = resolve_code(code, source)
        except UnknownLanguageError:
            if unknown == "skip":
                skipped.append(str(code))
                continue
            raise
        checked = [validate_template(t, f"{where}, template {k}") for k, t in enumerate(templates)]
        per_language[tag] = tuple(checked) if raw else dedupe([normalise_template(t) for t in checked])
        counts[tag] = (len(templates), len(set(templates)), len(per_language[tag]))
    if skipped:
        log.warning(
            "%s: skipped %d unknown language codes: %s", source, len(skipped), ", ".join(skipped)
        )
    return PromptSet(
        name=name,
        per_language=per_language,
        fallback=fallback,
        counts=counts,
        source=str(Path(source)),
    )


def reference_nllb_prompts(path: str | os.PathLike | None = None, *, allow_download: bool = True) -> PromptSet:
    """The NLLB templates as the Babel-ImageNet reference code uses them (``--protocol paper``):
    raw (``nllb-raw``), a language without templates gets none (``fallback="skip"``), and English
    takes OpenAI's 80 templates rather than the release file's ``EN`` entry (a re-spaced copy
    with two duplicates)."""
    ps = load_nllb_prompts(path, fallback="skip", allow_download=allow_download, raw=True)
    ps.per_language["en"] = tuple(openai_templates())
    return ps
