"""Languages in forked worker processes: same results as one process, in order, errors surface,
each worker its own cache connection, and serial wherever forking is not safe."""
from __future__ import annotations

import logging
import os

import numpy as np
import pytest
from _tiny_encoder import TinyEncoder

from babelclip.data.captions import CaptionSet
from babelclip.data.labels import LabelSet
from babelclip.data.prompts import PromptSet, label_only
from babelclip.eval.cache import EmbeddingCache
from babelclip.eval.classification import zero_shot_classification
from babelclip.eval.encode import ImageEmbeddings
from babelclip.eval.retrieval import retrieval
from babelclip.eval.workers import map_languages, resolve_workers

pytestmark = pytest.mark.skipif("fork" not in __import__("multiprocessing").get_all_start_methods(),
                                reason="forked workers need fork (Linux, macOS)")

WNIDS = ("n001", "n002", "n003", "n004", "n005")
NAMES = {
    "en": ["dog", "cat", "car", "tree", "house"],
    "de": ["Hund", "Katze", "Auto", "Baum", "Haus"],
    "fr": ["chien", "chat", "voiture", "arbre", "maison"],
    "ja": ["犬", "猫", "車", "木", "家"],
}
LABELS = LabelSet("toy", WNIDS, {lang: dict(enumerate(n)) for lang, n in NAMES.items()})
TEMPLATES = PromptSet("two", default=("a photo of a {}.", "{} in a picture", "{}"))


def _images(enc: TinyEncoder, per_class: int = 4, noise: float = 0.8) -> ImageEmbeddings:
    rng = np.random.default_rng(0)
    base = enc.encode_texts(NAMES["en"], "en")
    vecs = [b + noise * rng.standard_normal(b.shape) for b in base for _ in range(per_class)]
    vecs = np.asarray([v / np.linalg.norm(v) for v in vecs], np.float32)
    labels = np.repeat(np.arange(len(WNIDS)), per_class)
    return ImageEmbeddings([f"i{k}" for k in range(len(vecs))], vecs, labels)


