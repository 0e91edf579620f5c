"""Never train on evaluation data: drop training pairs copied from an evaluation set, count the rest.

Two kinds of match between training pairs and evaluation texts are told apart:

- **copies** (dropped): the target side is a whole evaluation *sentence* (at least
  ``min_sentence_words`` words — a sentence that long does not turn up in another source by
  chance); or, for data of unknown provenance (a user's file), the pair *is* an evaluation
  item: its English and target sides are the English and ``lang`` texts of the same Tux Paint
  stamp or the same Babel-ImageNet class (a label-file entry used as a pair);
- **overlap** (kept, reported): any other target text equal to an evaluation text in that
  language. For a corpus marked independent (``corpus.meta["independent"] == "yes"``: CLDR,
  Bibles — written without the evaluation sets), short exact matches, even whole label pairs
  (CLDR's "dog" ↔ "mbwa" equals Swahili's Babel-ImageNet entry), are legitimate knowledge of
  the language and count here. They help the score, so :class:`LeakageReport` gives their count
  and the fraction of the evaluation set they touch, to be printed beside the results.

A corpus is independent only of evaluation sets it was not built from: CLDR corpora are
independent of Tux Paint and Babel-ImageNet, but not of Babel-Emoji (:func:`emoji_eval_set`,
whose ``shares_source`` is ``cldr:``), so a CLDR pair that is a Babel-Emoji evaluation item (an
emoji's name pair or keyword-list pair in the evaluation half) is a copy and is dropped. CLDR
sources take the training half by default, so that drops nothing; ``cldr:all`` loses the
evaluation half here.

**Marking results.** A model trained on CLDR text and scored on Babel-Emoji meets its training
data when the scored emoji include the half it trained on: :func:`adapter_emoji_training` reads
what each language's adapter was trained on, and :func:`mark_emoji_results` marks every such
result (``extra["leakage"]``); Babel-Emoji's evaluation half stays clean for a model trained on the
training half.

**Synonym sets** (the lexical objective, :func:`filter_synonym_leakage`) follow the same
policy member by member, in every language of the sets: a member equal to an evaluation text
of its language is a copy when it is a sentence, or when the sets are not independent of that
evaluation set; otherwise it is overlap (kept, counted for the trained language). A set whose
source is of unknown provenance or not independent at all (BabelNet synsets: Babel-ImageNet's
labels are BabelNet lemmas) and that holds a copy *is* an evaluation item's concept and is
dropped whole; a CLDR set only loses the copied member (it is another emoji whose text happens
to equal an evaluation-half emoji's). A set keyed ``cldr:<emoji id>`` outside Babel-Emoji's
training half is dropped whole, whatever its source says.

Texts are compared after Unicode NFKC, case folding, punctuation removal and whitespace collapse.
"""
from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from ..languages import Language, get_language
from .parallel import ParallelCorpus
from .synonyms import SynonymSet, SynonymSets

log = logging.getLogger(__name__)


def normalise(text: str) -> str:
    """The comparison key of a text: NFKC, casefold, punctuation/symbols → space, spaces collapsed.

    Letters, combining marks and digits are kept: the vowel signs of Khmer, Devanagari, Thai...
    are marks (``Mn``/``Mc``), and treating them as separators would split every word.
    """
    t = unicodedata.normalize("NFKC", text).casefold()
    return " ".join("".join(" " if unicodedata.category(c)[0] in "PSZC" else c for c in t).split())


@dataclass
class EvalSet:
    """The texts of one evaluation set: per language tag, ``{item id: text}`` (English under "en")."""

    name: str
    texts: dict[str, dict[str, str]]
    shares_source: str = ""  # corpora whose ``source`` starts with this were built from it: never independent

    def items(self, lang: Language) -> list[tuple[str, str, str]]:
        """``(item id, english, target)`` for items with a text in both English and ``lang``."""
        en, tgt = self.texts.get("en", {}), self.texts.get(lang.tag, {})
        return [(i, en.get(i, ""), t) for i, t in tgt.items()]


