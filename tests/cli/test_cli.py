"""The ``kouza`` command line, in-process with typer's CliRunner, on a SQLite file under tmp.

The CLI builds its runtime from the environment (``KOUZA_VAR_DIR``, ``KOUZA_SECRET_KEY``) and
caches it; each test points it at a fresh directory and resets both caches. Customers are set up
through the services on the very runtime the CLI uses, as the API would have done.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from click.testing import Result
from sqlalchemy import text
from typer.testing import CliRunner

from kouza.cli import common
from kouza.cli.main import app
from kouza.config import get_settings
from kouza.identity.service import identity
from kouza.kit.notify import FileMailbox
from kouza.ledger.service import ledger
from kouza.runtime import Runtime
from kouza.wallet import qr as qr_codes
from kouza.wallet.models import Wallet
from kouza.wallet.service import wallets
from tests.factories import PASSWORD

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture
def cli_rt(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """The CLI's own runtime, on a fresh SQLite database under ``tmp_path``."""
    monkeypatch.chdir(str(tmp_path))  # no stray .env from the working directory
    monkeypatch.setenv("KOUZA_VAR_DIR", f"{tmp_path}/var")
    monkeypatch.setenv("KOUZA_SECRET_KEY", "x" * 32)
    monkeypatch.delenv("KOUZA_DATABASE_URL", raising=False)
    monkeypatch.setattr(common, "_runtime", None)
    monkeypatch.setattr(common.console, "_width", 240)  # no wrapping of ids in tables
    monkeypatch.setattr(common.error_console, "_width", 240)
    get_settings.cache_clear()
    runtime = common.runtime()
    assert runtime.db.dialect == "sqlite"
    assert str(tmp_path) in str(runtime.db.engine.url)
    yield runtime
    runtime.db.dispose()
    get_settings.cache_clear()


