"""Find import circles among gilx's own modules (every import, in functions too).

    python tools/import_cycles.py        # prints each circle; exit 1 if there is one

Walks the ``ast`` of every module under src/gilx: ``import gilx.x``, ``from gilx
import x``, ``from gilx.x import y`` and relative imports, wherever they stand
(an import inside a function hides a circle from Python, not from this), except
those under ``if TYPE_CHECKING:`` (types only, never run).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                hidden |= {id(n) for n in ast.walk(stmt)}
    return hidden


def imports(path: Path, modules: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hidden = _type_checking_nodes(tree)
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            subs = [f"{base}.{a.name}" for a in node.names]
            # ``from P import sub`` imports the submodule; P itself counts only when a
            # name comes from P's own __init__ (P runs first either way, as any parent).
            names = [s for s in subs if s in modules]
            if len(names) < len(subs):
                names.append(base)
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != here:
                found.add(name)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def main() -> int:
    paths = sorted((SRC / "gilx").rglob("*.py"))
    modules = {module_name(p) for p in paths}
    # A package's __init__ is imported with each of its submodules: an edge
    # into "gilx" (the top package, all lazy) would make every module a circle.
    graph = {module_name(p): imports(p, modules) - {"gilx"} for p in paths}
    found = cycles(graph)
    for group in found:
        print("circle:", " -> ".join(group))
    print(f"{len(paths)} modules, {sum(map(len, graph.values()))} imports, {len(found)} circles")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
