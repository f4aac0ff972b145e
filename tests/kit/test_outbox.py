"""The transactional outbox (kouza.kit.outbox): after commit, once, and never lost."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from kouza.kit import outbox
from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox, Message
from kouza.kit.outbox import OutboxMessage
from kouza.runtime import Runtime

BODY = "Your code is 424242."


class Down:
    """A sender whose gateway is unreachable."""

    def __init__(self) -> None:
        self.calls = 0

    def send(self, message: Message) -> None:
        self.calls += 1
        raise ConnectionError("smtp 421 try later")


def enqueue(session: Any, recipient: str = "hanako@example.jp", body: str = BODY) -> None:
    outbox.enqueue(session, channel="email", recipient=recipient, subject="code", body=body)


def rows(rt: Runtime) -> list[OutboxMessage]:
    with rt.db.session() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def deliver(rt: Runtime, ids: list[int] | None = None) -> int:
    with rt.db.session() as session:
        return outbox.deliver(session, ids=ids)


class TestEnqueue:
    def test_rolled_back_message_is_never_delivered(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        with pytest.raises(RuntimeError), rt.db.unit_of_work() as session:
            enqueue(session)
            raise RuntimeError("the business change failed")
        assert mailbox.messages == []
        assert rows(rt) == []
        assert deliver(rt) == 0
        assert mailbox.messages == []

    def test_committed_message_is_delivered_once(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        with rt.db.unit_of_work() as session:
            enqueue(session)
            assert mailbox.messages == []  # nothing leaves before the commit
        [message] = mailbox.messages
        assert (message.channel, message.recipient, message.subject, message.body) == (
            "email",
            "hanako@example.jp",
            "code",
            BODY,
        )
        assert message.sent_at == clock.now()
        [row] = rows(rt)
        assert (row.attempts, row.delivered_at, row.payload, row.last_error) == (
            1,
            clock.now(),
            None,
            None,
        )
        assert deliver(rt) == 0  # a later sweep does not send it again
        assert len(mailbox.messages) == 1

    def test_payload_is_encrypted_while_pending(self, rt: Runtime) -> None:
        rt.senders["email"] = Down()
        with rt.db.unit_of_work() as session:
            enqueue(session)
        [row] = rows(rt)
        assert row.payload is not None
        assert "424242" not in row.payload

    def test_only_this_unit_of_work_is_delivered_after_commit(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        rt.senders["email"] = Down()
        with rt.db.unit_of_work() as session:
            enqueue(session, recipient="stuck@example.jp")
        rt.senders["email"] = mailbox
        with rt.db.unit_of_work() as session:
            enqueue(session, recipient="fresh@example.jp")
        assert [m.recipient for m in mailbox.messages] == ["fresh@example.jp"]


class TestDeliver:
    def test_failing_sender_leaves_it_pending_then_it_goes_out(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        down = Down()
        rt.senders["email"] = down
        with rt.db.unit_of_work() as session:
            enqueue(session)
        assert down.calls == 1
        [row] = rows(rt)
        assert (row.attempts, row.delivered_at) == (1, None)
        assert row.last_error == "ConnectionError: smtp 421 try later"
        assert row.payload is not None
        assert deliver(rt) == 0  # still down
        assert rows(rt)[0].attempts == 2
        rt.senders["email"] = mailbox
        clock.advance(minutes=5)
        assert deliver(rt) == 1
        assert [m.body for m in mailbox.messages] == [BODY]
        [row] = rows(rt)
        assert (row.attempts, row.delivered_at, row.payload) == (3, clock.now(), None)
        assert deliver(rt) == 0
        assert len(mailbox.messages) == 1

    def test_only_the_given_ids(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        rt.senders["email"] = Down()
        with rt.db.unit_of_work() as session:
            enqueue(session, recipient="a@example.jp")
            enqueue(session, recipient="b@example.jp")
        _, second = rows(rt)
        rt.senders["email"] = mailbox
        assert deliver(rt, ids=[second.id]) == 1
        assert [m.recipient for m in mailbox.messages] == ["b@example.jp"]
        assert deliver(rt) == 1
        assert [m.recipient for m in mailbox.messages] == ["b@example.jp", "a@example.jp"]

    def test_unknown_channel_stays_pending(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        with rt.db.unit_of_work() as session:
            outbox.enqueue(
                session, channel="fax", recipient="+81-3-0000-0000", subject="s", body="b"
            )
        [row] = rows(rt)
        assert row.delivered_at is None
        assert row.last_error == "LookupError: no sender configured for channel 'fax'"
        assert mailbox.messages == []

    def test_two_deliverers_do_not_send_twice(self, rt: Runtime) -> None:
        if rt.db.dialect != "postgresql":
            pytest.skip("SQLite serialises the two deliverers; the race needs PostgreSQL")
        gate = threading.Barrier(2, timeout=3)
        sent: list[str] = []

        class Slow:
            def send(self, message: Message) -> None:
                # hold the first delivery until a second could start; if none reaches the
                # sender (the fixed behaviour), the barrier breaks and delivery goes on
                with contextlib.suppress(threading.BrokenBarrierError):
                    gate.wait()
                sent.append(message.recipient)

        rt.senders["email"] = Down()
        with rt.db.unit_of_work() as session:
            enqueue(session)
        rt.senders["email"] = Slow()
        threads = [threading.Thread(target=deliver, args=(rt,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sent == ["hanako@example.jp"]
        with rt.db.session() as session:
            assert (
                session.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.delivered_at.is_(None))
                )
                == 0
            )
