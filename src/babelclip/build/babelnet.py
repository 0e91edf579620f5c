"""BabelNet as a lexical source, through its HTTP API (https://babelnet.org/guide).

The official ``babelnet`` Python package pins Python 3.8 and cannot be installed beside
babelclip (Python >= 3.11), so this source speaks the documented HTTP API directly:

1. ``getSynsetIdsFromResourceID?id=wn:01440764n&source=WN&pos=NOUN`` maps a WordNet 3.0 synset
   to BabelNet synset ids (``[{"id": "bn:00076360n", "pos": "NOUN", "source": "BABELNET"}]``);
2. ``getSynset?id=bn:...&targetLang=DE`` returns the synset with ``senses``, each with
   ``properties`` holding ``fullLemma``, ``language`` and ``source`` (WIKI, WN, OMWN, WIKIDATA,
   WIKIRED, WIKIDATA_ALIAS, WIKT, ... and BABELNET/WNTR/WIKITR for automatic translations).

Every response is cached on disk (keyed by the request without the key), so a build can be
rerun and resumed without spending the daily quota again. The API key comes from the argument or
``$BABELNET_KEY`` and is never logged: URLs in logs and errors have it replaced by ``***``.
The data are under the BabelNet Non-Commercial License.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..cache_dir import babelnet_dir
from ..languages import get_language
from .sources import Sense, parse_wnid

log = logging.getLogger(__name__)

API_URL = "https://babelnet.io/v9"
LICENCE = "BabelNet Non-Commercial License (https://babelnet.org/full-license)"
# BabelSenseSource values that mark automatic (machine) translations.
MACHINE_TRANSLATED = frozenset({"BABELNET", "WNTR", "WIKITR"})
WIKIPEDIA_REDIRECT = frozenset({"WIKIRED"})
WIKIDATA_ALIAS = frozenset({"WIKIDATA_ALIAS"})
_POS = {"n": "NOUN", "v": "VERB", "a": "ADJ", "s": "ADJ", "r": "ADV"}

Fetcher = Callable[[str], bytes]


def redact(text: str, key: str | None) -> str:
    """``text`` with the API key replaced by ``***`` (both raw and URL-encoded)."""
    text = re.sub(r"(key=)[^&\s'\"]+", r"\1***", text)
    if key:
        for form in {key, urllib.parse.quote(key, safe="")}:
            text = text.replace(form, "***")
    return text


def _urlopen(url: str) -> bytes:
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        body = resp.read()
        if resp.headers.get("Content-Encoding") == "gzip":
            import gzip

            body = gzip.decompress(body)
        return body


class BabelNetSource:
    """Senses from BabelNet for WordNet 3.0 synsets. ``fetch`` is injectable for tests."""

    name = "babelnet"
    licence = LICENCE

    def __init__(
        self,
        key: str | None = None,
        *,
        cache: str | os.PathLike | None = None,
        fetch: Fetcher | None = None,
        api_url: str = API_URL,
    ) -> None:
        self._key = key or os.environ.get("BABELNET_KEY") or None
        self.cache = Path(cache) if cache else babelnet_dir()
        self._fetch = fetch or _urlopen
        self.api_url = api_url.rstrip("/")

    def __repr__(self) -> str:  # never show the key
        return f"BabelNetSource(cache={str(self.cache)!r}, key={'***' if self._key else None})"

    def _get(self, endpoint: str, params: list[tuple[str, str]]) -> Any:
        public = f"{self.api_url}/{endpoint}?{urllib.parse.urlencode(params)}"
        cached = self.cache / f"{hashlib.sha1(public.encode()).hexdigest()}.json"
        if cached.is_file():
            return json.loads(cached.read_text(encoding="utf-8"))
        if not self._key:
            raise RuntimeError(
                "BabelNet needs an API key (free for research: https://babelnet.org/register); "
                "pass key= or set BABELNET_KEY"
            )
        log.debug("GET %s", public)
        try:
            body = self._fetch(public + "&" + urllib.parse.urlencode([("key", self._key)]))
            doc = json.loads(body.decode("utf-8"))
        except (OSError, ValueError) as e:  # network, HTTP, JSON errors: never let the key through
            raise RuntimeError(
                f"BabelNet request {public} failed: {redact(str(e), self._key)}"
            ) from None
        if isinstance(doc, dict) and "message" in doc and len(doc) == 1:
            raise RuntimeError(
                f"BabelNet request {public} refused: {redact(str(doc['message']), self._key)}"
            )
        self.cache.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        return doc

    def synset_ids(self, wnid: str) -> list[str]:
        """BabelNet synset ids for a WordNet 3.0 wnid (``n01440764`` -> ``wn:01440764n``)."""
        offset, pos = parse_wnid(wnid)
        doc = self._get(
            "getSynsetIdsFromResourceID",
            [("id", f"wn:{offset}{pos}"), ("source", "WN"), ("pos", _POS[pos])],
        )
        return [d["id"] for d in doc if isinstance(d, dict) and "id" in d]

    def senses(self, synset: str, lang: str) -> list[Sense]:
        code = (get_language(lang).babel or lang).upper()
        out: list[Sense] = []
        for bn_id in self.synset_ids(synset):
            doc = self._get("getSynset", [("id", bn_id), ("targetLang", code)])
            for s in doc.get("senses", []):
                p = s.get("properties", s)
                if str(p.get("language", "")).upper() != code:
                    continue
                src = str(p.get("source", ""))
                out.append(
                    Sense(
                        lemma=str(p.get("fullLemma") or p.get("simpleLemma") or ""),
                        source=src,
                        is_machine_translated=src in MACHINE_TRANSLATED,
                        from_wikipedia_redirect=src in WIKIPEDIA_REDIRECT,
                        from_wikidata_alias=src in WIKIDATA_ALIAS,
                    )
                )
        return [s for s in out if s.lemma]
