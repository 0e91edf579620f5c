"""Every text-tower family through both command lines: CLIP_benchmark against babelclip.

A benchmark that PRINTS figures (not a pass/fail test). For each family of ``_families.py``
(causal CLIP, XLM-R, NLLB, SigLIP-i18n style; tiny random models of the real architectures) it

1. builds the model as an open_clip ``local-dir`` folder and the synthetic ImageNet folder of
   ``vs_clip_benchmark.py`` (``--per-class`` images per class);
2. runs CLIP_benchmark 1.6.2 as a user does, one process per language::

       clip_benchmark eval --dataset babel_imagenet --dataset_root ROOT --model local-dir:DIR \\
           --language XX --no_amp --num_workers 0 --batch_size 64 --output OUT/XX.json

   (``OMP_NUM_THREADS=T``; ``bench/_cb_shim`` on ``PYTHONPATH`` replaces the one function that
   crashes under NumPy >= 2.3, see its docstring);
3. runs babelclip once for all languages, cold (empty cache) then warm (same cache)::

       babelclip eval --model DIR --images ROOT --labels babel_imagenet.json \\
           --nllb-prompts nllb_dist13b_prompts.json --prompts nllb-raw --languages de,ja,... \\
           --tasks zeroshot_classification --language-workers T --cache-dir C --out O

   (NLLB: ``--model-option nllb_mapping=english``, the tokens CLIP_benchmark sends under transformers 5);
   (``--device cuda``: with ``--device cuda --amp``; the last line says whether the GPU path ran);
4. prints per-language top-1 of both side by side, how many agree exactly, wall times and their
   ratio, babelclip's start-up / model-load / lookup seconds (results meta), and with ``--floor``
   the compute floor (``_floor.py``) and babelclip's cold time as a multiple of it.

``--size base --classes K`` runs both tools at the sizes users evaluate on each language's first
K classes (CLIP_benchmark reads the cut labels through ``BENCH_CB_DATASETS``, see the shim).

CLIP_benchmark's figures are kept in ``--work`` per family, language list and thread count
(``--only-clip-benchmark`` / ``--skip-clip-benchmark`` run one side), so each timed run stays short.

Run (repository root, venv active, ``PYTHONPATH=src``)::

    python bench/vs_cb_families.py --family xlmr --threads 1 --only-clip-benchmark
    python bench/vs_cb_families.py --family xlmr --threads 1 --skip-clip-benchmark --floor
    python bench/vs_cb_families.py --family nllb,siglip --languages all --threads 2   # full run
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _families import FAMILIES, SIZES, model_dir
from _reference import BABEL_IMAGENET as REF
from _reference import REPO

BIN = Path(sys.executable).parent
SHIM = Path(__file__).resolve().parent / "_cb_shim"
DEFAULT_LANGS = "de,ja,fi,hi,om,zh,ar,sw,el,ko"  # the ten
NLLB_DEFAULT = "de,ja,fi,hi,fr,zh,ar,sw,el,ko"  # CLIP_benchmark's NLLB route knows no `om`


def cb_nllb_languages() -> set[str]:
    """The codes CLIP_benchmark's NLLB route maps to a language token (others: KeyError)."""
    from clip_benchmark.models.nllb_clip import lang_map

    return set(lang_map)


def runnable(family: str) -> list[str]:
    labels = json.loads((REF / "babel_imagenet.json").read_text(encoding="utf-8"))
    prompts = json.loads((REF / "nllb_dist13b_prompts.json").read_text(encoding="utf-8"))
    codes = [c.lower() for c in labels if c in prompts]
    return [c for c in codes if c in cb_nllb_languages()] if family == "nllb" else codes


def n_prompts(codes: list[str]) -> int:
    labels = json.loads((REF / "babel_imagenet.json").read_text(encoding="utf-8"))
    prompts = json.loads((REF / "nllb_dist13b_prompts.json").read_text(encoding="utf-8"))
    return sum(len(labels[c.upper()][1]) * len(prompts[c.upper()]) for c in codes)


