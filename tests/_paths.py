"""Where the shared reference files live: ``../shared/reference`` beside the clone (CI and the
developers' checkouts), else the workplace's copy. Tests read them by path; nothing is copied."""
from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
if not REFERENCE.is_dir():
    REFERENCE = Path("/work/shared/reference")
BABEL_IMAGENET = REFERENCE / "babel-imagenet"

needs_reference = pytest.mark.skipif(
    not BABEL_IMAGENET.is_dir(), reason="the Babel-ImageNet reference files are not on this machine"
)
