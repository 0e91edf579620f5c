"""Building an open_clip model from a name: parse it, resolve every file locally, load.

Names the registry hands over (after the ``openclip:`` prefix):

* ``ARCH@TAG`` — an open_clip architecture with a published pretrained tag
  (``xlm-roberta-base-ViT-B-32@laion5b_s13b_b90k``, ``nllb-clip-base-siglip@v1``, ...);
* ``ARCH@/path/to/open_clip_pytorch_model.bin`` — the architecture with a local checkpoint;
* a local directory holding ``open_clip_config.json`` (and its checkpoint and tokenizer files).

Everything open_clip would fetch from the Hugging Face Hub (CLIP checkpoint, the HF text tower's
config, the HF tokenizer) is resolved to local files *before* open_clip sees the names: first
the hub cache, then — only when ``HF_HUB_OFFLINE`` is unset and the hub answers a 3-second
probe — a download. Anything missing raises :class:`WeightsNotFoundError` at once, saying how to
provide it, instead of huggingface_hub's five retries with back-off.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from ...languages import NLLB_MAPPINGS
from ..base import Fingerprint, WeightsNotFoundError, hash_files
from ..hub import PREPROCESS_FILES, HubFiles, preprocess_files_digest
from ..options import OptionsError, WeightsOptions
from ..torch_encoder import dtype_name, resolve_dtype, state_dict_hash
from .encoder import OpenClipEncoder, canonical_preprocess
from .tokenizer import build_tokenizer, lang_token_scheme

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).parents[1] / "configs"  # the packaged tiny test architectures
LOCAL_CONFIG = "open_clip_config.json"
CHECKPOINT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")  # on the hub
_PREFERRED_CHECKPOINTS = (  # open_clip's order in a local directory
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth",
    "model.safetensors",
    "pytorch_model.bin",
    "pytorch_model.pth",
    "model.pth",
)


@dataclass(frozen=True)
class OpenClipOptions(WeightsOptions):
    """Family options accepted by :func:`create` (``create_model(name, **opts)``), besides
    ``pretrained`` and ``seed``."""

    family: ClassVar[str] = "open_clip"

    tokenizer: str | None = None  # local HF tokenizer dir, replaces text_cfg.hf_tokenizer_name
    hf_text_dir: str | None = None  # local HF model dir (config.json + tokenizer) of the text tower
    cache_dir: str | None = None  # Hugging Face hub cache to read (and fill) instead of the default
    trim: bool = True  # trim text batches to their longest sequence where provably equivalent
    # which NLLB code a language's source-language token gets (babelclip.languages.NLLB_MAPPINGS):
    # "babelclip" (the language table; a language without a code is unsupported), "paper" (the
    # reference evaluation code's table, eng_Latn with a warning for a code it lacks) or "english"
    # (eng_Latn for every language: what CLIP_benchmark 1.6.2 sends under transformers 5); a protocol
    # option (docs/protocols.md), in the fingerprint of models with language tokens when not the default
    nllb_mapping: str = "babelclip"

    PROTOCOL_OPTIONS: ClassVar[dict[str, dict[str, Any]]] = {"paper": {"nllb_mapping": "paper"}}

    def validate(self) -> None:
        if self.nllb_mapping not in NLLB_MAPPINGS:
            raise OptionsError(f"open_clip option nllb_mapping={self.nllb_mapping!r}; "
                               f"allowed: {', '.join(NLLB_MAPPINGS)}")
        for key in ("tokenizer", "hf_text_dir"):
            value = getattr(self, key)
            if value is not None and not Path(value).expanduser().is_dir():
                raise OptionsError(f"open_clip option {key}={value!r} must be a local directory")


# -- the Hugging Face hub, resolved to local files (models/hub.py) -------------------------------
#: How to provide an open_clip model's files without the hub (listed before the hub cache's way).
_LOCAL_WAYS = (
    "a local checkpoint: create_model('openclip:ARCH@/path/to/open_clip_pytorch_model.bin')",
    "a local directory with open_clip_config.json, the checkpoint and tokenizer files",
    "for an HF text tower or tokenizer: the options hf_text_dir=/local/hf/model or tokenizer=/local/hf/tokenizer",
)


# -- what a name refers to ----------------------------------------------------------------------
@dataclass(frozen=True)
class _Source:
    """A parsed model name: architecture config, where weights come from, and display name."""

    name: str  # ARCH@TAG, or the local directory's name
    model_cfg: dict[str, Any]
    base_dir: Path | None = None  # local directory (relative paths in text_cfg resolve here)
    tag: str = ""  # a published tag of the architecture
    arch: str = ""
    checkpoint: str = ""  # a local checkpoint file


@functools.cache
def _register_packaged_configs() -> None:
    """Make the tiny test architectures shipped in ``models/configs`` known to open_clip."""
    import open_clip

    open_clip.add_model_config(CONFIG_DIR)


def _parse(ident: str, pretrained: bool) -> _Source:
    import open_clip

    path = Path(ident).expanduser()
    if path.is_dir():
        cfg_path = path / LOCAL_CONFIG
        if not cfg_path.is_file():
            raise ValueError(
                f"{str(path)!r} is not an open_clip model directory: {LOCAL_CONFIG} is missing"
            )
        local = json.loads(cfg_path.read_text(encoding="utf-8"))
        if "model_cfg" not in local:
            raise ValueError(f"{cfg_path} has no 'model_cfg' entry")
        ckpt = _find_checkpoint(path) if pretrained else ""
        if pretrained and not ckpt:
            raise WeightsNotFoundError(
                f"open_clip model directory {str(path)!r} holds no checkpoint "
                f"(looked for {', '.join(CHECKPOINT_NAMES)}, *.safetensors, *.bin, *.pth); "
                "add one, or pass pretrained=False for random weights"
            )
        # preprocess_cfg of the directory is applied by open_clip's local-dir loader
        return _Source(
            path.resolve().name, local["model_cfg"], base_dir=path.resolve(), checkpoint=ckpt
        )

    arch, _, tag = ident.partition("@")
    cfg = open_clip.get_model_config(arch)
    if cfg is None:
        import difflib

        close = difflib.get_close_matches(arch, open_clip.list_models(), n=5, cutoff=0.5)
        raise ValueError(
            f"unknown open_clip architecture {arch!r}"
            + (f"; closest: {', '.join(close)}" if close else "")
            + "; open_clip.list_models() lists all"
        )
    name = f"{arch}@{tag}" if tag else arch
    if not pretrained:
        return _Source(name, cfg, arch=arch)
    tags = open_clip.list_pretrained_tags_by_model(arch)
    if not tag:
        raise ValueError(
            f"openclip:{arch} needs a weights tag or checkpoint path after '@' "
            f"(known tags: {', '.join(tags) or 'none'}), or pretrained=False for random weights"
        )
    if tag in tags:
        return _Source(name, cfg, tag=tag, arch=arch)
    if os.sep in tag or "/" in tag or Path(tag).suffix in (".bin", ".pt", ".pth", ".safetensors"):
        ckpt = Path(tag).expanduser()
        if not ckpt.is_file():
            raise WeightsNotFoundError(
                f"checkpoint file {tag!r} for open_clip architecture {arch!r} does not exist"
            )
        return _Source(f"{arch}@{ckpt.name}", cfg, arch=arch, checkpoint=str(ckpt.resolve()))
    raise ValueError(
        f"unknown pretrained tag {tag!r} for open_clip architecture {arch!r}; "
        f"known tags: {', '.join(tags) or 'none'}; or give a checkpoint path after '@'"
    )


def _find_checkpoint(path: Path) -> str:
    """The checkpoint open_clip's ``local-dir:`` loader picks: its preferred names, else the first
    file, safetensors first (the same order, so the fingerprint hashes the file that is loaded)."""
    found = sorted(p for ext in ("*.safetensors", "*.bin", "*.pth") for p in path.glob(ext))
    found.sort(key=lambda p: p.suffix == ".safetensors", reverse=True)
    preferred = [n for n in _PREFERRED_CHECKPOINTS if (path / n) in found]
    if preferred:
        return str(path / preferred[0])
    return str(found[0]) if found else ""


def _local_path(name: str, base_dir: Path | None) -> str | None:
    """``name`` as an existing local directory (absolute, or relative to the model directory)."""
    for cand in ([base_dir / name] if base_dir else []) + [Path(name).expanduser()]:
        if cand.is_dir():
            return str(cand.resolve())
    return None


def _resolve_text_cfg(src: _Source, opts: OpenClipOptions, hub: HubFiles) -> tuple[dict[str, Any], str]:
    """A text_cfg whose HF names are local directories, and the tokenizer's identity string."""
    text_cfg = dict(src.model_cfg.get("text_cfg", {}))
    tok_id = ""
    if "hf_model_name" in text_cfg:
        name = text_cfg["hf_model_name"]
        text_cfg["hf_model_name"] = (
            opts.hf_text_dir
            or _local_path(name, src.base_dir)
            or hub.snapshot(
                name, ["config.json"], ["config.json"], f"the config of the HF text tower {name!r}"
            )
        )
        # the tower's weights come from the CLIP checkpoint (or are random): never fetch its own
        text_cfg["hf_model_pretrained"] = False
    if "hf_tokenizer_name" in text_cfg:
        name = text_cfg["hf_tokenizer_name"]
        local_dir_tok = (
            src.base_dir
            if src.base_dir and (src.base_dir / "tokenizer_config.json").is_file()
            else None
        )
        local = (
            opts.tokenizer
            or _local_path(name, src.base_dir)
            or (str(local_dir_tok) if local_dir_tok else None)
            or opts.hf_text_dir
        )
        if local:
            tok_id = "local:" + preprocess_files_digest(local)
        else:
            local = hub.snapshot(
                name,
                ["tokenizer_config.json", "tokenizer.json"],
                [*PREPROCESS_FILES, "added_tokens.json", "*.model"],
                f"the tokenizer {name!r}",
            )
            tok_id = f"{name}@{Path(local).name}"  # the snapshot directory is the commit hash
        text_cfg["hf_tokenizer_name"] = local
    return text_cfg, tok_id


