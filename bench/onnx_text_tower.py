"""Would ONNX Runtime run a bidirectional text tower faster than PyTorch on the CPU?

A benchmark that PRINTS figures (not a pass/fail test). It exports an XLM-R text tower (mean
pooled) with ``torch.onnx.export`` (dynamic batch and length) and times the same length-sorted,
trimmed batches through PyTorch and through ONNX Runtime's CPU provider, one thread each, twice,
with the largest difference between the outputs. Two sizes:

- ``tiny``: the ``xlmr`` tower of ``_families.py`` (64 wide, 2 layers) through open_clip's
  ``HFTextEncoder``, on the distinct Babel-ImageNet prompts of DE and JA (CLIP_benchmark's raw
  protocol), batches of 256: what ``vs_cb_families.py`` measures;
- ``base``: XLM-R base's architecture (768 wide, 12 layers, 250k vocabulary; random weights),
  768 texts of 8-20 tokens in batches of 128: the size users evaluate.

ONNX Runtime is not a babelclip dependency: ``pip install onnxruntime onnx onnxscript`` first.

    python bench/onnx_text_tower.py [--sizes tiny,base] [--work DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _families import model_dir
from _reference import BABEL_IMAGENET


class Pooled(torch.nn.Module):
    """Input ids → the tower's pooled output (the tower's own pooling, or a mean over the mask)."""

    def __init__(self, tower: torch.nn.Module, pad: int, hf: bool):
        super().__init__()
        self.tower, self.pad, self.hf = tower, pad, hf

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if not self.hf:
            return self.tower(ids)
        mask = (ids != self.pad).long()
        hidden = self.tower(input_ids=ids, attention_mask=mask).last_hidden_state
        return (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)


def tiny(work: Path) -> tuple[torch.nn.Module, list[torch.Tensor]]:
    import open_clip

    d = model_dir(work, "xlmr")
    model = open_clip.create_model(f"local-dir:{d}", load_weights=False, pretrained_text=False)
    model.load_state_dict(torch.load(d / "open_clip_pytorch_model.bin", weights_only=True))
    tok = open_clip.get_tokenizer(f"local-dir:{d}")
    labels = json.loads((BABEL_IMAGENET / "babel_imagenet.json").read_text(encoding="utf-8"))
    prompts = json.loads((BABEL_IMAGENET / "nllb_dist13b_prompts.json").read_text(encoding="utf-8"))
    texts = sorted({p.replace("{}", lab) for c in ("DE", "JA") for lab in labels[c][1] for p in prompts[c]})
    ids = tok(texts)
    pad = model.text.config.pad_token_id
    lens = (ids != pad).sum(1)
    order = torch.argsort(lens)
    batches = [ids[order[s : s + 256]][:, : int(lens[order[s : s + 256]].max())].contiguous()
               for s in range(0, len(order), 256)]
    print(f"tiny: {len(texts)} distinct prompts, mean {float(lens.float().mean()):.1f} tokens, {len(batches)} batches")
    return Pooled(model.text, pad, hf=False).eval(), batches


def base() -> tuple[torch.nn.Module, list[torch.Tensor]]:
    from transformers import XLMRobertaConfig, XLMRobertaModel

    cfg = XLMRobertaConfig(vocab_size=250002, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                           intermediate_size=3072, max_position_embeddings=514, pad_token_id=1)
    torch.manual_seed(0)
    tower = XLMRobertaModel(cfg, add_pooling_layer=False).eval()
    g = torch.Generator().manual_seed(0)
    batches = []
    for length in (8, 10, 12, 14, 16, 20):
        b = torch.randint(5, 250000, (128, length), generator=g)
        b[:, 0] = 0
        b[:32, length - 2 :] = 1  # a quarter of each batch padded by two
        batches.append(b)
    print("base: 768 texts of 8-20 tokens, 6 batches of 128")
    return Pooled(tower, 1, hf=True).eval(), batches


def compare(name: str, module: torch.nn.Module, batches: list[torch.Tensor], work: Path) -> None:
    import onnxruntime as ort

    path = work / f"{name}.onnx"
    torch.onnx.export(module, (batches[-1],), str(path), input_names=["ids"], output_names=["emb"],
                      dynamic_axes={"ids": {0: "batch", 1: "length"}, "emb": {0: "batch"}}, opset_version=17,
                      dynamo=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        for rep in range(2):
            t0 = time.perf_counter()
            want = [module(b) for b in batches]
            t_torch = time.perf_counter() - t0
            t0 = time.perf_counter()
            got = [sess.run(None, {"ids": b.numpy()})[0] for b in batches]
            t_ort = time.perf_counter() - t0
            diff = max(float(np.abs(w.numpy() - g).max()) for w, g in zip(want, got))
            print(f"{name} run {rep + 1}: PyTorch {t_torch:.2f} s, ONNX Runtime {t_ort:.2f} s "
                  f"({t_torch / t_ort:.2f}x), max |difference| {diff:.1e}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="tiny,base")
    ap.add_argument("--work", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "babelclip-bench-families"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = Path(args.work)
    print(f"load average {os.getloadavg()[0]:.1f}; torch {torch.__version__}, 1 thread each")
    with tempfile.TemporaryDirectory() as d:
        for size in args.sizes.split(","):
            module, batches = tiny(work) if size == "tiny" else base()
            compare(size, module, batches, Path(d))


if __name__ == "__main__":
    main()
