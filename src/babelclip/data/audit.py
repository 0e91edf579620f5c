"""Quality audit of a :class:`~babelclip.data.labels.LabelSet`, one row per language.

What is counted, and why it matters for zero-shot classification:

- **coverage**: classes with a label / classes of the set.
- **collisions**: two or more classes with the same label (compared by :func:`collision_key`:
  NFKC, case-folded, outer whitespace stripped). Such classes cannot be told apart from the text
  side. Counted as the number of classes beyond the first in each group (the classes one would
  have to drop to make the labels unique); ``collision_groups`` lists them.
- **disambiguators**: labels containing a parenthesised part, e.g. "Jay (burung)": BabelNet's
  Wikipedia-title disambiguation, text a native speaker would not write in a caption.
- **scripts**: labels per script (see :func:`babelclip.data.scripts_unicode.label_script`) and
  how many are not in the script of the language's tag (Traditional characters in ``zh-Hans``,
  Latin in Serbian Cyrillic).
- **same_as_english**: labels identical (by collision key) to the English label of the same
  class in the set: untranslated loans or English leaking into the language.

On the raw 92-language release (``babel_imagenet.json``, its 93 entries including English),
collisions total 214 and disambiguators 685: the figures of the reference README.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from ..languages import UnknownLanguageError, get_language
from .labels import LabelSet
from .scripts_unicode import label_script

DISAMBIGUATOR = re.compile(r"\(.*\)")


def collision_key(label: str) -> str:
    """The form in which two labels count as the same: NFKC, case-folded, stripped."""
    return unicodedata.normalize("NFKC", label).casefold().strip()


def collision_groups(per_class: dict[int, str]) -> list[list[int]]:
    """Groups (sorted class indices, sorted by first index) of classes sharing one label."""
    by_key: dict[str, list[int]] = defaultdict(list)
    for i in sorted(per_class):
        by_key[collision_key(per_class[i])].append(i)
    return sorted((g for g in by_key.values() if len(g) > 1), key=lambda g: g[0])


def expected_script(tag: str) -> str:
    """ISO 15924 script of a tag from the language table ("" when not known)."""
    try:
        return get_language(tag).script
    except UnknownLanguageError:
        return ""


@dataclass
class LanguageAudit:
    lang: str
    n_labels: int
    n_classes: int
    collisions: int
    disambiguators: int
    expected_script: str
    off_script: int
    same_as_english: int
    scripts: dict[str, int] = field(default_factory=dict)
    collision_groups: list[list[int]] = field(default_factory=list)

    @property
    def coverage(self) -> float:
        return self.n_labels / self.n_classes if self.n_classes else 0.0


def audit_language(ls: LabelSet, tag: str) -> LanguageAudit:
    per_class = ls.labels[tag]
    groups = collision_groups(per_class)
    script = expected_script(tag)
    scripts = (
        Counter(label_script(lab, script) for lab in per_class.values()) if script else Counter()
    )
    english = ls.labels.get("en", {}) if tag != "en" else {}
    same_en = sum(
        1
        for i, lab in per_class.items()
        if i in english and collision_key(english[i]) == collision_key(lab)
    )
    return LanguageAudit(
        lang=tag,
        n_labels=len(per_class),
        n_classes=len(ls.wnids),
        collisions=sum(len(g) - 1 for g in groups),
        disambiguators=sum(1 for lab in per_class.values() if DISAMBIGUATOR.search(lab)),
        expected_script=script,
        off_script=sum(n for s, n in scripts.items() if s not in (script, "none")),
        same_as_english=same_en,
        scripts=dict(scripts.most_common()),
        collision_groups=groups,
    )


def audit(ls: LabelSet) -> list[LanguageAudit]:
    """One :class:`LanguageAudit` per language, in the set's language order."""
    return [audit_language(ls, tag) for tag in ls.languages()]


def totals(rows: list[LanguageAudit]) -> dict[str, int]:
    """Sums over languages of the counted defects."""
    return {
        "languages": len(rows),
        "labels": sum(r.n_labels for r in rows),
        "collisions": sum(r.collisions for r in rows),
        "disambiguators": sum(r.disambiguators for r in rows),
        "off_script": sum(r.off_script for r in rows),
        "same_as_english": sum(r.same_as_english for r in rows),
    }


def format_audit(rows: list[LanguageAudit], ls: LabelSet | None = None, examples: int = 0) -> str:
    """A plain-text table (tab-separated), totals last; ``examples`` collision groups per language."""
    head = "lang\tlabels\tcoverage\tcollisions\tdisambiguators\tscript\toff_script\tsame_as_en\tscripts"
    lines = [head]
    for r in rows:
        lines.append(
            f"{r.lang}\t{r.n_labels}\t{r.coverage:.3f}\t{r.collisions}\t{r.disambiguators}\t"
            f"{r.expected_script or '?'}\t{r.off_script}\t{r.same_as_english}\t"
            + ",".join(f"{s}:{n}" for s, n in r.scripts.items())
        )
        if ls is not None:
            for g in r.collision_groups[:examples]:
                lines.append(
                    f"#  {r.lang} collision: "
                    + " | ".join(f"{i} {ls.wnids[i]} {ls.labels[r.lang][i]!r}" for i in g)
                )
    t = totals(rows)
    lines.append("TOTAL\t" + "\t".join(f"{k}={v}" for k, v in t.items()))
    return "\n".join(lines)
