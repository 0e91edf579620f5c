"""Python's cyclic collector paused over sections that make many objects and no cycles.

Encoding a chunk of texts makes tens of thousands of small containers (token-id lists, cache
rows) that live until the chunk is done, so they are promoted to the collector's oldest
generation and trigger full collections, each of which walks every object of the process: with
a model loaded (torch, transformers, a 250k-entry tokenizer) about 0.18 s apiece, 3 s of a
54 s cold ``babelclip eval`` on a small XLM-R tower (``gc.callbacks`` timing; see
``bench/README.md``). Those sections create no reference cycles (token ids, tensors under
``inference_mode``, NumPy rows, SQLite rows), so nothing the collector could free is made
there; pausing it costs no memory, and it resumes (if it was on) as the section ends, also on
an error.
"""
from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """Automatic collection off for the ``with`` block; back to its previous state after."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
