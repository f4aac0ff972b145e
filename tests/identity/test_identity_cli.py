"""``kouza users`` (mounted by the lead): show a user, start and follow a campaign."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from kouza.cli import common
from kouza.cli.identity_cli import app, dev_ca_app
from kouza.config import get_settings
from kouza.controls.models import AuditEvent
from kouza.identity.models import ReverificationRequirement
from kouza.kit.notify import MemoryMailbox
from kouza.runtime import Runtime
from tests.factories import verified_user
from tests.identity.support import count

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture
def cli_rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KOUZA_VAR_DIR", f"{tmp_path}/var")
    monkeypatch.setenv("KOUZA_SECRET_KEY", "x" * 32)
    monkeypatch.delenv("KOUZA_DATABASE_URL", raising=False)
    monkeypatch.setattr(common, "_runtime", None)
    monkeypatch.setattr(common.console, "_width", 240)
    get_settings.cache_clear()
    runtime = common.runtime()
    runtime.senders["email"] = MemoryMailbox()
    yield runtime
    runtime.db.dispose()
    get_settings.cache_clear()


def users(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_show_and_a_campaign(cli_rt: Runtime) -> None:
    mailbox = cli_rt.senders["email"]
    assert isinstance(mailbox, MemoryMailbox)
    user = verified_user(cli_rt, mailbox, "hanako@example.jp")
    shown = users("show", "hanako@example.jp")
    assert shown.exit_code == 0, shown.output
    assert re.search(r"level\W+email", shown.stdout) and re.search(r"may charge\W+no", shown.stdout)
    started = users(
        "reverify",
        "start",
        "--name",
        "re-eKYC",
        "--reason",
        "fraud wave",
        "--user-id",
        str(user.id),
        "--yes",
    )
    assert started.exit_code == 0, started.output
    match = re.search(rf"campaign ({UUID}) started: 1 user\(s\)", started.stdout)
    assert match is not None
    status = users("reverify", "status", match.group(1))
    assert "1 pending, 0 cleared" in status.stdout
    assert count(cli_rt, ReverificationRequirement) == 1
    assert count(cli_rt, AuditEvent, AuditEvent.action == "reverification.start") == 1


def test_refusals_print_one_line(cli_rt: Runtime) -> None:
    both = users(
        "reverify",
        "start",
        "--name",
        "x",
        "--reason",
        "y",
        "--every-verified",
        "--user-id",
        "00000000-0000-0000-0000-000000000000",
        "--yes",
    )
    assert both.exit_code == 1 and "not both" in both.stderr
    empty = users("reverify", "start", "--name", "x", "--reason", "y", "--every-verified", "--yes")
    assert empty.exit_code == 1 and "the cohort is empty" in empty.stderr
    unknown = users("reverify", "status", "00000000-0000-0000-0000-000000000000")
    assert unknown.exit_code == 1 and "no such campaign" in unknown.stderr
    assert count(cli_rt, ReverificationRequirement) == 0


def test_dev_ca_is_re_exported() -> None:
    assert "init" in CliRunner().invoke(dev_ca_app, ["--help"]).stdout
