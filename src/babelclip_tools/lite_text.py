"""Train a multilingual text side for babel-lite: one LoRA update of mE5 for every language at once.

babel-lite 1's head was trained on English texts only; other languages reach it through mE5's
aligned space alone, and land on their own class about a third as often. This builder keeps
that head (and the image side) and moves the *text tower* so that a text in any language gives
the head the class distribution its English counterpart gives: multilingual knowledge
distillation (Reimers & Gurevych 2020) on the head's class logits with a KL loss (Hinton et al.
2015), the setting measured best for per-language adapters (docs/training.md), trained once over
all languages into a single rank-8 LoRA (Hu et al. 2021) that is merged into the weights at load
(:mod:`babelclip.models.babel_lite.text_lora`).

**Status: measured, not shipped.** Neither setting tried so far beat babel-lite 1 (docs/babel-lite.md,
"Towards babel-lite 2"): 300 steps over all names left the non-English label alignment where it
was and cost English 2.4 points; 600 steps over the ImageNet-like emoji only (teacher confidence
>= 0.2) made every measured language worse. The default of the package stays babel-lite 1.

Data, all from registry packages and independent of every evaluation set:

- CLDR emoji names (``tts``) of every locale with annotations (Debian ``unicode-cldr-core``,
  Unicode licence), paired with the English name of the same emoji; only the emoji of
  Babel-Emoji's **training half** (the other half is that benchmark's evaluation data);
  optionally only emoji whose English name the head already gives one class with probability
  ``>= min_teacher_confidence``;
- English names paired with themselves (``en_share`` of the pairs), so English keeps its outputs.

The leakage guard (:func:`babelclip.train.leakage.filter_leakage`) runs per locale against the
Babel-ImageNet labels, every Tux Paint text and Babel-Emoji's evaluation half; the build refuses
to run without them (an unguarded build could not say it never saw evaluation data). A CLDR
name that equals a label is kept and counted as overlap (the leakage policy for independent
sources); ``bench/babel_lite_versions.py`` scores the "unseen" labels, which are no training target.

A build tool (``babelclip-tools train-lite-text --out DIR``); the runtime only merges the file.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from babelclip.languages import Language, get_language
from babelclip.train.parallel import MULTILINGUAL

log = logging.getLogger(__name__)



@dataclass
class LiteTextConfig:
    seed: int = 0
    steps: int = 300
    batch_size: int = 32
    lr: float = 3e-3
    lora_r: int = 8
    lora_alpha: int = 16
    warmup_steps: int = 15
    en_share: float = 0.1  # English self-pairs, as a share of the other pairs
    min_pairs: int = 50  # locales with fewer training-half names are left out
    keywords: bool = False  # also each emoji's keyword list (joined) as a pair
    min_teacher_confidence: float = 0.0  # keep emoji whose English name the v1 head gives a class >= this (0: all)
    threads: int = 0  # torch threads (0: torch's default); 1 is fastest on a loaded machine


def cldr_locales(annotations_dir: str | Path | None = None) -> list[Language]:
    """Every language with its own CLDR annotations file (English excluded), in tag order: the
    language table's locales (:func:`babelclip.data.emoji.cldr.annotation_locales`)."""
    from babelclip.data.emoji.cldr import annotation_locales
    from babelclip.train.sources import _cldr_dir

    tags = annotation_locales(_cldr_dir(annotations_dir))[0]
    return [get_language(t) for t in sorted(tags) if t != "en" and not t.startswith("en-")]


def build_corpus(cfg: LiteTextConfig, eval_sets, annotations_dir=None):
    """The mixed-language training corpus, the per-locale leakage reports and pair counts."""
    from babelclip.train.leakage import filter_leakage
    from babelclip.train.parallel import ParallelCorpus, ParallelDataError
    from babelclip.train.sources import CLDR_LICENCE, EMOJI_META, INDEPENDENT, cldr_pairs

    pairs: list[tuple[str, str]] = []
    reports, counts = {}, {}
    for lang in cldr_locales(annotations_dir):
        try:
            corpus = cldr_pairs(lang, annotations_dir, keywords=cfg.keywords, emoji="train")
        except ParallelDataError as e:
            log.info("skipping %s: %s", lang.tag, e)
            continue
        corpus, report = filter_leakage(corpus, eval_sets)
        if len(corpus) < cfg.min_pairs:
            continue
        pairs += corpus.pairs
        reports[lang.tag], counts[lang.tag] = report.as_dict(), len(corpus)
    english = list(dict.fromkeys(e for e, _ in pairs))
    repeat = max(1, round(cfg.en_share * len(pairs) / max(1, len(english))))
    pairs += [(e, e) for e in english] * repeat
    counts["en"] = len(english) * repeat
    meta = {**INDEPENDENT, EMOJI_META: "train", "leakage_guard": "applied"}
    return ParallelCorpus(MULTILINGUAL, pairs, "cldr:names-all-locales", CLDR_LICENCE, meta), reports, counts


