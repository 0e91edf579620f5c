"""Fuzz: caption files, label files and XM3600 caption lines of random shape and content give a
clear ValueError/KeyError naming the file, never another exception (a traceback for the user)."""
from __future__ import annotations

import json
import random

import pytest

from babelclip.data.benchmarks.xm3600 import read_captions
from babelclip.data.captions import load_captions
from babelclip.data.labels import load_labelset

ATOMS = [None, True, 0, -1, 3, 10**9, 1.5, "", " ", "de", "jp", "xx-unknown", "a.png", "\ud800".encode(
    "utf-8", "surrogatepass").decode("utf-8", "replace"), [], {}, "__babelclip__"]


def rand_value(rng: random.Random, depth: int = 0):
    r = rng.random()
    if depth > 3 or r < 0.4:
        return rng.choice(ATOMS)
    if r < 0.7:
        return [rand_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["images", "captions", "DE", "EN", "de", "__babelclip__", "name", "wnids", "provenance",
                        "image/key", "caption"]): rand_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def mutate(rng: random.Random, doc):
    """A valid document with one random place replaced."""
    if isinstance(doc, dict) and doc and rng.random() < 0.8:
        k = rng.choice(list(doc))
        return {**doc, k: mutate(rng, doc[k])}
    if isinstance(doc, list) and doc and rng.random() < 0.8:
        i = rng.randrange(len(doc))
        return [*doc[:i], mutate(rng, doc[i]), *doc[i + 1:]]
    return rand_value(rng)


VALID_CAPTIONS = {"images": ["a.png", "b.png"], "captions": {"de": [["ein Hund"], ["eine Katze", "Tier"]],
                                                              "jp": [["犬"], ["猫"]]}}
VALID_LABELS = {"DE": [[0, 1], ["Schleie", "Goldfisch"]], "__babelclip__": {"name": "x", "wnids": ["n1", "n2"]}}
VALID_XM = {"image/key": "k1", "en": {"caption": ["a", "b"]}, "de": {"caption": ["c"]}}


@pytest.mark.parametrize("seed", range(6))
def test_fuzzed_inputs_fail_with_messages_only(tmp_path, seed):
    rng = random.Random(seed)
    cases = [(load_captions, VALID_CAPTIONS), (load_labelset, VALID_LABELS), (read_captions, VALID_XM)]
    for i in range(150):
        loader, valid = cases[i % 3]
        doc = mutate(rng, valid) if rng.random() < 0.85 else rand_value(rng)
        path = tmp_path / (f"{i}.jsonl" if loader is read_captions else f"{i}.json")
        text = json.dumps(doc, ensure_ascii=False)
        if rng.random() < 0.1:  # truncated or not UTF-8
            path.write_bytes(text.encode()[: rng.randint(0, len(text))] + (b"\xff" if rng.random() < 0.5 else b""))
        else:
            path.write_text(text, encoding="utf-8")
        try:
            loader(path)
        except (ValueError, KeyError) as e:
            assert str(path) in str(e) or path.name in str(e), f"{loader.__name__}: {e!r} does not name the file"