def _resolve_weights(src: _Source, pretrained: bool, hub: HubFiles) -> tuple[str, str, dict[str, Any]]:
    """(local checkpoint path or "", its identity, open_clip keyword arguments the tag implies)."""
    import open_clip

    if not pretrained:
        return "", "", {}
    if src.checkpoint:
        return src.checkpoint, "sha256:" + hash_files([src.checkpoint]), {}
    pcfg = open_clip.get_pretrained_cfg(src.arch, src.tag)
    repo_id, fname = os.path.split(pcfg["hf_hub"])
    # like open_clip: a safetensors twin of a named .bin/.pth file is preferred when the repo has one
    names = (
        [str(Path(fname).with_suffix(".safetensors")), fname] if fname else list(CHECKPOINT_NAMES)
    )
    ckpt = hub.file(repo_id, names, f"the checkpoint of {src.name}")
    weights_id = (
        f"{src.tag}@{os.path.basename(os.path.realpath(ckpt))}"  # hub blobs: named by SHA-256
    )
    kwargs: dict[str, Any] = {
        "image_mean": pcfg.get("mean"),
        "image_std": pcfg.get("std"),
        "image_interpolation": pcfg.get("interpolation"),
        "image_resize_mode": pcfg.get("resize_mode"),
    }
    if pcfg.get("quick_gelu") and not src.model_cfg.get("quick_gelu"):
        log.info("%s was trained with QuickGELU: building the architecture with it", src.name)
        kwargs["force_quick_gelu"] = True
    return ckpt, weights_id, kwargs


