"""Data-parallel distillation under torchrun: 2 CPU processes (gloo) follow the 1-process loss curve.

The same file is the worker: ``torchrun --nproc_per_node 2 tests/test_train_distributed.py OUT``
trains a tiny pure-torch text side (full fine-tuning, so workers import neither transformers nor
peft and start fast) with a global batch of 8 (4 per process); rank 0 writes the losses. LoRA
under the same loop is covered by test_distill.py: the gradient averaging is method-agnostic.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _config():
    from babelclip.train.distill import DistillConfig

    return DistillConfig(method="full", steps=8, batch_size=8, lr=1e-2, checkpoint_every=8, progress=False)


def _train(out: Path) -> list[float]:
    from _tiny_text import PAIRS_SW, BagOfWordsText

    from babelclip.languages import get_language
    from babelclip.train.distill import distill
    from babelclip.train.parallel import ParallelCorpus

    corpus = ParallelCorpus(get_language("de"), PAIRS_SW, "toy")
    return distill(BagOfWordsText(), corpus, _config(), out).losses


def test_two_processes_match_one(tmp_path):
    import numpy as np

    single = _train(tmp_path / "one")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(Path(__file__).resolve()), str(tmp_path / "two")]
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    double = json.loads((tmp_path / "two" / "losses.json").read_text())
    assert len(double) == len(single) == 8
    np.testing.assert_allclose(double, single, rtol=1e-4, atol=1e-6)
    assert double[-1] < double[0]  # and it trained
    assert (tmp_path / "two" / "text_module.safetensors").exists()  # rank 0 saved the weights


if __name__ == "__main__":  # the torchrun worker
    import torch

    from babelclip.train.distill import init_distributed_from_env

    torch.set_num_threads(1)
    assert init_distributed_from_env(), "run me under torchrun"
    out = Path(sys.argv[1])
    losses = _train(out)
    if torch.distributed.get_rank() == 0:
        (out / "losses.json").write_text(json.dumps(losses))
    torch.distributed.destroy_process_group()
