"""The bank is a separate system: it imports nothing of the wallet side."""

from __future__ import annotations

import ast
from pathlib import Path

import kouza.bank as bank_package

WALLET_SIDE = (
    "kouza.assembly",
    "kouza.controls",
    "kouza.identity",
    "kouza.wallet",
    "kouza.ledger",
    "kouza.ops",
    "kouza.api",
    "kouza.cli",
    "kouza.console",
    "kouza.sim",
    "kouza.risk",
    "kouza.config",
    "kouza.models",
    "kouza.linking",
)
PURE_WEBHOOK_ALLOWED = (
    "json",
    "threading",
    "uuid",
    "dataclasses",
    "datetime",
    "typing",
    "__future__",
    "joserfc",
    "kouza.errors",
)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _bank_modules() -> list[Path]:
    root = Path(bank_package.__file__).parent
    protocol = root.parent / "protocol"
    return [*sorted(root.rglob("*.py")), protocol / "__init__.py", protocol / "webhooks.py"]


def test_no_bank_module_imports_the_wallet_side() -> None:
    offenders = {
        str(path): sorted(
            name
            for name in _imports(path)
            if any(name == side or name.startswith(side + ".") for side in WALLET_SIDE)
        )
        for path in _bank_modules()
    }

    assert {path: names for path, names in offenders.items() if names} == {}
    assert len(offenders) >= 20  # the walk really saw the package


def test_the_webhook_verifier_needs_no_database() -> None:
    path = Path(bank_package.__file__).parent.parent / "protocol" / "webhooks.py"

    imported = _imports(path)

    assert all(
        name.split(".")[0] in PURE_WEBHOOK_ALLOWED or name in PURE_WEBHOOK_ALLOWED
        for name in imported
    ), imported
    assert not any(name.startswith("sqlalchemy") for name in imported)


def test_no_wall_clock_in_the_bank() -> None:
    for path in _bank_modules():
        source = path.read_text(encoding="utf-8")
        assert "datetime.now(" not in source and ".utcnow" not in source, path