def create(
    ident: str,
    device: str | torch.device | None = "cpu",
    dtype: str | torch.dtype | None = None,
    **opts: Any,
) -> OpenClipEncoder:
    """Build an open_clip encoder from ``ARCH@TAG``, ``ARCH@/path/ckpt`` or a local directory."""
    import open_clip

    options = OpenClipOptions.from_kwargs(opts)
    torch_dtype = resolve_dtype(dtype)
    _register_packaged_configs()
    src = _parse(ident, options.pretrained)
    hub = HubFiles("openclip", src.name, options.cache_dir, _LOCAL_WAYS)

    ckpt, weights_id, kwargs = _resolve_weights(src, options.pretrained, hub)
    text_cfg, tok_id = _resolve_text_cfg(src, options, hub)
    model_name = f"local-dir:{src.base_dir}" if src.base_dir else src.arch
    pretrained_arg = ckpt if (ckpt and not src.base_dir) else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(options.seed)
        model, _, transform = open_clip.create_model_and_transforms(
            model_name,
            pretrained=pretrained_arg,
            load_weights=bool(ckpt),
            pretrained_text=False,
            cache_dir=options.cache_dir,
            text_cfg=text_cfg,
            **kwargs,
        )
    if not ckpt:
        weights_id = f"random:seed={options.seed}:{state_dict_hash(model)[:16]}"
    tokenizer = build_tokenizer(src.arch, text_cfg)
    tok_kind = tok_id or type(tokenizer).__name__
    lang_scheme = lang_token_scheme(tokenizer)
    mapped = lang_scheme != "none" and options.nllb_mapping != OpenClipOptions.nllb_mapping
    fingerprint = Fingerprint(
        family="openclip",
        name=src.name,
        weights=weights_id,
        preprocess=canonical_preprocess(model, tok_kind, int(tokenizer.context_length), lang_scheme),
        dtype=dtype_name(torch_dtype),
        extra=(("nllb_mapping", options.nllb_mapping),) if mapped else (),
    )
    encoder = OpenClipEncoder(
        model=model,
        transform=transform,
        tokenizer=tokenizer,
        dim=int(src.model_cfg["embed_dim"]),
        fingerprint=fingerprint,
        device=device,
        dtype=torch_dtype,
        trim=options.trim,
        nllb_mapping=options.nllb_mapping,
    )
    encoder.options = options
    return encoder
