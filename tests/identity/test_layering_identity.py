"""The identity flow code must not know the development CA exists (only tests wire it in)."""

from __future__ import annotations

import ast
from pathlib import Path

import kouza.identity as identity_package

DEV_MODULES = {"devca", "devchip", "devca_store", "devca_cli"}


def test_identity_modules_do_not_import_the_dev_ca() -> None:
    package = Path(identity_package.__file__).parent
    offenders = []
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            offenders += [(path.name, n) for n in names if n.rsplit(".", 1)[-1] in DEV_MODULES]
    assert offenders == []
