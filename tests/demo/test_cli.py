"""``kouza demo``'s command line: the one-time code helper, and the refusals that build
nothing (production, ports, a folder that is not a demo's)."""

from __future__ import annotations

import time
from pathlib import Path

import pyotp
import pytest
from typer.testing import CliRunner

from kouza.cli import common
from kouza.cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setattr(common.console, "_width", 240)
    monkeypatch.setattr(common.error_console, "_width", 240)


def test_otp_prints_the_current_code_of_a_seed() -> None:
    seed = pyotp.random_base32()
    before = time.time()
    result = runner.invoke(app, ["demo", "otp", seed.lower()])
    assert result.exit_code == 0, result.output
    totp = pyotp.TOTP(seed)
    assert result.output.strip() in {totp.at(before), totp.at(time.time())}


def test_otp_refuses_what_is_not_base32() -> None:
    result = runner.invoke(app, ["demo", "otp", "not base32!"])
    assert result.exit_code == 2
    assert "is not a base32 TOTP seed" in result.output


def test_production_is_refused_and_nothing_is_built(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KOUZA_ENV", "production")
    folder = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--no-serve", "--dir", str(folder)])
    assert result.exit_code == 1
    assert "KOUZA_ENV=production" in result.output
    assert not folder.exists()


def test_the_same_port_twice_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--no-serve", "--dir", str(folder), "--bank-port", "8000"])
    assert result.exit_code == 2
    assert "must differ" in result.output
    assert not folder.exists()


def test_a_folder_that_is_not_a_demo_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    result = runner.invoke(app, ["demo", "--no-serve", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "holds more than a demo" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]
