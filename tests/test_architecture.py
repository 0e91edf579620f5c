"""The architecture rules (docs/architecture.md), read from the code with ``ast``.

- Layers (the one-way flow, :data:`ALLOWED`): ``babelclip.data`` imports nothing from
  ``babelclip.eval``; ``babelclip.models`` nothing from ``eval``, ``train`` or ``cli``; the runtime
  ``babelclip`` never imports the build tools ``babelclip_tools``; and so on for every room.
- No import cycle among babelclip modules; an import inside a function is an edge like one at
  the top of a module.
- Size: no file over 400 lines under ``src/``, no function over 80 lines unless a
  ``# long: <reason>`` comment sits beside its ``def``.

Each allow-list below names what violated a rule when the rule was written, with the reason and
the change that removes it; the tests fail on any violation not listed, and on a listed one that
is gone (so that the lists only shrink).
"""
from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
RUNTIME, TOOLS = "babelclip", "babelclip_tools"
MAX_FILE_LINES, MAX_FUNCTION_LINES = 400, 80

# -- allow-lists: the violations of the day the rules were written ------------------------------
# Import edges (importer, imported) that break a layer rule or close a cycle. The lead empties
# this list as the branches that remove them merge.
KNOWN_IMPORT_VIOLATIONS: dict[tuple[str, str], str] = {}
# Not seen by this reader: imports by name through importlib (the registry loads each family so,
# and the benchmark registry each benchmark module).

# Files over MAX_FILE_LINES (path under src/ -> reason); the splitting branches remove them.
KNOWN_LONG_FILES: dict[str, str] = {}

# Functions over MAX_FUNCTION_LINES without a `# long:` reason ("path:qualified.name" -> reason).
KNOWN_LONG_FUNCTIONS: dict[str, str] = {}


# -- reading the code ---------------------------------------------------------------------------
def _modules() -> dict[str, Path]:
    """Every module of both packages: dotted name -> file (a package is its ``__init__``)."""
    found = {}
    for pkg in (RUNTIME, TOOLS):
        for path in sorted((SRC / pkg).rglob("*.py")):
            parts = list(path.relative_to(SRC).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    """The absolute module a ``from`` import names (relative levels resolved)."""
    if not node.level:
        return node.module or ""
    base = importer.split(".") if _is_package(importer) else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _ours(name: str) -> str | None:
    """The longest module of ours that ``name`` is or lies in, else None (third-party)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports(module: str) -> Iterator[tuple[str, int]]:
    """(imported module of ours, line) for every import statement anywhere in ``module``:
    top level, inside functions and under ``if TYPE_CHECKING``."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if target := _ours(alias.name):
                    yield target, node.lineno
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                target = _ours(f"{source}.{alias.name}") if f"{source}.{alias.name}" in MODULES else _ours(source)
                if target:
                    yield target, node.lineno


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported module: first line}, self-imports left out."""
    graph: dict[str, dict[str, int]] = {}
    for module in MODULES:
        edges: dict[str, int] = {}
        for target, line in imports(module):
            if target != module:
                edges.setdefault(target, line)
        graph[module] = edges
    return graph


GRAPH = import_graph()


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


# The one-way flow: each room and the rooms it may import (docs/architecture.md). Read as
# "cli -> train -> eval -> models -> data -> languages": nothing imports upwards, so data never
# imports eval, models never import eval, train or cli, and no runtime room imports the tools.
BASE = {"languages", "cache_dir", "errors", "fetch", "_version"}
ALLOWED: dict[str, set[str]] = {
    "errors": set(),  # the user-error types: a leaf every room may raise
    "_version": set(),
    "languages": {"errors"},
    "cache_dir": set(),
    "fetch": {"cache_dir", "errors"},  # the one offline check and plain download, for data and models alike
    "data": BASE,
    "build": BASE | {"data"},
    "models": BASE | {"data"},
    "eval": BASE | {"data", "models"},
    "train": BASE | {"data", "models", "eval"},
    "search": BASE | {"data", "models", "eval"},
    "cli": BASE | {"data", "build", "models", "eval", "train", "search", "package"},
    "package": BASE | {"data", "build", "models", "eval", "train", "search"},  # babelclip/__init__: the public API
    "__main__": {"cli"},
    "tools": BASE | {"data", "build", "models", "eval", "train", "package"},
}


def room(module: str) -> str:
    """``babelclip.eval.run`` -> ``eval``; ``babelclip`` -> ``package``; the tools -> ``tools``."""
    parts = module.split(".")
    if parts[0] == TOOLS:
        return "tools"
    return parts[1] if len(parts) > 1 else "package"


def layer_violations(graph: dict[str, dict[str, int]]) -> list[tuple[str, str, str]]:
    """(importer, imported, rule) for each edge between rooms that the flow does not allow."""
    found = []
    for importer, edges in graph.items():
        src = room(importer)
        for imported in edges:
            dst = room(imported)
            if src != dst and dst not in ALLOWED.get(src, set()):
                found.append((importer, imported, f"{src} may import only {', '.join(sorted(ALLOWED[src])) or 'nothing'}"
                              if src in ALLOWED else f"{src} is no room of docs/architecture.md: add it to ALLOWED"))
    return found


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or None (iterative DFS, three colours)."""
    colour = dict.fromkeys(graph, 0)  # 0 unseen, 1 on the stack, 2 done
    for root, edges in graph.items():
        if colour[root]:
            continue
        stack = [(root, iter(sorted(edges)))]
        path = [root]
        colour[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour.get(child) == 1:
                return path[path.index(child):] + [child]
            elif colour.get(child) == 0:
                colour[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(graph[child]))))
    return None


