"""Where the shared reference files live: ``$BABELCLIP_REFERENCE`` if set (a checkout elsewhere,
e.g. a git worktree), else ``../shared/reference`` beside the clone (CI and the developers'
checkouts). Tests read them by path; nothing is copied."""
import os
from pathlib import Path

import pytest

REFERENCE = Path(os.environ.get("BABELCLIP_REFERENCE") or Path(__file__).resolve().parents[2] / "shared" / "reference")
BABEL_IMAGENET = REFERENCE / "babel-imagenet"

needs_reference = pytest.mark.skipif(
    not BABEL_IMAGENET.is_dir(), reason="the Babel-ImageNet reference files are not on this machine"
)