def confident_pairs(model, corpus, threshold: float):
    """The pairs whose English side the model's head already gives one class with probability
    ``>= threshold``: emoji that are ImageNet things (animals, food, vehicles, tools), not faces,
    symbols or flags, whose teacher distribution would be noise. Returns (corpus, names kept)."""
    import torch

    english = list(dict.fromkeys(e for e, _ in corpus.pairs))
    with torch.inference_mode():
        top = torch.cat([model.text_distribution(english[i : i + 512]).max(-1).values for i in range(0, len(english), 512)])
    keep = {e for e, p in zip(english, top.tolist()) if p >= threshold}
    pairs = [(e, t) for e, t in corpus.pairs if e in keep]
    return type(corpus)(corpus.lang, pairs, corpus.source, corpus.licence, dict(corpus.meta)), len(keep)


def guard_sets():
    """Babel-ImageNet labels, Tux Paint texts and Babel-Emoji's evaluation half: all required."""
    from babelclip.train.recipe import evaluation_sets, find_tuxpaint

    sets, labelset = evaluation_sets(None, find_tuxpaint())
    have = {s.name for s in sets}
    missing = [n for n in ("tuxpaint", "babel-emoji") if n not in have] + ([] if labelset is not None else ["babel-imagenet labels"])
    if missing:
        raise FileNotFoundError(f"the leakage guard needs every evaluation set, missing: {', '.join(missing)} "
                                "(install babelclip[dev] and run scripts/setup.sh for the Debian packages)")
    return sets


def train_lite_text(out_dir: str | Path, cfg: LiteTextConfig | None = None, *, work_dir: str | Path | None = None,
                    base_dir: str | Path | None = None, annotations_dir: str | Path | None = None) -> Path:
    """Train the LoRA and write a babel-lite 2 model directory (``babel_lite.json``, the English
    head copied unchanged, ``text_lora.safetensors``); returns ``out_dir``.

    ``base_dir``: the babel-lite 1 directory whose head teaches (default: the shipped ``v1``);
    ``annotations_dir``: a CLDR ``common/annotations`` folder (default: Debian's); a killed run
    started again with the same ``work_dir`` resumes from its last checkpoint."""
    import torch

    import babelclip
    from babelclip.models.babel_lite.model import CONFIG_NAME, LORA_NAME, VARIANTS, read_config
    from babelclip.models.babel_lite.text_lora import peft_factors, save_lora
    from babelclip.train.config import DistillConfig
    from babelclip.train.distill import distill
    from babelclip.train.text_side import trainable_text

    cfg = cfg or LiteTextConfig()
    t0 = time.perf_counter()
    base = Path(base_dir) if base_dir else VARIANTS["v1"]
    corpus, reports, counts = build_corpus(cfg, guard_sets(), annotations_dir)
    log.info("corpus: %d pairs in %d languages", len(corpus), len(counts))
    model = babelclip.create_model(str(base))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    corpus, confident = confident_pairs(model, corpus, cfg.min_teacher_confidence)
    log.info("%d pairs whose English name names an ImageNet class with p >= %.2f (%d English names)",
             len(corpus), cfg.min_teacher_confidence, confident)
    text = trainable_text(model, "logits")
    dcfg = DistillConfig(method="lora", steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, loss="kl",
                         lora_r=cfg.lora_r, lora_alpha=cfg.lora_alpha, warmup_steps=cfg.warmup_steps,
                         seed=cfg.seed, checkpoint_every=200, progress=False)
    out = Path(out_dir)
    work = Path(work_dir) if work_dir else out / "work"
    result = distill(text, corpus, dcfg, work, resume=(work / "checkpoints").is_dir())
    out.mkdir(parents=True, exist_ok=True)
    factors = peft_factors({k: v for k, v in text.text_module().state_dict().items() if "lora_" in k})
    save_lora(factors, out / LORA_NAME)
    config = read_config(base)
    base_name = config.get("name", "babel-lite@v1")
    shutil.copy(base / config["head"]["file"], out / config["head"]["file"])
    config.update(format="babel-lite/2", name="babel-lite")
    config["text"]["lora"] = {"file": LORA_NAME, "r": cfg.lora_r, "alpha": cfg.lora_alpha, "layers": len(factors)}
    config["text_training"] = {
        "tool": "babelclip-tools train-lite-text", "config": asdict(cfg), "base": base_name,
        "objective": "KL(teacher || student) of the head's class distributions; teacher = the English name through the "
                     "frozen babel-lite 1 text side",
        "data": f"CLDR emoji names, training half of Babel-Emoji's split, {len(counts) - 1} locales ({corpus.licence})",
        "pairs": len(corpus), "english_names": confident, "pairs_per_language_before_confidence": counts, "leakage": reports,
        "final_loss": round(sum(result.losses[-50:]) / max(1, len(result.losses[-50:])), 4),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (out / CONFIG_NAME).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log.info("babel-lite 2 text side trained in %.0f s: %s", time.perf_counter() - t0, out)
    return out
