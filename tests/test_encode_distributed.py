"""Data-parallel image encoding: 2 CPU processes (gloo) give the same embeddings as 1."""
from __future__ import annotations

import numpy as np
import torch.distributed as dist
import torch.multiprocessing as mp
from _tiny_encoder import TinyEncoder
from PIL import Image

from babelclip.data.images import image_folder
from babelclip.eval.cache import EmbeddingCache
from babelclip.eval.encode import _shard, encode_images


def _worker(rank, world, init, img_dir, cache_dir, out_dir):
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        enc = TinyEncoder()
        with EmbeddingCache(cache_dir, enc.fingerprint.key, enc.dim) as cache:
            emb = encode_images(enc, image_folder(img_dir), cache, batch_size=2)
        np.save(f"{out_dir}/vec{rank}.npy", emb.vectors)
        np.save(f"{out_dir}/fwd{rank}.npy", np.array([enc.image_forwards, emb.n_encoded]))
    finally:
        dist.destroy_process_group()


def test_two_ranks_equal_one_process(tmp_path):
    img = tmp_path / "img"
    img.mkdir()
    rng = np.random.default_rng(1)
    for i in range(7):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(img / f"{i}.png")
    (img / "broken.png").write_bytes(b"\x89PNG broken")
    mp.spawn(_worker, args=(2, f"file://{tmp_path}/rdv", str(img), str(tmp_path / "cache"), str(tmp_path)), nprocs=2)
    enc = TinyEncoder()
    with EmbeddingCache(None, enc.fingerprint.key, enc.dim) as cache:
        single = encode_images(enc, image_folder(img), cache, batch_size=2)
    for r in (0, 1):
        assert np.array_equal(np.load(tmp_path / f"vec{r}.npy"), single.vectors)  # gathered on every rank
    fwd = [np.load(tmp_path / f"fwd{r}.npy") for r in (0, 1)]
    assert fwd[0][0] + fwd[1][0] == 7 and fwd[0][0] > 0 and fwd[1][0] > 0  # each image once, split
    assert fwd[0][1] == fwd[1][1] == 7
    with EmbeddingCache(tmp_path / "cache", enc.fingerprint.key, enc.dim) as cache:
        assert cache.counts()["images"] == 7


def test_shards_are_contiguous_batch_aligned_and_cover_everything():
    for n in (0, 1, 7, 64, 65):
        parts = [_shard(n, 4, r, 3) for r in range(3)]
        assert [i for p in parts for i in p] == list(range(n))
        assert all(p.start % 4 == 0 for p in parts if len(p))
