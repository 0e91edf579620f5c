"""Where the benches find the shared reference data (Babel-ImageNet labels, prompts, published
results; non-commercial licence, read in place, never copied): ``$BABELCLIP_REFERENCE``, else
``../shared/reference`` beside the repository. No machine path is written in a bench."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def reference_dir() -> Path:
    root = os.environ.get("BABELCLIP_REFERENCE")
    return Path(root) if root else REPO.parent / "shared" / "reference"


BABEL_IMAGENET = reference_dir() / "babel-imagenet"
