"""tools/architecture.py on a small hand-built import graph (no source tree, no grimp scan).

The package ``app`` has three layers, top first: ``app.api | app.cli`` (independent siblings),
``app.core``, ``app.base``; beside them ``app.config`` (a top-level module), ``app.admin`` (a
sub-package) and, inside ``app.side`` (which holds the layer ``app.side.linking``), the system
``app.side.bank``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import grimp
import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "architecture.py"

PYPROJECT = """
[tool.importlinter]
root_package = "app"

[[tool.importlinter.contracts]]
name = "forbidden first: the layers contract is found by its type"
type = "forbidden"
source_modules = ["app.base"]
forbidden_modules = ["app.api"]

[[tool.importlinter.contracts]]
name = "layers"
type = "layers"
layers = ["app.api | app.cli", "app.side.linking", "app.core", "(app.base)", "(app.gone)"]
"""


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("architecture", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["architecture"] = module  # dataclasses look their module up while defined
    spec.loader.exec_module(module)
    return module


architecture: Any = load_tool()


@pytest.fixture
def contract(tmp_path: Path) -> Any:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(PYPROJECT, encoding="utf-8")
    return architecture.read_contract(pyproject)


def build(imports: list[tuple[str, str]]) -> grimp.ImportGraph:
    graph = grimp.ImportGraph()
    for module in ("app", "app.config", "app.api", "app.cli", "app.core", "app.base", "app.side"):
        graph.add_module(module)
    for importer, imported in imports:
        graph.add_import(importer=importer, imported=imported)
    return graph


LAYERED = [
    ("app.api.routes", "app.core.service"),  # down
    ("app.core.service", "app.base.db"),  # down, but core and base form a circle
    ("app.base.db", "app.core.models"),  # UP to a higher layer: the circle's other half
    ("app.core.service", "app.config"),  # to a module beside the layers
    ("app.admin.views", "app.core.service"),  # from a sub-package beside the layers
    ("app.side.bank.core", "app.base.db"),
    ("app.side.linking.links", "app.core.service"),
]


def directions(analysis: Any) -> dict[tuple[str, str], str]:
    return {(e.source, e.target): e.label for e in analysis.package_imports}


class TestContract:
    def test_reads_the_first_layers_contract_top_first(self, contract: Any) -> None:
        assert contract.root == "app"
        assert contract.layers == (
            ("app.api", "app.cli"),
            ("app.side.linking",),
            ("app.core",),
            ("app.base",),
            ("app.gone",),
        )
        assert contract.independent == (True, False, False, False, False)

    def test_colon_siblings_may_import_each_other(self) -> None:
        assert architecture.parse_layer("app.a : app.b") == ["app.a", "app.b"]
        assert architecture.parse_layer("(app.a)") == ["app.a"]


class TestGrouping:
    @pytest.mark.parametrize(
        ("module", "group"),
        [
            ("app.core.service", "app.core"),
            ("app.core", "app.core"),
            ("app.config", "app.config"),
            ("app.admin.views.list", "app.admin"),
            ("app.side.bank.core", "app.side.bank"),
            ("app.side.webhooks", "app.side.webhooks"),
            ("app.side", "app.side"),
            ("app", "app"),
            ("app.side.linking.links", "app.side.linking"),
        ],
    )
    def test_group_of(self, module: str, group: str) -> None:
        layers = ["app.api", "app.cli", "app.side.linking", "app.core", "app.base"]
        assert architecture.group_of(module, layers) == group


class TestAnalysis:
    def test_directions(self, contract: Any) -> None:
        analysis = architecture.analyse(build(LAYERED), contract)
        found = directions(analysis)
        assert found[("app.api", "app.core")] == "down"
        assert found[("app.side.linking", "app.core")] == "down"
        assert found[("app.base", "app.core")] == "UP (to a higher layer)"
        assert found[("app.core", "app.base")] == "UP (in a circle)"
        assert found[("app.core", "app.config")] == "sibling/outside"
        assert found[("app.admin", "app.core")] == "sibling/outside"
        assert found[("app.side.bank", "app.base")] == "sibling/outside"

    def test_two_package_circle(self, contract: Any) -> None:
        analysis = architecture.analyse(build(LAYERED), contract)
        assert analysis.package_circles == (("app.base", "app.core"),)
        assert analysis.file_circles == ()  # core.service → base.db → core.models: no loop

    def test_file_circle_and_counts(self, contract: Any) -> None:
        extra = [("app.core.models", "app.base.db"), ("app.core.models", "app.base")]
        graph = build([*LAYERED, *extra])
        analysis = architecture.analyse(graph, contract)
        assert analysis.file_circles == (("app.base.db", "app.core.models"),)
        counts = {(e.source, e.target): e.count for e in analysis.package_imports}
        assert counts[("app.core", "app.base")] == 3  # module pairs, not packages

    def test_independent_siblings_and_layers_without_code(self, contract: Any) -> None:
        graph = build([*LAYERED, ("app.cli.main", "app.api.routes")])
        analysis = architecture.analyse(graph, contract)
        found = directions(analysis)
        assert found[("app.cli", "app.api")] == "UP (between independent siblings)"
        assert analysis.layers[-1] == ("app.base",)  # app.gone has no module: no row
        assert "app.side" in analysis.outside and "app.side.bank" in analysis.outside

    def test_no_circle_once_the_upward_import_goes(self, contract: Any) -> None:
        graph = build([pair for pair in LAYERED if pair[0] != "app.base.db"])
        analysis = architecture.analyse(graph, contract)
        assert analysis.package_circles == ()
        assert directions(analysis)[("app.core", "app.base")] == "down"


class TestCheck:
    DOCUMENT = "# Title\n\n## Layers and imports\n\nHand-written text.\n"

    def test_stale_section_is_reported_and_fresh_one_is_not(self, contract: Any) -> None:
        graph = build([pair for pair in LAYERED if pair[0] != "app.base.db"])
        analysis = architecture.analyse(graph, contract)
        section = architecture.render_section(analysis, local_imports=0)
        fresh = architecture.replace_section(self.DOCUMENT, section)
        assert fresh.endswith("\nHand-written text.\n")
        assert architecture.problems(fresh, section, analysis) == []
        row = "| `api` | `core` | 1 | down |"
        stale = fresh.replace(row, row.replace("1", "2"))
        assert stale != fresh
        found = architecture.problems(stale, section, analysis)
        assert len(found) == 1 and "stale" in found[0] and "make architecture" in found[0]
        missing = architecture.problems(self.DOCUMENT, section, analysis)
        assert len(missing) == 1 and "stale" in missing[0]
        assert architecture.replace_section(fresh, section) == fresh  # rewriting is idempotent

    def test_package_circle_fails_the_check(self, contract: Any) -> None:
        analysis = architecture.analyse(build(LAYERED), contract)
        section = architecture.render_section(analysis, local_imports=0)
        document = architecture.replace_section(self.DOCUMENT, section)
        assert architecture.problems(document, section, analysis) == [
            "packages import each other in a circle: base, core"
        ]


def test_function_local_imports_skip_type_checking(tmp_path: Path) -> None:
    (tmp_path / "module.py").write_text(
        "import os\n"
        "from typing import TYPE_CHECKING\n"
        "def f():\n"
        "    import json\n"
        "    if TYPE_CHECKING:\n"
        "        import decimal\n"
        "    else:\n"
        "        import fractions\n"
        "    def g():\n"
        "        from sys import path\n",
        encoding="utf-8",
    )
    assert architecture.function_local_imports(tmp_path) == 3  # json, fractions, sys


def test_pictures_are_deterministic(tmp_path: Path, contract: Any) -> None:
    graph = build([*LAYERED, ("app.core.models", "app.base.db")])
    analysis = architecture.analyse(graph, contract)
    for name in ("one", "two"):
        architecture.save(architecture.draw_packages(analysis), tmp_path / f"{name}.svg")
        architecture.save(architecture.draw_circles(analysis), tmp_path / f"{name}-circles.svg")
    assert (tmp_path / "one.svg").read_bytes() == (tmp_path / "two.svg").read_bytes()
    assert (tmp_path / "one-circles.svg").read_bytes() == (
        tmp_path / "two-circles.svg"
    ).read_bytes()
    assert b"<dc:date>" not in (tmp_path / "one.svg").read_bytes()
