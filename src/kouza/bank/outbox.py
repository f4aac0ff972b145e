"""The bank's transactional outbox: holder notices and operator webhooks leave after commit.

A service enqueues inside its unit of work, so a rolled-back debit notifies nobody and a
committed one cannot lose its notice. The payload (personal data in notices, the signed event in
webhooks) is Fernet-encrypted under a key derived from the bank secret and erased once
delivered. After the commit the unit of work delivers what it enqueued; a failure (sender down,
webhook not 2xx) leaves the row pending for :func:`deliver` (``kouza bank deliver``).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.bank.keys import fernet
from kouza.bank.models import BankOutboxMessage, OutboxKind
from kouza.bank.runtime import BankRuntime, bank_runtime_of
from kouza.kit.notify import Message
from kouza.protocol.webhooks import MEDIA_TYPE


def _enqueue(
    session: Session, *, kind: OutboxKind, channel: str, destination: str, content: dict[str, Any]
) -> BankOutboxMessage:
    runtime = bank_runtime_of(session)
    payload = json.dumps(content, ensure_ascii=False).encode()
    row = BankOutboxMessage(
        kind=kind.value,
        channel=channel,
        destination=destination,
        created_at=runtime.now(),
        payload=fernet(runtime.secret, "outbox").encrypt(payload).decode(),
    )
    session.add(row)
    session.flush()
    session.info.setdefault("bank_outbox_pending", []).append(row.id)
    return row


def enqueue_notice(
    session: Session, *, channel: str, destination: str, subject: str, body: str
) -> BankOutboxMessage:
    """Queue a holder notice on ``channel`` to go out after this unit of work commits."""
    return _enqueue(
        session,
        kind=OutboxKind.NOTICE,
        channel=channel,
        destination=destination,
        content={"subject": subject, "body": body},
    )


def enqueue_webhook(session: Session, *, url: str, token: str) -> BankOutboxMessage:
    """Queue a signed event (compact JWS) for POSTing to an operator's webhook URL."""
    return _enqueue(
        session,
        kind=OutboxKind.WEBHOOK,
        channel="webhook",
        destination=url,
        content={"token": token},
    )


def deliver_after_commit(committed: Session) -> None:
    """After-commit hook: deliver what this unit of work enqueued."""
    ids = committed.info.pop("bank_outbox_pending", [])
    if ids:
        deliver(bank_runtime_of(committed), ids=ids)


def deliver(runtime: BankRuntime, *, ids: list[int] | None = None) -> int:
    """Deliver pending messages (all, or those in ``ids``); returns how many went out."""
    with runtime.db.session() as session:
        query = (
            select(BankOutboxMessage)
            .where(BankOutboxMessage.delivered_at.is_(None))
            .with_for_update(skip_locked=True)
            .order_by(BankOutboxMessage.id)
        )
        if ids is not None:
            query = query.where(BankOutboxMessage.id.in_(ids))
        rows = session.scalars(query).all()
        client = runtime.http_client() if any(r.kind == OutboxKind.WEBHOOK for r in rows) else None
        try:
            delivered = sum(_deliver_one(row, runtime, client) for row in rows)
        finally:
            if client is not None:
                client.close()
        session.commit()
    return delivered


def _deliver_one(row: BankOutboxMessage, runtime: BankRuntime, client: httpx.Client | None) -> int:
    row.attempts += 1
    try:
        content = json.loads(fernet(runtime.secret, "outbox").decrypt((row.payload or "").encode()))
        if row.kind == OutboxKind.WEBHOOK:
            assert client is not None
            response = client.post(
                row.destination, content=content["token"], headers={"Content-Type": MEDIA_TYPE}
            )
            response.raise_for_status()
        else:
            runtime.sender(row.channel).send(
                Message(
                    channel=row.channel,
                    recipient=row.destination,
                    subject=content["subject"],
                    body=content["body"],
                    sent_at=runtime.now(),
                )
            )
    except Exception as exc:  # a failed delivery must not lose the message; it stays pending
        row.last_error = f"{type(exc).__name__}: {exc}"[:500]
        return 0
    row.delivered_at = runtime.now()
    row.payload = None
    return 1
