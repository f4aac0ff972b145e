"""A published rule set reaches every process, and only once it is committed (ADR 0041)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox
from kouza.risk import service as risk_service
from kouza.risk.service import risk
from kouza.risk.versions import rule_versions
from kouza.runtime import Runtime
from tests.conftest import make_runtime

PUBLISHED = """
version: published-elsewhere
rules:
  - id: second-account-from-device
    events: [link_attempt]
    when: others(device, "account", "24h", type="link_attempt") >= 1
    outcome: review
"""


def publish(rt: Runtime, text: str) -> None:
    with rt.db.unit_of_work() as session:
        rule_versions.publish(session, text, source="test", actor="operator:a", reason="tuning")


def version_seen_by(rt: Runtime) -> str:
    with rt.db.session() as session:
        return risk.engine(rt, session).rules.version


def test_another_process_follows_what_was_published(
    rt: Runtime,
    db_url: str,
    tmp_path: Path,
    clock: ManualClock,
    mailbox: MemoryMailbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = make_runtime(db_url, tmp_path / "other", clock, mailbox)
    try:
        before = version_seen_by(other)
        publish(rt, PUBLISHED)
        assert version_seen_by(rt) == "published-elsewhere"  # at once where it was published
        assert version_seen_by(other) == before  # elsewhere: at the next look, not every call
        monkeypatch.setattr(risk_service, "PUBLISHED_RULES_CHECK_SECONDS", 0.0)
        assert version_seen_by(other) == "published-elsewhere"
        restarted = make_runtime(db_url, tmp_path / "restarted", clock, mailbox)
        restarted.risk_engine = None  # built from settings, as a starting process does
        try:
            assert version_seen_by(restarted) == "published-elsewhere"
        finally:
            restarted.db.dispose()
    finally:
        other.db.dispose()


def test_a_publish_that_rolls_back_is_never_enforced(rt: Runtime) -> None:
    before = version_seen_by(rt)

    class Abort(Exception):
        pass

    with pytest.raises(Abort), rt.db.unit_of_work() as session:
        rule_versions.publish(session, PUBLISHED, source="test", actor="operator:a", reason="x")
        raise Abort
    assert version_seen_by(rt) == before
