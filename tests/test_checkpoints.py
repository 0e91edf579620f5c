"""Training checkpoints are data, never code; damaged ones are refused, truncated ones named and
skipped for the previous good one (issue 17, item 3)."""
from __future__ import annotations

import pytest
import torch
from _tiny_text import PAIRS_SW, TinyTextEncoder

from babelclip.errors import CheckpointError
from babelclip.languages import get_language
from babelclip.train.distill import DistillConfig, distill
from babelclip.train.parallel import ParallelCorpus
from babelclip.train.text_side import trainable_text

CORPUS = ParallelCorpus(get_language("de"), PAIRS_SW, "toy", "CC0")


def _cfg(**kw) -> DistillConfig:
    base = {"steps": 8, "batch_size": 8, "lr": 1e-2, "checkpoint_every": 2, "progress": False, "lora_r": 4,
            "keep_checkpoints": 3}
    base.update(kw)
    return DistillConfig(**base)


def _interrupted(out, at=6):
    distill(trainable_text(TinyTextEncoder()), CORPUS, _cfg(), out, interrupt_at=at)
    return sorted((out / "checkpoints").glob("step-*.pt"))


@pytest.fixture(scope="module")
def reference_losses(tmp_path_factory):
    """The loss curve of the same run, never interrupted."""
    return distill(trainable_text(TinyTextEncoder()), CORPUS, _cfg(), tmp_path_factory.mktemp("ref")).losses


class _Payload:
    def __reduce__(self):  # what a planted pickle does: run code on load
        import os

        return (os.system, ("touch PWNED_BY_CHECKPOINT",))


def test_checkpoints_load_with_weights_only(tmp_path):
    (ckpt, *_) = _interrupted(tmp_path)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)  # no pickled objects inside
    assert state["step"] == 2 and state["trainable"]


def test_a_planted_checkpoint_never_runs_code(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    ckpts = _interrupted(out)
    planted = out / "checkpoints" / "step-99999999.pt"
    torch.save({"step": 1, "x": _Payload()}, planted)
    res = distill(trainable_text(TinyTextEncoder()), CORPUS, _cfg(), out, resume=True)
    assert not (tmp_path / "PWNED_BY_CHECKPOINT").exists()
    assert str(planted) in caplog.text and res.steps_done == 8
    assert len(ckpts) == 3


def test_nan_weights_are_refused_and_the_previous_checkpoint_used(tmp_path, caplog, reference_losses):
    ckpts = _interrupted(tmp_path / "run")
    state = torch.load(ckpts[-1], weights_only=True)
    name = next(iter(state["trainable"]))
    state["trainable"][name][0] = float("nan")
    torch.save(state, ckpts[-1])
    res = distill(trainable_text(TinyTextEncoder()), CORPUS, _cfg(), tmp_path / "run", resume=True)
    assert "not finite" in caplog.text and str(ckpts[-1]) in caplog.text
    assert res.losses == reference_losses  # resumed from step 4: the same run
    assert all(torch.isfinite(torch.tensor(res.losses)))


@pytest.mark.parametrize("damage", ["wrong_key", "wrong_shape"])
def test_wrong_keys_or_shapes_are_refused(tmp_path, damage, caplog):
    ckpts = _interrupted(tmp_path / "run", at=2)
    state = torch.load(ckpts[-1], weights_only=True)
    name = next(iter(state["trainable"]))
    if damage == "wrong_key":
        state["trainable"]["not.a.weight"] = state["trainable"].pop(name)
    else:
        state["trainable"][name] = torch.zeros(3, 3)
    torch.save(state, ckpts[-1])
    with pytest.raises(CheckpointError) as e:
        distill(trainable_text(TinyTextEncoder()), CORPUS, _cfg(), tmp_path / "run", resume=True)
    assert str(ckpts[-1]) in str(e.value)


def test_a_truncated_checkpoint_is_named_and_the_previous_one_used(tmp_path, caplog, reference_losses):
    import logging

    caplog.set_level(logging.INFO, logger="babelclip.train.checkpoints")
    ckpts = _interrupted(tmp_path / "run")
    data = ckpts[-1].read_bytes()
    ckpts[-1].write_bytes(data[: len(data) // 2])
    res = distill(trainable_text(TinyTextEncoder()), CORPUS, _cfg(), tmp_path / "run", resume=True)
    assert str(ckpts[-1]) in caplog.text and "step-00000004.pt" in caplog.text
    assert res.losses == reference_losses


def test_a_run_that_diverges_is_stopped_before_it_saves(tmp_path):
    with pytest.raises(CheckpointError, match="not finite"):
        distill(trainable_text(TinyTextEncoder()), CORPUS, _cfg(lr=1e30, grad_clip=0.0), tmp_path)
    assert not list((tmp_path / "checkpoints").glob("step-*.pt")) if (tmp_path / "checkpoints").exists() else True