def tuxpaint_eval_set(root: str | None = None) -> EvalSet:
    """Every Tux Paint stamp description (the retrieval queries), keyed by stamp id."""
    from ..data.tuxpaint import DEFAULT_ROOT, find_stamps

    return stamps_eval_set(find_stamps(root or DEFAULT_ROOT)[0])


def stamps_eval_set(stamps) -> EvalSet:
    """:func:`tuxpaint_eval_set` of stamps already read with :func:`~babelclip.data.tuxpaint.find_stamps`."""
    texts: dict[str, dict[str, str]] = {}
    for s in stamps:
        for tag, text in s.texts.items():
            texts.setdefault(tag, {})[s.id] = text
    return EvalSet("tuxpaint", texts)


def labelset_eval_set(labelset) -> EvalSet:
    """A :class:`~babelclip.data.labels.LabelSet` (e.g. Babel-ImageNet) keyed by class index."""
    texts = {tag: {str(i): lab for i, lab in per.items()} for tag, per in labelset.labels.items()}
    return EvalSet(labelset.name, texts)


def emoji_eval_set(half: str = "eval", cldr_root: str | None = None) -> EvalSet:
    """Babel-Emoji's evaluation texts of ``half``: each emoji's name (item = emoji id) and its
    keyword list joined by ``", "`` as CLDR training pairs join it (item ``kw:<id>``), per language,
    resolved as the benchmark resolves them (:func:`babelclip.data.emoji.cldr.load_annotations`)."""
    from ..data.emoji import in_half
    from ..data.emoji.cldr import load_annotations

    ann = load_annotations(cldr_root)
    ids = set(in_half(list(ann["en"].names), half))
    texts: dict[str, dict[str, str]] = {}
    for tag, a in ann.items():
        per = {e: n for e, n in a.names.items() if e in ids}
        per.update({f"kw:{e}": ", ".join(k) for e, k in a.keywords.items() if e in ids})
        texts[tag] = per
    return EvalSet("babel-emoji", texts, shares_source="cldr:")


def adapter_emoji_training(adapter_dirs) -> dict[str, str]:
    """``{language tag: emoji half}`` of the CLDR text each adapter (or fine-tune) directory was
    trained on, from its ``babelclip_adapter.json``; languages trained without CLDR are absent."""
    from .adapters import read_adapter_meta
    from .sources import EMOJI_META

    out = {}
    for d in adapter_dirs:
        meta = read_adapter_meta(d)
        data = meta.get("data", {})
        if str(data.get("source", "")).startswith("cldr:") or EMOJI_META in data:
            out[get_language(meta["lang"]).tag] = data.get(EMOJI_META, "all")  # before the split: every emoji
    return out


def mark_emoji_results(results, trained: dict[str, str]) -> int:
    """Mark (``extra["leakage"]``) each Babel-Emoji result whose language was trained on CLDR
    emoji of a half its scored emoji include; the number marked. ``trained``: as from
    :func:`adapter_emoji_training`. A result's half is read from its label set id
    (``babel-emoji-<half>/...``) or, for retrieval, its dataset (``babel-emoji-keywords-<half>``)."""
    from ..data.emoji import HALVES, halves_meet

    n = 0
    for r in results:
        name = (r.labels or r.dataset).split("/")[0]
        if not name.startswith("babel-emoji") or r.language not in trained:
            continue
        half = name.rsplit("-", 1)[-1]
        if half in HALVES and halves_meet(trained[r.language], half):
            r.extra["leakage"] = (f"{r.language} was trained on CLDR names of the {trained[r.language]!r} emoji half; "
                                  f"this result scores the {half!r} half")
            n += 1
    return n


