"""Multilingual class labels: the :class:`LabelSet` and loaders for the Babel-ImageNet release.

Babel-ImageNet (Geigle et al., 2024, "Babel-ImageNet: Massively Multilingual Evaluation of
Vision-and-Language Representations") gives ImageNet-1k classes labels in 92 (and 298)
languages, taken from BabelNet 5.2. Its files map a BabelNet language code to two parallel
lists, ``{"DE": [[class_idx, ...], [label, ...]], ...}``, class indices in the standard ImageNet-1k
order. The labels are under the BabelNet Non-Commercial License, so babelclip never ships them:
:func:`release_file` finds a user's copy (a local path, the copy inside an installed
``clip-benchmark`` package, or a download from the Babel-ImageNet repository into a cache).

Inside babelclip a label set is keyed by BCP-47 tags (codes are converted through
:mod:`babelclip.languages` at load time) and by class index into ``wnids``.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request  # noqa: F401 (tests replace urlopen through it)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..languages import UnknownLanguageError, get_language
from .imagenet import imagenet_classes, imagenet_wnids

# Release files are found in .release_files; re-exported here, where the loaders were always imported from.
from .release_files import (  # noqa: F401
    RELEASE_COMMIT,
    RELEASE_FILES,
    RELEASE_REPO,
    RELEASE_URL,
    download,
    release_file,
)

log = logging.getLogger(__name__)

BABELNET_LICENCE = "BabelNet Non-Commercial License (labels processed from BabelNet 5.2)"
CLIP_NAMES_LICENCE = "MIT (OpenAI CLIP class names)"
META_KEY = "__babelclip__"  # extra top-level key of files written by save_labelset
FORMAT_HINT = '{"CODE": [[class_idx, ...], [label, ...]], ...}'


@dataclass
class LabelSet:
    """Class labels per language.

    ``labels[tag][i]`` is the label of class ``i`` (the wnid ``wnids[i]``) in language ``tag``;
    a class with no label in a language is absent from that language's dict. ``cleaning`` names
    the policies applied (``"raw"`` for the release as published), and :attr:`id` carries it
    into every result.
    """

    name: str
    wnids: tuple[str, ...]
    labels: dict[str, dict[int, str]]
    provenance: dict[str, dict[int, str]] = field(default_factory=dict)
    cleaning: str = "raw"
    licence: str = ""
    skipped: tuple[str, ...] = ()  # file codes left out at load time (unknown languages)

    @property
    def id(self) -> str:
        return f"{self.name}/{self.cleaning}"

    def languages(self) -> list[str]:
        """BCP-47 tags in file order."""
        return list(self.labels)

    def resolve(self, lang: str) -> str:
        """The tag under which ``lang`` (any code) is held; KeyError naming the tags held."""
        tag = get_language(lang).tag
        if tag not in self.labels:
            raise KeyError(
                f"label set {self.id!r} has no labels for {lang!r} ({tag}); it has {len(self.labels)} "
                f"languages: {', '.join(self.labels)}"
            )
        return tag

    def classes(self, lang: str) -> tuple[list[int], list[str]]:
        """Class indices (sorted) that have a label in ``lang``, and those labels."""
        per_class = self.labels[self.resolve(lang)]
        idx = sorted(per_class)
        return idx, [per_class[i] for i in idx]

    def replace(self, **changes: Any) -> LabelSet:
        """A copy with some fields replaced (label dicts are copied, never shared)."""
        kw = dict(
            name=self.name,
            wnids=self.wnids,
            labels={t: dict(d) for t, d in self.labels.items()},
            provenance={t: dict(d) for t, d in self.provenance.items()},
            cleaning=self.cleaning,
            licence=self.licence,
            skipped=self.skipped,
        )
        kw.update(changes)
        return LabelSet(**kw)


def read_json(path: Path, expected: str) -> Any:
    """Parse a JSON file; a malformed one raises ValueError naming the file, position and format."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path}: malformed JSON at line {e.lineno} column {e.colno} ({e.msg}); expected {expected}"
        ) from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e}); expected JSON {expected}") from None


# ---------------------------------------------------------------------------------------------
# Parsing the release format.


def resolve_code(code: str, source: str | os.PathLike) -> str:
    """BCP-47 tag of a file's language code; raises naming the file and code when unknown."""
    try:
        return get_language(code).tag
    except UnknownLanguageError as e:
        raise UnknownLanguageError(f"{source}: language {code!r}: {e}") from None


