"""Transactional outbox for side effects that must follow a commit.

A service that wants to send an e-mail (or, later, an SMS or a webhook) calls :func:`enqueue`
inside its unit of work. The message row is written in the same transaction as the business
change, so a rollback sends nothing and a commit can never lose the message. After the commit the
unit of work delivers what it enqueued; anything that failed stays pending for
``kouza outbox deliver``.

Message bodies may hold secrets (a verification code), so the payload is encrypted with a key
derived from the server secret and erased once delivered: the database never holds a readable
code, before or after delivery.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from kouza.kit.db import Base, BigId
from kouza.kit.notify import Message
from kouza.kit.runtime import BaseRuntime, runtime_in


class OutboxMessage(Base):
    """A message waiting for (or past) delivery."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(320))
    payload: Mapped[str | None] = mapped_column(Text)
    """Fernet-encrypted JSON of subject and body; NULL once delivered."""
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))


def _fernet(secret: bytes) -> Fernet:
    key = hashlib.sha256(b"kouza-outbox\x00" + secret).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def enqueue(session: Session, *, channel: str, recipient: str, subject: str, body: str) -> None:
    """Queue a message to go out after this unit of work commits."""
    runtime = runtime_in(session)
    payload = json.dumps({"subject": subject, "body": body}, ensure_ascii=False).encode()
    row = OutboxMessage(
        channel=channel,
        recipient=recipient,
        payload=_fernet(runtime.secret).encrypt(payload).decode(),
        created_at=runtime.now(),
    )
    session.add(row)
    session.flush()
    session.info.setdefault("outbox_pending", []).append(row.id)


def deliver_after_commit(committed: Session) -> None:
    """After-commit hook: deliver the messages this unit of work enqueued."""
    ids = committed.info.pop("outbox_pending", [])
    if ids:
        deliver(committed, ids=ids)


def deliver(any_session: Session, *, ids: list[int] | None = None) -> int:
    """Deliver pending messages (all, or those in ``ids``); returns how many went out."""
    runtime = runtime_in(any_session)
    fernet = _fernet(runtime.secret)
    delivered = 0
    with runtime.db.session() as session:
        # SKIP LOCKED: a message another deliverer is sending is left to it, never sent twice
        query = (
            select(OutboxMessage)
            .where(OutboxMessage.delivered_at.is_(None))
            .with_for_update(skip_locked=True)
        )
        if ids is not None:
            query = query.where(OutboxMessage.id.in_(ids))
        for row in session.scalars(query.order_by(OutboxMessage.id)):
            delivered += _deliver_one(row, runtime, fernet)
        session.commit()
    return delivered


def _deliver_one(row: OutboxMessage, runtime: BaseRuntime[Any], fernet: Fernet) -> int:
    row.attempts += 1
    try:
        content = json.loads(fernet.decrypt((row.payload or "").encode()))
        runtime.sender(row.channel).send(
            Message(
                channel=row.channel,
                recipient=row.recipient,
                subject=content["subject"],
                body=content["body"],
                sent_at=runtime.now(),
            )
        )
    except Exception as exc:  # a sender failure must not lose the message; it stays pending
        row.last_error = f"{type(exc).__name__}: {exc}"[:500]
        return 0
    row.delivered_at = runtime.now()
    row.payload = None
    return 1
