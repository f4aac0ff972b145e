"""Production verification code must not know the development CA exists."""

from __future__ import annotations

import ast
from pathlib import Path

import kouza.identity.ekyc as ekyc

VERIFIER_MODULES = [
    "facemodel",
    "facematch",
    "icchip",
    "jpki",
    "nonces",
    "pki",
    "result",
    "revocation",
    "__init__",
]
DEV_MODULES = {"devca", "devchip", "devca_store", "devca_cli"}


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_verifier_modules_do_not_import_the_dev_ca() -> None:
    package = Path(ekyc.__file__).parent
    offenders = {
        module: sorted(
            name
            for name in _imported_modules(package / f"{module}.py")
            if name.rsplit(".", 1)[-1] in DEV_MODULES
        )
        for module in VERIFIER_MODULES
    }

    assert {module: names for module, names in offenders.items() if names} == {}


def test_no_wall_clock_in_verifier_modules() -> None:
    package = Path(ekyc.__file__).parent
    for module in VERIFIER_MODULES:
        source = (package / f"{module}.py").read_text()
        assert "datetime.now" not in source and ".utcnow" not in source, module
