"""Packed text-tower inference against the transformers forward, at the sizes users evaluate.

A benchmark that PRINTS figures (not a pass/fail test). babelclip runs BERT/XLM-R towers
(:mod:`babelclip.models.packed_bert`) and NLLB's M2M100 encoder
(:func:`babelclip.models.openclip.packed.packed_m2m100`) without padding through any linear layer.
This times both computations on the same length-sorted batches (babelclip's batching), one
thread, random weights of the real architectures:

- ``xlmr-base``: XLM-R base (768 wide, 12 layers, 250k vocabulary), mean pooling (open_clip's
  ``xlm-roberta-base-ViT-B-32``, M-CLIP's towers are XLM-R large of this layout);
- ``nllb-600m``: NLLB-200-distilled-600M's encoder (1024 wide, 12 layers, 256k vocabulary),
  first-token pooling (open_clip's ``nllb-clip-base``);
- ``xlmr-tiny``: the 64-wide, 2-layer tower of ``vs_cb_families.py``.

Token lengths are those of real Babel-ImageNet prompts (CLIP_benchmark's raw NLLB templates over
the German labels, the XLM-R tokenizer of the benchmark's tiny model, every ``--stride``-th text),
the ids random; batches of ``--batch`` texts sorted by length, as babelclip forms them.
``--context 77`` also times the path CLIP_benchmark takes through open_clip: the transformers
forward on batches padded to the full context (open_clip's ``HFTokenizer`` pads every text to
it), attention masked.

    python bench/packed_text_towers.py [--sizes xlmr-base,nllb-600m,xlmr-tiny] [--texts 512] [--batch 64] [--context 77]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from _reference import BABEL_IMAGENET

SIZES = {
    "xlmr-tiny": ("xlmr", {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 256}),
    "xlmr-base": ("xlmr", {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}),
    "nllb-600m": ("m2m", {"d_model": 1024, "encoder_layers": 12, "encoder_attention_heads": 16, "encoder_ffn_dim": 4096}),
}


def prompt_lengths(n: int) -> list[int]:
    """Token lengths (special tokens included) of ``n`` German Babel-ImageNet prompts."""
    from transformers import AutoTokenizer

    babel = json.loads((BABEL_IMAGENET / "babel_imagenet.json").read_text(encoding="utf-8"))
    prompts = json.loads((BABEL_IMAGENET / "nllb_dist13b_prompts.json").read_text(encoding="utf-8"))
    labels = babel["DE"][1]
    texts = [t.replace("{}", lab) for lab in labels for t in prompts["DE"] if "{}" in t]
    from _families import model_dir

    work = Path(os.environ.get("TMPDIR", "/tmp")) / "babelclip-bench-families"  # vs_cb_families.py's folder
    tok = AutoTokenizer.from_pretrained(str(model_dir(work, "xlmr")))
    stride = max(1, len(texts) // n)
    return [len(x) for x in tok(texts[::stride][:n])["input_ids"]]


def build(kind: str, dims: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "xlmr":
        from transformers import XLMRobertaConfig, XLMRobertaModel

        cfg = XLMRobertaConfig(vocab_size=250002, max_position_embeddings=514, **dims)
        return XLMRobertaModel(cfg, add_pooling_layer=False).eval()
    from transformers import M2M100Config
    from transformers.models.m2m_100.modeling_m2m_100 import M2M100Encoder

    cfg = M2M100Config(vocab_size=256206, max_position_embeddings=1024, scale_embedding=True, **dims)
    return M2M100Encoder(cfg).eval()


def batches(lengths: list[int], batch: int, pad: int, width: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of texts sorted by length, padded to their longest (``width``: to that width)."""
    rng = np.random.default_rng(0)
    out = []
    order = sorted(lengths)
    for s in range(0, len(order), batch):
        part = order[s : s + batch]
        ids = torch.full((len(part), width or max(part)), pad, dtype=torch.long)
        for r, n in enumerate(part):
            ids[r, :n] = torch.from_numpy(rng.integers(4, 200000, n))
            ids[r, 0] = 0
        out.append((ids, ids != pad))
    return out


def reference(kind: str, tower, ids, keep) -> torch.Tensor:
    hidden = tower(input_ids=ids, attention_mask=keep.long()).last_hidden_state
    if kind == "m2m":
        return hidden[:, 0]
    m = keep.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1)


def packed(kind: str, tower, ids, keep) -> torch.Tensor:
    from babelclip.models.openclip.packed import _first_tokens, packed_m2m100
    from babelclip.models.packed_bert import packed_mean_embeddings

    if kind == "m2m":
        return _first_tokens(packed_m2m100(tower, ids, keep), keep)
    return packed_mean_embeddings(tower, ids, keep.long())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="xlmr-base,nllb-600m,xlmr-tiny")
    ap.add_argument("--texts", type=int, default=512)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--context", type=int, default=0, help="also the transformers forward padded to this context")
    args = ap.parse_args()
    torch.set_num_threads(1)
    lengths = prompt_lengths(args.texts)
    print(f"{len(lengths)} texts, {sum(lengths)} tokens (mean {np.mean(lengths):.1f}), batches of {args.batch} "
          f"sorted by length; one thread")
    for size in args.sizes.split(","):
        kind, dims = SIZES[size]
        tower = build(kind, dims)
        data = batches(lengths, args.batch, 1)
        padded = sum(ids.numel() for ids, _ in data)
        times = {"transformers": [], "packed": []}
        diff = 0.0
        full = batches(lengths, args.batch, 1, args.context) if args.context else []
        with torch.inference_mode():
            for _ in range(args.rounds if full else 0):
                t = time.perf_counter()
                for ids, keep in full:
                    reference(kind, tower, ids, keep)
                times.setdefault("context", []).append(time.perf_counter() - t)
            for _ in range(args.rounds):
                for name, fn in (("transformers", reference), ("packed", packed)):
                    t = time.perf_counter()
                    outs = [fn(kind, tower, ids, keep) for ids, keep in data]
                    times[name].append(time.perf_counter() - t)
                    if name == "transformers":
                        ref = outs
                    else:
                        diff = max(float((a - b).abs().max()) for a, b in zip(outs, ref))
        best = {k: min(v) for k, v in times.items()}
        print(f"{size:10s} transformers {best['transformers']:7.2f} s ({len(lengths) / best['transformers']:6.1f} texts/s)  "
              f"packed {best['packed']:7.2f} s ({len(lengths) / best['packed']:6.1f} texts/s)  "
              f"{best['transformers'] / best['packed']:.2f}x  max |diff| {diff:.1e}  "
              f"(padding {100 * (1 - sum(lengths) / padded):.1f} % of the batch positions)")
        if full:
            print(f"{size:10s} transformers padded to the context of {args.context} (CLIP_benchmark's path): "
                  f"{best['context']:7.2f} s ({len(lengths) / best['context']:6.1f} texts/s); packed is "
                  f"{best['context'] / best['packed']:.2f}x faster")


if __name__ == "__main__":
    main()
