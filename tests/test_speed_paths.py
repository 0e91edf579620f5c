"""Speed paths that must not change results: token-length batches for padding-masked HF text
towers, a fully cached run without torch, and the CUDA-only wiring (autocast, pinned memory)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from _tiny_encoder import TinyEncoder
from _tiny_openclip import tiny_openclip_model_dir

from babelclip.eval.encode import pin_memory
from babelclip.languages import get_language
from babelclip.models.amp import AMP_TAG, autocast_dtype, with_autocast

TEXTS = ["a", "a photo of a cat", "猫", "ein Foto", "a b a b a b a b a b", "dog", "Katze Hund Katze",
         "the photo", "x", "a photo of a small dog on a big red chair", "犬の写真", "zz"]


@pytest.fixture(scope="module")
def xlmr(tmp_path_factory):
    from babelclip.models.registry import create_model

    return create_model(str(tiny_openclip_model_dir(tmp_path_factory.mktemp("m"), "xlmr")))


def test_token_sorted_batches_match_open_clip_per_text(xlmr):
    """Every row equals open_clip's own ``encode_text`` of that text alone (padded to the full
    context, as CLIP_benchmark runs it), in the caller's order, whatever its batch company."""
    assert xlmr.trim_hf
    ours = xlmr.encode_texts(TEXTS, "en", batch_size=3)  # > batch_size texts: the token-sorted path
    with torch.inference_mode():
        ref = torch.nn.functional.normalize(xlmr.model.encode_text(xlmr.tokenizer(TEXTS)), dim=-1).numpy()
    np.testing.assert_allclose(ours, ref, atol=2e-6)


def test_token_sorted_batches_are_trimmed_to_their_longest(xlmr, monkeypatch):
    seen = []
    orig = xlmr._encode_ids

    def record(ids, *a, **k):
        pad = xlmr._hf.pad_token_id
        seen.append((ids.shape[1], int((ids != pad).sum(1).max()), int((ids != pad).sum(1).min())))
        return orig(ids, *a, **k)

    monkeypatch.setattr(xlmr, "_encode_ids", record)
    xlmr.encode_texts(TEXTS, "en", batch_size=3)
    assert len(seen) == 4
    assert all(width == longest for width, longest, _ in seen)  # no padding column beyond the longest
    widths = [w for w, _, _ in seen]
    assert widths == sorted(widths)  # batches in token-length order: the shortest texts together
    assert all(seen[i][1] <= seen[i + 1][2] for i in range(len(seen) - 1))  # no overlap between batches


@pytest.mark.parametrize("pooler", ["MeanPooler", "ClsLastHiddenStatePooler"])
def test_packed_hf_tower_equals_open_clips_forward(xlmr, pooler):
    """The packed XLM-R forward (no padding through a linear layer) gives open_clip's
    ``encode_text`` to float rounding, for mean and first-token pooling, on batches with padding;
    with autograd on it is ``encode_text`` itself."""
    from open_clip import hf_model

    from babelclip.models.openclip.packed import packed_text_forward

    text = xlmr.model.text
    original, text.pooler = text.pooler, getattr(hf_model, pooler)()  # (a submodule: not monkeypatch)
    try:
        _packed_equals_forward(xlmr, packed_text_forward(xlmr.model))
    finally:
        text.pooler = original


def _packed_equals_forward(xlmr, forward) -> None:
    assert forward is not None
    ids = xlmr._hf_pad(xlmr._hf_seqs(TEXTS, get_language("en")))
    assert (ids == xlmr._hf.pad_token_id).any()  # padded rows of several lengths
    from babelclip.models.openclip import packed

    calls = []
    layers = packed.packed_layers
    packed.packed_layers = lambda *a: calls.append(1) or layers(*a)
    try:
        with torch.inference_mode():
            want, got = xlmr.model.encode_text(ids), forward(ids)
    finally:
        packed.packed_layers = layers
    assert calls == [1]  # the packed computation ran...
    torch.testing.assert_close(got, want, atol=2e-6, rtol=1e-5)  # ...and gave the same values
    with torch.enable_grad():
        torch.testing.assert_close(forward(ids), xlmr.model.encode_text(ids), atol=0, rtol=0)


