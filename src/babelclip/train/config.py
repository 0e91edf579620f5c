"""How a training run trains: :class:`DistillConfig`, saved beside every adapter and checkpoint
(its own file so that checkpoints and the loop both read it without a cycle). ``objective``
names what a step computes: ``distill`` (teacher–student, :mod:`babelclip.train.distill`) or
``lexical`` (contrastive lexical specialization on synonym sets, :mod:`babelclip.train.lexical`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

METHODS = ("lora", "full")
LOSSES = ("mse", "kl")
OBJECTIVES = ("distill", "lexical")

#: Linear-layer names of attention and feed-forward blocks in the text towers babelclip runs
#: (BERT/XLM-R: query/key/value/dense; CLIP/SigLIP/M2M: q_proj/k_proj/v_proj/out_proj/fc1/fc2;
#: T5-style: q/k/v/o/wi/wo; open_clip's own blocks: c_fc/c_proj).
LORA_TARGET_NAMES = ("query", "key", "value", "dense", "q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2",
                     "q", "k", "v", "o", "wi", "wo", "c_fc", "c_proj")


@dataclass
class DistillConfig:
    """How to train; saved beside every adapter and checkpoint so a run can be repeated."""

    objective: Literal["distill", "lexical"] = "distill"  # what a step computes (module docstring)
    method: Literal["lora", "full"] = "lora"  # per-language adapters (small files) or all text-module weights
    steps: int = 1000  # optimizer steps (the schedule's length; resume continues towards it)
    batch_size: int = 32  # GLOBAL batch: split evenly across torchrun processes, so results match 1 process
    lr: float = 1e-3  # LoRA likes ~1e-3; full fine-tuning wants ~2e-5
    weight_decay: float = 0.0  # AdamW decoupled decay; adapters start at zero, decay pulls them back
    warmup_steps: int = 0  # linear warm-up, then linear decay to 0 at `steps`
    grad_clip: float = 1.0  # max global gradient norm (0 = off): keeps early LoRA steps sane
    loss: Literal["mse", "kl"] = "mse"  # kl: Hinton et al. 2015 on class logits (level="logits"), KL(teacher‖student)
    kl_temperature: float = 1.0  # softening of both distributions for loss="kl" (loss scaled by T²)
    normalize: bool = True  # compare L2-normalised embeddings: MSE = 2 - 2cos, what retrieval scores use
    contrastive_weight: float = 0.0  # weight of the in-batch InfoNCE term (0 = pure MSE as M-CLIP)
    temperature: float = 0.05  # InfoNCE temperature (on cosines): distillation's term and the lexical objective
    symmetric: bool = True  # lexical: InfoNCE both ways (target -> anchors and anchor -> targets), averaged
    lora_r: int = 8  # adapter rank: capacity vs size
    lora_alpha: int = 16  # LoRA scaling alpha/r
    lora_dropout: float = 0.0  # dropout on the adapter input
    lora_targets: tuple[str, ...] | None = None  # linear-layer names; None = every attention/FFN linear
    lora_layers: tuple[int, ...] | None = None  # only these transformer blocks (peft's layers_to_transform); None = all
    max_trainable_fraction: float = 0.05  # LoRA must stay "a few %" of the text module; asserted
    checkpoint_every: int = 100  # steps between checkpoints (and at the end)
    keep_checkpoints: int = 2  # older checkpoints are deleted
    max_minutes: float = 0.0  # wall-clock budget (0 = none): stop early, checkpoint, save
    seed: int = 0  # data order, LoRA init, dropout
    teacher_batch_size: int = 64  # batch for the one-off teacher pass
    progress: bool = True  # tqdm progress bar (rank 0 only)

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective={self.objective!r}; allowed: {', '.join(OBJECTIVES)}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r}; allowed: {', '.join(METHODS)}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss={self.loss!r}; allowed: {', '.join(LOSSES)}")
        for name in ("steps", "batch_size", "checkpoint_every", "lora_r", "teacher_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lora_targets is not None:
            self.lora_targets = tuple(self.lora_targets)
        if self.lora_layers is not None:
            self.lora_layers = tuple(int(i) for i in self.lora_layers)
