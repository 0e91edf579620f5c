"""Tiny open_clip models of real architectures, built offline in a test's tmp directory.

``tiny_openclip_model_dir(tmp_path, kind)`` writes a local open_clip model directory
(``open_clip_config.json`` + checkpoint, and for HF text towers a tiny Hugging Face config and
tokenizer under ``hf_text/``) that ``babelclip.create_model(str(dir))`` loads with no network:

* ``"clip"``: the packaged ``tiny-vit-text`` architecture (ViT + causal text transformer, the
  layout of ViT-B-32 & co.), SimpleTokenizer;
* ``"nllb"``: the layout of ``nllb-clip-base`` — an M2M100 (NLLB) encoder text tower with a
  linear projection and CLS pooling, and an ``NllbTokenizer`` (with all NLLB language tokens)
  over a character-level BPE vocabulary;
* ``"xlmr"``: the layout of ``xlm-roberta-base-ViT-B-32`` — an XLM-RoBERTa text tower with mean
  pooling, and an ``XLMRobertaTokenizer`` over a character-level Unigram vocabulary.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

# Characters of the tiny vocabularies: enough for the test sentences in several scripts.
CHARS = string.ascii_letters + "猫狗一张照片的犬写真äöüß"

TINY_VISION = {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 16}
PREPROCESS = {
    "mean": [0.5, 0.5, 0.5],
    "std": [0.5, 0.5, 0.5],
    "interpolation": "bicubic",
    "resize_mode": "squash",
}
KINDS = ("clip", "nllb", "xlmr")


def _nllb_tokenizer():
    from transformers import NllbTokenizer

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "▁": 4}
    for c in CHARS:
        vocab.setdefault(c, len(vocab))
        vocab.setdefault("▁" + c, len(vocab))
    # The default extra special tokens are the 202 NLLB language codes (eng_Latn, zho_Hans, ...).
    return NllbTokenizer(vocab=vocab, merges=[("▁", c) for c in CHARS])


def _xlmr_tokenizer():
    from transformers import XLMRobertaTokenizer

    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -3.0)]
    vocab += [("▁" + c, -1.0) for c in CHARS] + [(c, -2.0) for c in CHARS]
    return XLMRobertaTokenizer(vocab=vocab)


def _hf_text_config(kind: str, vocab_size: int):
    if kind == "nllb":
        from transformers import M2M100Config

        return M2M100Config(
            vocab_size=vocab_size,
            d_model=16,
            encoder_layers=2,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
            max_position_embeddings=64,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            scale_embedding=True,
        )
    from transformers import XLMRobertaConfig

    return XLMRobertaConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )


def tiny_model_cfg(kind: str, hf_text: str = "hf_text") -> dict[str, Any]:
    """The ``model_cfg`` of a tiny model; ``hf_text`` names the HF text tower (dir or hub id)."""
    if kind == "clip":
        from babelclip.models.openclip import CONFIG_DIR

        return json.loads((CONFIG_DIR / "tiny-vit-text.json").read_text())
    text = {"hf_model_name": hf_text, "hf_tokenizer_name": hf_text, "context_length": 24}
    if kind == "nllb":  # as model_configs/nllb-clip-base.json
        text.update(hf_proj_type="linear", hf_pooler_type="cls_pooler")
    else:  # as model_configs/xlm-roberta-base-ViT-B-32.json
        text.update(hf_pooler_type="mean_pooler")
    return {"embed_dim": 32, "vision_cfg": dict(TINY_VISION), "text_cfg": text}


def write_hf_text_dir(path: Path, kind: str) -> Path:
    """A tiny HF text model directory (config.json + tokenizer files) for ``kind`` nllb/xlmr."""
    tok = _nllb_tokenizer() if kind == "nllb" else _xlmr_tokenizer()
    path.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(path)
    _hf_text_config(kind, len(tok)).save_pretrained(path)
    return path


def tiny_openclip_model_dir(
    tmp_path: Path,
    kind: str = "clip",
    *,
    weights: bool = True,
    seed: int = 1,
    preprocess: dict[str, Any] | None = None,
) -> Path:
    """Write a loadable tiny open_clip model directory under ``tmp_path`` and return it."""
    import open_clip
    import torch

    if kind not in KINDS:
        raise ValueError(f"unknown tiny model kind {kind!r}; allowed: {', '.join(KINDS)}")
    root = Path(tmp_path) / f"tiny-openclip-{kind}"
    root.mkdir(parents=True, exist_ok=True)
    cfg = tiny_model_cfg(kind)
    if kind != "clip":
        write_hf_text_dir(root / "hf_text", kind)
    config = {"model_cfg": cfg, "preprocess_cfg": preprocess or PREPROCESS}
    (root / "open_clip_config.json").write_text(json.dumps(config, indent=2))
    if weights:
        build_cfg = json.loads(json.dumps(cfg))
        if kind != "clip":  # open_clip resolves hf names itself only as absolute paths
            for key in ("hf_model_name", "hf_tokenizer_name"):
                build_cfg["text_cfg"][key] = str(root / "hf_text")
            build_cfg["text_cfg"]["hf_model_pretrained"] = False
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = open_clip.create_model(
                f"local-dir:{root}",
                load_weights=False,
                pretrained_text=False,
                text_cfg=build_cfg["text_cfg"],
            )
        torch.save(model.state_dict(), root / "open_clip_pytorch_model.bin")
    return root


def captured_text_ids(enc) -> list:
    """Start recording the id batches ``enc``'s text tower receives (through the packed path or
    open_clip's own forward); returns the list they are appended to."""
    seen: list = []
    run = enc._encode_ids
    enc._encode_ids = lambda ids: seen.append(ids.clone()) or run(ids)
    return seen
