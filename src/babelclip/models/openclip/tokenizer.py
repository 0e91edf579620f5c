"""open_clip's tokenizers, built from local files, and a word-memo fast path for ``SimpleTokenizer``.

:func:`build_tokenizer` gives the tokenizer open_clip would build for a model config (an
``HFTokenizer`` over a local directory, or ``SimpleTokenizer``); :func:`lang_token_scheme` says
how language tokens enter its ids (NLLB-CLIP's template, or not at all);
:class:`WordMemoTokenizer` computes ``SimpleTokenizer``'s ids word by word with a memo.
"""
from __future__ import annotations

import functools
import json
import logging
import re
import unicodedata
from typing import Any

import numpy as np
import torch

from ..tokenizer_cache import cached_tokenizer

log = logging.getLogger(__name__)


def build_tokenizer(arch: str, text_cfg: dict[str, Any]) -> Any:
    """open_clip's tokenizer for this config, reading only local files (``arch``: the built-in
    architecture name, "" for a local directory)."""
    import open_clip
    from open_clip.tokenizer import DEFAULT_CONTEXT_LENGTH, HFTokenizer

    ctx = text_cfg.get("context_length", DEFAULT_CONTEXT_LENGTH)
    if "hf_tokenizer_name" in text_cfg:
        name, mode, kwargs = text_cfg["hf_tokenizer_name"], text_cfg.get("tokenizer_mode"), text_cfg.get("tokenizer_kwargs", {})
        return cached_tokenizer(
            lambda: HFTokenizer(name, context_length=ctx, tokenizer_mode=mode, **kwargs),
            name, f"open_clip.HFTokenizer|{ctx}|{mode}|{sorted(kwargs.items())}",
        )
    if text_cfg.get("tokenizer_kwargs"):
        return open_clip.SimpleTokenizer(context_length=ctx, **text_cfg["tokenizer_kwargs"])
    return _shared_tokenizer(arch, ctx)


@functools.lru_cache(maxsize=8)
def _shared_tokenizer(arch: str, context_length: int) -> Any:
    """open_clip's tokenizer for a built-in name (SimpleTokenizer, or SigLIP's chosen by name),
    or a SimpleTokenizer for a local directory. Cached: SimpleTokenizer takes ~0.3 s to build
    and has no language setting or other per-call state to share."""
    import open_clip

    if arch:
        return open_clip.get_tokenizer(arch, context_length=context_length)
    return open_clip.SimpleTokenizer(context_length=context_length)


def lang_token_scheme(tokenizer: Any) -> str:
    """How language tokens enter the ids: NLLB's prefix/suffix template, or not at all."""
    hf = getattr(tokenizer, "tokenizer", None)
    if getattr(tokenizer, "tokenizer_mode", None) != "" or not callable(
        getattr(hf, "set_src_lang_special_tokens", None)
    ):
        return "none"
    return "nllb-suffix" if getattr(hf, "legacy_behaviour", False) else "nllb-prefix"


def hf_ids(hf: Any, texts: list[str], *, add_special_tokens: bool, max_length: int | None) -> list[list[int]]:
    """``hf(texts, add_special_tokens=..., truncation=..., max_length=...)["input_ids"]`` (truncation
    when ``max_length`` is given), from the Rust tokenizer itself when ``hf`` is a fast tokenizer.

    transformers' call runs the same ``encode_batch`` and then converts every encoding to Python
    objects it does not need here: ~40 % of the call (4.2 s against 2.6 s for 100k Babel-ImageNet
    prompts). The backend gets the truncation and padding transformers would set for the call
    (transformers sets them on the same object before each call, so its own later calls are
    unaffected); a slow tokenizer, or one that splits special tokens, takes transformers' call.
    """
    backend = getattr(hf, "backend_tokenizer", None) if getattr(hf, "is_fast", False) else None
    if backend is None or getattr(hf, "split_special_tokens", False):
        trunc = {"truncation": True, "max_length": max_length} if max_length is not None else {}
        return hf(texts, add_special_tokens=add_special_tokens, return_attention_mask=False,
                  return_token_type_ids=False, **trunc)["input_ids"]
    if max_length is None:
        backend.no_truncation()
    else:
        backend.enable_truncation(max_length, stride=0, strategy="longest_first",
                                  direction=getattr(hf, "truncation_side", "right"))
    backend.no_padding()
    return [e.ids for e in backend.encode_batch(texts, add_special_tokens=add_special_tokens)]


