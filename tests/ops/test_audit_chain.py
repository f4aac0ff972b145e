"""The audit trail is a hash chain: a clean chain verifies; an edited, a deleted and a reordered
record are each found by ``kouza audit verify`` (exit 1, naming the record); concurrent writers
never fork it; the migration chains the rows that existed before it."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import select, text
from typer.testing import CliRunner

from kouza.cli import common
from kouza.cli.main import app
from kouza.controls import audit
from kouza.controls.models import AuditEvent
from kouza.controls.service import controls
from kouza.kit.clock import ManualClock
from kouza.kit.migrate import alembic_config, upgrade
from kouza.runtime import Runtime


def _write(rt: Runtime, count: int, *, per_unit: int = 1) -> None:
    assert isinstance(rt.clock, ManualClock)
    for first in range(0, count, per_unit):
        with rt.db.unit_of_work() as session:
            for n in range(first, min(first + per_unit, count)):
                rt.clock.advance(timedelta(seconds=1, microseconds=7))
                controls.audit(
                    session,
                    actor="operator:admin",
                    action="switch.on",
                    subject=f"bank_links:{n:04d}",
                    reason=f"reason {n} ｺｳｻﾞ",
                    details={"n": n, "nested": {"b": [1, 2], "a": None}},
                )


def _verify(rt: Runtime, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["audit", "verify", *args])
    return result.exit_code, " ".join(result.output.split())


def _execute(rt: Runtime, sql: str, **params: object) -> None:
    with rt.db.engine.begin() as connection:
        connection.execute(text(sql), params)


@pytest.fixture
def chained(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    monkeypatch.setattr(common, "_runtime", rt)
    _write(rt, 2)
    _write(rt, 3, per_unit=3)  # several records in one unit of work
    return rt


class TestVerify:
    def test_a_clean_chain_passes(self, chained: Runtime) -> None:
        with chained.db.unit_of_work() as session:
            rows = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
            result = audit.verify(session)
        assert [r.prev_hash for r in rows] == [audit.GENESIS] + [r.row_hash for r in rows[:-1]]
        assert (result.ok, result.checked, result.head_id, result.head_hash) == (
            True,
            5,
            rows[-1].id,
            rows[-1].row_hash,
        )
        code, output = _verify(chained)
        assert code == 0
        assert output == (
            f"audit chain intact: 5 record(s); head: record {rows[-1].id}, hash {rows[-1].row_hash}"
        )

    def test_an_edited_record_is_found(self, chained: Runtime) -> None:
        _execute(chained, "UPDATE audit_events SET reason = 'nothing happened' WHERE id = 3")
        code, output = _verify(chained)
        assert code == 1
        assert output == (
            "error: audit chain broken at record 3: its contents do not match "
            "its hash: the record was changed (2 record(s) before it verified)"
        )

    def test_an_edited_detail_or_time_is_found(self, chained: Runtime) -> None:
        _execute(
            chained,
            "UPDATE audit_events SET created_at = :at WHERE id = 4",
            at=datetime(2026, 3, 1, 9, 0, 4, tzinfo=UTC).replace(
                tzinfo=None if chained.db.dialect == "sqlite" else UTC
            ),
        )
        assert _verify(chained)[1].startswith("error: audit chain broken at record 4: its contents")

    def test_a_deleted_record_is_found(self, chained: Runtime) -> None:
        _execute(chained, "DELETE FROM audit_events WHERE id = 2")
        code, output = _verify(chained)
        assert code == 1
        assert output.startswith(
            "error: audit chain broken at record 3: its previous hash does "
            "not match the record before it: a record was removed or "
            "records were reordered"
        )

    def test_a_reordered_pair_is_found(self, chained: Runtime) -> None:
        # swap every column of records 2 and 3 but the id (= swapping their ids)
        with chained.db.engine.begin() as connection:
            two, three = (
                connection.execute(
                    text(
                        "SELECT actor, action, subject, reason, details, created_at,"
                        " prev_hash, row_hash"
                        " FROM audit_events WHERE id = :id"
                    ),
                    {"id": i},
                )
                .mappings()
                .one()
                for i in (2, 3)
            )
            connection.execute(text("UPDATE audit_events SET prev_hash = 'x' WHERE id = 2"))
            for target, source in ((3, two), (2, three)):
                connection.execute(
                    text(
                        "UPDATE audit_events SET actor = :actor, action = :action, "
                        "subject = :subject, reason = :reason, details = :details, "
                        "created_at = :created_at, prev_hash = :prev_hash, row_hash = :row_hash "
                        "WHERE id = :id"
                    ),
                    {**source, "details": _json(source["details"]), "id": target},
                )
        code, output = _verify(chained)
        assert code == 1
        assert output.startswith("error: audit chain broken at record 2:")

    def test_a_rewritten_chain_is_found_by_its_anchor(self, chained: Runtime) -> None:
        with chained.db.unit_of_work() as session:
            anchored = session.get(AuditEvent, 4)
            assert anchored is not None
            anchor = f"4:{anchored.row_hash}"
        _execute(chained, "UPDATE audit_events SET reason = 'nothing happened' WHERE id = 3")
        _rechain(chained)  # someone with write access recomputes every hash
        assert _verify(chained)[0] == 0
        code, output = _verify(chained, "--anchor", anchor)
        assert code == 1
        assert output.startswith(
            "error: audit chain broken at record 4: its hash differs from the anchor"
        )
        _execute(chained, "DELETE FROM audit_events WHERE id = 5")
        assert _verify(chained, "--anchor", f"5:{'0' * 64}")[1].startswith(
            "error: audit chain broken at record 5: an anchored record is no longer in the chain"
        )
        assert _verify(chained, "--anchor", "five")[0] == 1

    def test_an_empty_trail_passes(self, rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(common, "_runtime", rt)
        assert _verify(rt) == (0, "audit chain intact: 0 record(s); head: empty")


def _json(value: object) -> object:
    return value if isinstance(value, str) or value is None else json.dumps(value)


def _rechain(rt: Runtime) -> None:
    with rt.db.unit_of_work() as session:
        rows = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        for row in rows:
            row.prev_hash = f"tmp{row.id}"
        session.flush()
        prev = audit.GENESIS
        for row in rows:
            row.prev_hash, row.row_hash = prev, audit.chain_hash(prev, row)
            prev = row.row_hash


class TestAppend:
    def test_a_rolled_back_unit_of_work_leaves_no_record(self, rt: Runtime) -> None:
        with pytest.raises(RuntimeError), rt.db.unit_of_work() as session:
            controls.audit(session, actor="operator:a", action="x", reason="r")
            raise RuntimeError("the action failed")
        _write(rt, 1)
        with rt.db.unit_of_work() as session:
            assert audit.verify(session).checked == 1

    def test_concurrent_writers_do_not_fork_the_chain(self, rt: Runtime) -> None:
        errors: list[BaseException] = []
        start = threading.Barrier(6)

        def writer(n: int) -> None:
            try:
                start.wait()
                for i in range(4):
                    with rt.db.unit_of_work() as session:
                        controls.audit(
                            session,
                            actor=f"operator:{n}",
                            action="case.note",
                            subject=f"{n}-{i}",
                            reason="concurrent",
                        )
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with rt.db.unit_of_work() as session:
            result = audit.verify(session)
        assert (result.ok, result.checked) == (True, 24)


class TestMigration:
    def test_existing_rows_are_chained(self, rt: Runtime) -> None:
        config = alembic_config()
        with rt.db.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0010")
        at = datetime(2026, 3, 1, 9, 0, 0, 123456, tzinfo=UTC)
        for n in range(3):
            _execute(
                rt,
                "INSERT INTO audit_events (actor, action, subject, reason, details, "
                "created_at) VALUES ('cli:root', 'operator.create', :s, 'new operator',"
                " :d, :at)",
                s=f"op{n}",
                d='{"role": "admin"}' if n else None,
                at=at.replace(tzinfo=None) if rt.db.dialect == "sqlite" else at,
            )
        upgrade(rt.db.engine)
        _write(rt, 1)
        with rt.db.unit_of_work() as session:
            result = audit.verify(session)
            first = session.get(AuditEvent, 1)
        assert (result.ok, result.checked) == (True, 4)
        assert first is not None and first.prev_hash == audit.GENESIS
        assert first.row_hash == audit.chain_hash(audit.GENESIS, first)
