"""open_clip models behind the :class:`~babelclip.models.base.Encoder` protocol.

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

Language tokens: NLLB-CLIP (Visheratin, 2023, arXiv:2309.01859) tags each text with its
source-language token (``zho_Hans``, ``nob_Latn``). open_clip's ``HFTokenizer.set_language``
mutates the tokenizer; here the ids are assembled per call (prefix/suffix tokens of the
language of *that* call around the untagged body), so no state is shared between calls.

Batch trimming: text batches are cut to their longest sequence only where that is provably the
same computation — causal CLIP text towers pooled at the EOT token (positions after it cannot
influence it), and Hugging Face towers, which mask padding and pool over unmasked tokens only.
Bidirectional towers pooled at a fixed position (SigLIP's ``pool_type="last"``) keep the full
context length.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..languages import Language, get_language
from .base import Fingerprint, WeightsNotFoundError, hash_files
from .causal_text import (
    encode_shared_prefixes,
    plain_causal_blocks,
    pool_positions,
    project,
)
from .hub import PREPROCESS_FILES, HubFiles, preprocess_files_digest
from .torch_encoder import TorchEncoder, dtype_name, normalize_rows, resolve_dtype, state_dict_hash

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).with_name("configs")
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
class OpenClipOptions:
    """Family options accepted by :func:`create` (``create_model(name, **opts)``)."""

    pretrained: bool = True  # False: random weights of the architecture (offline tests)
    seed: int = 0  # seeds the random weights when pretrained=False
    tokenizer: str | None = None  # local HF tokenizer dir, replaces text_cfg.hf_tokenizer_name
    hf_text_dir: str | None = None  # local HF model dir (config.json + tokenizer) of the text tower
    cache_dir: str | None = None  # Hugging Face hub cache to read (and fill) instead of the default
    trim: bool = True  # trim text batches to their longest sequence where provably equivalent

    @classmethod
    def from_opts(cls, opts: dict[str, Any]) -> OpenClipOptions:
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(opts) - allowed)
        if unknown:
            raise TypeError(
                f"unknown open_clip option(s) {unknown}; allowed: {', '.join(sorted(allowed))}"
            )
        for key in ("tokenizer", "hf_text_dir"):
            if opts.get(key) is not None and not Path(opts[key]).expanduser().is_dir():
                raise ValueError(f"open_clip option {key}={opts[key]!r} must be a local directory")
        for flag in ("pretrained", "trim"):
            if flag in opts and not isinstance(opts[flag], bool):
                raise TypeError(
                    f"open_clip option {flag} must be True or False, got {opts[flag]!r}"
                )
        return cls(**opts)


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


def _build_tokenizer(src: _Source, text_cfg: dict[str, Any]) -> Any:
    """open_clip's tokenizer for this config, reading only local files."""
    import open_clip
    from open_clip.tokenizer import DEFAULT_CONTEXT_LENGTH, HFTokenizer

    ctx = text_cfg.get("context_length", DEFAULT_CONTEXT_LENGTH)
    if "hf_tokenizer_name" in text_cfg:
        return HFTokenizer(
            text_cfg["hf_tokenizer_name"],
            context_length=ctx,
            tokenizer_mode=text_cfg.get("tokenizer_mode"),
            **text_cfg.get("tokenizer_kwargs", {}),
        )
    if text_cfg.get("tokenizer_kwargs"):
        return open_clip.SimpleTokenizer(context_length=ctx, **text_cfg["tokenizer_kwargs"])
    return _shared_tokenizer(src.arch, ctx)


@functools.lru_cache(maxsize=8)
def _shared_tokenizer(arch: str, context_length: int) -> Any:
    """open_clip's tokenizer for a built-in name (SimpleTokenizer, or SigLIP's chosen by name),
    or a SimpleTokenizer for a local directory. Cached: SimpleTokenizer takes ~0.3 s to build
    and has no language setting or other per-call state to share."""
    import open_clip

    if arch:
        return open_clip.get_tokenizer(arch, context_length=context_length)
    return open_clip.SimpleTokenizer(context_length=context_length)


