"""``kouza bank``: seed, banks, register-client, links, revoke; errors are one line, exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kouza.bank.assembly import build_bank_runtime
from kouza.bank.core import core
from kouza.bank.legacy_form import legacy_linking
from kouza.bank.migrate import upgrade
from kouza.bank.settings import BankSettings
from kouza.cli import common
from kouza.cli.bank_cli import app
from tests.bank.conftest import BANK_SECRET
from tests.bank.helpers import make_bank, make_client, make_holder

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KOUZA_BANK_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("KOUZA_BANK_SECRET_KEY", BANK_SECRET)
    monkeypatch.delenv("KOUZA_BANK_DATABASE_URL", raising=False)
    monkeypatch.setattr(common.console, "_width", 240)  # no wrapping of ids in tables
    monkeypatch.setattr(common.error_console, "_width", 240)
    return tmp_path / "var"


def test_seed_prints_counts_and_hides_secrets(env: Path) -> None:
    result = runner.invoke(app, ["seed", "--customers", "2", "--banks", "0125,9900"])

    assert result.exit_code == 0, result.output
    assert "created 2 banks, 6 branches, 4 customers, 4 accounts" in result.output
    assert "PIN" not in result.output
    assert (env / "bank.db").exists()

    listed = runner.invoke(app, ["banks"])
    assert "0125" in listed.output and "ゆうちょ銀行" in listed.output
    assert "legacy_pin" in listed.output


def test_seed_shows_secrets_only_when_asked(env: Path) -> None:
    result = runner.invoke(app, ["seed", "--customers", "1", "--banks", "0010", "--show-secrets"])

    assert result.exit_code == 0 and "PIN" in result.output and "TOTP" in result.output


def test_links_and_revoke(env: Path) -> None:
    runtime = build_bank_runtime(BankSettings())  # the CLI's database, from the environment
    upgrade(runtime.db.engine)
    make_bank(runtime)
    holder = make_holder(runtime)
    client_id, _ = make_client(runtime, webhook_url=None)
    with runtime.db.unit_of_work() as session:
        link = legacy_linking.link(
            session,
            client=core.client(session, client_id),
            bank_code="0125",
            form=holder.form(),
            source="cli-test",
        )
        link_id = str(link.id)
    runtime.db.dispose()

    listed = runner.invoke(app, ["links", "0125-100-1234567"])
    revoked = runner.invoke(app, ["revoke", link_id, "--reason", "holder at counter"])
    again = runner.invoke(app, ["links", "0125-100-1234567"])

    assert listed.exit_code == 0 and link_id in listed.output and "active" in listed.output
    assert revoked.exit_code == 0 and f"revoked link {link_id}" in revoked.output
    assert "revoked" in again.output


def test_errors_are_one_line_and_exit_1(env: Path) -> None:
    unknown = runner.invoke(app, ["links", "0125-100-1234567"])
    malformed = runner.invoke(app, ["links", "0125-1234567"])
    bad_link = runner.invoke(app, ["revoke", "not-a-uuid"])

    for result in (unknown, malformed, bad_link):
        assert result.exit_code == 1
        assert result.output.strip().startswith("error:")
        assert len(result.output.strip().splitlines()) == 1
