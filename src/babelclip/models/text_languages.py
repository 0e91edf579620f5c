"""Which languages a text tower handles, from the tokenizer it was trained with; what families
declare as :attr:`~babelclip.models.base.EncoderCapabilities.languages`.

The sets come from the language table (:mod:`babelclip.languages`), BCP-47 tags:

* NLLB's tokenizer (a source-language token per text): NLLB-200's languages
  (:func:`~babelclip.languages.nllb_languages`);
* XLM-R's SentencePiece tokenizer (multilingual-e5, M-CLIP, AltCLIP, open_clip's XLM-R towers):
  the ~100 languages of XLM-R's CC-100 pre-training data (:func:`~babelclip.languages.xlmr_languages`);
* CLIP's byte-level BPE (OpenAI CLIP and the open_clip models trained with it): English, the
  language of their training captions (other scripts tokenise, but were never aligned);
* anything else: ``None``, not declared (the search page then offers every language, saying so).
"""
from __future__ import annotations

from typing import Any

from ..languages import nllb_languages, xlmr_languages

ENGLISH = ("en",)


def tokenizer_languages(tokenizer: Any) -> tuple[str, ...] | None:
    """The tags of the languages a text tower with ``tokenizer`` handles, or ``None`` (see module
    docstring). ``tokenizer``: a Hugging Face tokenizer, open_clip's ``HFTokenizer`` around one,
    or open_clip's ``SimpleTokenizer`` (CLIP's BPE)."""
    hf = getattr(tokenizer, "tokenizer", tokenizer)  # open_clip's HFTokenizer wraps the HF one
    kind = type(hf).__name__
    if callable(getattr(hf, "set_src_lang_special_tokens", None)):  # NLLB's language-token template
        return nllb_languages()
    if kind.startswith("XLMRoberta"):
        return xlmr_languages()
    if kind.startswith("CLIPTokenizer") or kind == "SimpleTokenizer":
        return ENGLISH
    return None