def figures_key(codes: list[str]) -> str:
    """The language part of a figures file's name: the codes themselves, or for a long list its
    length and a digest (two halves of one list, run side by side, must not share a file)."""
    if len(codes) <= 12:
        return "-".join(codes)
    return f"{len(codes)}-{hashlib.sha256(','.join(sorted(codes)).encode()).hexdigest()[:8]}"


def gathered_cb(work: Path, key: str, codes: list[str]) -> dict | None:
    """CLIP_benchmark's figures for ``codes`` gathered from every figures file of the same family,
    image count and threads (e.g. two halves of the language list run side by side, one core
    each: ``--languages`` with every other code); ``None`` if no file holds any of them."""
    prefix = key.rsplit("_", 1)[0] + "_"
    merged: dict = {"per_lang": {}, "cpu_per_lang": {}, "acc1": {}}
    load, threads, cmd = 0.0, None, ""
    for f in sorted(work.glob(prefix + "*.json")):
        part = json.loads(f.read_text())
        for c in part.get("codes", []):
            if c in codes and c not in merged["acc1"]:
                for k in ("per_lang", "cpu_per_lang", "acc1"):
                    merged[k][c] = part[k][c]
        load, threads, cmd = max(load, part.get("load_after", 0.0)), part.get("threads"), part.get("cmd", cmd)
    if not merged["acc1"]:
        return None
    merged.update(codes=list(merged["acc1"]), total=sum(merged["per_lang"].values()),
                  cpu=sum(merged["cpu_per_lang"].values()), threads=threads, load_after=load, cmd=cmd)
    print(f"CLIP_benchmark figures of {len(merged['codes'])} of the {len(codes)} languages gathered from {prefix}*.json")
    return merged


def _env(threads: int, cb: bool) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), TQDM_DISABLE="1", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1")
    if cb:
        env["PYTHONPATH"] = os.pathsep.join([str(SHIM), env.get("PYTHONPATH", "")])
    else:
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    return env


