"""What :func:`~babelclip.eval.run.evaluate` runs: a model by name (lazily built), an encoder, or
a model built once the run is planned (:class:`BuildLater`)."""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..models.lazy import lazy_model

if TYPE_CHECKING:  # pragma: no cover
    from ..models.base import Encoder


@dataclass(frozen=True)
class BuildLater:
    """A model :func:`evaluate` builds only once the run is planned and its outputs checked (a
    refused ``--out`` or an unknown language costs no model load): ``name`` is the name its
    results record, ``build()`` makes the encoder, whose fingerprint must carry that name."""

    name: str
    build: Callable[[], Encoder]


def encoder_for(model: str | Encoder | BuildLater, cache_folder: Path | None, device: str,
                protocol: str, options: Mapping[str, Any]) -> tuple[Any, float]:
    """The encoder to run and the seconds spent building it now. ``model``: a name (built
    lazily where the cache folder holds its record, so a warm run never loads weights, with the
    family ``options``: ``create_model(name, **options)``), an encoder, or a :class:`BuildLater`."""
    if isinstance(model, str):
        return lazy_model(model, cache_folder, device=device, protocol=protocol, **options)
    if options:
        raise ValueError(f"model options ({', '.join(options)}) apply to a model given by name, not to an "
                         "encoder object: create it with them")
    if not isinstance(model, BuildLater):
        return model, 0.0
    t0 = time.perf_counter()
    encoder = model.build()
    if encoder.fingerprint.name != model.name:
        raise ValueError(f"the model built is {encoder.fingerprint.name}, not {model.name} as planned")
    return encoder, time.perf_counter() - t0