def _without_known(graph: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {m: {t: n for t, n in e.items() if (m, t) not in KNOWN_IMPORT_VIOLATIONS} for m, e in graph.items()}


def _cycle_message(graph: dict[str, dict[str, int]], cycle: list[str]) -> str:
    steps = [f"{a} -> {b} ({MODULES[a].relative_to(SRC)}:{graph[a][b]})" for a, b in itertools.pairwise(cycle)]
    return "import cycle: " + " ; ".join(steps)


# -- the rules ----------------------------------------------------------------------------------
def test_the_reader_sees_module_and_function_level_imports():
    """The graph is read, not listed: known edges of each kind are in it."""
    assert "babelclip.languages" in GRAPH["babelclip.data.labels"] or "babelclip.languages" in GRAPH["babelclip.data.prompts"]
    # function-level: registry imports each family inside create_model
    assert any(m.startswith("babelclip.models.") for m in GRAPH["babelclip.models.registry"])
    assert GRAPH["babelclip.cli.train"]  # relative imports resolved
    assert all(t in MODULES for edges in GRAPH.values() for t in edges)


def test_layer_rules():
    new = [v for v in layer_violations(GRAPH) if v[:2] not in KNOWN_IMPORT_VIOLATIONS]
    assert not new, "\n".join(f"{a} imports {b} ({MODULES[a].relative_to(SRC)}:{GRAPH[a][b]}): {rule}"
                              for a, b, rule in new)


def test_no_import_cycle():
    graph = _without_known(GRAPH)
    cycle = find_cycle(graph)
    assert cycle is None, _cycle_message(graph, cycle)


def test_import_allow_list_only_shrinks():
    stale = [edge for edge in KNOWN_IMPORT_VIOLATIONS if edge[1] not in GRAPH.get(edge[0], {})]
    assert not stale, f"these edges are gone: remove them from KNOWN_IMPORT_VIOLATIONS: {stale}"


def test_the_checks_catch_what_they_are_for():
    """A cycle and each kind of layer breach, planted in a copy of the graph, are reported."""
    graph = {m: dict(e) for m, e in _without_known(GRAPH).items()}
    graph["babelclip.languages"]["babelclip.eval.run"] = 1  # eval.run reaches languages: a cycle
    cycle = find_cycle(graph)
    assert cycle and cycle[0] == cycle[-1] and "babelclip.languages" in cycle
    assert "babelclip.languages -> babelclip.eval.run (babelclip/languages.py:1)" in _cycle_message(graph, cycle)
    graph = {m: dict(e) for m, e in GRAPH.items()}
    graph["babelclip.data.labels"]["babelclip.eval.metrics"] = 1
    graph["babelclip.models.base"]["babelclip.train.distill"] = 1
    graph["babelclip.eval.run"]["babelclip_tools.gptq"] = 1
    rules = {(a, b): r for a, b, r in layer_violations(graph)}
    assert rules[("babelclip.data.labels", "babelclip.eval.metrics")] == "data may import only _version, cache_dir, errors, fetch, languages"
    assert rules[("babelclip.models.base", "babelclip.train.distill")] == "models may import only _version, cache_dir, data, errors, fetch, languages"
    assert "tools" not in rules[("babelclip.eval.run", "babelclip_tools.gptq")]
    assert set(rules) == {("babelclip.data.labels", "babelclip.eval.metrics"), ("babelclip.models.base", "babelclip.train.distill"),
                          ("babelclip.eval.run", "babelclip_tools.gptq")}


# -- sizes --------------------------------------------------------------------------------------
def _functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + node.name, node
            yield from _functions(node, prefix + node.name + ".")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, prefix + node.name + ".")


