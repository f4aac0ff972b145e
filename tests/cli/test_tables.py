"""List commands on an 80-column terminal never cut an id or a secret, and ``--json`` prints
machine-readable JSON (ids as strings, yen as ints, times RFC 3339)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kouza.bank.seed import SeedReport, seed_banks
from kouza.cli import bank_cli, common
from kouza.cli.common import Col, Listing, print_records
from kouza.cli.main import app
from kouza.config import get_settings
from kouza.controls.cases import cases
from kouza.identity.service import identity
from kouza.kit.notify import FileMailbox
from kouza.runtime import Runtime
from kouza.wallet.service import wallets
from tests.bank.conftest import BANK_SECRET
from tests.factories import PASSWORD

NARROW = {"COLUMNS": "80"}
LONG_EMAIL = "hanako.yamada.with.a.long.address@example.jp"


@pytest.fixture
def cli_rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """The CLI's runtime on a fresh SQLite file; the consoles take their width from COLUMNS."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KOUZA_VAR_DIR", f"{tmp_path}/var")
    monkeypatch.setenv("KOUZA_SECRET_KEY", "x" * 32)
    monkeypatch.setenv("KOUZA_BANK_VAR_DIR", f"{tmp_path}/bank-var")
    monkeypatch.setenv("KOUZA_BANK_SECRET_KEY", BANK_SECRET)
    monkeypatch.delenv("KOUZA_DATABASE_URL", raising=False)
    monkeypatch.delenv("KOUZA_BANK_DATABASE_URL", raising=False)
    monkeypatch.setattr(common, "_runtime", None)
    monkeypatch.setattr(common.console, "_width", None)
    get_settings.cache_clear()
    runtime = common.runtime()
    yield runtime
    runtime.db.dispose()
    get_settings.cache_clear()


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env=NARROW)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.stdout


def wallet_for(rt: Runtime, email: str, balance: int) -> str:
    with rt.db.unit_of_work() as session:
        identity.signup(session, email=email, password=PASSWORD)
    mailbox = rt.senders["email"]
    assert isinstance(mailbox, FileMailbox)
    code = re.search(r"\b(\d{6})\b", mailbox.read()[-1].body)
    assert code is not None
    with rt.db.unit_of_work() as session:
        user = identity.verify_email(session, email=email, code=code.group(1))
        wallet = wallets.open_wallet(session, user=user)
        wallets.credit_from_float(session, wallet_id=wallet.id, amount=balance, reason="test")
        return str(wallet.id)


def whole_in(text: str, value: str) -> bool:
    """``value`` appears in ``text`` on one line, uncut."""
    return any(value in line for line in text.splitlines())


class TestNarrowTerminal:
    def test_wallets_list_keeps_ids_and_addresses_whole(self, cli_rt: Runtime) -> None:
        ids = [wallet_for(cli_rt, f"{n}.{LONG_EMAIL}", 234_567) for n in range(2)]
        text = run("wallets", "list")
        assert "…" not in text
        for wallet_id in ids:
            assert whole_in(text, wallet_id), text
        assert whole_in(text, f"0.{LONG_EMAIL}"), text
        assert max(len(line) for line in text.splitlines()) <= 80 or "wallet:" in text

    def test_bank_seed_secrets_are_never_cut(
        self, cli_rt: Runtime, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        reports: list[SeedReport] = []

        def recording(*args: Any, **kwargs: Any) -> SeedReport:
            reports.append(seed_banks(*args, **kwargs))
            return reports[-1]

        monkeypatch.setattr(bank_cli, "seed_banks", recording)
        text = run("bank", "seed", "--customers", "2", "--banks", "0010,0125", "--show-secrets")
        assert "…" not in text
        (report,) = reports
        assert len(report.accounts) == 4
        for account in report.accounts:
            for secret in (account.number, account.pin):
                assert whole_in(text, secret), (secret, text)
            if account.bank_code == "0010":  # an OAuth bank: internet banking with a TOTP
                assert account.totp_seed and account.internet_banking_password
                assert whole_in(text, account.totp_seed), text
                assert whole_in(text, account.internet_banking_password), text

        listed = json.loads(run("bank", "banks", "--json"))
        assert {bank["code"] for bank in listed} == {"0010", "0125"}

    def test_seed_without_show_secrets_prints_none(self, cli_rt: Runtime) -> None:
        data = json.loads(run("bank", "seed", "--customers", "1", "--banks", "0010", "--json"))
        assert data["accounts"] and all("pin" not in account for account in data["accounts"])
        text = run("bank", "seed", "--customers", "1", "--banks", "0125")
        assert "PIN" not in text and "--show-secrets" in text

    def test_a_table_too_wide_for_the_terminal_becomes_blocks(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(common.console, "_width", 80)
        seed = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
        records = [{"id": "9" * 40, "secret": seed, "note": "x" * 30}]
        columns = [Col("id", "id", keep=True), Col("secret", "secret", keep=True)]
        print_records(records, [*columns, Col("note", "note")], as_json=False)
        out = capsys.readouterr().out
        assert f"    id: {'9' * 40}" in out and f"secret: {seed}" in out


class TestJson:
    def test_list_commands_print_typed_json(self, cli_rt: Runtime) -> None:
        wallet_id = wallet_for(cli_rt, LONG_EMAIL, 5_000)
        with cli_rt.db.unit_of_work() as session:
            case = cases.open(
                session, wallet_id=uuid.UUID(wallet_id), source="analyst", summary="t", actor="t"
            )
            case_id = str(case.id)
        (wallet,) = json.loads(run("wallets", "list", "--json"))
        assert wallet["wallet_id"] == wallet_id and wallet["balance_yen"] == 5_000
        assert isinstance(wallet["available_yen"], int)
        assert datetime.fromisoformat(wallet["created_at"]).tzinfo is not None
        (line,) = json.loads(run("wallets", "statement", wallet_id, "--json"))
        assert (line["amount_yen"], line["balance_after_yen"]) == (5_000, 5_000)
        (listed,) = json.loads(run("cases", "list", "--json"))
        assert (listed["case_id"], listed["wallet_id"]) == (case_id, wallet_id)
        events: list[dict[str, Any]] = json.loads(run("audit", "list", "--json"))
        assert isinstance(events, list)
        assert json.loads(run("switches", "list", "--json")) == []
        assert json.loads(run("merchants", "list", "--json")) == []
        settings = json.loads(run("settings", "list", "--json"))
        assert settings[0]["key"] == "accepted_legacy_banks"


def test_listing_refuses_a_keep_that_names_no_column() -> None:
    with pytest.raises(ValueError, match="keep names no column"):
        Listing("a", "b", keep=("c",))
