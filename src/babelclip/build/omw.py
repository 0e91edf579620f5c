"""Open Multilingual Wordnet (or any WN-LMF wordnet) as a lexical source, via the ``wn`` package.

OMW 1.4 wordnets name synsets by the Princeton WordNet 3.0 offset they translate
(``omw-fr-01440764-n``), and every synset may carry an Interlingual Index id (``ili="i..."``).
A wnid is looked up first by that id pattern in each lexicon of the language, then through the
ILI of the English PWN 3.0 synset (``omw-en-...``) when that lexicon is installed.

On a user's machine: ``wn.download("omw:1.4")``; tests load a small LMF file with ``wn.add``.
Licences differ per wordnet (CC BY, CC BY-SA, ...): :meth:`OMWSource.licences` lists them.
"""

from __future__ import annotations

import logging

from ..languages import get_language
from .sources import Sense, parse_wnid

log = logging.getLogger(__name__)


class OMWSource:
    """Lemmas of OMW wordnets. ``english_lexicon`` is the PWN 3.0 lexicon used for ILI lookups."""

    name = "omw"

    def __init__(self, lexicons: list[str] | None = None, english_lexicon: str = "omw-en") -> None:
        try:
            import wn
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(
                "the OMW source needs the `wn` package: pip install 'babelclip[labels]'"
            ) from e
        self._wn = wn
        self.english_lexicon = english_lexicon
        all_lex = wn.lexicons()
        self._lexicons = [
            lx
            for lx in all_lex
            if lexicons is None or lx.id in lexicons or lx.specifier() in lexicons
        ]
        if not self._lexicons:
            raise ValueError(
                f"no wordnet lexicons installed (wn data directory {wn.config.data_directory}); run wn.download('omw:1.4')"
            )

    @property
    def licence(self) -> str:
        return "; ".join(f"{lx.id}: {lx.license}" for lx in self._lexicons)

    def _lexicons_for(self, tag: str) -> list:
        lang = get_language(tag)
        # wn stores BCP-47 language tags; compare on the primary subtag (zh-Hans -> zh, cmn).
        wants = {lang.tag.lower(), lang.tag.split("-")[0].lower(), lang.iso639_3}
        return [
            lx
            for lx in self._lexicons
            if lx.language.lower() in wants or lx.language.split("-")[0].lower() in wants
        ]

    def _ili(self, offset: str, pos: str) -> str | None:
        try:
            s = self._wn.Wordnet(self.english_lexicon).synset(
                f"{self.english_lexicon}-{offset}-{pos}"
            )
        except (self._wn.Error, LookupError):
            return None
        ili = s.ili
        return getattr(ili, "id", ili) or None

    def senses(self, synset: str, lang: str) -> list[Sense]:
        offset, pos = parse_wnid(synset)
        out: list[Sense] = []
        for lx in self._lexicons_for(lang):
            w = self._wn.Wordnet(lx.specifier())
            found = None
            try:
                found = w.synset(f"{lx.id}-{offset}-{pos}")
            except (self._wn.Error, LookupError):
                ili = self._ili(offset, pos)
                if ili:
                    hits = w.synsets(ili=ili)
                    found = hits[0] if hits else None
            if found is None:
                continue
            out += [Sense(lemma=str(lemma), source=lx.specifier()) for lemma in found.lemmas()]
        return out
