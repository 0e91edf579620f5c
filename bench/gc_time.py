"""Seconds the cyclic garbage collector takes in a cold ``babelclip eval`` run, with the pause
of ``src/babelclip/eval/gc_pause.py`` (the default) and without it.

A benchmark that PRINTS figures (not a pass/fail test). Runs the command line of
``vs_cb_families.py`` (the tiny model of ``--family``, its ten languages, empty cache, one
thread) in a fresh process whose ``gc.callbacks`` add up the CPU seconds of every collection
by generation; ``--no-pause`` is the same run with ``gc_pause.paused`` replaced by a no-op.
Collection counts do not drift with a shared machine's speed the way run times do.

Run (repository root, venv active, ``PYTHONPATH=src``)::

    python bench/gc_time.py --family xlmr
    python bench/gc_time.py --family xlmr --no-pause
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from _families import model_dir
from vs_cb_families import DEFAULT_LANGS, NLLB_DEFAULT, _env, eval_args, timed_run

HOOK = """
import atexit, contextlib, gc, json, sys, time
spent, count, start = [0.0, 0.0, 0.0], [0, 0, 0], [0.0]
def _timer(phase, info):
    if phase == "start":
        start[0] = time.process_time()
    else:
        spent[info["generation"]] += time.process_time() - start[0]
        count[info["generation"]] += 1
gc.callbacks.append(_timer)
atexit.register(lambda: print("GC_FIGURES " + json.dumps({"seconds": spent, "collections": count}), file=sys.stderr))
if {no_pause}:
    import babelclip.eval.gc_pause
    babelclip.eval.gc_pause.paused = contextlib.nullcontext
from babelclip.cli import main
sys.exit(main(sys.argv[1:]))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--family", default="xlmr")
    ap.add_argument("--no-pause", action="store_true", help="collector not paused while texts are encoded")
    ap.add_argument("--work", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "babelclip-bench-families"))
    args = ap.parse_args()

    from vs_clip_benchmark import make_imagenet

    work = Path(args.work).resolve()
    root = work / "imagenet"
    root.mkdir(parents=True, exist_ok=True)
    make_imagenet(root, 2)
    mdir = model_dir(work, args.family)
    codes = NLLB_DEFAULT if args.family == "nllb" else DEFAULT_LANGS
    cache, out = work / f"cache-gc-{args.family}", work / f"out-gc-{args.family}"
    shutil.rmtree(cache, ignore_errors=True)
    cmd = [sys.executable, "-c", HOOK.replace("{no_pause}", str(args.no_pause)),
           *eval_args(args.family, mdir, root, codes.split(","), cache, out, 1, [])]
    r, wall, cpu = timed_run(cmd, _env(1, False))
    shutil.rmtree(cache, ignore_errors=True)
    if r.returncode:
        sys.exit(f"babelclip failed ({r.returncode}):\n{r.stderr[-3000:]}")
    figures = json.loads(next(ln for ln in r.stderr.splitlines() if ln.startswith("GC_FIGURES "))[len("GC_FIGURES "):])
    seconds = json.loads((out / "results.json").read_text())["meta"]["seconds"]
    print(f"[{args.family}] pause {'off' if args.no_pause else 'on'}: run {cpu:.1f} s CPU ({wall:.1f} s wall; lookup "
          f"{seconds['lookup']:.1f} s); collector {sum(figures['seconds']):.2f} s CPU in "
          f"{sum(figures['collections'])} collections (by generation 0/1/2: "
          + ", ".join(f"{s:.2f} s in {n}" for s, n in zip(figures["seconds"], figures["collections"])) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