def _square(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


def test_map_languages_keeps_the_callers_order_and_runs_in_other_processes():
    langs = [f"l{i}" for i in range(7)]
    out = map_languages(lambda s: _square(int(s[1:])), langs, workers=2, cost=lambda s: int(s[1:]))
    assert [v for v, _ in out] == [i * i for i in range(7)]  # caller's order, though l6 was handed out first
    pids = {pid for _, pid in out}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_an_error_in_a_worker_is_raised_in_the_caller():
    def job(lang: str) -> str:
        if lang == "bad":
            raise ValueError(f"no labels for {lang}")
        return lang

    with pytest.raises(ValueError, match="no labels for bad"):
        map_languages(job, ["a", "bad", "c", "d"], workers=2)


def test_workers_run_serially_where_forking_is_unsafe(tmp_path, caplog):
    enc = TinyEncoder()
    with EmbeddingCache(tmp_path, enc.fingerprint.key, enc.dim) as disk, \
            EmbeddingCache(None, enc.fingerprint.key, enc.dim) as memory:
        assert resolve_workers(3, enc, disk, 10) == 3
        assert resolve_workers(3, enc, disk, 2) == 2  # never more workers than languages
        with caplog.at_level(logging.WARNING):
            assert resolve_workers(2, enc, memory, 10) == 1
        assert "in memory" in caplog.text
        enc.device = "cuda:0"  # only the attribute is read: no GPU needed
        assert resolve_workers(2, enc, disk, 10) == 1
        enc.device = "cpu"
        for bad in (0, -1, "two", 1.5, True):
            with pytest.raises(ValueError, match="positive integer or 'auto'"):
                resolve_workers(bad, enc, disk, 10)


def test_auto_follows_torch_threads_and_available_cpus(tmp_path, monkeypatch):
    import torch

    import babelclip.eval.workers as w

    enc = TinyEncoder()
    with EmbeddingCache(tmp_path, enc.fingerprint.key, enc.dim) as cache:
        monkeypatch.setattr(w, "available_cpus", lambda: 8)
        monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
        assert resolve_workers("auto", enc, cache, 10) == 1  # torch limited to one thread: one core
        monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
        assert resolve_workers("auto", enc, cache, 10) == 4
        monkeypatch.setattr(w, "available_cpus", lambda: 2)
        assert resolve_workers("auto", enc, cache, 10) == 2


def test_cache_in_a_forked_process_is_a_new_connection_to_the_same_file(tmp_path):
    enc = TinyEncoder()
    with EmbeddingCache(tmp_path, enc.fingerprint.key, enc.dim) as cache:
        assert cache.in_this_process() is cache

        def job(lang: str) -> tuple[bool, int]:
            here = cache.in_this_process()
            here.put_texts(lang, [f"text {lang}"], np.full((1, enc.dim), 0.5, np.float32))
            return here is not cache and here is here.in_this_process(), os.getpid()

        out = map_languages(job, ["de", "fr", "ja"], workers=2)
        assert all(fresh for fresh, _ in out)
        for lang in ("de", "fr", "ja"):  # what the workers committed, the parent reads
            assert np.array_equal(cache.get_texts(lang, [f"text {lang}"])[f"text {lang}"], np.full(enc.dim, 0.5))


def test_classification_in_workers_equals_one_process_and_fills_the_shared_cache(tmp_path):
    enc = TinyEncoder()
    imgs = _images(enc)
    langs = ["en", "de", "fr", "ja"]
    with EmbeddingCache(tmp_path / "a", enc.fingerprint.key, enc.dim) as cache:
        serial = zero_shot_classification(enc, imgs, WNIDS, LABELS, [label_only(), TEMPLATES], cache,
                                          languages=langs, n_boot=100, workers=1)
    with EmbeddingCache(tmp_path / "b", enc.fingerprint.key, enc.dim) as cache:
        before = enc.text_forwards
        parallel = zero_shot_classification(enc, imgs, WNIDS, LABELS, [label_only(), TEMPLATES], cache,
                                            languages=langs, n_boot=100, workers=2)
        assert enc.text_forwards == before  # the texts went through the workers' copies of the model
        assert cache.counts()["texts"] == len(langs) * len(WNIDS) * 3  # distinct prompts, written by workers
        again = zero_shot_classification(enc, imgs, WNIDS, LABELS, [label_only(), TEMPLATES], cache,
                                         languages=langs, n_boot=100, workers=1)
        assert enc.text_forwards == before  # every prompt served from what the workers cached
    assert [(r.language, r.prompts) for r in parallel] == [(r.language, r.prompts) for r in serial]
    assert [r.metrics for r in parallel] == [r.metrics for r in serial] == [r.metrics for r in again]
    assert len({r.metrics["top1"] for r in serial}) > 1  # languages really differ: the order is checked


def test_retrieval_in_workers_equals_one_process(tmp_path):
    enc = TinyEncoder()
    imgs = _images(enc, per_class=1, noise=0.3)
    caps = CaptionSet("toy", list(imgs.ids), {
        lang: [[f"{n}", f"a {n} here"] for n in names] for lang, names in NAMES.items()})
    runs = []
    for workers in (1, 2):
        with EmbeddingCache(tmp_path / str(workers), enc.fingerprint.key, enc.dim) as cache:
            runs.append(retrieval(enc, imgs, caps, cache, n_boot=50, workers=workers))
    assert [(r.language, r.protocol) for r in runs[1]] == [(r.language, r.protocol) for r in runs[0]]
    assert [r.metrics for r in runs[1]] == [r.metrics for r in runs[0]]


_ORPHAN_SCRIPT = r"""
import os, sys, time
from babelclip.eval.workers import map_languages

pid_dir = sys.argv[1]

def job(lang):
    open(os.path.join(pid_dir, str(os.getpid())), "w").close()
    time.sleep(120)
    return lang

map_languages(job, ["a", "b"], workers=2)
"""


def _alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped by whoever adopted it counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc (Linux)")
def test_killing_the_parent_ends_its_language_workers(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"),
                                                                   str(__import__("babelclip").__path__[0] + "/..")) if p)}
    parent = subprocess.Popen([sys.executable, "-c", _ORPHAN_SCRIPT, str(tmp_path)], env=env)
    try:
        deadline = time.monotonic() + 60
        while len(os.listdir(tmp_path)) < 2:  # both workers running their language
            assert parent.poll() is None and time.monotonic() < deadline, "workers never started"
            time.sleep(0.05)
        workers = [int(p) for p in os.listdir(tmp_path)]
        assert all(_alive(p) for p in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(p) for p in workers), "language workers outlived their killed parent"
    finally:
        for p in os.listdir(tmp_path):
            if _alive(int(p)):
                os.kill(int(p), signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()


def _picky(lang: str) -> list[str]:
    from babelclip.errors import UnsupportedLanguageError

    if lang == "ku":
        raise UnsupportedLanguageError("ku", "no NLLB token for Kurdish")
    return [lang.upper()]


@pytest.mark.parametrize("workers", [1, 2])
def test_an_unsupported_language_is_skipped_and_recorded(workers, caplog):
    from babelclip.eval.workers import record_skips

    with record_skips() as skipped:
        out = map_languages(_picky, ["de", "ku", "fr"], workers=workers)
    assert out == [["DE"], None, ["FR"]]
    assert skipped == {"ku": "no NLLB token for Kurdish"}
    assert "skipping language ku" in caplog.text


def test_other_errors_still_stop_the_run():
    def broken(lang):
        raise ValueError("a real bug or bad input")

    with pytest.raises(ValueError, match="real bug"):
        map_languages(broken, ["de", "fr"], workers=1)