def test_packed_nllb_encoder_equals_open_clips_forward(tmp_path):
    """NLLB-CLIP's tower (M2M100 encoder, language token first, first-token pooling): packed equals
    open_clip's ``encode_text`` to float rounding, across languages and padded batches."""
    from babelclip.models.openclip import packed
    from babelclip.models.registry import create_model

    nllb = create_model(str(tiny_openclip_model_dir(tmp_path, "nllb")))
    assert nllb._encode_ids is not nllb.model.encode_text
    calls = []
    run = packed.packed_m2m100
    packed.packed_m2m100 = lambda *a: calls.append(1) or run(*a)
    try:
        for lang in ("de", "ja"):
            ids = nllb._hf_pad(nllb._hf_seqs(TEXTS, get_language(lang)))
            assert (ids == nllb._hf.pad_token_id).any()
            with torch.inference_mode():
                torch.testing.assert_close(nllb._encode_ids(ids), nllb.model.encode_text(ids), atol=2e-6, rtol=1e-5)
    finally:
        packed.packed_m2m100 = run
    assert calls == [1, 1]
    ours = nllb.encode_texts(TEXTS, "de", batch_size=3)  # the token-sorted path, end to end
    with torch.inference_mode():
        ref = torch.nn.functional.normalize(nllb.model.encode_text(nllb.tokenize(TEXTS, get_language("de"))), dim=-1)
    np.testing.assert_allclose(ours, ref.numpy(), atol=2e-6)


def test_packed_forward_only_for_towers_it_computes_exactly(xlmr, monkeypatch):
    from open_clip import hf_model

    from babelclip.models.openclip.packed import packed_text_forward

    text = xlmr.model.text
    assert xlmr._encode_ids is not xlmr.model.encode_text  # the encoder uses it
    original, text.pooler = text.pooler, hf_model.MaxPooler()
    try:
        assert packed_text_forward(xlmr.model) is None
    finally:
        text.pooler = original
    monkeypatch.setattr(text, "output_tokens", True)
    assert packed_text_forward(xlmr.model) is None


