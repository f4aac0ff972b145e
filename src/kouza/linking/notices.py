"""Signed wallet → bank notices: "a wallet linked to your customer's account was locked".

When a wallet is locked for suspected fraud, the bank holding each linked account must be able
to warn its customer (INCIDENT.md: "lock wallets suspected of the same pattern, notify the bank,
and the bank contacts its customer"). For every link of the wallet, the lock writes one
:class:`~kouza.linking.models.BankLockNotice` — unique per (lock, link), so locking a locked wallet
or retrying never notifies twice — and an outbox row in the *same* unit of work
(:mod:`kouza.kit.outbox`), so a rolled-back lock tells nobody and a committed one cannot lose
its notice.

Delivery goes through the outbox's ``bank_notice`` channel: :class:`BankNoticeSender` signs the
event at send time (so a retry hours later is still fresh) as a compact JWS — ``alg`` ``ES256``,
``typ`` ``kouza-wallet-event+jws``, ``kid`` of the key — and POSTs it to the bank
(``/v1/operator-notices``, ``application/jose``) with the operator's client credentials. A
failure leaves the row pending with its error; :func:`deliver_pending` (``kouza ops notices
deliver``) retries, and the bank deduplicates on the event id (``jti``).

The notice is signed with the operator's OAuth client key (:func:`kouza.linking.keys.
client_key`, the ``private_key_jwt`` key), and the bank verifies it with the public keys the
operator registered for that client: one trust relation, one key set (ADR 0011).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from joserfc import jws
from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.kit import outbox
from kouza.kit.notify import Message
from kouza.kit.outbox import OutboxMessage
from kouza.linking.client import bank_client_of
from kouza.linking.keys import ALGORITHM, client_key
from kouza.linking.models import BankLink, BankLockNotice
from kouza.runtime import Runtime, runtime_of
from kouza.wallet.models import WalletLock

CHANNEL = "bank_notice"
"""The outbox channel of wallet → bank notices."""
TOKEN_TYPE = "kouza-wallet-event+jws"
MEDIA_TYPE = "application/jose"
WALLET_LOCKED = "wallet.locked"
SUSPECTED_FRAUD = "suspected_fraud"


def sign_notice(runtime: Runtime, claims: dict[str, Any]) -> str:
    """``claims`` as a compact JWS signed now with the operator's OAuth client key."""
    key = client_key(runtime)
    header = {"alg": ALGORITHM, "kid": key.kid or key.thumbprint(), "typ": TOKEN_TYPE}
    payload = claims | {"iat": int(runtime.now().timestamp())}
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return jws.serialize_compact(header, body, key, algorithms=[ALGORITHM])


class BankNoticeSender:
    """The outbox sender of the ``bank_notice`` channel: sign, then POST to the bank."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def send(self, message: Message) -> None:
        claims = json.loads(message.body)
        bank_client_of(self.runtime).send_notice(sign_notice(self.runtime, claims))


def ensure_sender(runtime: Runtime) -> None:
    """Register the ``bank_notice`` sender on ``runtime`` (idempotent)."""
    if CHANNEL not in runtime.senders:
        runtime.senders[CHANNEL] = BankNoticeSender(runtime)


def notify_lock(session: Session, lock: WalletLock) -> list[BankLockNotice]:
    """Queue one signed notice per link of the locked wallet (once per lock and link)."""
    runtime = runtime_of(session)
    ensure_sender(runtime)
    links = session.scalars(
        select(BankLink).where(BankLink.wallet_id == lock.wallet_id).order_by(BankLink.created_at)
    ).all()
    done = {
        notice.link_id: notice
        for notice in session.scalars(
            select(BankLockNotice).where(BankLockNotice.lock_id == lock.id)
        )
    }
    return [done.get(link.id) or _queue(session, runtime, lock, link) for link in links]


def _queue(session: Session, runtime: Runtime, lock: WalletLock, link: BankLink) -> BankLockNotice:
    notice_id = uuid.uuid4()
    settings = runtime.settings
    claims = {
        "jti": str(notice_id),
        "type": WALLET_LOCKED,
        "iss": settings.bank_client_id,
        "aud": settings.bank_issuer,
        "bank_code": link.bank_code,
        "link_id": str(link.bank_link_id),
        "operator_reference": str(link.wallet_id),
        "reason": SUSPECTED_FRAUD,
        "locked_at": lock.locked_at.isoformat(),
        "operator_contact": settings.operator_fraud_contact,
    }
    outbox.enqueue(
        session,
        channel=CHANNEL,
        recipient=f"bank:{link.bank_code}",
        subject=f"{WALLET_LOCKED} {notice_id}",
        body=json.dumps(claims, ensure_ascii=False),
    )
    message_id = session.info["outbox_pending"][-1]  # the row enqueue() just flushed
    notice = BankLockNotice(
        id=notice_id,
        lock_id=lock.id,
        link_id=link.id,
        wallet_id=link.wallet_id,
        bank_code=link.bank_code,
        outbox_message_id=message_id,
        created_at=runtime.now(),
    )
    session.add(notice)
    session.flush()
    return notice


def pending_ids(session: Session) -> list[int]:
    """Outbox ids of bank notices not yet accepted by their bank."""
    return list(
        session.scalars(
            select(OutboxMessage.id)
            .where(OutboxMessage.channel == CHANNEL, OutboxMessage.delivered_at.is_(None))
            .order_by(OutboxMessage.id)
        )
    )


def deliver_pending(runtime: Runtime) -> int:
    """Retry every bank notice still pending; returns how many the banks accepted now."""
    ensure_sender(runtime)
    with runtime.db.unit_of_work() as session:
        ids = pending_ids(session)
    if not ids:
        return 0
    session = runtime.db.session()
    try:
        return outbox.deliver(session, ids=ids)
    finally:
        session.close()


def notices_of(
    session: Session, wallet_id: uuid.UUID
) -> Sequence[tuple[BankLockNotice, OutboxMessage]]:
    """The wallet's bank notices with their delivery state, oldest first."""
    rows = session.execute(
        select(BankLockNotice, OutboxMessage)
        .join(OutboxMessage, OutboxMessage.id == BankLockNotice.outbox_message_id)
        .where(BankLockNotice.wallet_id == wallet_id)
        .order_by(BankLockNotice.created_at, OutboxMessage.id)
    ).all()
    return [(notice, message) for notice, message in rows]
