"""An open_clip model behind the :class:`~babelclip.models.base.Encoder` protocol.

Language tokens: NLLB-CLIP (Visheratin, 2023, arXiv:2309.01859) tags each text with its
source-language token (``zho_Hans``, ``nob_Latn``). open_clip's ``HFTokenizer.set_language``
mutates the tokenizer; here the ids are assembled per call (prefix/suffix tokens of the
language of *that* call around the untagged body), so no state is shared between calls.

Batch trimming: text batches are cut to their longest sequence only where that is provably the
same computation — causal CLIP text towers pooled at the EOT token (positions after it cannot
influence it), and Hugging Face towers, which mask padding and pool over unmasked tokens only.
Bidirectional towers pooled at a fixed position (SigLIP's ``pool_type="last"``) keep the full
context length. HF towers take the texts of one ``encode_texts`` call tokenised once and sorted by
token length, so each batch pads to little more than its own texts need. Causal towers of open_clip's plain blocks take the prefix-sharing path of
:mod:`.causal_tower`.
"""
from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ...errors import UnsupportedLanguageError
from ...languages import Language, get_language, nllb_code
from ..base import Fingerprint, TextSide, TrainableText, reject_level
from ..text_languages import tokenizer_languages
from ..torch_encoder import TorchEncoder, float_rows, normalize_rows
from .causal_plan import DEFAULT_CONFIG, CausalTextConfig
from .causal_tower import (
    encode_shared_prefixes,
    encode_text_prefix,
    plain_causal_blocks,
    pool_positions,
)
from .packed import packed_text_forward
from .tokenizer import HFWordMemo, WordMemoCleaner, WordMemoTokenizer, hf_ids, lang_token_scheme

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image


