"""Data-parallel distillation: 2 CPU processes (gloo) follow the 1-process loss curve.

Two workers are spawned with ``torch.multiprocessing`` and a file rendezvous (the same way as
test_encode_distributed.py; torchrun's own TCP rendezvous agent hung once in CI's sandbox, so the
test does not depend on it). ``distill`` sees an initialised process group exactly as it does
under ``torchrun``. The text side is a tiny pure-torch model (full fine-tuning) with a global
batch of 8 (4 per process); rank 0 writes the losses. LoRA under the same loop is covered by
test_distill.py: the gradient averaging is method-agnostic.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _config(objective: str = "distill"):
    from babelclip.train.distill import DistillConfig

    return DistillConfig(objective=objective, method="full", steps=8, batch_size=8, lr=1e-2, checkpoint_every=8,
                         progress=False, temperature=0.1)


def _train(out: Path, objective: str = "distill") -> list[float]:
    from _tiny_text import PAIRS_SW, BagOfWordsText

    from babelclip.languages import get_language
    from babelclip.train.distill import distill
    from babelclip.train.lexical import specialize
    from babelclip.train.parallel import ParallelCorpus
    from babelclip.train.synonyms import SynonymSets, make_set

    if objective == "lexical":  # in-batch negatives across both processes' shares (gathered with gradients)
        sets = SynonymSets([make_set(str(i), [("en", e), ("fr", e.upper()), ("de", t)]) for i, (e, t) in enumerate(PAIRS_SW)], "toy")
        return specialize(BagOfWordsText(), sets, "de", _config(objective), out).losses
    corpus = ParallelCorpus(get_language("de"), PAIRS_SW, "toy")
    return distill(BagOfWordsText(), corpus, _config(), out).losses


def _worker(rank: int, world: int, init: str, out: str, objective: str = "distill") -> None:
    import datetime
    import time

    torch.set_num_threads(1)
    # a hang becomes an error after 60 s rather than a stuck test
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world, timeout=datetime.timedelta(seconds=60))
    try:
        if rank == 1:  # the schedule that once deadlocked: rank 0 has cached the teacher before rank 1 looks
            time.sleep(3)
        losses = _train(Path(out), objective)
        if rank == 0:
            (Path(out) / "losses.json").write_text(json.dumps(losses))
    finally:
        dist.destroy_process_group()


def test_two_processes_match_one(tmp_path):
    single = _train(tmp_path / "one")
    two = tmp_path / "two"
    mp.spawn(_worker, args=(2, f"file://{tmp_path}/rdv", str(two)), nprocs=2)
    double = json.loads((two / "losses.json").read_text())
    assert len(double) == len(single) == 8
    np.testing.assert_allclose(double, single, rtol=1e-4, atol=1e-6)
    assert double[-1] < double[0]  # and it trained
    assert (two / "text_module.safetensors").exists()  # rank 0 saved the weights


def test_lexical_objective_two_processes_match_one(tmp_path):
    single = _train(tmp_path / "one", "lexical")
    two = tmp_path / "two"
    mp.spawn(_worker, args=(2, f"file://{tmp_path}/rdv", str(two), "lexical"), nprocs=2)
    double = json.loads((two / "losses.json").read_text())
    np.testing.assert_allclose(double, single, rtol=1e-4, atol=1e-6)
    assert double[-1] < double[0]


def test_init_from_torchrun_env_picks_backend_and_is_a_no_op_outside_torchrun(monkeypatch):
    from babelclip.train import distill as d

    calls = []
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **kw: calls.append(backend))
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert d.init_distributed_from_env() is False and calls == []  # not under torchrun: nothing joined
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert d.init_distributed_from_env() is True and calls == ["gloo"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert d.init_distributed_from_env() is True and calls == ["gloo", "nccl"]