@functools.cache
def mojibake_chars() -> frozenset[str]:
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


@functools.cache
def _reshaped_re() -> Any:
    """Characters ftfy's steps other than mojibake repair turn into others (fullwidth and
    halfwidth forms, Latin ligatures, curly quotes), from ftfy's own tables."""
    import regex
    from ftfy.chardata import DOUBLE_QUOTE_RE, LIGATURES, SINGLE_QUOTE_RE, WIDTH_MAP

    chars = "".join(regex.escape(chr(c)) for c in sorted({*WIDTH_MAP, *LIGATURES}))
    return regex.compile(f"[{chars}]|{SINGLE_QUOTE_RE.pattern}|{DOUBLE_QUOTE_RE.pattern}")



#: Unicode White_Space (what the Rust tokenizers' ``WhitespaceSplit`` splits on); Python's
#: ``str.split`` also splits on U+001C..U+001F, which Rust does not
_WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"


def _metaspace(text: str) -> str:
    """``text`` starting with "▁", as ``Metaspace(prepend_scheme="always")`` makes it."""
    return text if text.startswith("\u2581") else "\u2581" + text


class HFWordMemo:
    """:func:`hf_ids` for SentencePiece-style fast tokenizers (XLM-R, NLLB, mT5...), word by word.

    A Rust tokenizer's pipeline is normalise (whole text) → pre-tokenise into pieces → the model
    (Unigram, BPE...) on each piece alone → special tokens → truncation. With a ``Metaspace``
    pre-tokenizer (``▁`` replaces spaces and starts every piece; alone, or after
    ``WhitespaceSplit``) the pieces are found by a regular expression, and a piece's ids do not
    depend on its neighbours, so they are memoised: a prompt set repeats every template word
    for every label and every label word for every template. The ids are the Rust tokenizer's;
    texts that hold an added token (``<mask>``, NLLB's ``eng_Latn``...) or are empty after
    normalisation go through the Rust tokenizer itself. On 190,800 Babel-ImageNet prompts (de,
    ja, hi, el, XLM-R's tokenizer) 1.05 s against ``encode_batch``'s 4.77 s, ids identical.
    """

    _PIECE = re.compile("\u2581[^\u2581]*")
    _WORD = re.compile(f"[^{re.escape(_WHITE_SPACE)}]+")

    def __init__(self, hf: Any, backend: Any, whitespace_split: bool):
        self.hf, self.backend, self.whitespace_split = hf, backend, whitespace_split
        self.normalize = backend.normalizer.normalize_str if backend.normalizer is not None else None
        self.model = backend.model
        added = sorted((t.content for t in backend.get_added_tokens_decoder().values()), key=len, reverse=True)
        self.added = re.compile("|".join(map(re.escape, added))) if added else None
        # tokens without whitespace are found inside one word: the search is memoised per word
        self.added_in_words = not any(c.isspace() for t in added for c in t)
        self.added_memo: dict[str, bool] = {}
        self.memo: dict[str, list[int]] = {}
        backend.no_truncation()
        backend.no_padding()
        with_specials = backend.encode("a", add_special_tokens=True).ids
        core = backend.encode("a", add_special_tokens=False).ids
        at = next(i for i in range(len(with_specials) - len(core) + 1) if with_specials[i : i + len(core)] == core)
        self.prefix, self.suffix = with_specials[:at], with_specials[at + len(core) :]

    @classmethod
    def wrap(cls, hf: Any) -> HFWordMemo | None:
        """The memo for this transformers tokenizer, or ``None`` where its pipeline is another."""
        backend = getattr(hf, "backend_tokenizer", None) if getattr(hf, "is_fast", False) else None
        if backend is None or getattr(hf, "split_special_tokens", False) or getattr(backend.model, "dropout", None):
            return None
        try:
            pre = json.loads(backend.pre_tokenizer.__getstate__()) if backend.pre_tokenizer is not None else {}
        except (TypeError, ValueError, AttributeError):
            return None
        metaspace = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}
        if pre == metaspace:
            whitespace_split = False
        elif pre == {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, metaspace]}:
            whitespace_split = True
        else:
            return None
        try:
            memo = cls(hf, backend, whitespace_split)
        except StopIteration:  # special tokens not around the text: not a template this handles
            return None
        return memo if memo.agrees(["a photo of a dog.", "ein Foto  von\teinem Hund", "犬の写真", " x ", "ｘ"]) else None

    def agrees(self, texts: list[str]) -> bool:
        """This memo's ids are the Rust tokenizer's on ``texts`` (a self-test when wrapping)."""
        for special in (False, True):
            want = [e.ids for e in self.backend.encode_batch(texts, add_special_tokens=special)]
            if self.ids(texts, add_special_tokens=special, max_length=None) != want:
                log.warning("%s: the word memo disagrees with the Rust tokenizer; using the tokenizer", type(self.hf).__name__)
                return False
        self.memo.clear()
        return True

    def _has_added(self, text: str) -> bool:
        if self.added is None:
            return False
        if not self.added_in_words:
            return self.added.search(text) is not None
        memo = self.added_memo
        for word in text.split():
            found = memo.get(word)
            if found is None:
                found = memo[word] = self.added.search(word) is not None
            if found:
                return True
        return False

    def _body(self, text: str) -> list[int] | None:
        """The text's ids without special tokens; ``None``: the Rust tokenizer must do it."""
        if self._has_added(text):  # added tokens are split off before normalisation...
            return None
        norm = self.normalize(text) if self.normalize is not None else text
        if self._has_added(norm) or not norm.strip(_WHITE_SPACE):  # ...or after it
            return None
        # units: words (WhitespaceSplit first), or the pieces of the whole text; a unit's ids are
        # those of its pieces, each starting with "▁" (prepended where missing: prepend_scheme always)
        units = self._WORD.findall(norm) if self.whitespace_split else self._PIECE.findall(_metaspace(norm.replace(" ", "\u2581")))
        memo, tokenize = self.memo, self.model.tokenize
        out: list[int] = []
        for unit in units:
            ids = memo.get(unit)
            if ids is None:
                ids = memo[unit] = [t.id for p in self._PIECE.findall(_metaspace(unit)) for t in tokenize(p)]
            out += ids
        return out

    def ids(self, texts: list[str], *, add_special_tokens: bool, max_length: int | None) -> list[list[int]]:
        """Exactly :func:`hf_ids` with the same arguments."""
        bodies = [self._body(t) for t in texts]
        missing = [i for i, b in enumerate(bodies) if b is None]
        if missing:
            self.backend.no_truncation()
            self.backend.no_padding()
            for i, e in zip(missing, self.backend.encode_batch([texts[i] for i in missing], add_special_tokens=False)):
                bodies[i] = e.ids
        prefix, suffix = (self.prefix, self.suffix) if add_special_tokens else ([], [])
        if max_length is not None:
            keep = max(max_length - len(prefix) - len(suffix), 0)
            left = getattr(self.hf, "truncation_side", "right") == "left"
            bodies = [(b[len(b) - keep :] if left else b[:keep]) if len(b) > keep else b for b in bodies]
        return [prefix + b + suffix for b in bodies] if prefix or suffix else bodies

