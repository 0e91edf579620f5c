"""Languages in parallel on CPU: each language's whole evaluation in a forked process with one torch thread.

Why processes and not threads: a language's zero-shot work mixes pure-Python steps (filling
templates, tokenising, cache rows, bootstrap resampling) with many small tensor operations.
Threads would serialise the Python steps on the GIL, and torch's intra-op threads gain little
on the small matrices of a text tower (a 64-wide tower ran 1.45x faster on 2 threads than on 1;
two single-thread processes, 1.9x). Forked workers share the model's memory copy-on-write, so a
worker costs no load time and little memory, and every step of a language runs in parallel.

Rules that keep this exact and safe:

* results come back in the caller's language order, whatever order the workers finish in, and
  each language is computed by the same function as in the serial loop (so a parallel run and a
  serial run give the same results up to float rounding of a different thread count);
* a worker never uses a SQLite connection made before the fork: it opens its own
  (:meth:`EmbeddingCache.in_this_process`); SQLite's locking serialises the writers;
* only for a model on the CPU, a cache on disk, outside ``torch.distributed`` and where
  ``fork`` exists (Linux, macOS); otherwise the loop runs serially in this process;
* the largest languages are handed out first, so the workers finish close together;
* one language never stops a run: a model that cannot encode a language raises
  :class:`~babelclip.errors.UnsupportedLanguageError`, and that language is skipped with a
  warning and recorded (:func:`record_skips`), in the serial loop and in workers alike;
* a worker never outlives its parent: on Linux it asks the kernel for ``SIGKILL`` when the
  parent dies (``prctl(PR_SET_PDEATHSIG)``), and everywhere a watchdog thread polls the parent
  pid once a second, so killing ``babelclip eval`` (even with ``SIGKILL``) ends its workers.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import UnsupportedLanguageError
from ..models.base import capabilities

if TYPE_CHECKING:  # pragma: no cover
    from ..models.base import Encoder
    from .cache import EmbeddingCache

log = logging.getLogger(__name__)

AUTO = "auto"
_JOB: Callable[[str], Any] | None = None  # the per-language function, inherited by forked workers


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def torch_threads() -> int:
    """``torch.get_num_threads()``; in a process that has not imported torch (a fully cached run
    never needs it), the count it would start with: ``OMP_NUM_THREADS`` where set, else the
    available CPUs (torch's own default counts physical cores; a count above the CPUs is cut to
    them by :func:`resolve_workers` anyway)."""
    if "torch" in sys.modules:
        return int(sys.modules["torch"].get_num_threads())
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return available_cpus()


def resolve_workers(workers: int | str, encoder: Encoder, cache: EmbeddingCache, n_languages: int) -> int:
    """How many worker processes to use: ``workers`` (a count or ``"auto"``) where parallel
    languages are possible (see the module docstring), else 1.

    ``"auto"``: the CPUs available, at most ``torch.get_num_threads()`` (a user who limited
    torch to one thread keeps one core) and at most the number of languages.
    """
    if workers == AUTO:
        wanted = min(available_cpus(), torch_threads())
    elif isinstance(workers, int) and not isinstance(workers, bool) and workers >= 1:
        wanted = workers
    else:
        raise ValueError(f"workers must be a positive integer or {AUTO!r}, got {workers!r}")
    wanted = min(wanted, n_languages)
    if wanted <= 1:
        return 1
    why_not = _why_serial(encoder, cache)
    if why_not:
        if workers != AUTO:
            log.warning("%d language workers requested but %s: running serially", wanted, why_not)
        return 1
    return wanted


def _why_serial(encoder: Encoder, cache: EmbeddingCache) -> str:
    import multiprocessing as mp

    from .encode import _dist

    device = capabilities(encoder).device
    if not str(device).startswith("cpu"):
        return f"the model runs on {device}, not the CPU"
    if cache.path is None:
        return "the embedding cache is in memory (workers share texts through a cache on disk)"
    if _dist()[1] > 1:
        return "torch.distributed is running (its ranks already split the work)"
    if "fork" not in mp.get_all_start_methods():
        return "this platform cannot fork processes"
    return ""


_PR_SET_PDEATHSIG = 1  # linux/prctl.h
WATCHDOG_SECONDS = 1.0


def _die_with_parent(parent: int) -> None:
    """End this (forked) process when ``parent`` dies: the kernel's parent-death signal where
    there is one (Linux), and a daemon thread polling ``os.getppid()`` everywhere."""
    import signal
    import sys
    import threading

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no libc symbol: the watchdog remains
            pass
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)

    def watch() -> None:
        import time

        while os.getppid() == parent:
            time.sleep(WATCHDOG_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="babelclip-parent-watchdog", daemon=True).start()


def _init_worker(parent: int) -> None:
    _die_with_parent(parent)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    else:  # torch not imported (yet): it starts with one thread if this worker ever imports it
        os.environ["OMP_NUM_THREADS"] = "1"


class _Skipped:
    """What a language job returns instead of results when the model cannot handle the language."""

    def __init__(self, reason: str):
        self.reason = reason


_SKIPS: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("babelclip_skips", default=None)


@contextlib.contextmanager
def record_skips() -> Iterator[dict[str, str]]:
    """Collect the languages skipped inside the block (language -> why), e.g. for results meta::

        with record_skips() as skipped:
            results = zero_shot_classification(...)
        meta["languages_skipped"] = skipped
    """
    skipped: dict[str, str] = {}
    token = _SKIPS.set(skipped)
    try:
        yield skipped
    finally:
        _SKIPS.reset(token)


def skip_unsupported(fn: Callable[[str], Any], lang: str) -> Any:
    """``fn(lang)``, or a :class:`_Skipped` marker when the model cannot handle ``lang``."""
    try:
        return fn(lang)
    except UnsupportedLanguageError as e:
        return _Skipped(e.reason)


def _note_skip(lang: str, result: Any, desc: str) -> Any:
    if not isinstance(result, _Skipped):
        return result
    log.warning("%s: skipping language %s: %s", desc, lang, result.reason)
    skipped = _SKIPS.get()
    if skipped is not None:
        skipped[lang] = result.reason
    return None


def _run(lang: str) -> Any:
    assert _JOB is not None
    return skip_unsupported(_JOB, lang)


def map_languages(
    fn: Callable[[str], Any],
    languages: Sequence[str],
    *,
    workers: int = 1,
    cost: Callable[[str], float] | None = None,
    desc: str = "languages",
    quiet: bool = True,
) -> list[Any]:
    """``[fn(lang) for lang in languages]``, in ``workers`` forked processes when ``workers > 1``.

    ``fn`` may be any callable (a closure over the model and data: it is inherited, never
    pickled); its return values are pickled back. ``cost(lang)`` orders the hand-out, largest
    first. An exception in a worker is raised here, as in the serial loop, except
    :class:`~babelclip.errors.UnsupportedLanguageError`: that language's entry is ``None``, with
    a warning, and :func:`record_skips` records it.
    """
    from tqdm.auto import tqdm

    langs = list(languages)
    if workers <= 1 or len(langs) <= 1:
        return [_note_skip(lang, skip_unsupported(fn, lang), desc)
                for lang in tqdm(langs, desc=desc, unit="lang", disable=quiet)]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    global _JOB
    order = sorted(range(len(langs)), key=lambda i: -cost(langs[i])) if cost else range(len(langs))
    out: list[Any] = [None] * len(langs)
    _JOB = fn
    try:
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork"), initializer=_init_worker,
                                 initargs=(os.getpid(),)) as ex, \
                tqdm(total=len(langs), desc=f"{desc} ({workers} processes)", unit="lang", disable=quiet) as bar:
            futures = {ex.submit(_run, langs[i]): i for i in order}
            try:
                for f in as_completed(futures):
                    i = futures[f]
                    out[i] = _note_skip(langs[i], f.result(), desc)
                    bar.update()
            except BaseException:
                ex.shutdown(wait=True, cancel_futures=True)  # fail fast: no further language starts
                raise
    finally:
        _JOB = None
    return out


def run_language_jobs(job: Any, languages: Sequence[str], workers: int | str, *, desc: str, quiet: bool) -> list[Any]:
    """The flattened results of ``job(lang)`` for every language, in language order, in as many
    processes as :func:`resolve_workers` allows. ``job``: a callable returning a list, with
    ``encoder``, ``cache`` and ``cost(lang)`` attributes (the evaluation modules' language jobs)."""
    n = resolve_workers(workers, job.encoder, job.cache, len(languages))
    per_lang = map_languages(job, languages, workers=n, cost=job.cost, desc=desc, quiet=quiet)
    return [r for results in per_lang if results is not None for r in results]
