"""Models declare the languages they handle (EncoderCapabilities.languages), from the one
language table: what the search page's language picker lists."""
from __future__ import annotations

import pytest
from _tiny_openclip import _nllb_tokenizer, _xlmr_tokenizer

from babelclip.languages import all_languages, get_language, nllb_languages, xlmr_languages
from babelclip.models.text_languages import tokenizer_languages


def test_the_table_sets_are_bcp47_tags_of_their_corpora():
    xlmr, nllb = xlmr_languages(), nllb_languages()
    assert all(get_language(t).tag == t for t in (*xlmr, *nllb))  # BCP-47 tags of the table
    assert set(xlmr) == {lang.tag for lang in all_languages() if lang.xlmr}
    assert 95 <= len(xlmr) <= 110 and {"en", "de", "ja", "sw", "zh-Hans"} <= set(xlmr)
    assert "zu" not in xlmr  # Zulu: not among CC-100's languages
    assert len(nllb) == 202 and {"zh-Hans", "zh-Hant", "ace-Arab", "ace-Latn", "zu"} <= set(nllb)
    assert {get_language(t).nllb for t in nllb} >= {"zho_Hant", "zul_Latn", "eng_Latn"}


def test_the_tokenizer_says_which_set():
    from open_clip.tokenizer import SimpleTokenizer
    from transformers import CLIPTokenizer

    class HFTokenizer:  # open_clip's wrapper keeps the Hugging Face tokenizer in .tokenizer
        def __init__(self, tok):
            self.tokenizer = tok

    assert tokenizer_languages(_nllb_tokenizer()) == nllb_languages()
    assert tokenizer_languages(HFTokenizer(_nllb_tokenizer())) == nllb_languages()
    assert tokenizer_languages(HFTokenizer(_xlmr_tokenizer())) == xlmr_languages()
    assert tokenizer_languages(SimpleTokenizer()) == ("en",)  # OpenAI CLIP's BPE
    clip = CLIPTokenizer(vocab={"<|startoftext|>": 0, "<|endoftext|>": 1, "a</w>": 2, "a": 3}, merges=[])
    assert tokenizer_languages(clip) == ("en",)
    from _tiny_hf import tiny_tokenizer

    assert tokenizer_languages(tiny_tokenizer()) is None  # a WordPiece of unknown training: not declared
    assert tokenizer_languages(None) is None


@pytest.mark.parametrize("declared", [("de", "ja", "zho_Hant"), None])
def test_picker_names_the_declared_languages_or_all_when_undeclared(declared):
    from babelclip.models.base import Capabilities
    from babelclip.search.server import model_languages

    class E(Capabilities):
        languages = declared

    langs, is_declared = model_languages(E())
    names = [lang.name for lang in langs]
    assert names == sorted(names) and is_declared is (declared is not None)
    if declared:
        assert [lang.tag for lang in langs] == ["de", "ja", "zh-Hant"]  # any code in, BCP-47 out
    else:
        assert len(langs) == len(all_languages())