# -- the encoder --------------------------------------------------------------------------------
def _canonical_preprocess(model: torch.nn.Module, tok_kind: str, ctx: int, lang_scheme: str) -> str:
    pp = dict(getattr(model.visual, "preprocess_cfg", {}))
    pp = {k: list(v) if isinstance(v, (tuple, list)) else v for k, v in sorted(pp.items())}
    return json.dumps(
        {"image": pp, "tokenizer": tok_kind, "context_length": ctx, "lang_token": lang_scheme},
        sort_keys=True,
    )


def _clip_trim_safe(model: torch.nn.Module) -> bool:
    """Native CLIP text tower with a causal mask pooled at EOT: tokens after it are inert."""
    from open_clip import CLIP

    return (
        type(model).encode_text is CLIP.encode_text
        and getattr(model, "attn_mask", None) is not None
        and getattr(model, "text_pool_type", "") in ("argmax", "eos")
    )


def _hf_trim_safe(model: torch.nn.Module) -> bool:
    """HF text tower: padding is masked, and the pooler reads unmasked positions only."""
    from open_clip.hf_model import ClsLastHiddenStatePooler, ClsPooler, HFTextEncoder, MeanPooler

    text = getattr(model, "text", None)
    return isinstance(text, HFTextEncoder) and isinstance(
        text.pooler, (MeanPooler, ClsPooler, ClsLastHiddenStatePooler)
    )


