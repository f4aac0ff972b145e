"""Operator → bank: signed notices of frozen wallets, and compensation credits.

**Notices.** When an operator locks a wallet for suspected fraud, it POSTs a compact JWS
(``typ`` ``kouza-wallet-event+jws``, ``alg`` ``ES256`` or ``Ed25519``) for every link of that
wallet. The bank verifies it against the public keys the operator registered for its OAuth
client (``private_key_jwt``, :mod:`kouza.bank.oauth.clients`): the same trust the bank
already has in that client, no second key set to manage (ADR 0011). It checks ``iss`` (the
calling client), ``aud`` (this deployment's issuer), ``iat`` (no older than five minutes, not in
the future) and that the link is the client's. It then records an :class:`Alert` on the account
— UNIQUE (client, event id), so a redelivered notice returns the first alert and warns nobody
twice — and tells the holder, through the bank's own outbox and at the contact the bank holds,
how to stop the link (the "not me" reference). The operator's own text never reaches the holder.

**Compensation credits** (``/v1/links/{id}/refunds``): an operator refunding a victim credits the
account the fraudulent debits came from. Unlike a withdrawal credit, it is accepted on a revoked
or expired link — a victim's link is usually revoked by then — and it is idempotent per key like
every transfer; the holder is told.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.bank.errors import InvalidAmount, UnknownLink
from kouza.bank.models import (
    Account,
    Alert,
    Bank,
    Branch,
    Link,
    OperatorClient,
    Transfer,
    TransferKind,
)
from kouza.bank.notices import notify_holder, open_notice_line
from kouza.bank.oauth.clients import oauth_clients
from kouza.bank.oauth.errors import OAuthError
from kouza.bank.runtime import bank_runtime_of
from kouza.bank.transfers import MAX_AMOUNT, TransferRequest, TransferResult, transfers
from kouza.errors import IdempotencyConflict, Unauthorized
from kouza.kit.db import add_unique
from kouza.kit.idempotency import validate_key
from kouza.kit.locking import lock_row

TOKEN_TYPE = "kouza-wallet-event+jws"
ALGORITHMS = ["ES256", "Ed25519"]
WALLET_LOCKED = "wallet.locked"
ALERT_KIND = "wallet_locked"
MAX_AGE = timedelta(minutes=5)
LEEWAY = timedelta(seconds=30)


class NoticeRejected(Unauthorized):
    """An operator notice that failed verification (signature, keys, audience, age)."""

    code = "notice_rejected"


@dataclass(frozen=True)
class OperatorNotice:
    """A verified ``wallet.locked`` notice."""

    jti: str
    iss: str
    aud: str
    iat: int
    bank_code: str
    link_id: uuid.UUID
    operator_reference: str
    reason: str
    locked_at: str
    operator_contact: str

    @property
    def issued_at(self) -> datetime:
        return datetime.fromtimestamp(self.iat, UTC)


@dataclass(frozen=True)
class AlertResult:
    """The alert a notice raised, and whether this delivery replayed an earlier one."""

    alert: Alert
    replayed: bool


class OperatorAlerts:
    """Receive operator notices; credit compensation."""

    # --- notices ---------------------------------------------------------------------------

    def receive(self, session: Session, *, client: OperatorClient, token: str) -> AlertResult:
        """Verify a notice from ``client``, record its alert once, and warn the holder once."""
        notice = self.verify(session, client=client, token=token)
        link = session.get(Link, notice.link_id)
        if link is None or link.client_pk != client.id:
            raise UnknownLink("no such link for this client", link_id=str(notice.link_id))
        earlier = self._alert(session, client, notice.jti)
        if earlier is not None:
            return AlertResult(earlier, replayed=True)
        alert = Alert(
            bank_id=link.bank_id,
            kind=ALERT_KIND,
            subject=str(link.id),
            account_id=link.account_id,
            client_pk=client.id,
            event_id=notice.jti,
            created_at=bank_runtime_of(session).now(),
            details={
                "reason": notice.reason,
                "locked_at": notice.locked_at,
                "operator_reference": notice.operator_reference,
                "operator_contact": notice.operator_contact,
            },
        )
        try:
            add_unique(session, alert, NoticeRejected("notice delivered concurrently"))
        except NoticeRejected:
            concurrent = self._alert(session, client, notice.jti)
            assert concurrent is not None
            return AlertResult(concurrent, replayed=True)
        self._warn_holder(session, client, link)
        return AlertResult(alert, replayed=False)

    def verify(self, session: Session, *, client: OperatorClient, token: str) -> OperatorNotice:
        """The notice in ``token`` if ``client`` signed it for this bank just now."""
        claims = self._verified_claims(session, client, token)
        now = bank_runtime_of(session).now()
        try:
            notice = OperatorNotice(
                jti=str(claims["jti"])[:64],
                iss=str(claims["iss"]),
                aud=str(claims["aud"]),
                iat=int(claims["iat"]),
                bank_code=str(claims["bank_code"]),
                link_id=uuid.UUID(str(claims["link_id"])),
                operator_reference=str(claims.get("operator_reference", ""))[:200],
                reason=str(claims.get("reason", ""))[:200],
                locked_at=str(claims.get("locked_at", ""))[:40],
                operator_contact=str(claims.get("operator_contact", ""))[:200],
            )
        except (KeyError, TypeError, ValueError):
            raise NoticeRejected("notice claims missing or malformed") from None
        if claims.get("type") != WALLET_LOCKED:
            raise NoticeRejected("unknown notice type", type=str(claims.get("type"))[:40])
        if notice.iss != client.client_id:
            raise NoticeRejected("the notice was issued by another client")
        if notice.aud != bank_runtime_of(session).settings.issuer:
            raise NoticeRejected("the notice is for another bank deployment")
        if not now - MAX_AGE <= notice.issued_at <= now + LEEWAY:
            raise NoticeRejected("notice timestamp outside the accepted window")
        return notice

    def _verified_claims(
        self, session: Session, client: OperatorClient, token: str
    ) -> dict[str, Any]:
        try:
            keys = oauth_clients._keys(session, oauth_clients.registration(session, client))
        except OAuthError:
            raise NoticeRejected(
                "this client has no registered keys (register its JWKS for "
                "OAuth) or they cannot be read"
            ) from None
        try:
            compact = jws.deserialize_compact(token, keys, algorithms=ALGORITHMS)
            if compact.headers().get("typ") != TOKEN_TYPE:
                raise NoticeRejected("not an operator notice (typ)")
            claims = json.loads(compact.payload)
        except NoticeRejected:
            raise
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise NoticeRejected(
                f"notice signature or payload invalid ({type(exc).__name__})"
            ) from None
        if not isinstance(claims, dict):
            raise NoticeRejected("notice payload is not a JSON object")
        return claims

    def _alert(self, session: Session, client: OperatorClient, event_id: str) -> Alert | None:
        return session.scalars(
            select(Alert).where(Alert.client_pk == client.id, Alert.event_id == event_id)
        ).one_or_none()

    def _warn_holder(self, session: Session, client: OperatorClient, link: Link) -> None:
        account = session.get_one(Account, link.account_id)
        bank = session.get_one(Bank, link.bank_id)
        branch = session.get_one(Branch, account.branch_id)
        notify_holder(
            session,
            bank,
            account,
            subject="ウォレット凍結のお知らせ (wallet frozen)",
            body=(
                f"お客さまの口座 ({branch.name} ***{account.number[-3:]}) に連携されている "
                f"{client.name} のウォレットが、不正利用の疑いにより凍結されました。"
                f"お心当たりのない場合は、参照番号 {link.notice_reference} をお伝えのうえ"
                f"{bank.name}までご連絡ください。\n"
                f"A {client.name} wallet linked to your account ***{account.number[-3:]} was "
                "frozen for suspected fraud. If you did not link it, contact "
                f"{bank.name} quoting reference {link.notice_reference} (not me): debits stop "
                "at once, and money taken without your consent is refunded in full."
            )
            + open_notice_line(session, bank.code, link.notice_reference),
        )

    # --- compensation credits --------------------------------------------------------------

    def refund(
        self, session: Session, *, client: OperatorClient, request: TransferRequest
    ) -> TransferResult:
        """Credit a victim's account under ``request.link_id``, whatever the link's status."""
        request = replace(request, kind=TransferKind.CREDIT)
        validate_key(request.idempotency_key)
        if isinstance(request.amount, bool) or not 0 < request.amount <= MAX_AMOUNT:
            raise InvalidAmount(
                f"amount must be whole yen between 1 and {MAX_AMOUNT}", amount=request.amount
            )
        earlier = self._transfer(session, client, request.idempotency_key)
        if earlier is not None:
            return self._replay(earlier, request)
        link = lock_row(session, Link, request.link_id)
        if link is None or link.client_pk != client.id:
            raise UnknownLink("no such link for this client", link_id=str(request.link_id))
        earlier = self._transfer(session, client, request.idempotency_key)
        if earlier is not None:  # a concurrent duplicate committed while we waited for the lock
            return self._replay(earlier, request)
        account = lock_row(session, Account, link.account_id)
        assert account is not None
        account.balance += request.amount
        result = transfers._record(session, client, link, account, request)  # one journal
        notify_holder(
            session,
            session.get_one(Bank, link.bank_id),
            account,
            subject="補償のお知らせ (compensation)",
            body=(
                f"{client.name} から補償として ¥{request.amount:,} が入金されました"
                f"(残高 ¥{account.balance:,})。\n"
                f"{client.name} credited ¥{request.amount:,} to your account as compensation; "
                f"balance ¥{account.balance:,}."
            ),
        )
        return result

    def _replay(self, earlier: Transfer, request: TransferRequest) -> TransferResult:
        if earlier.request_hash != request.fingerprint():
            raise IdempotencyConflict(
                "this Idempotency-Key was already used with a different request",
                key=request.idempotency_key,
            )
        return TransferResult(earlier, replayed=True)

    def _transfer(self, session: Session, client: OperatorClient, key: str) -> Transfer | None:
        return session.scalars(
            select(Transfer).where(Transfer.client_pk == client.id, Transfer.idempotency_key == key)
        ).one_or_none()


operator_alerts = OperatorAlerts()
"""The operator-notice and compensation-credit service singleton."""