def kouza(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def ok(*args: str) -> str:
    result = kouza(*args)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.stdout


def refused(*args: str) -> str:
    """The command fails with exit code 1 and one ``error:`` line; returns that line."""
    result = kouza(*args)
    assert result.exit_code == 1, (args, result.output, result.exception)
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def new_wallet(rt: Runtime, email: str = "hanako@example.jp") -> Wallet:
    """Sign up, verify the e-mailed code and open a wallet, through the services."""
    with rt.db.unit_of_work() as session:
        identity.signup(session, email=email, password=PASSWORD)
    mailbox = rt.senders["email"]
    assert isinstance(mailbox, FileMailbox)
    match = re.search(r"\b(\d{6})\b", mailbox.read()[-1].body)
    assert match is not None
    with rt.db.unit_of_work() as session:
        user = identity.verify_email(session, email=email, code=match.group(1))
        return wallets.open_wallet(session, user=user)


def balance(rt: Runtime, wallet: Wallet) -> int:
    with rt.db.session() as session:
        return ledger.balance(session, wallet.ledger_account_id).balance


def create_merchant(name: str, category: str = "convenience_store") -> uuid.UUID:
    out = ok("merchants", "create", name, "--category", category)
    match = re.fullmatch(rf"merchant ({UUID}) {re.escape(name)} \({category}\)\n", out)
    assert match is not None, out
    return uuid.UUID(match.group(1))


class TestMerchants:
    def test_create_list_and_qr(self, cli_rt: Runtime) -> None:
        lawson = create_merchant("Lawson Shibuya")
        yodobashi = create_merchant("Yodobashi Akiba", "electronics")
        listing = ok("merchants", "list")
        rows = [line for line in listing.splitlines() if re.search(UUID, line)]
        assert len(rows) == 2
        assert re.search(
            rf"{lawson}\s+│?\s*Lawson Shibuya\s+│?\s*convenience_store\s+│?\s*¥0", listing
        ), listing
        assert str(yodobashi) in listing and "electronics" in listing

        now = datetime.now(UTC)
        dynamic = qr_codes.verify(
            cli_rt.secret,
            ok("merchants", "qr", str(lawson), "--amount", "3200", "--order-ref", "till-1").strip(),
            now=now,
        )
        assert (dynamic.merchant_id, dynamic.amount, dynamic.order_ref) == (lawson, 3_200, "till-1")
        assert dynamic.expires_at is not None
        static = qr_codes.verify(cli_rt.secret, ok("merchants", "qr", str(lawson)).strip(), now=now)
        assert (static.amount, static.order_ref, static.expires_at) == (None, None, None)

    def test_bad_input(self, cli_rt: Runtime) -> None:
        nowhere = uuid.uuid4()
        assert (
            refused("merchants", "qr", "not-a-uuid")
            == "error: not a valid merchant id: 'not-a-uuid'"
        )
        assert refused("merchants", "qr", str(nowhere)).startswith("error: no such merchant")
        assert refused("merchants", "create", "   ") == "error: the merchant name is empty"
        result = kouza("merchants", "create", "Shop", "--category", "casino")
        assert result.exit_code == 2  # typer refuses an unknown category itself
        assert re.search(UUID, ok("merchants", "list")) is None  # nothing was created
        result = kouza("merchants", "qr", str(nowhere), "--amount", "0")
        assert result.exit_code == 2


class TestWallets:
    def test_credit_show_statement_refund_verify(self, cli_rt: Runtime) -> None:
        wallet = new_wallet(cli_rt)
        out = ok("wallets", "credit", str(wallet.id), "10000", "--reason", "campaign", "--yes")
        assert re.fullmatch(r"credited ¥10,000 \(entry \d+\); balance now ¥10,000\n", out), out
        assert balance(cli_rt, wallet) == 10_000

        lawson = create_merchant("Lawson Shibuya")
        qr = ok("merchants", "qr", str(lawson), "--amount", "3000").strip()  # the free amount
        with cli_rt.db.unit_of_work() as session:
            user = identity.user_by_email(session, "hanako@example.jp")
            payment = wallets.pay(session, user=user, wallet_id=wallet.id, qr=qr)

        out = ok("payments", "refund", str(payment.id), "1200", "--reason", "returned", "--yes")
        assert re.fullmatch(r"refunded ¥1,200 \(entry \d+\)\n", out), out
        assert balance(cli_rt, wallet) == 8_200

        assert ok("wallets", "show", str(wallet.id)) == (
            f"wallet {wallet.id} (active): balance ¥8,200, available ¥8,200, held ¥0\n"
        )
        statement = ok("wallets", "statement", str(wallet.id))
        lines = [
            line
            for line in statement.splitlines()
            if re.search(r"\b(topup|payment|refund)\b", line)
        ]
        assert [re.search(r"\b(topup|payment|refund)\b", x).group(1) for x in lines] == [  # type: ignore[union-attr]
            "refund",
            "payment",
            "topup",
        ]
        assert "¥1,200" in lines[0] and "¥8,200" in lines[0]
        assert "-¥3,000" in lines[1] and "¥7,000" in lines[1]
        assert "¥10,000" in lines[2] and "campaign" in lines[2]
        listing = ok("wallets", "list")
        assert str(wallet.id) in listing and "hanako@example.jp" in listing
        assert "¥8,200" in listing

        out = ok("ledger", "verify")
        assert "ledger OK" in out
        assert re.search(r"sum of all balances\s+│?\s*¥0", out), out

    def test_bad_input_moves_nothing(self, cli_rt: Runtime) -> None:
        wallet = new_wallet(cli_rt)
        ok("wallets", "credit", str(wallet.id), "5000", "--yes")
        lawson = create_merchant("Lawson Shibuya")
        qr = ok("merchants", "qr", str(lawson), "--amount", "1000").strip()
        with cli_rt.db.unit_of_work() as session:
            user = identity.user_by_email(session, "hanako@example.jp")
            payment = wallets.pay(session, user=user, wallet_id=wallet.id, qr=qr)
        nowhere = str(uuid.uuid4())

        assert (
            refused("wallets", "show", "not-a-uuid") == "error: not a valid wallet id: 'not-a-uuid'"
        )
        assert refused("wallets", "statement", nowhere).startswith("error: no such wallet")
        assert (
            refused("wallets", "credit", str(wallet.id), "100")
            == "error: refusing without confirmation: pass --yes"
        )
        assert refused("wallets", "credit", nowhere, "100", "--yes").startswith(
            "error: no such wallet"
        )
        assert (
            refused("wallets", "credit", "12345", "100", "--yes")
            == "error: not a valid wallet id: '12345'"
        )
        assert refused("wallets", "credit", str(wallet.id), "500001", "--yes").startswith(
            "error: per-transaction limit"
        )
        assert refused("payments", "refund", str(payment.id), "1001", "--yes").startswith(
            "error: refund exceeds what is left of the payment"
        )
        assert (
            refused("payments", "refund", str(payment.id), "100")
            == "error: refusing without confirmation: pass --yes"
        )
        assert refused("payments", "refund", nowhere, "100", "--yes").startswith(
            "error: no such payment"
        )
        for args in (
            ("wallets", "credit", str(wallet.id), "0", "--yes"),
            ("wallets", "credit", str(wallet.id), "ten", "--yes"),
            ("payments", "refund", str(payment.id), "-5", "--yes"),
        ):
            assert kouza(*args).exit_code == 2, args
        assert balance(cli_rt, wallet) == 4_000
        assert "ledger OK" in ok("ledger", "verify")


class TestLedgerVerify:
    def test_names_the_corrupted_account(self, cli_rt: Runtime) -> None:
        wallet = new_wallet(cli_rt)
        ok("wallets", "credit", str(wallet.id), "10000", "--yes")
        assert "ledger OK" in ok("ledger", "verify")
        with cli_rt.db.unit_of_work() as session:
            session.execute(
                text("UPDATE ledger_accounts SET balance = balance + 1 WHERE code = :code"),
                {"code": f"wallet:{wallet.id}"},
            )
        result = kouza("ledger", "verify")
        assert result.exit_code == 1, result.output
        assert "ledger OK" not in result.stdout
        differences = [x for x in result.stderr.splitlines() if x.startswith("difference:")]
        assert differences == [
            f"difference: account {wallet.ledger_account_id} (wallet:{wallet.id}): "
            "balance 10001 but postings sum to 10000",
            "difference: balances sum to 1, not 0",
        ]


def test_serve_refuses_several_workers_without_a_shared_risk_store(cli_rt: Runtime) -> None:
    result = kouza("serve", "--workers", "2")
    assert result.exit_code == 2
    assert "KOUZA_RISK_FEATURE_STORE" in result.output
