"""A tiny, deterministic, real torch Encoder for fast offline tests of the evaluation engine.

Images: 8x8 RGB thumbnail (alpha composited on white) → linear → ``dim``. Texts: hashed
character trigrams (a stable hash, not Python's salted ``hash``) → linear → ``dim``. It counts
every image and text that reaches a forward pass, so tests can assert "each image once".
"""
from __future__ import annotations

import zlib

import numpy as np
import torch

from babelclip.models.base import Fingerprint
from babelclip.models.torch_encoder import TorchEncoder, state_dict_hash

N_BUCKETS = 512


class TinyEncoder(TorchEncoder):
    def __init__(self, dim: int = 16, seed: int = 0, device: str = "cpu", text_language_agnostic: bool = False):
        super().__init__(device)
        g = torch.Generator().manual_seed(seed)
        self.net = torch.nn.ModuleDict({
            "img": torch.nn.Linear(3 * 8 * 8, dim),
            "txt": torch.nn.Linear(N_BUCKETS, dim),
        })
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
        self.dim = dim
        self.text_language_agnostic = text_language_agnostic
        self.fingerprint = Fingerprint("test", "tiny", state_dict_hash(self.net), "8x8-white-composite")
        self.image_forwards = 0  # images through _image_features
        self.text_forwards = 0  # texts through _text_features
        self.text_calls: list[tuple[str, list[str]]] = []

    def preprocess(self, image) -> torch.Tensor:
        from PIL import Image

        if image.mode == "RGBA":
            white = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, image)
        image = image.convert("RGB").resize((8, 8), Image.BILINEAR)
        return torch.from_numpy(np.asarray(image, dtype=np.float32).copy()).permute(2, 0, 1) / 255.0

    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        self.image_forwards += pixels.shape[0]
        return self.net["img"](pixels.flatten(1) - 0.5)

    def _text_features(self, texts, lang) -> torch.Tensor:
        self.text_forwards += len(texts)
        self.text_calls.append((lang.tag, list(texts)))
        x = torch.zeros(len(texts), N_BUCKETS)
        for i, t in enumerate(texts):
            s = f"  {t.lower()}  "
            for j in range(len(s) - 2):
                x[i, zlib.crc32(s[j : j + 3].encode()) % N_BUCKETS] += 1.0
        return self.net["txt"](x)


def patch_create_model(monkeypatch, enc: TinyEncoder | None = None) -> TinyEncoder:
    """``babelclip.models.registry.create_model`` replaced by one returning ``enc`` (a new
    TinyEncoder by default); each call's name goes to ``enc.create_calls``, its keywords to
    ``enc.create_kwargs``."""
    enc = enc or TinyEncoder()
    enc.create_calls, enc.create_kwargs = [], []

    def create(name, **kw):
        enc.create_calls.append(name)
        enc.create_kwargs.append(kw)
        return enc

    monkeypatch.setattr("babelclip.models.registry.create_model", create)
    return enc


def fewer_emoji(monkeypatch, step: int = 10) -> None:
    """Babel-Emoji on every ``step``-th emoji (154 of them): the same code path, a fast test."""
    from babelclip.data import emoji

    real = emoji.load_emoji

    def every_nth(**kw):
        data = real(**kw)
        data.ids = data.ids[::step]
        data._unique.clear()
        return data

    monkeypatch.setattr(emoji, "load_emoji", every_nth)
