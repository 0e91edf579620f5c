"""Tiny randomly initialised models of the real transformers / M-CLIP / sentence-transformers
architectures, saved to directories exactly as the published checkpoints are laid out, so the
loaders are tested offline through the public API.

- :func:`tiny_clip_dir` — ``CLIPModel``, ``SiglipModel``, ``AltCLIPModel``, ``ChineseCLIPModel``
  with a real tokenizer (a WordPiece vocabulary trained in milliseconds) and image processor.
- :func:`tiny_mclip_dir` — an M-CLIP directory (XLM-R text model + linear head + image tower).
- :func:`tiny_st_dirs` — a sentence-transformers text model and its paired CLIP image model.
"""

from __future__ import annotations

import json
from pathlib import Path

SENTENCES = [
    "a photo of a cat",
    "a photo of a dog",
    "a small red car on the street",
    "two birds in a tree",
    "ein Foto einer Katze",
    "ein Hund im Garten",
    "das rote Auto",
    "zwei Vögel auf dem Baum",
    "猫の写真",
    "庭の犬",
    "赤い車",
    "一只猫的照片",
    "花园里的狗",
    "红色的汽车",
    "une photo d'un chat",
    "un chien dans le jardin",
    "la voiture rouge",
]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # ids 0..4
PAD, UNK, CLS, SEP = 0, 1, 2, 3
KINDS = ("clip", "siglip", "altclip", "chinese_clip")
IMAGE_SIZE = 32
MAX_LEN = 16


def tiny_tokenizer(model_max_length: int = MAX_LEN):
    """A fast WordPiece tokenizer over :data:`SENTENCES` that adds ``[CLS] … [SEP]``.

    The vocabulary is built deterministically (the words and characters of the sentences,
    sorted), so the same tiny model directory is byte-identical in every run.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    normalizer = normalizers.BertNormalizer(lowercase=True, handle_chinese_chars=True)
    pre = pre_tokenizers.BertPreTokenizer()
    words = {w for s in SENTENCES for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(s))}
    chars = {c for w in words for c in w}
    pieces = sorted(words) + sorted(chars - words) + sorted("##" + c for c in chars)
    vocab = {tok: i for i, tok in enumerate(SPECIALS + pieces)}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer = normalizer, pre
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", CLS), ("[SEP]", SEP)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        bos_token="[CLS]",
        eos_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=model_max_length,
    )


def _vision_kwargs() -> dict:
    return {
        "image_size": IMAGE_SIZE,
        "patch_size": 8,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 64,
    }


def _text_kwargs(vocab_size: int) -> dict:
    return {
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 64,
        "pad_token_id": PAD,
        "bos_token_id": CLS,
        "eos_token_id": SEP,
    }


def tiny_model(kind: str, vocab_size: int, seed: int = 0):
    """A randomly initialised transformers dual encoder of architecture ``kind``."""
    import torch
    import transformers as T

    text, vision = _text_kwargs(vocab_size), _vision_kwargs()
    if kind == "clip":
        config = T.CLIPConfig(
            text_config=dict(text, max_position_embeddings=MAX_LEN),
            vision_config=vision,
            projection_dim=24,
        )
        cls = T.CLIPModel
    elif kind == "siglip":
        config = T.SiglipConfig(
            text_config=dict(text, max_position_embeddings=MAX_LEN), vision_config=vision
        )
        cls = T.SiglipModel
    elif kind == "altclip":
        config = T.AltCLIPConfig(
            text_config=dict(
                text, max_position_embeddings=MAX_LEN + 2, project_dim=32, type_vocab_size=1
            ),
            vision_config=vision,
            projection_dim=24,
        )
        cls = T.AltCLIPModel
    elif kind == "chinese_clip":
        config = T.ChineseCLIPConfig(
            text_config=dict(text, max_position_embeddings=MAX_LEN, type_vocab_size=2),
            vision_config=vision,
            projection_dim=24,
        )
        cls = T.ChineseCLIPModel
    else:
        raise ValueError(f"unknown tiny kind {kind!r}; allowed: {', '.join(KINDS)}")
    torch.manual_seed(seed)
    return cls(config).eval()


def tiny_image_processor(kind: str, size: int = IMAGE_SIZE):
    """The image processor of ``kind`` with explicit tiny sizes (no hub defaults)."""
    import transformers as T

    if kind == "siglip":
        return T.SiglipImageProcessor(
            size={"height": size, "width": size}, image_mean=[0.5] * 3, image_std=[0.5] * 3
        )
    cls = T.ChineseCLIPImageProcessor if kind == "chinese_clip" else T.CLIPImageProcessor
    return cls(size={"shortest_edge": size}, crop_size={"height": size, "width": size})


def tiny_clip_dir(
    tmp_path: Path,
    kind: str = "clip",
    seed: int = 0,
    image_size: int = IMAGE_SIZE,
    name: str | None = None,
) -> Path:
    """Save a tiny ``kind`` model with tokenizer and image processor; returns the directory.

    The directory has the layout of a hub checkpoint (config.json, model.safetensors,
    tokenizer files, preprocessor_config.json), so ``create_model(str(dir))`` loads it.
    """
    out = Path(tmp_path) / (name or f"tiny-{kind}-{seed}-{image_size}")
    tokenizer = tiny_tokenizer()
    tiny_model(kind, len(tokenizer), seed).save_pretrained(out)
    tokenizer.save_pretrained(out)
    tiny_image_processor(kind, image_size).save_pretrained(out)
    return out


def tiny_images(n: int = 5, seed: int = 0):
    """``n`` small random RGB images of different sizes (so resize and crop both act)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    sizes = [(40, 56), (64, 48), (33, 33), (90, 30), (50, 50), (47, 61)]
    return [
        Image.fromarray(rng.integers(0, 256, (*sizes[i % len(sizes)], 3), dtype=np.uint8))
        for i in range(n)
    ]