def test_fully_cached_images_need_no_torch(tmp_path):
    """A process that never imported torch: _dist, the worker count and a fully cached
    encode_images all answer without importing it."""
    from PIL import Image

    from babelclip.data.images import image_folder
    from babelclip.eval.cache import EmbeddingCache
    from babelclip.eval.encode import encode_images

    (tmp_path / "img").mkdir()
    for i in range(3):
        Image.new("RGB", (9, 9), (40 * i, 0, 0)).save(tmp_path / "img" / f"{i}.png")
    enc = TinyEncoder()
    with EmbeddingCache(tmp_path / "c", "fp", enc.dim) as cache:
        want = encode_images(enc, image_folder(tmp_path / "img"), cache).vectors
    np.save(tmp_path / "want.npy", want)
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        from babelclip.data.images import image_folder
        from babelclip.eval.cache import EmbeddingCache
        from babelclip.eval.encode import _dist, encode_images
        from babelclip.eval.workers import torch_threads

        class NoModel:  # every image is cached: any encode call is a failure
            dim = {enc.dim}
            def encode_images(self, *a, **k):
                raise AssertionError("encoded")
        assert _dist() == (0, 1)
        assert torch_threads() == 3  # OMP_NUM_THREADS, as torch would start
        with EmbeddingCache({str(tmp_path / "c")!r}, "fp", {enc.dim}) as cache:
            emb = encode_images(NoModel(), image_folder({str(tmp_path / "img")!r}), cache)
        assert emb.n_cached == 3 and emb.n_encoded == 0
        assert np.array_equal(emb.vectors, np.load({str(tmp_path / "want.npy")!r}))
        assert "torch" not in sys.modules, "torch was imported"
    """)
    src = str(Path(__file__).resolve().parents[1] / "src")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={"PYTHONPATH": src, "OMP_NUM_THREADS": "3", "PATH": "/usr/bin:/bin"}, check=False)
    assert r.returncode == 0, r.stderr[-2000:]


def test_autocast_and_pinned_memory_only_for_cuda(monkeypatch):
    cpu = TinyEncoder()
    assert autocast_dtype("cpu") is None and autocast_dtype(torch.device("cpu")) is None
    assert autocast_dtype("cuda:0") is torch.float16
    assert not pin_memory(cpu)
    with pytest.raises(ValueError, match="CUDA device.*--device cuda"):
        with_autocast(cpu)

    gpu = TinyEncoder()
    gpu.device = torch.device("cuda")  # the wiring only: nothing runs on a GPU here
    assert pin_memory(gpu)
    calls = []

    class FakeAutocast:
        def __init__(self, device_type, dtype=None):
            calls.append((device_type, dtype))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(torch, "autocast", FakeAutocast)
    amp = with_autocast(gpu)
    gpu.device = torch.device("cpu")  # the inner forward runs on the CPU; autocast was requested for cuda
    out = amp.encode_texts(["a cat"], "en")
    assert calls == [("cuda", torch.float16)]
    np.testing.assert_allclose(out, cpu.encode_texts(["a cat"], "en"), atol=1e-6)  # same weights (seed 0)
    assert amp.fingerprint.key != gpu.fingerprint.key and amp.fingerprint.dtype.endswith(AMP_TAG)
    assert amp.dim == gpu.dim


@pytest.mark.parametrize("lengths", [[1, 1, 3, 3, 3, 5], [0, 2, 2, 4], [4, 1, 3, 2, 5, 1, 2, 3, 4, 6]])
def test_packed_attention_runs_of_equal_length_equal_the_masked_grid(monkeypatch, lengths):
    """Runs of equal-length texts attend with no mask and no padding; the same rows through the
    padded, masked grid (the path for many runs) give the same context, also for empty texts."""
    import babelclip.models.packed_bert as pb

    torch.manual_seed(0)
    heads, hidden, width = 2, 8, max(lengths)
    keep = torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]
    qkv = torch.randn(int(keep.sum()), 3 * hidden)
    runs = pb.packed_attention(qkv, keep, heads, 0.5)
    monkeypatch.setattr(pb, "MAX_LENGTH_RUNS", 0)
    grid = pb.packed_attention(qkv, keep, heads, 0.5)
    assert runs.shape == grid.shape == (sum(lengths), hidden)
    torch.testing.assert_close(runs, grid, atol=1e-6, rtol=1e-5)
    # and both equal attention over each text's own rows, computed one text at a time
    row, want = 0, []
    for n in lengths:
        if n:
            q, k, v = qkv[row : row + n].view(1, n, 3, heads, -1).unbind(2)
            ctx = torch.nn.functional.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale=0.5)
            want.append(ctx.transpose(1, 2).reshape(n, hidden))
        row += n
    torch.testing.assert_close(runs, torch.cat(want), atol=1e-6, rtol=1e-5)


def test_texts_with_equal_ids_run_once_and_share_the_vector(xlmr, monkeypatch):
    """Strings that clean and normalise to the same ids (spacing, a full-width letter under
    NFKC) reach the tower once; each gets the vector of its own ids, in the caller's order."""
    texts = ["a photo of a cat", "a  photo of a  cat ", "ａ photo of a cat", "a photo of a dog", "a photo of a cat"]
    tok = [tuple(s) for s in xlmr._hf_seqs(texts, get_language("en"))]
    assert tok[0] == tok[1] == tok[2] == tok[4] != tok[3]
    rows = []
    orig = xlmr._encode_ids
    monkeypatch.setattr(xlmr, "_encode_ids", lambda ids, *a, **k: rows.append(len(ids)) or orig(ids, *a, **k))
    got = xlmr.encode_texts(texts, "en", batch_size=2)
    assert sum(rows) == 2
    alone = [xlmr.encode_texts([t], "en", batch_size=2)[0] for t in ("a photo of a cat", "a photo of a dog")]
    for i, want in zip(range(5), [0, 0, 0, 1, 0]):
        np.testing.assert_allclose(got[i], alone[want], atol=2e-6)