LONG_REASON = re.compile(r"#\s*long:\s*\S")


def long_functions(path: Path) -> list[tuple[str, int]]:
    """(qualified name, lines) of functions over the limit without a ``# long:`` reason on the
    lines of their decorators and signature or the line above."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for name, fn in _functions(ast.parse("\n".join(lines))):
        size = fn.end_lineno - fn.lineno + 1
        first = min([fn.lineno] + [d.lineno for d in fn.decorator_list]) - 1
        header = lines[max(0, first - 1): fn.body[0].lineno - 1]
        if size > MAX_FUNCTION_LINES and not any(LONG_REASON.search(line) for line in header):
            found.append((name, size))
    return found


def _sources() -> list[Path]:
    return sorted(p for pkg in (RUNTIME, TOOLS) for p in (SRC / pkg).rglob("*.py"))


def test_no_file_over_the_limit():
    sizes = {str(p.relative_to(SRC)): len(p.read_text(encoding="utf-8").splitlines()) for p in _sources()}
    new = {p: n for p, n in sizes.items() if n > MAX_FILE_LINES and p not in KNOWN_LONG_FILES}
    assert not new, f"files over {MAX_FILE_LINES} lines (split them by what they hold): {new}"
    stale = [p for p in KNOWN_LONG_FILES if sizes.get(p, 0) <= MAX_FILE_LINES]
    assert not stale, f"no longer over the limit: remove from KNOWN_LONG_FILES: {stale}"


def test_no_function_over_the_limit_without_a_reason():
    found = {f"{p.relative_to(SRC)}:{name}": n for p in _sources() for name, n in long_functions(p)}
    new = {k: n for k, n in found.items() if k not in KNOWN_LONG_FUNCTIONS}
    assert not new, (f"functions over {MAX_FUNCTION_LINES} lines: split them, or write `# long: <reason>` "
                     f"beside the def: {new}")
    stale = [k for k in KNOWN_LONG_FUNCTIONS if k not in found]
    assert not stale, f"no longer over the limit: remove from KNOWN_LONG_FUNCTIONS: {stale}"


def test_a_long_reason_beside_the_def_exempts_a_function(tmp_path):
    def body(indent: str) -> str:
        return "\n".join(f"{indent}x{i} = {i}" for i in range(MAX_FUNCTION_LINES))

    src = tmp_path / "m.py"
    src.write_text(f"def plain():\n{body('    ')}\n\n\nclass C:\n    @staticmethod\n    def method():  # long: one table\n"
                   f"{body(' ' * 8)}\n\n    def short(self):\n        return 1\n")
    assert long_functions(src) == [("plain", MAX_FUNCTION_LINES + 1)]
