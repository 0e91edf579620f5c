"""Deterministic, named cleaning policies for label sets, with a diff of every change.

The Babel-ImageNet paper's numbers are on the raw release, so cleaning is opt-in: a cleaned set
carries the applied policies in :attr:`LabelSet.cleaning` (e.g.
``"normalise-script+strip-disambiguators+drop-collisions"``) and thereby in every result id.

Policies run in this fixed order whatever order they are given in (so one name means one
result):

``normalise-script``
    Convert labels to the script of the language's tag: Traditional -> Simplified characters for
    ``zh-Hans``, Simplified -> Traditional for ``zh-Hant`` (Unihan, character level), Serbian
    Latin -> Cyrillic for a Cyrillic Serbian tag (labels written wholly in Latin only).
``strip-disambiguators``
    Remove parenthesised parts after a space ("Jay (burung)" -> "Jay"; "orang-oetan(g)" stays),
    only when the stripped label collides with no other class's label in that language;
    otherwise the label is kept and the diff says why.
``resolve-collisions``
    For each group of classes sharing one label (see :func:`~babelclip.data.audit.collision_key`)
    keep the label for one class and drop it from the others. The kept class is the one for
    which the label is one of its English WordNet lemmas (compared by collision key; lemmas
    known for ImageNet-1k wnids), if exactly one class qualifies, else the class with the lowest
    index (first in class order: arbitrary but deterministic; the release keeps no sense ranks
    to do better). English "crane" (bird 134, machine 517: a lemma of both) stays with 134.
``drop-collisions``
    Drop every class of every collision group from that language: the conservative choice.

Languages left with no label are removed (and listed in the diff).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from collections.abc import Iterable

from ..languages import get_language
from .audit import DISAMBIGUATOR, collision_groups, collision_key
from .imagenet import imagenet_classes
from .labels import LabelSet
from .scripts_unicode import label_script, serbian_latin_to_cyrillic, to_simplified, to_traditional

POLICIES: tuple[str, ...] = (
    "normalise-script",
    "strip-disambiguators",
    "resolve-collisions",
    "drop-collisions",
)
_PAREN = re.compile(r"\s+\([^()]*\)")


@dataclass(frozen=True)
class Change:
    lang: str
    index: int  # class index, -1 for a whole language
    wnid: str
    old: str
    new: str | None  # None: the label was dropped
    policy: str
    note: str = ""

    def __str__(self) -> str:
        new = "(dropped)" if self.new is None else repr(self.new)
        note = f"  ({self.note})" if self.note else ""
        return (
            f"{self.lang}\t{self.index}\t{self.wnid}\t{self.old!r} -> {new}\t[{self.policy}]{note}"
        )


def format_diff(changes: Iterable[Change]) -> str:
    """One line per change: language, class, wnid, old -> new, policy (and a note)."""
    return "\n".join(str(c) for c in changes)


def _normalise_script(tag: str, per_class: dict[int, str]) -> list[tuple[int, str, str]]:
    lang = get_language(tag)
    out = []
    for i in sorted(per_class):
        old = per_class[i]
        if lang.script == "Hans":
            new = to_simplified(old)
        elif lang.script == "Hant":
            new = to_traditional(old)
        elif (
            lang.script == "Cyrl" and lang.iso639_3 == "srp" and label_script(old, "Cyrl") == "Latn"
        ):
            new = serbian_latin_to_cyrillic(old)
        else:
            continue
        if new != old:
            out.append((i, new, ""))
    return out


def _strip_disambiguators(per_class: dict[int, str]) -> list[tuple[int, str, str]]:
    out = []
    keys = {i: collision_key(lab) for i, lab in per_class.items()}
    for i in sorted(per_class):
        old = per_class[i]
        if not DISAMBIGUATOR.search(old):
            continue
        new = _PAREN.sub("", old).strip()
        if not new or new == old:
            continue
        clash = sorted(j for j, k in keys.items() if j != i and k == collision_key(new))
        if clash:
            out.append((i, old, f"kept: stripped form {new!r} would collide with class {clash[0]}"))
            continue
        keys[i] = collision_key(new)
        out.append((i, new, ""))
    return out


def _resolve_collisions(
    per_class: dict[int, str], wnids: tuple[str, ...], drop_all: bool
) -> list[tuple[int, str | None, str]]:
    by_wnid = {
        c.wnid: {collision_key(x.replace("_", " ")) for x in c.lemmas} for c in imagenet_classes()
    }
    lemmas = {i: by_wnid.get(w, set()) for i, w in enumerate(wnids)}
    out: list[tuple[int, str | None, str]] = []
    for group in collision_groups(per_class):
        label = collision_key(per_class[group[0]])
        if drop_all:
            out += [(i, None, f"shared with classes {[j for j in group if j != i]}") for i in group]
            continue
        by_lemma = [i for i in group if label in lemmas.get(i, set())]
        keep = by_lemma[0] if len(by_lemma) == 1 else group[0]
        why = "its English WordNet lemma" if len(by_lemma) == 1 else "lowest class index"
        out += [(i, None, f"label kept for class {keep} ({why})") for i in group if i != keep]
    return out


def clean(ls: LabelSet, policies: Iterable[str]) -> tuple[LabelSet, list[Change]]:
    """Apply named policies; return the cleaned copy (input untouched) and the list of changes."""
    chosen = list(dict.fromkeys(policies))
    bad = [p for p in chosen if p not in POLICIES]
    if bad:
        raise ValueError(
            f"unknown cleaning policy {', '.join(map(repr, bad))}; allowed: {', '.join(POLICIES)}"
        )
    if "resolve-collisions" in chosen and "drop-collisions" in chosen:
        raise ValueError("choose one of resolve-collisions and drop-collisions, not both")
    ordered = [p for p in POLICIES if p in chosen]
    if not ordered:
        return ls.replace(), []
    out = ls.replace()
    changes: list[Change] = []
    for policy in ordered:
        for tag in list(out.labels):
            per_class = out.labels[tag]
            if policy == "normalise-script":
                edits = _normalise_script(tag, per_class)
            elif policy == "strip-disambiguators":
                edits = _strip_disambiguators(per_class)
            else:
                edits = _resolve_collisions(
                    per_class, ls.wnids, drop_all=policy == "drop-collisions"
                )
            for i, new, note in edits:
                old = per_class[i]
                changes.append(Change(tag, i, ls.wnids[i], old, new, policy, note))
                if new is None:
                    del per_class[i]
                    out.provenance.get(tag, {}).pop(i, None)
                elif new != old:
                    per_class[i] = new
                    prov = out.provenance.setdefault(tag, {})
                    prov[i] = f"{prov.get(i, '')}; {policy}".lstrip("; ")
    for tag in [t for t, d in out.labels.items() if not d]:
        del out.labels[tag]
        out.provenance.pop(tag, None)
        changes.append(Change(tag, -1, "", "(language)", None, "empty", "no label left"))
    base = "" if ls.cleaning == "raw" else ls.cleaning + "+"
    out.cleaning = base + "+".join(ordered)
    return out, changes
