"""The error types babelclip raises for problems a user can fix.

:class:`BabelclipError` is the base of every error caused by input, files, options or the
environment rather than by a bug: the CLI prints its message (no traceback, unless ``-vv``).
It subclasses :class:`ValueError`, so code that caught ``ValueError`` before keeps working.
"""
from __future__ import annotations


class BabelclipError(ValueError):
    """A user-fixable problem; the message names what was wrong and what is allowed."""


class CacheError(BabelclipError):
    """An embedding cache that cannot be opened, written or read (damaged file, read-only folder)."""


class CheckpointError(BabelclipError):
    """A training checkpoint that cannot be used (unreadable, truncated, damaged, another run's)."""


class UnsupportedLanguageError(BabelclipError):
    """A model that cannot encode text in one language (e.g. no NLLB token for it).

    Evaluation loops catch it to skip that language with a warning (see
    :func:`babelclip.eval.skips.skip_unsupported`), so one language never stops a run.
    """

    def __init__(self, language: str, reason: str):
        super().__init__(f"{language}: {reason}")
        self.language = language
        self.reason = reason