class _WordwiseFtfy:
    """When open_clip's cleaning (ftfy, HTML unescape, whitespace, then per-character steps) acts
    word by word, so a memo per word gives the whole text's result: the rules of
    :class:`WordMemoTokenizer`'s docstring, shared with :class:`WordMemoCleaner`."""

    _MAX_MEMO = 2_000_000

    def __init__(self) -> None:
        import regex
        from ftfy.badness import is_bad

        self.is_bad = is_bad
        self.mojibake_chars = mojibake_chars()
        self.unsafe = regex.compile(r"[&\x00-\x1f\x7f-\x9f]")
        self.reshaped = _reshaped_re()
        self.bad_words: set[str] = set()  # words ftfy would repair on their own

    def _whole_text_only(self, text: str) -> bool:
        """Whether ftfy may clean ``text`` otherwise than word by word (see the class doc)."""
        if self.unsafe.search(text):
            return True
        if text.isascii():
            return False
        if not unicodedata.is_normalized("NFC", text):
            return True
        return not self.mojibake_chars.isdisjoint(text) and (
            self.reshaped.search(text) is not None or self.is_bad(text)
        )

    def _bad_word(self, word: str) -> bool:
        """A word ftfy would repair on its own (remembered): its text is cleaned whole."""
        if word in self.bad_words or (
            not word.isascii() and not self.mojibake_chars.isdisjoint(word) and self.is_bad(word)
        ):
            self.bad_words.add(word)
            return True
        return False

    def _per_word(self, text: str, memo: dict, fn: Any) -> list | None:
        """``fn`` of each whitespace-separated word of ``text`` (memoised in ``memo``), or ``None``
        when ``text`` must be handled whole (:meth:`_whole_text_only`, or a word ftfy would repair)."""
        if self._whole_text_only(text):
            return None
        out = []
        for word in text.split():
            value = memo.get(word)
            if value is None:
                if self._bad_word(word):
                    return None
                if len(memo) > self._MAX_MEMO:
                    memo.clear()
                    self.bad_words.clear()
                value = memo[word] = fn(word)
            out.append(value)
        return out


