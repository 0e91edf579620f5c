"""Lexical specialization: contrastive training of a language's text side on synonym sets.

After Green, Ponzetto & Glavaš (2023, "Massively Multilingual Lexical Specialization of
Multilingual Transformers", ACL): texts that name the same concept in any language are
positives, the other concepts of the batch negatives, and a multiple-negatives-ranking
(InfoNCE) loss over the text side's pooled embeddings pulls synonyms together. Here each step
draws a batch of :class:`~babelclip.train.synonyms.SynonymSet` and, per set, one **target**
member in the trained language and one **anchor** member in another language (both drawn anew
each step, as a pure function of ``(seed, step, set)``, so resume is exact)::

    loss = ½ [ InfoNCE(q → a) + InfoNCE(a → q) ],   s_ij = cos(q_i, a_j) / τ

(``symmetric=False``: the first term only), with ``q`` the trainable text side's embeddings of
the targets and ``a`` the **frozen** embeddings of the anchors, computed once by the untouched
model (cached like distillation's teacher, :mod:`babelclip.train.teacher`). Frozen anchors are
what a per-language adapter needs: it only ever runs for its language, so every other language
is embedded at inference exactly as the anchors were. Positives are multi-positive (a row's
loss is ``-log Σ_pos softmax``): batch entries are positives of each other when they are the
same concept (same key, e.g. one concept from two sources) or share a target or an anchor
text, so a duplicate is never pushed away from itself.

Under torchrun each process embeds its share of the targets; the shares are gathered with
gradients (:func:`~babelclip.train.distributed.gather_with_grad`) so every process computes the
loss over the global batch, and 2 processes follow the 1-process curve.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..languages import Language, get_language
from .config import DistillConfig
from .distributed import gather_with_grad, rank_share, rank_world
from .leakage import normalise
from .loop import DistillResult, batch_indices, check_run_start, train_objective
from .synonyms import SynonymDataError, SynonymSets
from .teacher import teacher_embeddings
from .text_side import TrainableText, language_agnostic

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)

Pair = tuple[str, tuple[str, str]]  # (target text, (anchor tag, anchor text))


def positive_mask(keys: Sequence[str], targets: Sequence[str], anchors: Sequence[str]) -> torch.Tensor:
    """``(B, B)`` booleans: entries ``i`` and ``j`` of a batch are positives of each other when they
    are one concept (same key) or share a target or an anchor text (compared normalised)."""
    import torch

    def same(values: Sequence[str]) -> torch.Tensor:
        ids = {v: i for i, v in enumerate(dict.fromkeys(values))}
        codes = torch.tensor([ids[v] for v in values])
        return codes[:, None] == codes[None, :]

    return same(list(keys)) | same([normalise(t) for t in targets]) | same([normalise(a) for a in anchors])


def lexical_loss(q: torch.Tensor, a: torch.Tensor, positives: torch.Tensor, temperature: float,
                 symmetric: bool = True) -> torch.Tensor:
    """Multi-positive InfoNCE between L2-normalised ``q`` and ``a`` (row ``i`` of each is one
    batch entry), averaged over rows; ``symmetric``: the mean of both directions."""
    import torch
    import torch.nn.functional as F

    logits = F.normalize(q, dim=-1) @ F.normalize(a, dim=-1).T / temperature
    pos = positives.to(logits.device)

    def one_way(lg: torch.Tensor) -> torch.Tensor:
        return (torch.logsumexp(lg, 1) - torch.logsumexp(lg.masked_fill(~pos, float("-inf")), 1)).mean()

    return (one_way(logits) + one_way(logits.T)) / 2 if symmetric else one_way(logits)


class Lexical:
    """The :class:`~babelclip.train.loop.Objective` of lexical specialization (module docstring)."""

    def __init__(self, sets: SynonymSets, lang: Language, config: DistillConfig):
        self.sets, self.lang, self.config = sets, lang, config
        self.targets = [s.texts(lang.tag) for s in sets]
        self.anchors = [[(g, t) for g, t in s.members if g != lang.tag] for s in sets]
        self.rows: dict[tuple[str, str], int] = {}
        self.anchor_emb: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.sets)

    def pair(self, step: int, i: int) -> Pair:
        """Set ``i``'s target and anchor at ``step``: a pure function of (seed, step, i)."""
        rng = np.random.default_rng([self.config.seed, step, int(i)])
        return self.targets[i][rng.integers(len(self.targets[i]))], self.anchors[i][rng.integers(len(self.anchors[i]))]

    def embed_anchors(self, text: TrainableText, cache_dir: str | os.PathLike | None, steps: int) -> None:
        """Embed, with the untouched model, every anchor steps ``0..steps-1`` draw (cached on disk)."""
        import torch

        needed = sorted({self.pair(step, i)[1] for step in range(steps)
                         for i in batch_indices(len(self), step, self.config.batch_size, self.config.seed)[0]})
        groups: dict[str, list[tuple[str, str]]] = {}
        if language_agnostic(text):  # one call where the language changes nothing
            groups["en"] = needed
        else:
            for m in needed:
                groups.setdefault(m[0], []).append(m)
        parts = []
        for g, members in groups.items():
            emb = teacher_embeddings(text, [t for _, t in members], cache_dir, self.config.teacher_batch_size,
                                     self.config.progress, lang=g)
            self.rows.update({m: len(self.rows) + k for k, m in enumerate(members)})
            parts.append(torch.from_numpy(emb))
        self.anchor_emb = torch.cat(parts)
        log.info("lexical: %d anchors embedded in %d language groups", len(self.rows), len(groups))

    def loss(self, text: TrainableText, idx: np.ndarray, step: int) -> torch.Tensor:
        import torch

        _, world = rank_world()
        order = np.concatenate([idx[r::world] for r in range(world)]) if world > 1 else idx  # gathered rows
        pairs = [self.pair(step, i) for i in order]
        mine = [self.pair(step, i)[0] for i in rank_share(idx)]
        q = gather_with_grad(text.text_forward(mine, self.lang).float())
        assert self.anchor_emb is not None, "embed_anchors() first"
        a = self.anchor_emb[torch.as_tensor([self.rows[p[1]] for p in pairs])].to(q.device)
        positives = positive_mask([self.sets.sets[i].key for i in order], [p[0] for p in pairs], [p[1][1] for p in pairs])
        return lexical_loss(q, a, positives, self.config.temperature, self.config.symmetric)

    def data_meta(self) -> dict[str, Any]:
        s = self.sets
        return {"source": s.source, "licence": s.licence, "sets": len(s), "target_members": sum(map(len, self.targets)),
                "anchor_members": sum(map(len, self.anchors)), "anchor_languages": len(s.languages()) - 1, **s.meta}


