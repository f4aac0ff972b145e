"""tools/settings_reference.py: docs/settings.md is current, and the generator refuses fields
without a description and never prints a secret's value."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from kouza.kit.settings import BaseServiceSettings

TOOL = Path(__file__).resolve().parents[2] / "tools" / "settings_reference.py"


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("settings_reference", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["settings_reference"] = module  # dataclasses look their module up while defined
    spec.loader.exec_module(module)
    return module


tool: Any = load_tool()


class ExampleSettings(BaseServiceSettings):
    """A settings class as a developer would add one."""

    model_config = SettingsConfigDict(env_prefix="KOUZA_EXAMPLE_")
    DATABASE_FILE: ClassVar[str] = "example.db"
    SERVICE_NAME: ClassVar[str] = "example"
    SECRET_FILE: ClassVar[str] = "example.key"

    # Money (yen). More words here.
    cap_yen: int = Field(default=30_000, gt=0, le=1_000_000)
    """The cap (yen)."""
    api_key: SecretStr = SecretStr("do-not-print-me")
    """A secret."""


class UndocumentedSettings(ExampleSettings):
    """One field without a docstring."""

    forgotten: int = 3


def test_the_committed_page_is_current() -> None:
    """What ``make lint`` runs: fails when a setting changed and docs/settings.md did not."""
    assert tool.main(["--check"]) == 0


def test_check_fails_on_a_stale_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "settings.md"
    assert tool.main(["--output", str(page)]) == 0
    assert tool.main(["--check", "--output", str(page)]) == 0
    page.write_text(page.read_text().replace("`500000`", "`400000`", 1))
    assert tool.main(["--check", "--output", str(page)]) == 1
    assert "is stale" in capsys.readouterr().err


def test_rows_of_a_class_with_sections_constraints_and_secrets() -> None:
    page = tool.render([("Example", ExampleSettings)])
    assert "### Money (yen)\n" in page
    assert "| `KOUZA_EXAMPLE_CAP_YEN` | int (> 0, ≤ 1000000) | `30000` | The cap (yen). |" in page
    assert "| `KOUZA_EXAMPLE_API_KEY` | secret | (none) | A secret. |" in page
    assert "| `KOUZA_EXAMPLE_SECRET_KEY` | str | generated |" in page
    assert "do-not-print-me" not in page
    assert "### Files, database and secret\n" in page  # the base class's first fields


def test_a_field_without_a_description_is_named() -> None:
    with pytest.raises(tool.MissingDescriptions) as raised:
        tool.render([("Undocumented", UndocumentedSettings)])
    assert raised.value.names == [f"{__name__}.UndocumentedSettings.forgotten"]
