"""Build babel-lite 2.1: babel-lite 2 plus per-language LoRA updates of mE5, in one file.

``babelclip-tools train-lite-adapters --out DIR [--langs ...] [--workers 2]`` (library:
:func:`build_v21`). For each language: the training-half CLDR emoji names paired with their
English names (``cldr_pairs(..., keywords=False)``), through the leakage guard against every
evaluation set (:func:`.lite_corpus.guard_sets`: the build refuses to run without them), then
:func:`babelclip.train.distill.distill` exactly as ``babelclip train --lang XX --parallel
cldr-names`` runs it on babel-lite: a LoRA (r 8, α 16) on mE5's attention and feed-forward
layers, KL of the head's class distribution towards the English name's, AdamW lr 3e-3, 25
warm-up steps then linear decay over 250 steps of 32 pairs, seed 0, one thread per worker
(docs/training.md measured this setting on seven languages). The factors are packed into
``text_adapters.safetensors`` (:mod:`babelclip.models.babel_lite.language_lora`) next to the
base model's files, which are copied unchanged; ``babel_lite.json`` gains ``text.adapters``.

Languages: by default those of Babel-ImageNet's and Tux Paint's evaluation sets that mUSE (babel-lite
2's second tower) does not cover and CLDR names (:data:`DEFAULT_LANGS`). Each language trains in
its own process (``--workers`` at a time); a killed build started again with the same work
folder resumes every language from its last checkpoint and reuses finished ones.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ADAPTERS_NAME = "text_adapters.safetensors"
#: languages of the evaluation sets outside mUSE's that CLDR names (none of the text is used)
DEFAULT_LANGS = ("am", "bn", "cs", "el", "fa", "fi", "gu", "he", "hi", "hu", "hy", "id", "ka", "km", "ml", "sv", "sw",
                 "uk", "vi", "zu")


@dataclass(frozen=True)
class AdapterRecipe:
    """The per-language distillation (defaults: the setting measured in docs/training.md)."""

    steps: int = 250
    batch_size: int = 32
    lr: float = 3e-3
    warmup_steps: int = 25
    lora_r: int = 8
    lora_alpha: int = 16
    top_layers: int = 6  # LoRA on the top k of mE5's 12 layers; the lower ones run once per text
    seed: int = 0
    threads: int = 1


def _train_language(tag: str, base_dir: str, work: str, recipe: AdapterRecipe, guard: list,
                    annotations_dir: str | None = None) -> dict:
    """One language's adapter into ``work/tag`` (top level: runs in a worker process). The LoRA
    covers mE5's top ``recipe.top_layers`` layers; the lower ones run once per distinct text
    (:class:`.lite_states.LowerStates`, cached in ``work``), so a step costs a fraction of a
    whole-tower step."""
    import torch

    from babelclip.models.babel_lite.model import create
    from babelclip.train.config import DistillConfig
    from babelclip.train.leakage import filter_leakage
    from babelclip.train.loop import train_objective
    from babelclip.train.sources import CLDR_LICENCE, cldr_pairs

    from .lite_states import LowerStates, TopLayersKL, teacher_distributions

    torch.set_num_threads(recipe.threads)
    out = Path(work) / tag
    corpus, leak = filter_leakage(cldr_pairs(tag, annotations_dir, keywords=False).deduplicated(), guard)
    t0 = time.perf_counter()
    if not (out / "babelclip_adapter.json").is_file():
        model = create(base_dir)
        layers = len(model.text_tower.encoder.layer)
        below = layers - recipe.top_layers
        english = sorted({e for e, _ in corpus.pairs})
        texts = sorted({t for _, t in corpus.pairs})
        states = LowerStates.cached(model, texts, below, Path(work) / "states", model.fingerprint.key)
        meta = {"source": "cldr-names", "licence": CLDR_LICENCE, "cldr_emoji": "train", "leakage_guard": "applied",
                "pairs": len(corpus)}
        objective = TopLayersKL(model, list(corpus.pairs), states, teacher_distributions(model, english), meta)
        objective.lang = corpus.lang
        cfg = DistillConfig(method="lora", steps=recipe.steps, batch_size=recipe.batch_size, lr=recipe.lr, loss="kl",
                            lora_r=recipe.lora_r, lora_alpha=recipe.lora_alpha, warmup_steps=recipe.warmup_steps,
                            lora_layers=tuple(range(below, layers)), seed=recipe.seed, checkpoint_every=50,
                            progress=False)
        train_objective(model.trainable_text("logits"), objective, cfg, out, resume=(out / "checkpoints").is_dir(),
                        extra_meta={"leakage": leak.as_dict(), "level": "logits"})
    return {"lang": tag, "pairs": len(corpus), "seconds": round(time.perf_counter() - t0, 1),
            "leakage": {k: v for k, v in leak.as_dict().items() if k in ("n_in", "n_kept")}}


def read_adapter(adapter_dir: Path, base_key: str, recipe: AdapterRecipe, layers: int):
    """``(tag, factors)`` of a finished ``distill`` output; refuses one made for another base model
    or with another recipe (a resumed build must not mix settings)."""
    from safetensors.torch import load_file

    from babelclip.languages import get_language
    from babelclip.models.babel_lite.text_lora import peft_factors
    from babelclip.train.adapters import AdapterMismatchError, read_adapter_meta

    meta = read_adapter_meta(adapter_dir)
    if meta.get("base_key") != base_key:
        raise AdapterMismatchError(f"{adapter_dir} was trained on base model {meta.get('base_key')}, not on {base_key}; "
                                   "use another work folder or delete it")
    cfg = meta.get("config", {})
    wanted = {"steps": recipe.steps, "batch_size": recipe.batch_size, "lr": recipe.lr, "lora_r": recipe.lora_r,
              "lora_alpha": recipe.lora_alpha, "seed": recipe.seed,
              "lora_layers": list(range(layers - recipe.top_layers, layers))}
    differ = {k: (cfg.get(k), v) for k, v in wanted.items() if cfg.get(k) != v}
    if differ:
        raise ValueError(f"{adapter_dir} was trained with other settings {differ} (found, wanted); "
                         "use another work folder or delete it")
    factors = peft_factors(load_file(str(adapter_dir / "adapter_model.safetensors")))
    return get_language(meta["lang"]).tag, factors


def build_v21(out_dir: str | Path, langs=DEFAULT_LANGS, recipe: AdapterRecipe | None = None,
              base_dir: str | Path | None = None, workers: int = 2, work_dir: str | Path | None = None,
              annotations_dir: str | Path | None = None) -> Path:
    """Write babel-lite 2.1 into ``out_dir`` (``base_dir``'s files + per-language adapters).

    ``workers``: languages trained at once, each in its own process (0: one after another in this
    process); ``annotations_dir``: a CLDR ``common/annotations`` folder (default: Debian's)."""
    from babelclip.languages import get_language
    from babelclip.models.babel_lite.language_lora import save_language_factors
    from babelclip.models.babel_lite.model import (
        CONFIG_NAME,
        V2_DIR,
        create,
        read_config,
        weight_files,
    )

    from .lite_corpus import guard_sets

    recipe = recipe or AdapterRecipe()
    base = Path(base_dir) if base_dir is not None else V2_DIR
    out = Path(out_dir)
    work = Path(work_dir) if work_dir is not None else out / "work"
    tags = sorted({get_language(t).tag for t in langs})
    if "en" in tags:
        raise ValueError("no English adapter: English is the teacher and always runs on the base model")
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    base_model = create(str(base))
    base_key, layers = base_model.fingerprint.key, len(base_model.text_tower.encoder.layer)
    del base_model
    guard = guard_sets()  # once: every worker gets the same evaluation sets
    jobs = [(t, str(base), str(work), recipe, guard, str(annotations_dir) if annotations_dir else None) for t in tags]
    if workers <= 0:
        runs = [_train_language(*job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            runs = list(pool.map(_train_language, *zip(*jobs)))
    factors = dict(read_adapter(work / t, base_key, recipe, layers) for t in tags)
    cfg = read_config(base)
    out.mkdir(parents=True, exist_ok=True)
    for f in weight_files(base, cfg):
        shutil.copyfile(f, out / Path(f).name)
    save_language_factors(factors, out / ADAPTERS_NAME)
    cfg["name"] = "babel-lite-2.1"
    cfg["text"]["adapters"] = {
        "file": ADAPTERS_NAME, "dtype": "float16", "r": recipe.lora_r, "alpha": recipe.lora_alpha,
        "languages": sorted(factors),
        "training": {"recipe": asdict(recipe), "objective": "distill: KL of the head's class distribution towards the "
                     "English CLDR name's (level logits)",
                     "data": "CLDR emoji names (Babel-Emoji's training half) paired with English, leakage-guarded; "
                             "no Babel-ImageNet label, no Tux Paint text",
                     "runs": runs, "seconds": round(time.perf_counter() - t0, 1)},
    }
    (out / CONFIG_NAME).write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log.info("babel-lite 2.1 with adapters for %s written to %s in %.0f s", ", ".join(sorted(factors)), out,
             time.perf_counter() - t0)
    return out