@dataclass
class LeakageReport:
    """What the guard did for one language: drops per evaluation set, and the kept overlap."""

    lang: str
    n_in: int
    n_kept: int
    independent: bool = False  # the corpus was marked independent of the evaluation sets
    dropped: dict[str, int] = field(default_factory=dict)  # eval set -> pairs dropped as copies
    overlap_pairs: dict[str, int] = field(default_factory=dict)  # eval set -> kept pairs whose target matches
    overlap_eval_items: dict[str, int] = field(default_factory=dict)  # eval set -> items whose text is a training target
    eval_items: dict[str, int] = field(default_factory=dict)  # eval set -> items in this language
    examples: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # a few dropped pairs per set
    unit: str = "pairs"  # what n_in/n_kept count: "pairs", or synonym-set "members" (every language)
    sets_dropped: int = 0  # synonym sets dropped whole (an evaluation concept, or not the emoji training half)

    @property
    def n_dropped(self) -> int:
        return self.n_in - self.n_kept

    def overlap_fraction(self, eval_name: str) -> float:
        """Fraction of the evaluation set's items in this language whose text is also a training target."""
        n = self.eval_items.get(eval_name, 0)
        return self.overlap_eval_items.get(eval_name, 0) / n if n else 0.0

    def as_dict(self) -> dict:
        d = asdict(self)
        d["n_dropped"] = self.n_dropped
        d["overlap_fraction"] = {k: self.overlap_fraction(k) for k in self.eval_items}
        return d

    def summary(self) -> str:
        parts = [f"{self.lang}: kept {self.n_kept}/{self.n_in} {self.unit}"]
        if self.sets_dropped:
            parts.append(f"{self.sets_dropped} synonym sets dropped whole")
        for k in self.eval_items:
            parts.append(
                f"{k}: dropped {self.dropped.get(k, 0)} copies, overlap {self.overlap_eval_items.get(k, 0)}/"
                f"{self.eval_items[k]} items ({100 * self.overlap_fraction(k):.1f}%)"
            )
        return "; ".join(parts)


def _text_index(ev: EvalSet, tag: str) -> dict[str, set[str]]:
    """``{normalised text: item ids}`` of ``ev``'s texts in language ``tag``."""
    out: dict[str, set[str]] = {}
    for item_id, text in ev.texts.get(tag, {}).items():
        out.setdefault(normalise(text), set()).add(item_id)
    return out


def filter_leakage(
    corpus: ParallelCorpus, eval_sets: Iterable[EvalSet], min_sentence_words: int = 4, n_examples: int = 5
) -> tuple[ParallelCorpus, LeakageReport]:
    """``corpus`` without evaluation copies, and the report of what was dropped and overlaps."""
    lang = get_language(corpus.lang)
    eval_sets = list(eval_sets)
    independent = corpus.meta.get("independent") == "yes"
    report = LeakageReport(lang.tag, len(corpus), 0, independent)
    index = []
    built_from = {ev.name for ev in eval_sets if ev.shares_source and corpus.source.startswith(ev.shares_source)}
    for ev in eval_sets:
        items = ev.items(lang)
        report.eval_items[ev.name] = len(items)
        pair_keys = {(normalise(e), normalise(t)) for _, e, t in items if e}
        target_items = _text_index(ev, lang.tag)
        index.append((ev.name, pair_keys, target_items))
    kept: list[tuple[str, str]] = []
    touched: dict[str, set[str]] = {name: set() for name, _, _ in index}
    for en, tgt in corpus.pairs:
        ke, kt = normalise(en), normalise(tgt)
        copy_of = None
        overlaps = []
        for name, pair_keys, target_items in index:
            own = not independent or name in built_from
            if (kt in target_items and len(kt.split()) >= min_sentence_words) or (own and (ke, kt) in pair_keys):
                copy_of = name
                break
            if kt in target_items:
                overlaps.append(name)
        if copy_of:
            report.dropped[copy_of] = report.dropped.get(copy_of, 0) + 1
            ex = report.examples.setdefault(copy_of, [])
            if len(ex) < n_examples:
                ex.append((en, tgt))
            continue
        kept.append((en, tgt))
        for name in overlaps:
            report.overlap_pairs[name] = report.overlap_pairs.get(name, 0) + 1
            touched[name] |= next(ti for n, _, ti in index if n == name)[kt]
    report.n_kept = len(kept)
    report.overlap_eval_items = {k: len(v) for k, v in touched.items()}
    if report.n_dropped:
        log.warning("leakage guard dropped %d %s pairs copied from evaluation data (%s)", report.n_dropped, lang.tag, report.dropped)
    log.info("leakage guard: %s", report.summary())
    out = ParallelCorpus(lang, kept, corpus.source, corpus.licence, {**corpus.meta, "leakage_guard": "applied"})
    return out, report


