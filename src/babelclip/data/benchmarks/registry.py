"""The benchmark registry: a benchmark is data, and adding one is one file plus its test.

The interface (follow it to add a benchmark)
--------------------------------------------
Write ``src/babelclip/data/benchmarks/<name>.py`` that defines ``BENCHMARK`` (a
:class:`Benchmark`) or ``BENCHMARKS`` (a tuple of them). The module is found by
:func:`all_benchmarks` without being listed anywhere; import nothing heavy at module level
(``babelclip benchmarks`` imports every benchmark module). A :class:`Benchmark` holds

* ``name`` (the ``--dataset`` / ``--benchmark`` value; ``aliases`` for other spellings),
  ``title``, ``tasks`` (:data:`CLASSIFICATION`, :data:`RETRIEVAL`, :data:`IMAGE_RESULT_TASKS`), ``languages`` (BCP-47 tags,
  or a short text when they are only known from the files), ``images`` (what the images are),
  ``licence`` and ``citation`` (both go into every results file's meta);
* ``sources``: how to get it, as :class:`Source` records (a local path, a Debian package, a
  download URL, a manual step), listed by ``babelclip benchmarks``;
* ``present()``: where it is on this machine, ``""`` when it is not;
* ``prepare(inputs)``: given the user's :class:`Inputs` (``--root``, ``--images``, ``--labels``,
  ``--captions``, the requested languages, whether downloads are allowed), read the files and
  return a :class:`Prepared`: the :class:`~babelclip.data.images.ImageSource`, the tasks
  (:class:`ClassificationTask` with a :class:`~babelclip.data.labels.LabelSet`;
  :class:`RetrievalTask` with a :class:`~babelclip.data.captions.CaptionSet` and its protocols;
  :class:`KeywordRetrievalTask` for queries with several relevant images; :class:`ImageTask`,
  image→image retrieval and k-NN by class, from :func:`image_tasks_if_classes`),
  the dataset name results carry (a task's own ``dataset`` overrides it, e.g. for two splits
  of one benchmark), and facts for the results' meta. Classification needs labelled images:
  ``ImageSource.classes`` holds class ids, each ``ImageItem.label`` an index into them, and the
  label set's ``wnids`` the same ids (any strings, not only WordNet ids). A missing file raises
  :class:`~babelclip.fetch.DownloadError` / ``FileNotFoundError`` naming the path or command
  that provides it; a file in the wrong layout raises ``ValueError`` naming the file and the
  release's layout.
* ``clip_benchmark`` / ``clip_benchmark_codes``: CLIP_benchmark's name for the dataset and the
  language-code column its files use (``tag``, ``babel``, ``xm3600``, ``nllb``, ``xtd``), for
  :mod:`babelclip.eval.clip_benchmark_compat`.

:func:`babelclip.eval.run.evaluate` is generic over this: it calls ``prepare``, encodes the
images once, and runs each task in every requested language the task has. It knows no
benchmark by name. Helpers for release layouts (a data folder, files fetched on demand, text
files read as released) are in :mod:`babelclip.data.benchmarks.release`.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..captions import CaptionSet
    from ..images import ImageSource
    from ..labels import LabelSet

CLASSIFICATION = "zeroshot_classification"
RETRIEVAL = "retrieval"
RETRIEVAL_PROTOCOLS = ("all-captions", "first-caption")
KEYWORD_RETRIEVAL = "keyword_retrieval"  # a task kind (its results: task RETRIEVAL, protocol "keywords")
IMAGE_TASKS = "image"  # a task kind: image→image retrieval and k-NN classification (language "zxx")
IMAGE_RESULT_TASKS = ("image_retrieval", "knn_classification")  # the result tasks of that kind
#: Every task kind, in the order ``--tasks`` lists them.
TASK_KINDS = (CLASSIFICATION, RETRIEVAL, KEYWORD_RETRIEVAL, IMAGE_TASKS)
#: Evaluation protocols: ``default`` (babelclip's choices) and ``paper`` (the Babel-ImageNet
#: reference code's choices where they differ: docs/results.md).
PROTOCOLS = ("default", "paper")
NO_LANGUAGE = "zxx"  # BCP-47 "no linguistic content": the language of a task without text


@dataclass(frozen=True)
class Source:
    """One way to get a benchmark's files: ``kind`` is ``local``, ``debian``, ``url``,
    ``clip-benchmark`` or ``manual``; ``where`` the path, package, URL or instruction."""

    kind: str
    where: str
    note: str = ""

    def describe(self) -> str:
        how = {"local": "place at", "debian": "apt-get install", "url": "download", "manual": "",
               "clip-benchmark": "pip install clip-benchmark:"}.get(self.kind, self.kind)
        return " ".join(x for x in (how, self.where, f"({self.note})" if self.note else "") if x)


@dataclass
class Inputs:
    """What the user gave; each benchmark decides what each means (all optional)."""

    root: Path | None = None  # the benchmark's folder in its release layout (--root)
    images: Path | None = None  # an image folder replacing the layout's (--images)
    labels: Any = None  # a label file or LabelSet (--labels)
    captions: Path | None = None  # a caption file (--captions)
    languages: list[str] | None = None  # requested BCP-47 tags (None: all), to fetch only those
    download: bool = True  # may missing files be downloaded
    name: str = ""  # the name the user asked for
    protocol: str = "default"  # one of PROTOCOLS (e.g. "paper": the reference's English labels)


@dataclass
class ClassificationTask:
    """Zero-shot classification of ``Prepared.images`` (whose ``classes`` are label-set wnids)."""

    labels: LabelSet  # its ``wnids`` are the class ids of ``Prepared.images.classes`` (any strings)
    default_languages: tuple[str, ...] | None = None  # run for "all" (None: every language it has)
    dataset: str = ""  # the name its results carry, when not Prepared.dataset (e.g. a split)
    protocol: str = "zero-shot"  # what its results' ``protocol`` says (e.g. "babel-imagenet")

    kind = CLASSIFICATION

    def languages(self) -> list[str]:
        """Every language the task has."""
        return self.labels.languages()

    def select(self, requested: list[str] | None) -> list[str]:
        """The languages to run: the defaults for "all" (``None``), else the requested ones it has."""
        if requested is None and self.default_languages is not None:
            return list(self.default_languages)
        return _select(self.languages(), requested)


@dataclass
class RetrievalTask:
    """Text→image and image→text retrieval of a caption set under each protocol."""

    captions: CaptionSet  # its ``images`` name items of Prepared.images (by id, else by file name)
    protocols: tuple[str, ...] = RETRIEVAL_PROTOCOLS
    dataset: str = ""  # the name its results carry, when not Prepared.dataset (e.g. a split)

    kind = RETRIEVAL

    def languages(self) -> list[str]:
        """Every language the task has."""
        return self.captions.languages()

    def select(self, requested: list[str] | None) -> list[str]:
        return _select(self.languages(), requested)


@dataclass
class KeywordRetrievalTask:
    """Text→image retrieval where a query has several relevant images (Babel-Emoji's keywords):
    a :class:`~babelclip.data.emoji.KeywordQueries`, run by
    :func:`babelclip.eval.keyword_retrieval.keyword_retrieval`; results have task ``retrieval``."""

    queries: Any  # KeywordQueries
    dataset: str = ""  # the name its results carry, when not Prepared.dataset (e.g. a split)

    kind = KEYWORD_RETRIEVAL

    def languages(self) -> list[str]:
        return self.queries.languages()

    def select(self, requested: list[str] | None) -> list[str]:
        return _select(self.languages(), requested)


@dataclass
class ImageTask:
    """Image→image retrieval and k-NN classification of ``Prepared.images`` by its classes
    (:func:`babelclip.eval.image_tasks.image_task_results`): no text, so one "language",
    ``zxx``, run whatever languages were asked for. Add it with :func:`image_tasks_if_classes`."""

    knn_k: int = 20
    dataset: str = ""  # the name its results carry, when not Prepared.dataset

    kind = IMAGE_TASKS

    def languages(self) -> list[str]:
        return []  # not a language of the benchmark: it runs in every run that selects it

    def select(self, requested: list[str] | None) -> list[str]:
        return [NO_LANGUAGE]


def image_tasks_if_classes(source: ImageSource, knn_k: int = 20) -> list[ImageTask]:
    """``[ImageTask]`` when some class of ``source`` has two or more images (a retrieval query
    needs another image of its class), else ``[]`` (e.g. Babel-Emoji: one picture per class)."""
    from collections import Counter

    per_class = Counter(it.label for it in source.items if it.label >= 0)
    return [ImageTask(knn_k)] if source.classes and any(n >= 2 for n in per_class.values()) else []


def _select(have: list[str], requested: list[str] | None) -> list[str]:
    if requested is None:
        return have
    present = set(have)
    return [t for t in requested if t in present]


Task = ClassificationTask | RetrievalTask | KeywordRetrievalTask | ImageTask


@dataclass
class Prepared:
    """A benchmark read from disk: its images, its tasks, the name results carry, meta facts."""

    dataset: str
    images: ImageSource
    tasks: list[Task]
    meta: dict[str, Any] = field(default_factory=dict)

    def languages(self) -> list[str]:
        """Every language some task has, in first-seen order."""
        return list(dict.fromkeys(t for task in self.tasks for t in task.languages()))


def _nowhere() -> str:
    return ""


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    tasks: tuple[str, ...]
    languages: tuple[str, ...] | str
    images: str
    licence: str
    citation: str
    sources: tuple[Source, ...]
    prepare: Callable[[Inputs], Prepared]
    present: Callable[[], str] = _nowhere
    aliases: tuple[str, ...] = ()
    clip_benchmark: str = ""
    clip_benchmark_codes: str = "tag"
    protocols: tuple[str, ...] = ()  # retrieval protocols it reports
    listed: bool = True  # False: reachable by --captions only (the anonymous caption set)

    def n_languages(self) -> str:
        return str(len(self.languages)) if isinstance(self.languages, tuple) else self.languages

    def how_to_get(self) -> str:
        return "; ".join(s.describe() for s in self.sources)

    def meta(self) -> dict[str, Any]:
        """What every results file of this benchmark records about it."""
        return {"benchmark": self.name, "licence": self.licence, "citation": self.citation}


def _modules() -> list[str]:
    # The package's own __path__ (read, not imported: the package imports this module), so a
    # folder added to it is searched too.
    return sorted(m.name for m in pkgutil.iter_modules(sys.modules[__package__].__path__) if not m.name.startswith("_")
                  and m.name not in ("registry", "release"))


def all_benchmarks(include_unlisted: bool = False) -> list[Benchmark]:
    """Every benchmark defined in this package, by name."""
    found: dict[str, Benchmark] = {}
    for mod_name in _modules():
        mod = importlib.import_module(f"{__package__}.{mod_name}")
        for b in getattr(mod, "BENCHMARKS", ()) or ((mod.BENCHMARK,) if hasattr(mod, "BENCHMARK") else ()):
            if b.name in found:
                raise RuntimeError(f"two benchmarks named {b.name!r} ({mod_name} and another module)")
            found[b.name] = b
    return [b for _, b in sorted(found.items()) if include_unlisted or b.listed]


def find_benchmark(name: str) -> Benchmark | None:
    """The benchmark called ``name`` or one of its aliases (case and ``_``/``-`` ignored), or
    whose name prefixes ``name`` followed by ``-`` (``babel-imagenet-92``), else ``None``."""
    key = name.strip().lower().replace("_", "-")
    benches = all_benchmarks(include_unlisted=True)
    for b in benches:
        if key in {b.name, *b.aliases, b.clip_benchmark.replace("_", "-")} - {""}:
            return b
    for b in benches:
        if key.startswith(b.name + "-"):
            return b
    return None


def get_benchmark(name: str) -> Benchmark:
    """The benchmark called ``name``; an unknown name raises naming every benchmark there is."""
    b = find_benchmark(name)
    if b is None or not b.listed:
        names = ", ".join(x.name for x in all_benchmarks())
        raise KeyError(f"unknown benchmark {name!r}; known: {names} (`babelclip benchmarks` lists them), "
                       "or give --captions FILE --images DIR for a caption set of your own")
    return b

