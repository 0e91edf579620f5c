"""``python -m babelclip_tools COMMAND``."""
from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