def parse_release(
    doc: Any,
    source: str | os.PathLike,
    n_classes: int,
    *,
    unknown: Literal["error", "skip"] = "error",
) -> tuple[dict[str, dict[int, str]], dict[str, str], list[str]]:
    """Validate a release document; return (labels by tag, tag -> file code, skipped codes).

    Every bad entry raises ValueError naming the file, the language entry and what is allowed.
    """
    if not isinstance(doc, dict):
        raise ValueError(
            f"{source}: top level is {type(doc).__name__}; expected an object {FORMAT_HINT}"
        )
    labels: dict[str, dict[int, str]] = {}
    codes: dict[str, str] = {}
    skipped: list[str] = []
    for code, entry in doc.items():
        if code == META_KEY:
            continue
        where = f"{source}: entry {code!r}"
        if not (
            isinstance(entry, list) and len(entry) == 2 and all(isinstance(x, list) for x in entry)
        ):
            raise ValueError(f"{where}: expected [[class_idx, ...], [label, ...]]")
        idx, labs = entry
        if len(idx) != len(labs):
            raise ValueError(
                f"{where}: {len(idx)} class indices but {len(labs)} labels; the lists must be parallel"
            )
        per_class: dict[int, str] = {}
        for i, lab in zip(idx, labs):
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n_classes:
                raise ValueError(
                    f"{where}: class index {i!r} out of range; allowed: integers 0..{n_classes - 1}"
                )
            if not isinstance(lab, str) or not lab.strip():
                raise ValueError(
                    f"{where}: label of class {i} is {lab!r}; expected a non-empty string"
                )
            if i in per_class:
                raise ValueError(f"{where}: class index {i} appears twice")
            per_class[i] = lab
        try:
            tag = resolve_code(code, source)
        except UnknownLanguageError:
            if unknown == "skip":
                skipped.append(code)
                continue
            raise
        if tag in labels:
            raise ValueError(f"{where}: language {tag} already given by entry {codes[tag]!r}")
        labels[tag] = per_class
        codes[tag] = code
    if skipped:
        log.warning(
            "%s: skipped %d unknown language codes: %s", source, len(skipped), ", ".join(skipped)
        )
    return labels, codes, skipped


def _file_meta(doc: Any, path: Path) -> dict[str, Any]:
    """The ``__babelclip__`` entry of a label file, every field type-checked (a hand-edited
    file gets a message naming the file and the field, never a traceback)."""
    meta = doc.get(META_KEY, {}) if isinstance(doc, dict) else {}
    where = f"{path}: entry {META_KEY!r}"
    wnids, prov = (meta.get("wnids"), meta.get("provenance", {})) if isinstance(meta, dict) else (None, {})
    problems = {
        "an object (name, cleaning, licence, wnids, provenance)": not isinstance(meta, dict),
        "strings for name, cleaning and licence": isinstance(meta, dict)
        and any(not isinstance(meta.get(k, ""), str) for k in ("name", "cleaning", "licence")),
        "'wnids': a list of class ids (strings)": wnids is not None
        and not (isinstance(wnids, list) and all(isinstance(w, str) and w for w in wnids)),
        "'provenance': {language: {class index: source string}}": not isinstance(prov, dict)
        or not all(isinstance(p, dict) and all(isinstance(v, str) for v in p.values()) for p in prov.values()),
    }
    bad = [what for what, wrong in problems.items() if wrong]
    if bad:
        raise ValueError(f"{where}: expected {bad[0]}; got {meta!r:.100}")
    return meta


def load_labelset(
    path: str | os.PathLike,
    *,
    name: str | None = None,
    wnids: tuple[str, ...] | None = None,
    unknown: Literal["error", "skip"] = "error",
    licence: str = "",
    provenance: str = "",
) -> LabelSet:
    """Load any file in the release format, including files written by :func:`save_labelset`
    (whose metadata gives name, wnids, cleaning, provenance and licence)."""
    path = Path(path)
    doc = read_json(path, FORMAT_HINT)
    meta = _file_meta(doc, path)
    wnids = tuple(meta.get("wnids") or wnids or imagenet_wnids())
    labels, codes, skipped = parse_release(doc, path, len(wnids), unknown=unknown)
    prov_meta = meta.get("provenance", {})
    prov: dict[str, dict[int, str]] = {}
    for tag, per_class in labels.items():
        given = prov_meta.get(codes[tag], {})
        default = provenance or f"file:{path.name}"
        prov[tag] = {i: given.get(str(i), default) for i in per_class}
    return LabelSet(
        name=name or meta.get("name") or path.stem,
        wnids=wnids,
        labels=labels,
        provenance=prov,
        cleaning=meta.get("cleaning", "raw"),
        licence=licence or meta.get("licence", ""),
        skipped=tuple(skipped),
    )


