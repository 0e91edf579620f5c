"""models/hub.py: the one offline check, the one reachability probe and the one error text shared
by the snapshot loaders (hf, mclip, st) and the named-file loader (open_clip's HubFiles)."""
from __future__ import annotations

import socket

import pytest

from babelclip import WeightsNotFoundError
from babelclip.models.hub import HubFiles, not_found_message, offline_reason


@pytest.fixture
def online_flag(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def test_offline_reason_reads_the_environment_at_call_time(monkeypatch, online_flag):
    assert offline_reason() is None
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "yes")
    assert "HF_HUB_OFFLINE" in offline_reason()


def test_one_probe_per_model_across_files_and_snapshots(monkeypatch, tmp_path, online_flag):
    import huggingface_hub

    probes, downloads = [], []

    def refuse(*args, **kwargs):
        probes.append(args)
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: downloads.append(a))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: downloads.append(a))
    hub = HubFiles("openclip", "ARCH@tag", str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match="cannot be reached"):
        hub.file("org/ckpt", ["model.safetensors"], "the checkpoint")
    with pytest.raises(WeightsNotFoundError, match=r"the tokenizer \('org/tok'"):
        hub.snapshot("org/tok", ["tokenizer.json"], ["*.json"], "the tokenizer")
    assert len(probes) == 1 and downloads == []


def test_one_message_for_both_loaders(tmp_path):
    snapshot = not_found_message("hf", "org/model", "it is not in the cache")
    named = str(HubFiles("openclip", "ARCH@tag", str(tmp_path), ["a local checkpoint file"]).missing(
        "the checkpoint", "org/ckpt", "downloads are disabled"))
    for msg, repo in ((snapshot, "org/model"), (named, "org/ckpt")):
        lines = msg.splitlines()
        assert lines[1] == "Provide them in one of these ways:"
        assert any(line.startswith(f"  - a pre-filled Hugging Face cache: copy a cache holding {repo}") for line in lines)
        assert lines[-1].startswith("  - network access to huggingface.co")
    assert "create_model('/path/to/dir')" in snapshot and "create_model('/path/to/dir')" not in named  # replaced
    assert "  - a local checkpoint file;" in named and str(tmp_path) in named
    assert named.startswith("cannot load the weights of 'openclip:ARCH@tag': the checkpoint ('org/ckpt'")