def canonical_preprocess(model: torch.nn.Module, tok_kind: str, ctx: int, lang_scheme: str) -> str:
    """The fingerprint's ``preprocess``: image settings, tokenizer identity, context, language tokens."""
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
        causal: CausalTextConfig = DEFAULT_CONFIG,
        nllb_mapping: str = "babelclip",
    ):
        super().__init__(device, dtype)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.transform = transform
        self.tokenizer = tokenizer
        self.fingerprint = fingerprint
        self.dim = dim
        self.context_length = int(tokenizer.context_length)
        self.text_context = self.context_length
        self.languages = tokenizer_languages(tokenizer)
        hf = getattr(tokenizer, "tokenizer", None)
        self._hf = (
            hf if getattr(tokenizer, "tokenizer_mode", None) == "" else None
        )  # standard HFTokenizer
        self.uses_language_token = lang_token_scheme(tokenizer) != "none"
        self.text_language_agnostic = not self.uses_language_token  # NLLB-CLIP: per language
        self.trim_clip = trim and _clip_trim_safe(model)
        self.trim_hf = trim and self._hf is not None and _hf_trim_safe(model)
        self._fast = WordMemoTokenizer.wrap(tokenizer)
        self._hf_memo = HFWordMemo.wrap(self._hf) if self._hf is not None else None
        clean = getattr(tokenizer, "clean_fn", None)  # an HFTokenizer's cleaning, applied before its tokenizer
        self._clean = WordMemoCleaner.wrap(clean) or clean
        self.share_prefixes = self.trim_clip and plain_causal_blocks(model)
        self.causal = causal  # the knobs of the prefix-sharing path
        self._encode_ids = packed_text_forward(self.model) or self.model.encode_text  # packed XLM-R/BERT towers
        self.nllb_mapping = nllb_mapping  # languages.nllb_code's mapping for the language tokens

    @property
    def text_prefix_sharing(self) -> bool:
        """Shared token prefixes are computed once: calls should group texts that begin alike."""
        return self.share_prefixes

    def trainable_text(self, level: str = "output") -> TrainableText:
        """The text tower (an HF tower's ``model.text``, else open_clip's own ``model.transformer``)
        through :meth:`_text_features`."""
        from open_clip import CoCa, CustomTextCLIP

        reject_level(self, level)
        module = self.model.text if isinstance(self.model, (CustomTextCLIP, CoCa)) else self.model.transformer
        return TextSide(self, module, self._text_features)

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

    def count_tokens(self, text: str, lang: str) -> int | None:
        return len(self.tokenize([text], get_language(lang))[0])

    def _lang_special_tokens(self, lang: Language) -> tuple[list[int], list[int]]:
        """NLLB's source-language template for ``lang``: ([lang], [eos]), or legacy ([], [eos, lang]).

        The code comes from :func:`~babelclip.languages.nllb_code` under ``self.nllb_mapping``; a
        language without one raises :class:`~babelclip.errors.UnsupportedLanguageError`
        (evaluation skips that language with a warning)."""
        hf = self._hf
        try:
            code = nllb_code(lang, self.nllb_mapping)
        except UnsupportedLanguageError as e:
            raise UnsupportedLanguageError(
                lang.tag, f"language {lang.tag} ({lang.name}) has no NLLB code in the language table, and "
                f"{self.fingerprint.name} needs an NLLB source-language token for every text "
                f"(nllb_mapping='paper' maps it as the reference code does)") from e
        lang_id = hf.convert_tokens_to_ids(code)
        if lang_id is None or lang_id == hf.unk_token_id:
            raise UnsupportedLanguageError(
                lang.tag, f"the tokenizer of {self.fingerprint.name} has no token for NLLB code {code!r} ({lang.name})"
            )
        if getattr(hf, "legacy_behaviour", False):
            return [], [hf.eos_token_id, lang_id]
        return [lang_id], [hf.eos_token_id]

    def _hf_ids(self, texts: list[str], lang: Language) -> torch.Tensor:
        return self._hf_pad(self._hf_seqs(texts, lang))

    def _hf_seqs(self, texts: list[str], lang: Language) -> list[list[int]]:
        """Each text's unpadded ids (special and language tokens included, cut to the context)."""
        hf, ctx = self._hf, self.context_length
        cleaned = [self._clean(t) for t in texts]
        ids = self._hf_memo.ids if self._hf_memo is not None else functools.partial(hf_ids, hf)
        if self.uses_language_token:
            prefix, suffix = self._lang_special_tokens(lang)
            body = ids(cleaned, add_special_tokens=False, max_length=None)
            return [prefix + b[: ctx - len(prefix) - len(suffix)] + suffix for b in body]
        return ids(cleaned, add_special_tokens=True, max_length=ctx)

    def _hf_pad(self, seqs: list[list[int]]) -> torch.Tensor:
        """One batch: padded to its longest sequence where trimming is safe, else to the context."""
        hf = self._hf
        lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
        length = int(lengths.max(initial=0)) if self.trim_hf else self.context_length
        padded = np.full((len(seqs), length), hf.pad_token_id, dtype=np.int64)
        padded[np.arange(length) < lengths[:, None]] = list(itertools.chain.from_iterable(seqs))  # row-major
        ids = torch.from_numpy(padded)
        if self.tokenizer.strip_sep_token:
            ids = torch.where(ids == hf.sep_token_id, torch.zeros_like(ids), ids)
        return ids

    def _pool_index(self, ids: torch.Tensor) -> torch.Tensor:
        return pool_positions(self.model, ids)

    def encode_texts(self, texts: Sequence[str], lang: str, batch_size: int = 256) -> np.ndarray:
        """As :meth:`TorchEncoder.encode_texts`; with the prefix-sharing path (see
        :func:`.causal_tower.encode_shared_prefixes`) all ``texts`` go to it in one call (it
        bounds its own memory, ``batch_size`` caps its batches), so more texts share more prefixes."""
        if isinstance(texts, str) or not len(texts):
            return super().encode_texts(texts, lang, batch_size=batch_size)
        if self.trim_hf and len(texts) > batch_size:
            return self._token_sorted(list(texts), get_language(lang), batch_size)
        if not self.share_prefixes:
            return super().encode_texts(texts, lang, batch_size=batch_size)
        with torch.inference_mode():
            return normalize_rows(self._shared_prefix_features(list(texts), get_language(lang), batch_size))

    def _token_sorted(self, texts: list[str], lang: Language, batch_size: int) -> np.ndarray:
        """A padding-masked HF tower: every text tokenised once, batches of texts of similar token
        length (sorted by it), each padded to its own longest; rows back in the caller's order.
        The ids of each text are those :meth:`tokenize` gives; only the batch company differs.
        Texts whose ids are equal (they differ only in what cleaning and the tokenizer's
        normalisation remove: 1-3 % of Babel-ImageNet's prompts in CJK and Arabic script) run once."""
        seqs = self._hf_seqs(texts, lang)
        first: dict[tuple[int, ...], int] = {}
        twin = [first.setdefault(tuple(s), i) for i, s in enumerate(seqs)]  # the first text with these ids
        order = sorted(first.values(), key=lambda i: len(seqs[i]))
        rows = normalize_rows if self.text_normalized else float_rows
        out = np.empty((len(texts), self.dim), np.float32)
        with torch.inference_mode():
            for i in range(0, len(order), batch_size):
                part = order[i : i + batch_size]
                ids = self._hf_pad([seqs[j] for j in part]).to(self.device)
                out[part] = rows(self._encode_ids(ids))
        if len(first) < len(seqs):
            out[:] = out[twin]
        return out

    def _shared_prefix_features(self, texts: list[str], lang: Language, batch_size: int | None) -> torch.Tensor:
        ids = self.tokenize(texts, lang).to(self.device)
        return encode_shared_prefixes(self.model, ids, self._pool_index(ids), batch_size=batch_size,
                                      config=self.causal)

    def _text_features(self, texts: list[str], lang: Language) -> torch.Tensor:
        if self.share_prefixes:
            return self._shared_prefix_features(texts, lang, None)
        ids = self.tokenize(texts, lang).to(self.device)
        if self.trim_clip:
            return encode_text_prefix(self.model, ids)
        return self._encode_ids(ids)
