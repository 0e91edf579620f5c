"""docs/architecture.md names real files: every repository path in backticks exists.

A path is a backticked span starting with a top-level folder of the repository (``src/``,
``tests/``, ``docs/``, ``bench/``, ``scripts/``) or naming a top-level file; a bare ``NAME.py``
must be a module somewhere under ``src/``. A path with a placeholder part in capitals
(``src/babelclip/cli/NAME.py``) is a pattern, not checked. The section "Landing this session" lists paths other
branches are still building and is skipped.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
TOP_FOLDERS = ("src/", "tests/", "docs/", "bench/", "scripts/", ".ci/")
TOP_FILES = ("pyproject.toml", "README.md")
LANDING = "## Landing this session"


def checked_text(text: str) -> str:
    """The document without its landing section (up to the next ``## `` heading)."""
    head, sep, rest = text.partition(LANDING)
    if not sep:
        return text
    _, nxt, tail = rest.partition("\n## ")
    return head + (nxt + tail if nxt else "")


def missing_paths(text: str, root: Path) -> list[str]:
    modules = {p.name for p in (root / "src").rglob("*.py")}
    missing = []
    for span in re.findall(r"`([^`\n]+)`", checked_text(text)):
        path = span.split("::")[0].rstrip(".,;:")
        if any(part.split(".")[0].isupper() for part in path.split("/")):
            continue  # a pattern: src/babelclip/cli/NAME.py
        if path.startswith(TOP_FOLDERS) or path in TOP_FILES:
            if not (root / path).exists():
                missing.append(path)
        elif re.fullmatch(r"[A-Za-z_][\w]*\.py", path) and path not in modules:
            missing.append(path)
    return sorted(set(missing))


def test_every_documented_path_exists():
    text = DOC.read_text(encoding="utf-8")
    assert not missing_paths(text, ROOT), f"docs/architecture.md names paths that do not exist: {missing_paths(text, ROOT)}"
    # the rooms and the rules are documented by path, so the check has something to check
    spans = re.findall(r"`((?:src|tests)/[^`]+)`", checked_text(text))
    assert {"src/babelclip/cache_dir.py", "src/babelclip_tools/", "tests/test_architecture.py"} <= set(spans)


def test_a_path_that_disappears_fails_and_landing_paths_are_skipped(tmp_path):
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "here.py").write_text("")
    text = ("Rooms: `src/pkg/here.py`, `src/pkg/gone.py`, `here.py`, `gone.py`, `--flag`, `embeddings/`, `src/pkg/NAME.py`.\n\n"
            f"{LANDING}\n\n- `src/pkg/later.py`\n\n## After\n\n`tests/x.py`\n")
    assert missing_paths(text, tmp_path) == ["gone.py", "src/pkg/gone.py", "tests/x.py"]