TEXTS = ["a photo of a cat", "a small red car on the street", "two birds", "", "a dog " * 20]


def tiny_xlmr_dir(tmp_path: Path, seed: int = 0, name: str = "text") -> Path:
    """A tiny ``XLMRobertaModel`` with the tiny tokenizer, saved as a transformers directory."""
    import torch
    import transformers as T

    out = Path(tmp_path) / name
    tokenizer = tiny_tokenizer(model_max_length=MAX_LEN)
    config = T.XLMRobertaConfig(
        **dict(_text_kwargs(len(tokenizer)), max_position_embeddings=MAX_LEN + 2, type_vocab_size=1)
    )
    torch.manual_seed(seed)
    T.XLMRobertaModel(config).eval().save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def tiny_mclip_dir(tmp_path: Path, seed: int = 0, image: str | None = None) -> Path:
    """An M-CLIP directory in babelclip's local format.

    ``mclip_config.json`` names the text model subdirectory, the head weights file and the
    image tower (here a tiny transformers CLIP saved beside it, unless ``image`` is given).
    """
    import torch
    from safetensors.torch import save_file

    out = Path(tmp_path) / f"tiny-mclip-{seed}"
    out.mkdir(parents=True)
    tiny_xlmr_dir(out, seed)
    torch.manual_seed(seed + 1)
    head = torch.nn.Linear(32, 24)
    save_file(
        {"weight": head.weight.detach().contiguous(), "bias": head.bias.detach().contiguous()},
        str(out / "head.safetensors"),
    )
    if image is None:
        tiny_clip_dir(out, "clip", seed, name="image")
        image = "image"
    (out / "mclip_config.json").write_text(
        json.dumps(
            {
                "name": f"tiny-mclip-{seed}",
                "text_model": "text",
                "head": "head.safetensors",
                "image_model": image,
            }
        )
    )
    return out


def tiny_st_dirs(tmp_path: Path, seed: int = 0, dense: bool = True) -> tuple[Path, Path]:
    """A sentence-transformers text model (Transformer + mean Pooling (+ Dense)) and a CLIP image model.

    The image model is a tiny transformers ``CLIPModel`` in sentence-transformers' own
    ``Transformer`` module (what ``sentence-transformers/clip-ViT-B-32`` is today).
    """
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules.transformer import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    base = Path(tmp_path) / f"st-{seed}"
    text_hf = tiny_xlmr_dir(base, seed, name="hf-text")
    torch.manual_seed(seed)
    modules = [Transformer(str(text_hf)), Pooling(32, pooling_mode="mean")]
    if dense:
        from sentence_transformers.sentence_transformer.modules import Dense

        modules.append(Dense(32, 24, bias=False, activation_function=torch.nn.Identity()))
    text_dir = base / "text"
    SentenceTransformer(modules=modules, device="cpu").save(str(text_dir))
    clip_hf = tiny_clip_dir(base, "clip", seed, name="hf-image")
    image_dir = base / "image"
    SentenceTransformer(modules=[Transformer(str(clip_hf))], device="cpu").save(str(image_dir))
    return text_dir, image_dir
