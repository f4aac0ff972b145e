"""``kouza bank register-client --jwks-file`` / ``register-keys``: the operator's public key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from joserfc.jwk import ECKey
from sqlalchemy import select
from typer.testing import CliRunner

from kouza.bank.assembly import build_bank_runtime
from kouza.bank.migrate import upgrade
from kouza.bank.models import OAuthClientRegistration
from kouza.bank.settings import BankSettings
from kouza.cli.bank_cli import app
from tests.bank.test_cli import env  # noqa: F401  (fixture)

runner = CliRunner()
REDIRECT = "https://wallet.kouza.test/bank-callback"


def registrations() -> list[OAuthClientRegistration]:
    runtime = build_bank_runtime(BankSettings())
    upgrade(runtime.db.engine)
    with runtime.db.session() as session:
        found = list(session.scalars(select(OAuthClientRegistration)).all())
    runtime.db.dispose()
    return found


@pytest.fixture
def jwks_file(tmp_path: Path) -> Path:
    key = ECKey.generate_key("P-256", auto_kid=True)
    path = tmp_path / "wallet-jwks.json"
    path.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    return path


@pytest.mark.usefixtures("env")
def test_register_client_with_its_public_key(jwks_file: Path) -> None:
    result = runner.invoke(
        app,
        [
            "register-client",
            "kouza-wallet",
            "--name",
            "kouza",
            "--jwks-file",
            str(jwks_file),
            "--redirect-uri",
            REDIRECT,
        ],
    )

    assert result.exit_code == 0, result.output
    assert "private_key_jwt" in result.output
    (registered,) = registrations()
    assert registered.redirect_uris == [REDIRECT]
    assert registered.jwks == json.loads(jwks_file.read_text())


@pytest.mark.usefixtures("env")
def test_register_keys_later_and_only_once(jwks_file: Path) -> None:
    assert runner.invoke(app, ["register-client", "kouza-wallet", "--name", "kouza"]).exit_code == 0
    assert registrations() == []

    first = runner.invoke(
        app,
        [
            "register-keys",
            "kouza-wallet",
            "--jwks-file",
            str(jwks_file),
            "--redirect-uri",
            REDIRECT,
        ],
    )
    again = runner.invoke(
        app,
        [
            "register-keys",
            "kouza-wallet",
            "--jwks-file",
            str(jwks_file),
            "--redirect-uri",
            REDIRECT,
        ],
    )

    assert first.exit_code == 0, first.output
    assert again.exit_code == 1 and again.output.startswith("error:")
    assert len(registrations()) == 1


@pytest.mark.usefixtures("env")
def test_a_private_key_or_junk_is_refused(tmp_path: Path) -> None:
    assert runner.invoke(app, ["register-client", "kouza-wallet", "--name", "kouza"]).exit_code == 0
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [ECKey.generate_key("P-256").as_dict(private=True)]}))
    junk = tmp_path / "junk.json"
    junk.write_text("not json")

    for path in (private, junk):
        result = runner.invoke(
            app,
            ["register-keys", "kouza-wallet", "--jwks-file", str(path), "--redirect-uri", REDIRECT],
        )
        assert result.exit_code == 1, result.output
        assert result.output.strip().startswith("error:")
    assert registrations() == []
