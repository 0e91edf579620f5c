"""The open_clip family: any open_clip architecture behind the :class:`~babelclip.models.base.Encoder`
protocol (``openclip:ARCH@TAG``, ``openclip:ARCH@/path/ckpt``, or a local directory).

- :mod:`.loader` — names to local files to a model (:func:`create`, :class:`OpenClipOptions`);
- :mod:`.encoder` — :class:`OpenClipEncoder`: tokenising per language, trimming, the forward;
- :mod:`.tokenizer` — open_clip's tokenizers from local files, and the word-memo fast path;
- :mod:`.causal_plan` / :mod:`.causal_tower` — the causal speed path: which texts share which
  prefixes (numpy), and the exact forward that runs that plan.
"""
from __future__ import annotations

from pathlib import Path

from .encoder import OpenClipEncoder
from .loader import CHECKPOINT_NAMES, CONFIG_DIR, LOCAL_CONFIG, OpenClipOptions, create

OPTIONS = OpenClipOptions  # the family's options class (the registry reads its protocol overrides)


def recognises(path: Path) -> bool:
    """A local open_clip model directory: it holds ``open_clip_config.json``."""
    return (path / LOCAL_CONFIG).is_file()


__all__ = ["CHECKPOINT_NAMES", "CONFIG_DIR", "LOCAL_CONFIG", "OPTIONS", "OpenClipEncoder", "OpenClipOptions", "create", "recognises"]
