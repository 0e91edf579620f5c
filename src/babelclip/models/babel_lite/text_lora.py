"""babel-lite 2's multilingual text side: low-rank updates merged into mE5's linear layers at load.

The file holds, per adapted ``nn.Linear`` of the text tower (named as in ``BertModel``, e.g.
``encoder.layer.0.attention.self.query``), the LoRA factors ``<name>.lora_A`` (r × in) and
``<name>.lora_B`` (out × r) in float16; the model's ``babel_lite.json`` gives the scale
(``alpha / r``). Loading adds ``scale · B @ A`` to each weight once (Hu et al. 2021, eq. 3: a
merged LoRA costs nothing at inference), so the merged tower is again a plain ``BertModel``:
the packed fast path, the tower cache and adapters on top all keep working. No ``peft`` at run
time: the merge is this one matrix product per layer. The factors are trained by
``babelclip-tools train-lite-text`` (:mod:`babelclip_tools.lite_text`).
"""
from __future__ import annotations

from pathlib import Path

import torch

SUFFIX_A, SUFFIX_B = ".lora_A", ".lora_B"


class LoraFileError(ValueError):
    """A LoRA file that does not fit the tower it is merged into."""


def pair_factors(state: dict[str, torch.Tensor], where: str | Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{linear name: (A, B)}`` (float32) from ``NAME.lora_A`` / ``NAME.lora_B`` tensors; refuses
    unpaired or unknown tensors, naming ``where``."""
    names = {k[: -len(SUFFIX_A)] for k in state if k.endswith(SUFFIX_A)}
    unpaired = sorted({k for k in state if not k.endswith((SUFFIX_A, SUFFIX_B))}
                      | {n + SUFFIX_B for n in names if n + SUFFIX_B not in state}
                      | {k for k in state if k.endswith(SUFFIX_B) and k[: -len(SUFFIX_B)] not in names})
    if unpaired or not names:
        raise LoraFileError(f"{where}: not a babel-lite LoRA file (unpaired or unknown tensors: {unpaired[:5]}); "
                            f"expected pairs NAME{SUFFIX_A} / NAME{SUFFIX_B}")
    return {n: (state[n + SUFFIX_A].float(), state[n + SUFFIX_B].float()) for n in sorted(names)}


def lora_factors(path: str | Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{linear name: (A, B)}`` from a saved file; refuses a file with unpaired factors."""
    from safetensors.torch import load_file

    return pair_factors(load_file(str(path)), path)


def merge_lora(tower: torch.nn.Module, path: str | Path, scale: float) -> torch.nn.Module:
    """Add ``scale · B @ A`` to each named linear weight of ``tower`` (new tensors: the tower's
    own may be memory-mapped from the cache); returns ``tower``."""
    for name, (a, b) in lora_factors(path).items():
        try:
            linear = tower.get_submodule(name)
        except AttributeError:
            raise LoraFileError(f"{path}: the text tower has no layer {name!r}") from None
        w = linear.weight
        if not isinstance(linear, torch.nn.Linear) or (b.shape[0], a.shape[1]) != tuple(w.shape) or a.shape[0] != b.shape[1]:
            raise LoraFileError(f"{path}: factors of {name!r} are {tuple(a.shape)} and {tuple(b.shape)}, "
                                f"which do not fit its weight {tuple(w.shape)}")
        delta = (b @ a).to(w.dtype, copy=False).to(w.device) * scale
        linear.weight = torch.nn.Parameter(w.detach() + delta, requires_grad=False)
    return tower


def save_lora(factors: dict[str, tuple[torch.Tensor, torch.Tensor]], path: str | Path) -> None:
    """Write ``{linear name: (A, B)}`` as float16 safetensors."""
    from safetensors.torch import save_file

    state = {}
    for name, (a, b) in sorted(factors.items()):
        state[name + SUFFIX_A] = a.detach().to(torch.float16).contiguous()
        state[name + SUFFIX_B] = b.detach().to(torch.float16).contiguous()
    save_file(state, str(path))


def peft_factors(peft_state: dict[str, torch.Tensor], adapter: str = "default") -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """LoRA factors from a ``peft`` state dict (``base_model.model.X.lora_A.<adapter>.weight`` or,
    as ``save_pretrained`` writes them, ``base_model.model.X.lora_A.weight``)."""
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in peft_state.items():
        for part in ("lora_A", "lora_B"):
            for tail in (f".{part}.{adapter}.weight", f".{part}.weight"):
                if key.endswith(tail):
                    name = key[: -len(tail)].removeprefix("base_model.model.")
                    out.setdefault(name, {})[part] = value
    return {n: (d["lora_A"], d["lora_B"]) for n, d in out.items() if len(d) == 2}