class WordMemoCleaner(_WordwiseFtfy):
    """open_clip's text cleaning (``clean="whitespace"``, ``"lower"`` or ``"canonicalize"``, the
    ``clean_fn`` an ``HFTokenizer`` applies before its tokenizer) word by word with a memo.

    Each of the three is ftfy + HTML unescape followed by steps that act per character or per
    whitespace-separated word (strip and join on single spaces; lower case; punctuation and
    ``_`` removal), so a text cleans to the join of its words' cleanings, empty ones dropped,
    under :class:`WordMemoTokenizer`'s conditions; texts outside them are cleaned whole. ftfy is
    ~40 µs a text and Babel-ImageNet's prompts repeat every word many times: with the memo, the
    cleaning of 390k prompts costs a dictionary look-up per word instead of 16 s.
    """

    def __init__(self, clean_fn: Any):
        super().__init__()
        self.clean_fn = clean_fn
        self.memo: dict[str, str] = {}

    @classmethod
    def wrap(cls, clean_fn: Any) -> WordMemoCleaner | None:
        """The fast path for one of open_clip's clean functions; ``None`` for anything else."""
        from open_clip.tokenizer import _clean_canonicalize, _clean_lower, _clean_whitespace

        return cls(clean_fn) if clean_fn in (_clean_whitespace, _clean_lower, _clean_canonicalize) else None

    def __call__(self, text: str) -> str:
        words = self._per_word(text, self.memo, self.clean_fn)
        return self.clean_fn(text) if words is None else " ".join(w for w in words if w)


class WordMemoTokenizer(_WordwiseFtfy):
    """open_clip's ``SimpleTokenizer`` (default ``clean="lower"``), word by word with a memo.

    ``SimpleTokenizer`` cleans each text (ftfy, HTML unescape, whitespace, lower case) and then
    splits it with a pattern none of whose alternatives matches whitespace, so its ids are the
    concatenation of the ids of the text's whitespace-separated words, provided cleaning acts
    word by word. It does, except for: HTML entities (``&``), ftfy's mojibake repair
    (``ftfy.badness.is_bad``, which ftfy skips for ASCII text; it may join words, e.g. restoring
    a lost U+00A0), control characters ftfy removes or maps that ``str.split`` treats as
    whitespace, and text that is not in NFC (ftfy normalises the whole text to NFC inside its
    fix loop and then judges it as a whole: ``"A\u0302 x"`` cleans to ``"x"`` alone). Texts with
    any of these go through ``SimpleTokenizer`` itself. So does a text with mojibake characters
    that ftfy's other steps reshape before judging it again (fullwidth forms, ligatures, curly
    quotes: ``"ｆÂ \xa0"`` becomes ``"fÂ \xa0"``, whose ``"Â "`` is then restored to a no-break
    space), or with one word that is "bad" on its own (word-by-word cleaning would repair it). Prompt sets repeat each template word for every
    label and each label word for every template, so nearly every word is a memo hit: about
    30x faster than ``SimpleTokenizer`` on Babel-ImageNet prompts, with identical ids.
    """

    def __init__(self, tokenizer: Any):
        super().__init__()
        self.tok = tokenizer
        self.memo: dict[str, list[int]] = {}

    @classmethod
    def wrap(cls, tokenizer: Any) -> WordMemoTokenizer | None:
        """The fast path for a default ``SimpleTokenizer``; ``None`` for anything else."""
        from open_clip.tokenizer import SimpleTokenizer, _clean_lower

        plain = (
            type(tokenizer) is SimpleTokenizer
            and getattr(tokenizer, "clean_fn", None) is _clean_lower
            and getattr(tokenizer, "reduction_fn", None) is None
        )
        return cls(tokenizer) if plain else None

    def _body(self, text: str) -> list[int]:
        words = self._per_word(text, self.memo, self.tok.encode)
        return self.tok.encode(text) if words is None else [i for ids in words for i in ids]

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
