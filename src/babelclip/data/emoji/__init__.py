"""Babel-Emoji's data: colour emoji pictures named by native speakers in 100+ languages, offline.

**Names** come from CLDR's emoji annotations (Debian ``unicode-cldr-core``, Unicode-DFS-2016):
per locale a short name (``type="tts"``) and a keyword list per emoji, resolved through CLDR's
locale inheritance (:mod:`.cldr`). **Pictures** are Noto Color Emoji's glyphs (Debian
``fonts-noto-color-emoji``, Apache-2.0 images) rendered once into the cache (:mod:`.render`).

**The emoji set** (:func:`load_emoji`), rule by rule:

1. An emoji is an entry of ``common/annotations/en.xml`` with a ``tts`` name: CLDR's base
   emoji. ``annotationsDerived`` (skin-tone variants ``👋🏽``, flags, keycaps, gendered and
   professional ZWJ sequences) is not used: its names are composed by CLDR's tooling from
   patterns and component names ("waving hand: medium skin tone", "flag: Germany"), not
   written per emoji, and skin-tone variants are the same picture recoloured. So no emoji of
   the set carries a skin-tone modifier.
2. Its id is its code points without variation selectors (:func:`~.cldr.emoji_id`):
   ``U+263A`` and ``U+263A U+FE0F`` are one emoji ``263a``; ZWJ sequences keep their joiners
   (``1f636-200d-1f32b``). Every locale file is read through the same normalisation.
3. Left out: Unicode's emoji *components* (the five skin-tone modifiers ``1f3fb``–``1f3ff``
   and the four hair components ``1f9b0``–``1f9b3``: colour swatches and hair fragments, not
   pictures of a thing), ASCII characters (``#``, ``*``, digits: keycap bases drawn as plain
   text glyphs, their names describe a character), and every entry the font draws as no single
   colour glyph (CLDR also names ~370 symbols such as ``→`` and ``£`` that the emoji font does
   not have). :attr:`EmojiData.excluded` gives each left-out id with its reason.

**Per language**, the emoji named there; two emoji with the same name in a language (compared
case-folded) are both left out of that language's classification (no picture could tell them
apart by name) and counted in :attr:`EmojiData.duplicate_names`.

**The split** (:func:`emoji_half`): ``train`` when the first byte of
``SHA-256("babel-emoji:" + id)`` (the id as ASCII) is even, else ``eval``. It depends on the
id alone (not on the font, the CLDR release, the machine or the set), so an emoji stays in its
half forever. CLDR training sources use the ``train`` half by default
(:func:`babelclip.train.sources.cldr_pairs`); a model trained on CLDR text is scored on the
``eval`` half; :mod:`babelclip.train.leakage` marks results where the two meet.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .cldr import CLDR_LICENCE, LocaleAnnotations, cldr_root, emoji_id, emoji_text, load_annotations
from .render import FONT_LICENCE, font_path, render_all

if TYPE_CHECKING:  # pragma: no cover
    from ..images import ImageSource
    from ..labels import LabelSet

log = logging.getLogger(__name__)

__all__ = [
    "EmojiData", "KeywordQueries", "emoji_half", "emoji_id", "emoji_images", "emoji_keyword_queries",
    "emoji_labelset", "emoji_names", "halves_meet", "in_half", "load_emoji", "HALVES",
]

Half = Literal["all", "train", "eval"]
HALVES = ("all", "train", "eval")
SPLIT_SALT = "babel-emoji:"
COMPONENTS = frozenset(f"{c:x}" for c in [*range(0x1F3FB, 0x1F400), *range(0x1F9B0, 0x1F9B4)])
LICENCE = f"names: {CLDR_LICENCE}; pictures: {FONT_LICENCE}"
NAME = "babel-emoji"


@functools.lru_cache(maxsize=None)
def emoji_half(eid: str) -> str:
    """``"train"`` or ``"eval"``: the fixed split of the module docstring (variation selectors
    and the form of the id do not matter: ``"263A-FE0F"`` is ``"263a"``)."""
    eid = "-".join(p for p in eid.lower().split("-") if p not in ("fe0e", "fe0f"))
    return "train" if hashlib.sha256((SPLIT_SALT + eid).encode("ascii")).digest()[0] % 2 == 0 else "eval"


def in_half(ids, half: Half) -> list[str]:
    """Those of ``ids`` in ``half`` (``all``: every one), order kept."""
    if half not in HALVES:
        raise ValueError(f"unknown emoji half {half!r}; allowed: {', '.join(HALVES)}")
    return [i for i in ids if half == "all" or emoji_half(i) == half]


def halves_meet(trained: Half, scored: Half) -> bool:
    """Whether emoji of half ``trained`` are among those of half ``scored`` (``all`` meets everything)."""
    for h in (trained, scored):
        if h not in HALVES:
            raise ValueError(f"unknown emoji half {h!r}; allowed: {', '.join(HALVES)}")
    return "all" in (trained, scored) or trained == scored


def _excluded_reason(eid: str) -> str:
    if eid in COMPONENTS:
        return "an emoji component (skin-tone modifier or hair component), not a picture of a thing"
    if "-" not in eid and int(eid, 16) < 0x80:
        return "an ASCII character (keycap base drawn as a text glyph)"
    return ""


@dataclass
class EmojiData:
    """The emoji set with pictures, the resolved annotations of every language, and what was left out."""

    ids: tuple[str, ...]  # emoji with a picture, in code-point order
    folder: Path  # the rendered pictures, ``folder / f"{id}.png"``
    annotations: dict[str, LocaleAnnotations]  # BCP-47 tag -> names and keywords
    excluded: dict[str, str] = field(default_factory=dict)  # id -> why it is not in the set
    duplicate_names: dict[str, int] = field(default_factory=dict)  # tag -> emoji dropped for sharing a name
    _unique: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)  # tag -> names without duplicates

    def languages(self) -> list[str]:
        return list(self.annotations)


def load_emoji(
    cldr: str | os.PathLike | None = None, font: str | os.PathLike | None = None, cache: str | os.PathLike | None = None
) -> EmojiData:
    """The emoji set (rules in the module docstring), its pictures rendered into the cache once."""
    annotations = load_annotations(cldr_root(cldr))
    if "en" not in annotations:
        raise FileNotFoundError(f"no English annotations (en.xml) under {cldr_root(cldr) / 'annotations'}")
    english = annotations["en"].names
    excluded = {e: r for e in english if (r := _excluded_reason(e))}
    wanted = {e: emoji_text(e) for e in english if e not in excluded}
    folder, failed = render_all(wanted, font_path(font), cache)
    excluded.update(failed)
    ids = tuple(sorted((e for e in wanted if e not in failed), key=lambda e: [int(h, 16) for h in e.split("-")]))
    data = EmojiData(ids, folder, annotations, excluded)
    for tag in annotations:
        emoji_names(data, tag)  # fills duplicate_names
    log.info("babel-emoji: %d emoji with pictures (%d left out), %d languages", len(ids), len(excluded), len(annotations))
    return data


def emoji_names(data: EmojiData, tag: str, half: Half = "all") -> dict[str, str]:
    """``{id: name}`` in language ``tag`` for the emoji of ``half`` that have a picture, without
    names two emoji share there."""
    if tag not in data._unique:
        names = data.annotations[tag].names
        ids = [e for e in data.ids if e in names]
        count: dict[str, int] = {}
        for e in ids:
            key = names[e].casefold()
            count[key] = count.get(key, 0) + 1
        data.duplicate_names[tag] = sum(1 for e in ids if count[names[e].casefold()] > 1)
        data._unique[tag] = {e: names[e] for e in ids if count[names[e].casefold()] == 1}
    unique = data._unique[tag]
    return unique if half == "all" else {e: unique[e] for e in in_half(unique, half)}


def emoji_labelset(data: EmojiData, half: Half = "all") -> LabelSet:
    """A :class:`~babelclip.data.labels.LabelSet` over the emoji of ``half`` (``wnids`` are emoji ids),
    named ``babel-emoji-<half>`` so results of the halves stay apart."""
    from ..labels import LabelSet

    ids = tuple(in_half(data.ids, half))
    pos = {e: i for i, e in enumerate(ids)}
    labels = {}
    for tag in data.annotations:
        names = emoji_names(data, tag, half)
        if names:
            labels[tag] = {pos[e]: n for e, n in names.items()}
    return LabelSet(f"{NAME}-{half}", ids, labels, licence=LICENCE)


def emoji_images(data: EmojiData) -> ImageSource:
    """Every emoji picture as an :class:`~babelclip.data.images.ImageSource` (ids and classes are
    emoji ids; each picture is its own class)."""
    from ..images import ImageItem, ImageSource

    items = [ImageItem(e, str(data.folder / f"{e}.png"), i) for i, e in enumerate(data.ids)]
    return ImageSource(NAME, items, data.ids)


@dataclass
class KeywordQueries:
    """Keyword → emoji retrieval: per language, each keyword with every emoji that carries it.

    ``images`` are emoji ids; ``queries[tag]`` lists ``(keyword, [positions in images])``.
    """

    name: str
    images: list[str]
    queries: dict[str, list[tuple[str, list[int]]]]

    def languages(self) -> list[str]:
        return list(self.queries)


def emoji_keyword_queries(data: EmojiData, half: Half = "all") -> KeywordQueries:
    """The keyword queries of every language over the emoji of ``half``.

    Keywords are grouped case-folded (``Dog`` and ``dog`` are one query, written as first seen,
    in code-point order of the emoji); the relevant emoji of a query are all emoji of ``half``
    whose keyword list in that language holds it.
    """
    ids = in_half(data.ids, half)
    pos = {e: i for i, e in enumerate(ids)}
    queries: dict[str, list[tuple[str, list[int]]]] = {}
    for tag, ann in data.annotations.items():
        groups: dict[str, tuple[str, dict[int, None]]] = {}  # case-folded -> (as first seen, positions in order)
        for e in ids:
            for kw in ann.keywords.get(e, ()):
                groups.setdefault(kw.casefold(), (kw, {}))[1][pos[e]] = None
        if groups:
            queries[tag] = [(kw, list(rel)) for kw, rel in groups.values()]
    return KeywordQueries(f"{NAME}-keywords-{half}", ids, queries)