def timed_run(cmd: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``cmd``; its wall seconds and CPU seconds (user + system of it and its children: on a
    shared machine the CPU time stays near what an idle machine's wall time would be)."""
    def cpu() -> float:
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ru.ru_utime + ru.ru_stime

    c0, t0 = cpu(), time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    return r, time.perf_counter() - t0, cpu() - c0


def run_cb(mdir: Path, root: Path, codes: list[str], out: Path, threads: int, keep: Path,
           datasets: Path | None = None) -> dict:
    """One ``clip_benchmark eval`` process per language; the figures so far saved to ``keep``
    after each language (a stopped run keeps what it measured). ``datasets``: the folder its
    dataset builder reads its bundled files from (``--classes``: :func:`cb_datasets`)."""
    out.mkdir(parents=True, exist_ok=True)
    per, cpu, acc = {}, {}, {}
    res = {}
    for c in codes:
        cmd = [str(BIN / "clip_benchmark"), "eval", "--dataset", "babel_imagenet", "--dataset_root", str(root),
               "--model", f"local-dir:{mdir}", "--language", c, "--no_amp", "--num_workers", "0",
               "--batch_size", "64", "--quiet", "--output", str(out / f"{c}.json")]
        env = _env(threads, True) | ({"BENCH_CB_DATASETS": str(datasets)} if datasets else {})
        r, per[c], cpu[c] = timed_run(cmd, env)
        if r.returncode:
            print(f"  CLIP_benchmark {c}: exit {r.returncode}: {r.stderr.strip().splitlines()[-1:]}")
            continue
        acc[c] = json.loads((out / f"{c}.json").read_text())["metrics"]["acc1"]  # all metrics: cb_metrics
        print(f"  CLIP_benchmark {c}: {per[c]:.1f} s wall, {cpu[c]:.1f} s CPU, acc1 {acc[c]:.5f}, "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
        res = {"total": sum(per.values()), "cpu": sum(cpu.values()), "per_lang": per, "cpu_per_lang": cpu,
               "acc1": acc, "codes": list(acc), "threads": threads, "cmd": " ".join(cmd),
               "load_after": os.getloadavg()[0]}
        keep.write_text(json.dumps(res, indent=1))
    return res


def subset_reference(work: Path, classes: int) -> Path:
    """A folder holding the reference labels cut to each language's first ``classes`` classes,
    and the NLLB prompts (for runs at the size users evaluate: the texts of all 1,000 classes
    through an XLM-R-base tower take hours on a CPU)."""
    folder = work / f"reference-{classes}-classes"
    folder.mkdir(parents=True, exist_ok=True)
    labels = json.loads((REF / "babel_imagenet.json").read_text(encoding="utf-8"))
    cut = {lang: [ids[:classes], names[:classes]] for lang, (ids, names) in labels.items()}
    (folder / "babel_imagenet.json").write_text(json.dumps(cut, ensure_ascii=False), encoding="utf-8")
    prompts = folder / "nllb_dist13b_prompts.json"
    if not prompts.exists():  # the file itself, not a copy of it in every run
        prompts.symlink_to((REF / "nllb_dist13b_prompts.json").resolve())
    return folder


def cb_datasets(work: Path, ref: Path) -> Path:
    """CLIP_benchmark's bundled dataset files (links to its own), with ``babel_imagenet.json``
    the one of ``ref`` (:func:`subset_reference`'s cut); its builder reads them from here under
    ``BENCH_CB_DATASETS`` (``_cb_shim``)."""
    import clip_benchmark.datasets

    own = Path(clip_benchmark.datasets.__file__).parent
    folder = work / f"cb-datasets-{ref.name}"
    folder.mkdir(parents=True, exist_ok=True)
    for f in own.iterdir():
        link = folder / f.name
        if f.is_file() and not link.is_symlink():
            link.symlink_to(ref / f.name if f.name == "babel_imagenet.json" else f)
    return folder


def eval_args(family: str, mdir: Path, root: Path, codes: list[str], cache: Path, out: Path,
              threads: int, extra: list[str], ref: Path = REF) -> list[str]:
    """The arguments of babelclip's command line for one run (``eval ...``), as a user gives them."""
    return ["eval", "--model", str(mdir), "--images", str(root),
            "--labels", str(ref / "babel_imagenet.json"), "--nllb-prompts", str(ref / "nllb_dist13b_prompts.json"),
            "--prompts", "nllb-raw", "--languages", ",".join(codes), "--tasks", "zeroshot_classification",
            "--language-workers", str(threads), "--cache-dir", str(cache), "--out", str(out), "--overwrite",
            *(nllb_tokens(extra) if family == "nllb" else []), *extra]


def cb_nllb_mapping() -> str:
    """The ``nllb_mapping`` of the language tokens CLIP_benchmark 1.6.2 sends (docs/protocols.md):
    ``eng_Latn`` for every language under transformers 5 (``english``), the reference table under 4
    (``paper``). Not ``--protocol paper``: that also swaps English to OpenAI's templates, which
    CLIP_benchmark does not."""
    from importlib.metadata import version

    return "english" if int(version("transformers").split(".")[0]) >= 5 else "paper"


def nllb_tokens(extra: list[str]) -> list[str]:
    """babelclip's arguments for CLIP_benchmark's NLLB tokens; none where ``--babelclip-args``
    names a mapping itself."""
    if any(a.startswith("nllb_mapping=") for a in extra):
        return []
    return ["--model-option", f"nllb_mapping={cb_nllb_mapping()}"]


def run_babelclip(family: str, mdir: Path, root: Path, codes: list[str], cache: Path, out: Path,
                  threads: int, extra: list[str], ref: Path = REF) -> dict:
    cmd = [str(BIN / "python"), "-m", "babelclip", *eval_args(family, mdir, root, codes, cache, out, threads, extra, ref)]
    r, wall, cpu = timed_run(cmd, _env(threads, False))
    if r.returncode:
        sys.exit(f"babelclip failed ({r.returncode}):\n{r.stderr[-3000:]}")
    doc = json.loads((out / "results.json").read_text())
    from babelclip.data.labels import resolve_code

    by_tag = {rec["language"]: [rec["metrics"][k] for k in ("top1", "top5", "mean_per_class_recall")]
              for rec in doc["results"]}
    metrics = {c: by_tag.get(resolve_code(c.upper(), "labels")) for c in codes}
    return {"wall": wall, "cpu": cpu, "metrics": metrics, "seconds": doc["meta"].get("seconds", {}),
            "cmd": " ".join(cmd)}


def cb_metrics(out: Path, codes: list[str]) -> dict[str, list[float]]:
    """acc1, acc5, mean per-class recall of each language CLIP_benchmark finished (its JSON files)."""
    found = {}
    for c in codes:
        f = out / f"{c}.json"
        if f.exists():
            m = json.loads(f.read_text())["metrics"]
            found[c] = [m["acc1"], m["acc5"], m["mean_per_class_recall"]]
    return found


def report(family: str, codes: list[str], cb: dict | None, theirs_all: dict, cold: dict, warm: dict,
           floor: dict | None) -> None:
    names = ("acc1", "acc5", "mpcr")
    print(f"\n[{family}] {'lang':5s} " + " ".join(f"{'CB ' + n:>9s} {'ours ' + n:>9s}" for n in names)
          + f" {'CB s':>6s}  identical")
    same = {n: 0 for n in names}
    for c in codes:
        theirs, ours = theirs_all.get(c), cold["metrics"].get(c)
        cells, flags = [], []
        for i, n in enumerate(names):
            t = theirs[i] if theirs else None
            o = ours[i] if ours else None
            eq = t is not None and o is not None and abs(t - o) < 1e-9
            same[n] += eq
            flags.append(n if eq else "")
            cells.append((f"{t:9.5f}" if t is not None else f"{'-':>9s}") + " " + (f"{o:9.5f}" if o is not None else f"{'-':>9s}"))
        s = (cb or {}).get("per_lang", {}).get(c, float("nan"))
        print(f"[{family}] {c:5s} " + " ".join(cells) + f" {s:6.1f}  {','.join(f for f in flags if f) or 'none'}")
    print(f"[{family}] identical over the {len(theirs_all)} languages CLIP_benchmark ran: "
          + ", ".join(f"{n} {same[n]}" for n in names))
    sec = cold["seconds"]
    wsec = warm["seconds"]
    if len(cold.get("runs_cpu", [])) > 1:
        print(f"[{family}] babelclip cold runs, CPU s: {', '.join(f'{c:.1f}' for c in cold['runs_cpu'])}; wall s: "
              f"{', '.join(f'{w:.1f}' for w in cold['runs_wall'])}; the median run (by CPU) below")
    print(f"[{family}] babelclip cold {cold['wall']:.1f} s wall, {cold['cpu']:.1f} s CPU (meta: " + ", ".join(f"{k} {v:.2f}" for k, v in sec.items()
                                                                       if isinstance(v, (int, float))) + ")")
    print(f"[{family}] babelclip warm {warm['wall']:.2f} s wall = {100 * warm['wall'] / cold['wall']:.1f}% of cold, "
          f"{warm['cpu']:.2f} s CPU (meta: "
          + ", ".join(f"{k} {v:.2f}" for k, v in wsec.items() if isinstance(v, (int, float))) + ")")
    if cb:
        scale, note = 1.0, ""
        if set(cb["codes"]) != set(codes):  # a stopped CB run: scale its time by the prompts it covered
            scale = n_prompts(codes) / n_prompts(cb["codes"])
            note = f" (CB ran {len(cb['codes'])} of these languages: its times scaled by prompts, x{scale:.2f})"
        wall, cpu = cb["total"] * scale, cb.get("cpu", float("nan")) * scale
        print(f"[{family}] CLIP_benchmark {wall:.1f} s wall, {cpu:.1f} s CPU ({len(cb['codes'])} processes, threads "
              f"{cb['threads']}, load after {cb['load_after']:.1f}){note}")
        print(f"[{family}] ratio CB / babelclip cold: {wall / cold['wall']:.1f}x wall, {cpu / cold['cpu']:.1f}x CPU")
    if floor:
        cpu = floor.get("cpu_total")
        print(f"[{family}] floor {floor['total']:.1f} s wall (text {floor['text']:.1f} s: {floor['texts']} distinct tokenised "
              f"texts, mean {floor['mean_tokens']:.1f} tokens{' (full context)' if floor['full_context'] else ''}; "
              f"images {floor['images']:.1f} s: {floor['n_images']}); babelclip cold = {cold['wall'] / floor['total']:.2f}x "
              "floor in wall time" + (f"; floor {cpu:.1f} s CPU (text {floor['cpu_text']:.1f}, images "
                                       f"{floor['cpu_images']:.1f}): babelclip cold = {cold['cpu'] / cpu:.2f}x floor in CPU time"
                                       if cpu else ""))


def profile(family: str, mdir: Path, root: Path, codes: list[str], work: Path, threads: int) -> None:
    """babelclip's engine in this process, cold, with ``vs_clip_benchmark``'s time profile."""
    import torch
    from vs_clip_benchmark import _profile, run_babelclip

    torch.set_num_threads(threads)
    cache = work / f"profile-cache-{family}"
    shutil.rmtree(cache, ignore_errors=True)
    r = run_babelclip(codes, root, None, cache, 64, 1000, model=str(mdir),
                      model_options={"nllb_mapping": cb_nllb_mapping()} if family == "nllb" else None)
    shutil.rmtree(cache, ignore_errors=True)
    _profile(f"[{family}] babelclip in-process cold profile, one process, {threads} thread(s)", r["clock"], r["total"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--family", default="xlmr", help=f"comma-separated: {', '.join(FAMILIES)}")
    ap.add_argument("--languages", default="", help="comma-separated Babel-ImageNet codes, or 'all'")
    ap.add_argument("--per-class", type=int, default=2)
    ap.add_argument("--size", default="tiny", choices=SIZES,
                    help="text tower size: tiny (the default) or base (the size users evaluate; see _families.py)")
    ap.add_argument("--classes", type=int, default=0,
                    help="each language's first N classes only (both tools and the floor)")
    ap.add_argument("--threads", type=int, default=1, help="OMP threads of each process; babelclip language workers")
    ap.add_argument("--work", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "babelclip-bench-families"))
    ap.add_argument("--only-clip-benchmark", action="store_true")
    ap.add_argument("--skip-clip-benchmark", action="store_true")
    ap.add_argument("--floor", action="store_true", help="also measure the compute floor in-process")
    ap.add_argument("--repeat", type=int, default=1,
                    help="cold babelclip runs (each from an empty cache); the ratios use the median run's "
                         "(a shared VM's speed drifts by ~10 %% between minutes)")
    ap.add_argument("--profile", action="store_true",
                    help="also babelclip's in-process time profile (one cold evaluation, one process)")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                    help="babelclip's device; cuda also turns on its half-precision autocast (--amp). CLIP_benchmark "
                         "picks its own (CUDA where torch sees one)")
    ap.add_argument("--babelclip-args", default="", help="extra babelclip eval arguments (space-separated)")
    ap.add_argument("--report-only", action="store_true",
                    help="print the table from the figures both sides stored in --work (no run)")
    args = ap.parse_args()
    gpu = gpu_line(args.device)
    if args.device == "cuda" and gpu.startswith("GPU: not run"):
        print(gpu)
        return 0
    from vs_clip_benchmark import make_imagenet

    work = Path(args.work).resolve()
    root = work / "imagenet"
    root.mkdir(parents=True, exist_ok=True)
    n_img = make_imagenet(root, args.per_class)
    ref = subset_reference(work, args.classes) if args.classes else REF
    datasets = cb_datasets(work, ref) if args.classes else None
    for family in args.family.split(","):
        ok = runnable(family)
        spec = args.languages or (NLLB_DEFAULT if family == "nllb" else DEFAULT_LANGS)
        codes = ok if spec == "all" else [c.strip().lower() for c in spec.split(",") if c.strip()]
        bad = [c for c in codes if c not in ok]
        if bad:
            sys.exit(f"{family}: CLIP_benchmark cannot run {bad}; runnable: {', '.join(ok)}")
        mdir = model_dir(work, family, args.size)
        print(f"[{family}] model {mdir}; {n_img} images; {len(codes)} languages; threads {args.threads}; "
              f"load average {os.getloadavg()[0]:.2f}", flush=True)
        shape = ((f"-{args.size}" if args.size != "tiny" else "") + (f"-{args.classes}c" if args.classes else "")
                 + ("-cuda" if args.device == "cuda" else ""))  # CLIP_benchmark's CPU figures are not a GPU run's
        key = f"cb_{family}{shape}_{args.per_class}pc_{args.threads}t_{figures_key(codes)}.json"
        cb_file = work / key
        cb_out = work / "cb_out" / f"{family}{shape}"
        cb = json.loads(cb_file.read_text()) if cb_file.exists() else gathered_cb(work, key, codes)
        if not (args.skip_clip_benchmark or args.report_only):
            cb = run_cb(mdir, root, codes, cb_out, args.threads, cb_file, datasets)
            print(f"[{family}] CLIP_benchmark {cb['total']:.1f} s; one process: {cb['cmd']}")
        if args.only_clip_benchmark:
            continue
        bc_key = key.replace("cb_", "babelclip_", 1)
        if args.babelclip_args:  # another babelclip configuration: its own figures file
            bc_key = bc_key.replace(".json", "-" + hashlib.sha256(args.babelclip_args.encode()).hexdigest()[:8] + ".json")
        bc_file = work / bc_key
        if args.report_only:
            if not bc_file.exists():
                sys.exit(f"no babelclip figures in {bc_file}: run without --report-only first")
            bc = json.loads(bc_file.read_text())
            report(family, codes, cb, cb_metrics(cb_out, codes), bc["cold"], bc["warm"], bc["floor"])
            continue
        cache = work / f"cache-{family}"
        extra = args.babelclip_args.split() + (["--device", "cuda", "--amp"] if args.device == "cuda" else [])
        print(f"[{family}] load average before babelclip {os.getloadavg()[0]:.2f}", flush=True)
        colds = []
        for _ in range(max(args.repeat, 1)):
            shutil.rmtree(cache, ignore_errors=True)
            colds.append(run_babelclip(family, mdir, root, codes, cache, work / f"out-{family}", args.threads, extra, ref))
        cold = sorted(colds, key=lambda r: r["cpu"])[len(colds) // 2]
        cold["runs_cpu"] = [r["cpu"] for r in colds]
        cold["runs_wall"] = [r["wall"] for r in colds]
        if any(r["metrics"] != cold["metrics"] for r in colds):
            sys.exit(f"[{family}] cold runs disagree on the metrics")
        warm = run_babelclip(family, mdir, root, codes, cache, work / f"out-{family}", args.threads, extra, ref)
        print(f"[{family}] babelclip: {cold['cmd']}")
        floor = None
        if args.floor:
            import torch
            from _floor import compute_floor

            torch.set_num_threads(args.threads)
            floor = compute_floor(mdir, ref, codes, root)
        if args.profile:
            profile(family, mdir, root, codes, work, args.threads)
        bc_file.write_text(json.dumps({"cold": cold, "warm": warm, "floor": floor}, indent=1))
        report(family, codes, cb, cb_metrics(cb_out, codes), cold, warm, floor)
        print(f"[{family}] load average at the end {os.getloadavg()[0]:.2f}")
        shutil.rmtree(cache, ignore_errors=True)
    print(gpu)
    return 0


def gpu_line(device: str) -> str:
    """What this run says about the GPU path (``babelclip eval --device cuda --amp``)."""
    import torch

    if not torch.cuda.is_available():
        return "GPU: not run (torch sees no CUDA device on this machine; run with --device cuda on one)"
    name = torch.cuda.get_device_name(0)
    return (f"GPU: babelclip ran on {name} with --device cuda --amp" if device == "cuda"
            else f"GPU: not run ({name} is here: add --device cuda)")


if __name__ == "__main__":
    sys.exit(main())