class _SetGuard:
    """The per-member verdicts of :func:`filter_synonym_leakage`, with the evaluation texts of
    each language indexed on first use."""

    def __init__(self, eval_sets: list[EvalSet], own: set[str], min_sentence_words: int):
        self.eval_sets, self.own, self.min_words = eval_sets, own, min_sentence_words
        self.index: dict[tuple[str, str], dict[str, set[str]]] = {}

    def verdict(self, tag: str, text: str) -> tuple[str | None, dict[str, set[str]]]:
        """``(evaluation set the member is a copy of, or None; {set: items it overlaps})``."""
        key, overlaps = normalise(text), {}
        for ev in self.eval_sets:
            if (ev.name, tag) not in self.index:
                self.index[(ev.name, tag)] = _text_index(ev, tag)
            hit = self.index[(ev.name, tag)].get(key)
            if hit and (len(key.split()) >= self.min_words or ev.name in self.own):
                return ev.name, {}
            if hit:
                overlaps[ev.name] = hit
        return None, overlaps


def filter_synonym_leakage(sets: SynonymSets, eval_sets: Iterable[EvalSet], lang: str | Language,
                           min_sentence_words: int = 4) -> tuple[SynonymSets, LeakageReport]:
    """``sets`` without evaluation copies and evaluation concepts (module docstring), and the
    report: members in and kept over every language, drops per evaluation set, and the overlap
    of the kept members in ``lang`` (the trained language) with its evaluation items."""
    from ..data.emoji import emoji_half

    tag = get_language(lang).tag
    eval_sets = list(eval_sets)
    independent = sets.meta.get("independent") == "yes"
    own = {ev.name for ev in eval_sets if not independent or (ev.shares_source and sets.source.startswith(ev.shares_source))}
    guard = _SetGuard(eval_sets, own, min_sentence_words)
    report = LeakageReport(tag, sets.n_members(), 0, independent, unit="members",
                           eval_items={ev.name: len(ev.texts.get(tag, {})) for ev in eval_sets})
    touched: dict[str, set[str]] = {ev.name: set() for ev in eval_sets}
    kept: list[SynonymSet] = []
    for s in sets:
        if s.key.startswith("cldr:") and emoji_half(s.key[len("cldr:"):]) != "train":
            report.sets_dropped += 1
            report.dropped["babel-emoji"] = report.dropped.get("babel-emoji", 0) + len(s.members)
            continue
        verdicts = [(m, *guard.verdict(*m)) for m in s.members]
        copies = [(m, c) for m, c, _ in verdicts if c]
        for m, c in copies:
            report.dropped[c] = report.dropped.get(c, 0) + 1
            if len(ex := report.examples.setdefault(c, [])) < 5:
                ex.append(m)
        if copies and not independent:  # the set is an evaluation item's concept
            report.sets_dropped += 1
            report.dropped[copies[0][1]] += len(s.members) - len(copies)
            continue
        members = tuple(m for m, c, _ in verdicts if not c)
        for m, _, overlaps in verdicts:
            for name, items in overlaps.items() if m[0] == tag else ():
                report.overlap_pairs[name] = report.overlap_pairs.get(name, 0) + 1
                touched[name] |= items
        if len(members) >= 2:
            kept.append(SynonymSet(s.key, members))
            report.n_kept += len(members)
    report.overlap_eval_items = {k: len(v) for k, v in touched.items()}
    if report.n_dropped:
        log.warning("leakage guard dropped %d synonym-set members copied from evaluation data (%s)",
                    report.n_dropped, report.dropped)
    log.info("leakage guard: %s", report.summary())
    return sets.replaced(kept, leakage_guard="applied"), report
