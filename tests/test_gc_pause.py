"""gc_pause.py: automatic collection is off while a chunk of texts is encoded and cached, and
back to what it was afterwards, also when the chunk fails."""
from __future__ import annotations

import gc

import pytest
from _tiny_encoder import TinyEncoder

from babelclip.eval import gc_pause
from babelclip.eval.cache import EmbeddingCache
from babelclip.eval.encode import encode_texts


def test_paused_restores_the_previous_state_also_on_an_error():
    assert gc.isenabled()
    with gc_pause.paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(KeyError), gc_pause.paused():
        raise KeyError("x")
    assert gc.isenabled()
    gc.disable()  # a caller that turned it off keeps it off
    try:
        with gc_pause.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_texts_are_encoded_and_cached_with_collection_paused(tmp_path, monkeypatch):
    enc = TinyEncoder()
    seen = []
    real_encode, real_put = enc.encode_texts, EmbeddingCache.put_texts

    def encode(texts, lang, **kw):
        seen.append(("encode", gc.isenabled()))
        return real_encode(texts, lang, **kw)

    def put(self, *a, **k):
        seen.append(("put", gc.isenabled()))
        return real_put(self, *a, **k)

    monkeypatch.setattr(enc, "encode_texts", encode)
    monkeypatch.setattr(EmbeddingCache, "put_texts", put)
    texts = [f"a photo of thing {i}" for i in range(10)]
    with EmbeddingCache(tmp_path, enc.fingerprint.key, enc.dim) as cache:
        encode_texts(enc, texts, "en", cache, batch_size=2)
    assert seen and all(not on for _, on in seen)
    assert {kind for kind, _ in seen} == {"encode", "put"}
    assert gc.isenabled()
