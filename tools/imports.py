"""The shape of kouza's import graph, for issue 16's before/after (``make imports``).

Prints, counting imports inside functions (grimp reads every import statement):

* import circles between files — the strongly connected components of the module graph with
  more than one module;
* import circles between domain packages (``kouza.identity``, ``kouza.linking``, ...);
* the cross-package imports, and how many imports sit inside functions (outside
  ``if TYPE_CHECKING``).
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import grimp
import numpy as np
from scipy.sparse import csr_matrix  # type: ignore[import-untyped]
from scipy.sparse.csgraph import connected_components  # type: ignore[import-untyped]

import kouza

DOMAINS = (
    "kouza.kit",
    "kouza.controls",
    "kouza.assembly",
    "kouza.ledger",
    "kouza.identity",
    "kouza.risk",
    "kouza.wallet",
    "kouza.linking",
    "kouza.bank",
    "kouza.protocol",
    "kouza.ops",
    "kouza.api",
    "kouza.cli",
    "kouza.sim",
    "kouza.migrations",
)


def domain(module: str) -> str:
    for name in DOMAINS:
        if module == name or module.startswith(name + "."):
            return name
    return module  # a top-level module (kouza.errors, kouza.config, ...)


def circles(nodes: list[str], edges: set[tuple[str, str]]) -> list[list[str]]:
    index = {name: i for i, name in enumerate(nodes)}
    rows = [index[a] for a, _ in edges]
    cols = [index[b] for _, b in edges]
    matrix = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(nodes), len(nodes)))
    _count, labels = connected_components(matrix, directed=True, connection="strong")
    groups = Counter(labels)
    return [
        sorted(n for n in nodes if labels[index[n]] == label)
        for label, size in groups.items()
        if size > 1
    ]


def function_local_imports(root: Path) -> int:
    inside: set[tuple[str, int, int]] = set()  # an import in a nested function counts once
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                inside.update(
                    (str(path), inner.lineno, inner.col_offset)
                    for inner in ast.walk(node)
                    if isinstance(inner, ast.Import | ast.ImportFrom)
                )
    return len(inside)


def main() -> None:
    graph = grimp.build_graph("kouza")
    modules = sorted(graph.modules)
    edges = {(a, b) for a in modules for b in graph.find_modules_directly_imported_by(a)}
    file_circles = circles(modules, edges)
    package_edges = {(domain(a), domain(b)) for a, b in edges if domain(a) != domain(b)}
    packages = sorted({p for edge in package_edges for p in edge})
    package_circles = circles(packages, package_edges)
    print(f"modules: {len(modules)}, imports between them: {len(edges)}")
    print(
        f"imports across packages: {sum(domain(a) != domain(b) for a, b in edges)} "
        f"({len(package_edges)} package pairs)"
    )
    print(f"imports inside functions: {function_local_imports(Path(kouza.__file__).parent)}")
    print(f"circles between files: {len(file_circles)}")
    for group in file_circles:
        print(f"  {len(group)} files: " + ", ".join(m.removeprefix("kouza.") for m in group))
    print(f"circles between packages: {len(package_circles)}")
    for group in package_circles:
        print("  " + ", ".join(p.removeprefix("kouza.") for p in group))


if __name__ == "__main__":
    main()
