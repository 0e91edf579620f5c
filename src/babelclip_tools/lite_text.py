"""Train babel-lite 2's multilingual text side: one LoRA of mE5's top layers for every language at once.

babel-lite 1's head was trained on English texts only; other languages reach it through mE5's
aligned space alone, and land on their own class about a third as often. This builder keeps
that head (and the image side) and moves the *text tower* so that a text in any language gives
the head the class distribution its English counterpart gives: multilingual knowledge
distillation (Reimers & Gurevych 2020) on the head's class distributions with a KL loss (Hinton
et al. 2015), the setting measured best for per-language adapters (docs/training.md), trained
once over all languages into a single LoRA (Hu et al. 2021) of the top ``top_layers`` layers,
merged into the weights at load (:mod:`babelclip.models.babel_lite.text_lora`).

The lower layers stay frozen and run once per distinct text (:mod:`.lite_states`), so 30
minutes of 2 CPU cores see every training pair of 110 languages several times; the data and its
guard are :mod:`.lite_corpus`'s. A build tool (``babelclip-tools train-lite-text --out DIR``);
the runtime only merges the file.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .lite_corpus import guard_sets, language_pairs, sampled_pairs

log = logging.getLogger(__name__)


@dataclass
class LiteTextConfig:
    seed: int = 0
    steps: int = 1000
    batch_size: int = 256
    lr: float = 1e-3
    lora_r: int = 16
    lora_alpha: int = 32
    top_layers: int = 4  # LoRA on the top k of mE5's 12 layers; the lower ones run once per text
    warmup_steps: int = 50
    en_share: float = 0.1  # English names as their own targets, share of every batch
    balance: float = 0.5  # languages sampled ∝ pairs ** balance
    min_pairs: int = 50  # locales with fewer training-half names are left out
    keywords: bool = False  # also each emoji's keyword list (joined) as a pair
    threads: int = 0  # torch threads (0: torch's default)


def train_lite_text(out_dir: str | Path, cfg: LiteTextConfig | None = None, *, work_dir: str | Path | None = None,
                    base_dir: str | Path | None = None, annotations_dir: str | Path | None = None) -> Path:
    """Train the LoRA and write a babel-lite 2 model directory (``babel_lite.json``, the English
    head copied unchanged, ``text_lora.safetensors``); returns ``out_dir``.

    ``base_dir``: the babel-lite 1 directory whose head teaches (default: the shipped ``v1``);
    ``annotations_dir``: a CLDR ``common/annotations`` folder (default: Debian's); a killed run
    started again with the same ``work_dir`` resumes from its last checkpoint and reuses its
    cached lower-layer states."""
    import torch

    import babelclip
    from babelclip.models.babel_lite.model import CONFIG_NAME, LORA_NAME, VARIANTS, read_config
    from babelclip.models.babel_lite.text_lora import peft_factors, save_lora
    from babelclip.train.config import DistillConfig
    from babelclip.train.loop import train_objective
    from babelclip.train.sources import CLDR_LICENCE

    from .lite_states import LowerStates, TopLayersKL, teacher_distributions

    cfg = cfg or LiteTextConfig()
    t0 = time.perf_counter()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    base = Path(base_dir) if base_dir else VARIANTS["v1"]
    data = language_pairs(guard_sets(), min_pairs=cfg.min_pairs, keywords=cfg.keywords, annotations_dir=annotations_dir)
    items = sampled_pairs(data, cfg.steps * cfg.batch_size, balance=cfg.balance, en_share=cfg.en_share, seed=cfg.seed)
    english = data.english
    log.info("corpus: %d pairs in %d languages, %d English names", sum(data.counts().values()), len(data.pairs), len(english))
    model = babelclip.create_model(str(base))
    layers = len(model.text_tower.encoder.layer)
    if not 1 <= cfg.top_layers <= layers:
        raise ValueError(f"top_layers must be in 1..{layers}, got {cfg.top_layers}")
    below = layers - cfg.top_layers
    work = Path(work_dir) if work_dir else Path(out_dir) / "work"
    texts = sorted({t for p in data.pairs.values() for _, t in p} | set(english))
    states = LowerStates.cached(model, texts, below, work, model.fingerprint.key)
    log.info("lower-layer states of %d texts (%d tokens) after layer %d: %.0f s", len(texts), len(states.states), below,
             time.perf_counter() - t0)
    meta = {"source": "cldr:names-all-locales", "licence": CLDR_LICENCE, "cldr_emoji": "train", "leakage_guard": "applied",
            "languages": len(data.pairs), "pairs": sum(data.counts().values()), "english_names": len(english)}
    objective = TopLayersKL(model, items, states, teacher_distributions(model, english), meta)
    dcfg = DistillConfig(method="lora", steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, loss="kl",
                         lora_r=cfg.lora_r, lora_alpha=cfg.lora_alpha, warmup_steps=cfg.warmup_steps,
                         lora_layers=tuple(range(below, layers)), seed=cfg.seed, checkpoint_every=100, progress=False)
    text = model.trainable_text("logits")
    train_dir = work / "train"
    result = train_objective(text, objective, dcfg, train_dir, resume=(train_dir / "checkpoints").is_dir())
    out = Path(out_dir)
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
                     f"frozen babel-lite 1 text side; student = LoRA on layers {below}..{layers - 1} over cached states",
        "data": f"CLDR emoji names, training half of Babel-Emoji's split, {len(data.pairs)} locales ({CLDR_LICENCE})",
        "pairs_per_language": data.counts(), "english_names": len(english), "leakage": data.reports,
        "final_loss": round(sum(result.losses[-50:]) / max(1, len(result.losses[-50:])), 4),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (out / CONFIG_NAME).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log.info("babel-lite 2 text side trained in %.0f s: %s", time.perf_counter() - t0, out)
    return out