def load_babel_imagenet(
    path: str | os.PathLike | None = None,
    release: Literal["92", "298"] | None = None,
    english: Literal["babelnet", "clip"] = "babelnet",
    *,
    unknown: Literal["error", "skip"] = "error",
    allow_download: bool = True,
) -> LabelSet:
    """The Babel-ImageNet labels, raw as released.

    ``english="babelnet"`` keeps the release's English BabelNet lemmas ("Tinca tinca");
    ``"clip"`` replaces them by OpenAI CLIP's curated class names for all 1000 classes (and
    appends ``+clip-en`` to the name). ``release`` defaults to the one the file name says
    (``babel_imagenet-298.json`` -> ``"298"``), else ``"92"``. ``unknown="skip"`` leaves out languages the table does not
    know, records them in ``LabelSet.skipped`` and logs a warning; the default raises.
    """
    if release is None:
        by_name = {v: k for k, v in RELEASE_FILES.items()}
        release = by_name.get(Path(path).name, "92") if path is not None else "92"  # type: ignore[assignment]
    if release not in RELEASE_FILES:
        raise ValueError(f"unknown release {release!r}; allowed: {', '.join(RELEASE_FILES)}")
    if english not in ("babelnet", "clip"):
        raise ValueError(f"english={english!r}; allowed: babelnet, clip")
    filename = RELEASE_FILES[release]
    p = release_file(filename, path, allow_download=allow_download)
    ls = load_labelset(
        p,
        name=f"babel-imagenet-{release}",
        wnids=imagenet_wnids(),
        unknown=unknown,
        licence=BABELNET_LICENCE,
        provenance=f"babel-imagenet@{RELEASE_COMMIT[:7]}:{filename}",
    )
    if english == "clip":
        clip = imagenet_clip_labelset()
        ls.labels["en"] = clip.labels["en"]
        ls.provenance["en"] = clip.provenance["en"]
        ls.name += "+clip-en"
        ls.licence = f"{BABELNET_LICENCE}; English: {CLIP_NAMES_LICENCE}"
    return ls


def load_labels(labels: LabelSet | str | os.PathLike | None) -> LabelSet:
    """The label set a user named: a :class:`LabelSet` as is; ``None`` or a file named as a
    release file (``babel_imagenet.json``, ``babel_imagenet-298.json``) the Babel-ImageNet
    release; any other file by its own name (its ``__babelclip__`` name, else its file name), so
    results of a custom label file never pass for the published release."""
    if isinstance(labels, LabelSet):
        return labels
    if labels is None or Path(labels).name in RELEASE_FILES.values():
        return load_babel_imagenet(labels)
    return load_labelset(labels)


def imagenet_clip_labelset() -> LabelSet:
    """OpenAI CLIP's curated English ImageNet-1k class names as a one-language label set."""
    classes = imagenet_classes()
    return LabelSet(
        name="imagenet-clip-en",
        wnids=tuple(c.wnid for c in classes),
        labels={"en": {c.index: c.clip_name for c in classes}},
        provenance={"en": {c.index: "openai-clip-classnames" for c in classes}},
        licence=CLIP_NAMES_LICENCE,
    )


def file_code(tag: str) -> str:
    """The code a release file uses for a tag: the Babel-ImageNet code if known, else the tag."""
    return get_language(tag).babel or tag


def save_labelset(ls: LabelSet, path: str | os.PathLike) -> Path:
    """Write the release format plus a ``__babelclip__`` entry with wnids, provenance and licence.

    Readers of the release (clip-benchmark, Babel-ImageNet's own code) look languages up by code
    and ignore the extra key; :func:`load_labelset` restores everything.
    """
    path = Path(path)
    doc: dict[str, Any] = {}
    prov: dict[str, dict[str, str]] = {}
    for tag, per_class in ls.labels.items():
        code = file_code(tag)
        idx = sorted(per_class)
        doc[code] = [idx, [per_class[i] for i in idx]]
        prov[code] = {str(i): ls.provenance.get(tag, {}).get(i, "") for i in idx}
    doc[META_KEY] = {
        "name": ls.name,
        "cleaning": ls.cleaning,
        "licence": ls.licence,
        "wnids": list(ls.wnids),
        "provenance": prov,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path
