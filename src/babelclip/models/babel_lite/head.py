"""The trained text head of babel-lite and the shared representation of both sides.

Text and image meet in the space of ImageNet-1k classes. The image tower's own classifier gives
an image a distribution ``p`` over the 1000 classes; the head maps a text's mE5 embedding to a
distribution ``q`` (a cosine classifier, Wang et al. 2018 "CosFace"-style normalised weights
with a learned logit scale, trained with cross-entropy to name the text's class). A text and an
image match as well as ``<q, p>``: the probability that both name the same class.

The Encoder protocol compares L2-normalised vectors by cosine, so each distribution becomes a
unit vector (:func:`embed_distribution`):

- ``"inner"`` (default): ``[p, 0, sqrt(1-|p|²)]`` for images and ``[q, sqrt(1-|q|²), 0]`` for
  texts. A probability vector has ``|p|₂ ≤ |p|₁ = 1``, so each is a unit vector, and the slack
  coordinates never meet across sides: cosine(text, image) = ``<q, p>`` **exactly**, hence the
  same ranking as the direct score ``log <q, p>`` in both directions (the asymmetric
  inner-product-to-cosine reduction of Neyshabur & Srebro 2015, "On Symmetric and Asymmetric
  LSHs for Inner Product Search").
- ``"sqrt"``: ``sqrt(p)``, ``sqrt(q)``: cosine = Bhattacharyya coefficient ``Σ sqrt(p q)``;
  symmetric, but ranks differently from ``<q, p>`` (measured in docs/babel-lite.md).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

REPRESENTATIONS = ("inner", "sqrt")


@dataclass(frozen=True)
class HeadConfig:
    in_dim: int = 384
    num_classes: int = 1000
    dropout: float = 0.1  # on the input embedding, during training only
    init_scale: float = 16.0  # initial logit scale of the cosine classifier

    def as_dict(self) -> dict:
        return asdict(self)


class TextHead(torch.nn.Module):
    """mE5 sentence embedding → logits over the 1000 ImageNet classes (cosine classifier)."""

    def __init__(self, cfg: HeadConfig = HeadConfig()):
        super().__init__()
        self.cfg = cfg
        self.dropout = torch.nn.Dropout(cfg.dropout)
        self.weight = torch.nn.Parameter(torch.empty(cfg.num_classes, cfg.in_dim))
        torch.nn.init.normal_(self.weight, std=cfg.in_dim**-0.5)
        self.bias = torch.nn.Parameter(torch.zeros(cfg.num_classes))
        self.log_scale = torch.nn.Parameter(torch.tensor(math.log(cfg.init_scale)))

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.normalize(self.dropout(emb), dim=-1)
        w = torch.nn.functional.normalize(self.weight, dim=-1)
        return self.log_scale.exp() * (x @ w.t()) + self.bias


def embed_distribution(probs: torch.Tensor, side: str, representation: str = "inner") -> torch.Tensor:
    """Class distributions ``(n, C)`` → unit vectors whose cross-side cosine is the match score."""
    if side not in ("text", "image"):
        raise ValueError(f"side must be 'text' or 'image', got {side!r}")
    probs = probs.float()
    if representation == "sqrt":
        return torch.sqrt(probs.clamp_min(0))
    if representation == "inner":
        slack = torch.sqrt((1.0 - (probs * probs).sum(-1, keepdim=True)).clamp_min(0.0))
        zero = torch.zeros_like(slack)
        extra = (slack, zero) if side == "text" else (zero, slack)
        return torch.cat([probs, *extra], dim=-1)
    raise ValueError(f"unknown representation {representation!r}; allowed: {', '.join(REPRESENTATIONS)}")


def representation_dim(num_classes: int, representation: str) -> int:
    return num_classes + (2 if representation == "inner" else 0)


def class_prototypes(num_classes: int, representation: str) -> np.ndarray:
    """The image-side unit vector of each class (a one-hot image distribution), one row per class."""
    with torch.no_grad():
        return embed_distribution(torch.eye(int(num_classes)), "image", representation).float().numpy()