class OpenClipEncoder(TorchEncoder):
    """An open_clip CLIP/SigLIP model; texts tokenised per call with that call's language."""

    def __init__(
        self,
        model: torch.nn.Module,
        transform: Callable[[Image.Image], torch.Tensor],
        tokenizer: Any,
        fingerprint: Fingerprint,
        dim: int,
        device: str | torch.device | None,
        dtype: str | torch.dtype | None,
        trim: bool = True,
    ):
        super().__init__(device, dtype)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.transform = transform
        self.tokenizer = tokenizer
        self.fingerprint = fingerprint
        self.dim = dim
        self.context_length = int(tokenizer.context_length)
        hf = getattr(tokenizer, "tokenizer", None)
        self._hf = (
            hf if getattr(tokenizer, "tokenizer_mode", None) == "" else None
        )  # standard HFTokenizer
        self.uses_language_token = _lang_token_scheme(tokenizer) != "none"
        self.text_language_agnostic = not self.uses_language_token  # NLLB-CLIP: per language
        self.trim_clip = trim and _clip_trim_safe(model)
        self.trim_hf = trim and self._hf is not None and _hf_trim_safe(model)
        self._fast = _WordMemoTokenizer.wrap(tokenizer)
        self.share_prefixes = self.trim_clip and plain_causal_blocks(model)

    @property
    def text_prefix_sharing(self) -> bool:
        """Shared token prefixes are computed once: calls should group texts that begin alike."""
        return self.share_prefixes

    # -- images ------------------------------------------------------------------------------
    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return self.transform(image)

    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels)

    # -- texts -------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str], lang: Language) -> torch.Tensor:
        """Token ids exactly as the text tower receives them for these texts in ``lang``."""
        if self._hf is None:
            ids = self._fast.ids(list(texts)) if self._fast else self.tokenizer(list(texts))
        else:
            ids = self._hf_ids(list(texts), lang)
        if self.trim_clip and ids.shape[0]:
            ids = ids[:, : int(self._pool_index(ids).max()) + 1]
        return ids

    def _lang_special_tokens(self, lang: Language) -> tuple[list[int], list[int]]:
        """NLLB's source-language template for ``lang``: ([lang], [eos]), or legacy ([], [eos, lang])."""
        hf = self._hf
        if not lang.nllb:
            raise ValueError(
                f"language {lang.tag} ({lang.name}) has no NLLB code in the language table, and "
                f"{self.fingerprint.name} needs an NLLB source-language token for every text"
            )
        lang_id = hf.convert_tokens_to_ids(lang.nllb)
        if lang_id is None or lang_id == hf.unk_token_id:
            raise ValueError(
                f"the tokenizer of {self.fingerprint.name} has no token for NLLB code {lang.nllb!r} ({lang.name})"
            )
        if getattr(hf, "legacy_behaviour", False):
            return [], [hf.eos_token_id, lang_id]
        return [lang_id], [hf.eos_token_id]

    def _hf_ids(self, texts: list[str], lang: Language) -> torch.Tensor:
        hf, ctx = self._hf, self.context_length
        cleaned = [self.tokenizer.clean_fn(t) for t in texts]
        if self.uses_language_token:
            prefix, suffix = self._lang_special_tokens(lang)
            body = hf(cleaned, add_special_tokens=False)["input_ids"]
            seqs = [prefix + b[: ctx - len(prefix) - len(suffix)] + suffix for b in body]
        else:
            seqs = hf(cleaned, truncation=True, max_length=ctx)["input_ids"]
        length = max((len(s) for s in seqs), default=0) if self.trim_hf else ctx
        ids = torch.full((len(seqs), length), hf.pad_token_id, dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        if self.tokenizer.strip_sep_token:
            ids = torch.where(ids == hf.sep_token_id, torch.zeros_like(ids), ids)
        return ids

    def _pool_index(self, ids: torch.Tensor) -> torch.Tensor:
        return pool_positions(self.model, ids)

    def encode_texts(self, texts: Sequence[str], lang: str, batch_size: int = 256) -> np.ndarray:
        """As :meth:`TorchEncoder.encode_texts`; with the prefix-sharing path (see
        :func:`.causal_text.encode_shared_prefixes`) all ``texts`` go to :meth:`_text_features`
        in one call (it bounds its own memory), so more texts share more prefixes."""
        if not self.share_prefixes or isinstance(texts, str) or not len(texts):
            return super().encode_texts(texts, lang, batch_size=batch_size)
        self._batch_size = batch_size
        with torch.inference_mode():
            return normalize_rows(self._text_features(list(texts), get_language(lang)))

    def _text_features(self, texts: list[str], lang: Language) -> torch.Tensor:
        ids = self.tokenize(texts, lang).to(self.device)
        if self.share_prefixes:
            bs = getattr(self, "_batch_size", None)
            return encode_shared_prefixes(self.model, ids, self._pool_index(ids), batch_size=bs)
        if self.trim_clip:
            return _clip_encode_text_prefix(self.model, ids)
        return self.model.encode_text(ids)


@functools.cache
def _mojibake_chars() -> frozenset[str]:
    """Every non-ASCII character ftfy's mojibake pattern names (ranges expanded).

    Each alternative of ``ftfy.badness.BADNESS_RE`` needs at least one of them (its character
    classes hold no ASCII; its ASCII parts are only context), so a text with none of them is
    never "bad" and skips the regex: about half of the non-Latin prompts of Babel-ImageNet.
    """
    import re

    from ftfy.badness import BADNESS_RE

    pattern = BADNESS_RE.pattern
    chars = {c for c in pattern if ord(c) > 127}
    for m in re.finditer(r"([^\x00-\x7f])-([^\x00-\x7f])", pattern):
        chars.update(chr(i) for i in range(ord(m.group(1)), ord(m.group(2)) + 1))
    return frozenset(chars)


class _WordMemoTokenizer:
    """open_clip's ``SimpleTokenizer`` (default ``clean="lower"``), word by word with a memo.

    ``SimpleTokenizer`` cleans each text (ftfy, HTML unescape, whitespace, lower case) and then
    splits it with a pattern none of whose alternatives matches whitespace, so its ids are the
    concatenation of the ids of the text's whitespace-separated words, provided cleaning acts
    word by word. It does, except for: HTML entities (``&``), ftfy's mojibake repair
    (``ftfy.badness.is_bad``, which ftfy skips for ASCII text; it may join words, e.g. restoring
    a lost U+00A0) and control
    characters ftfy removes or maps that ``str.split`` treats as whitespace. Texts with any of
    these go through ``SimpleTokenizer`` itself. Prompt sets repeat each template word for every
    label and each label word for every template, so nearly every word is a memo hit: about
    30x faster than ``SimpleTokenizer`` on Babel-ImageNet prompts, with identical ids.
    """

    _MAX_MEMO = 2_000_000

    def __init__(self, tokenizer: Any):
        import regex
        from ftfy.badness import is_bad

        self.tok = tokenizer
        self.is_bad = is_bad
        self.mojibake_chars = _mojibake_chars()
        self.unsafe = regex.compile(r"[&\x00-\x1f\x7f-\x9f]")
        self.memo: dict[str, list[int]] = {}

    @classmethod
    def wrap(cls, tokenizer: Any) -> _WordMemoTokenizer | None:
        """The fast path for a default ``SimpleTokenizer``; ``None`` for anything else."""
        from open_clip.tokenizer import SimpleTokenizer, _clean_lower

        plain = (
            type(tokenizer) is SimpleTokenizer
            and getattr(tokenizer, "clean_fn", None) is _clean_lower
            and getattr(tokenizer, "reduction_fn", None) is None
        )
        return cls(tokenizer) if plain else None

    def _body(self, text: str) -> list[int]:
        if self.unsafe.search(text) or (
            not text.isascii() and not self.mojibake_chars.isdisjoint(text) and self.is_bad(text)
        ):
            return self.tok.encode(text)
        memo, out = self.memo, []
        for word in text.split():
            ids = memo.get(word)
            if ids is None:
                if len(memo) > self._MAX_MEMO:
                    memo.clear()
                ids = memo[word] = self.tok.encode(word)
            out += ids
        return out

    def ids(self, texts: list[str]) -> torch.Tensor:
        """Exactly ``SimpleTokenizer(texts)``: ``(n, context_length)``, sot ... eot, zero padded."""
        ctx, sot, eot = self.tok.context_length, self.tok.sot_token_id, self.tok.eot_token_id
        flat: list[int] = []
        lengths = np.empty(len(texts), dtype=np.int64)
        for i, text in enumerate(texts):
            body = self._body(text)[: ctx - 2]  # truncated: sot, ctx - 2 tokens, eot
            flat += [sot, *body, eot]
            lengths[i] = len(body) + 2
        result = np.zeros((len(texts), ctx), dtype=np.int64)
        result[np.arange(ctx) < lengths[:, None]] = flat  # row-major: each row's tokens in order
        return torch.from_numpy(result)


def _clip_encode_text_prefix(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """open_clip's ``CLIP.encode_text`` on the first ``L`` positions only (L = ids.shape[1]).

    With a causal mask, position ``i`` attends to positions ``<= i``; the pooled EOT position lies
    inside the prefix, so cutting the positional embedding and the mask to ``L`` computes the same
    features as the full context (checked against ``encode_text`` in the tests).
    """
    from open_clip.transformer import text_global_pool

    n = ids.shape[1]
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(ids).to(cast) + model.positional_embedding[:n].to(cast)
    x = model.transformer(x, attn_mask=model.attn_mask[:n, :n])
    x = text_global_pool(
        x, ids, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None)
    )
    return project(model, x)


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


def _lang_token_scheme(tokenizer: Any) -> str:
    """How language tokens enter the ids: NLLB's prefix/suffix template, or not at all."""
    hf = getattr(tokenizer, "tokenizer", None)
    if getattr(tokenizer, "tokenizer_mode", None) != "" or not callable(
        getattr(hf, "set_src_lang_special_tokens", None)
    ):
        return "none"
    return "nllb-suffix" if getattr(hf, "legacy_behaviour", False) else "nllb-prefix"


def create(
    ident: str,
    device: str | torch.device | None = "cpu",
    dtype: str | torch.dtype | None = None,
    **opts: Any,
) -> OpenClipEncoder:
    """Build an open_clip encoder from ``ARCH@TAG``, ``ARCH@/path/ckpt`` or a local directory."""
    import open_clip

    options = OpenClipOptions.from_opts(opts)
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
    tokenizer = _build_tokenizer(src, text_cfg)
    tok_kind = tok_id or type(tokenizer).__name__
    fingerprint = Fingerprint(
        family="openclip",
        name=src.name,
        weights=weights_id,
        preprocess=_canonical_preprocess(
            model, tok_kind, int(tokenizer.context_length), _lang_token_scheme(tokenizer)
        ),
        dtype=dtype_name(torch_dtype),
    )
    return OpenClipEncoder(
        model=model,
        transform=transform,
        tokenizer=tokenizer,
        dim=int(src.model_cfg["embed_dim"]),
        fingerprint=fingerprint,
        device=device,
        dtype=torch_dtype,
        trim=options.trim,
    )