def specialize(
    text: TrainableText,
    sets: SynonymSets,
    lang: str | Language,
    config: DistillConfig,
    out_dir: str | os.PathLike,
    *,
    anchor_langs: Sequence[str] | None = None,
    resume: bool = False,
    cache_dir: str | os.PathLike | None = None,
    **loop: Any,
) -> DistillResult:
    """Train ``text``'s module for ``lang`` on ``sets`` with the lexical objective; saves what
    :func:`~babelclip.train.distill.distill` saves (adapter or weights, checkpoints,
    ``babelclip_adapter.json``), through the same loop. ``anchor_langs``: the languages whose
    members serve as anchors (default: every language of the sets but ``lang``); ``cache_dir``:
    where the anchors' embeddings are cached; ``loop``: ``eval_fn``, ``interrupt_at``,
    ``extra_meta`` of :func:`~babelclip.train.loop.train_objective`."""
    language = get_language(lang)
    if config.objective != "lexical":
        raise ValueError(f"specialize() trains objective='lexical', the config says {config.objective!r}")
    if language.tag == "en":
        raise SynonymDataError("English is never trained by an adapter (it runs on the base model): pick another language")
    usable = sets.for_language(language, anchor_langs)
    if len(usable) < config.batch_size:
        raise SynonymDataError(
            f"{len(usable)} of {len(sets)} synonym sets ({sets.source}) have a {language.tag} member and an anchor in "
            f"{'any other language' if anchor_langs is None else ', '.join(anchor_langs)}: fewer than one batch of "
            f"{config.batch_size}; lower --batch-size, widen the anchor languages or add sources"
        )
    out = Path(out_dir)
    check_run_start(config, out, resume)
    objective = Lexical(usable, language, config)
    objective.embed_anchors(text, cache_dir if cache_dir is not None else out / "teacher_cache", config.steps)
    return train_objective(text, objective, config, out, resume=resume, **loop)
