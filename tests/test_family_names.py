"""No module outside ``babelclip.models`` branches on a model family: what a family can do it
declares (``EncoderCapabilities``, its options' ``PROTOCOL_OPTIONS``), so the next family is one
module and nothing else changes (docs/architecture.md). Read from the code with ``ast``."""
from __future__ import annotations

import ast
from pathlib import Path

from babelclip.models.registry import DEFAULT_MODEL, FAMILIES

SRC = Path(__file__).resolve().parents[1] / "src" / "babelclip"
FAMILY_NAMES = frozenset(FAMILIES) | {DEFAULT_MODEL}


def _names_a_family(node: ast.AST) -> bool:
    """A family's name as a string constant, alone or inside a tuple, list or set."""
    if isinstance(node, ast.Constant):
        return node.value in FAMILY_NAMES
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_names_a_family(e) for e in node.elts)
    return False


def _reads_a_family(node: ast.AST) -> bool:
    """``x.family`` (a fingerprint's or a result's family)."""
    return isinstance(node, ast.Attribute) and node.attr == "family"


def offences(tree: ast.AST) -> list[tuple[int, str]]:
    """Comparisons that branch on a family (``== "babel-lite"``, ``fingerprint.family == x``,
    ``x in ("hf", "st")``) and look-ups of a family by name (``FAMILIES["babel-lite"]``)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_names_a_family(o) or _reads_a_family(o) for o in operands):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Subscript) and _names_a_family(node.slice):
            found.append((node.lineno, ast.unparse(node)))
    return found


def test_the_rule_sees_branches_on_families():
    code = """
if fingerprint.family == other: pass
if args.model == "babel-lite": pass
if name in ("hf", "mclip"): pass
description = FAMILIES["babel-lite"].description
if lang == "de": pass
"""
    assert [line for line, _ in offences(ast.parse(code))] == [2, 3, 4, 5]


def test_no_module_outside_the_models_names_a_family():
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if rel.parts[0] == "models":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        bad += [f"src/babelclip/{rel.as_posix()}:{line}: {text}" for line, text in offences(tree)]
    assert not bad, "branches on a model family outside babelclip.models (declare a capability instead):\n" + "\n".join(bad)
