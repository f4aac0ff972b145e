"""Call-centre tools: take an enquiry, look up a bank account, trace a wallet's spending.

A caller names their account by bank code, branch and account number (the Zengin address).
The number is used only to compute the same keyed fingerprint the bank links carry
(:func:`kouza.risk.events.account_fingerprint`) and is then dropped: an :class:`Enquiry` keeps
the bank code and the fingerprint, never the number, and the audit trail neither. A lookup
answers whether and which wallet the account is (or was) linked to, each link's status and
dates, every top-up taken from the account, and what that wallet did — its spend trace
(merchant, category, time, amount), which is also what the police ask for (JSON or CSV).
Every lookup is audited (personal data is being read).
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.controls.cases import cases
from kouza.controls.models import Case
from kouza.controls.service import controls
from kouza.kit import zengin
from kouza.linking.models import BankLink, BankLockNotice, BankMovement, MovementDirection
from kouza.ops.errors import InvalidOpsInput
from kouza.ops.models import Enquiry
from kouza.risk.events import account_fingerprint
from kouza.runtime import runtime_of
from kouza.wallet.models import Merchant, Payment, Transfer, Wallet, WalletLock

_FORMATS = {
    "bank_code": re.compile(r"[0-9]{4}"),
    "branch": re.compile(r"[0-9]{3}"),
    "account_number": re.compile(r"[0-9]{7}"),
}


@dataclass(frozen=True)
class AccountRef:
    """A bank account as a caller names it (the number is never stored)."""

    bank_code: str
    branch: str
    account_number: str = field(repr=False)

    def fingerprint(self, secret: bytes) -> str:
        for name, pattern in _FORMATS.items():
            if not pattern.fullmatch(getattr(self, name)):
                raise InvalidOpsInput(f"{name} has the wrong format", field=name)
        zengin.branch(self.bank_code, self.branch)  # real codes only (422 otherwise)
        return account_fingerprint(
            secret, bank=self.bank_code, branch=self.branch, number=self.account_number
        )


@dataclass(frozen=True)
class SpendLine:
    """One payment of a wallet, as the police trace it."""

    at: datetime
    payment_id: str
    merchant_id: str
    merchant: str
    category: str
    amount: int
    refunded: int


@dataclass
class LinkView:
    """One link of the account and the wallet behind it."""

    link_id: str
    wallet_id: str
    wallet_status: str
    wallet_created_at: datetime
    bank_code: str
    account_last3: str
    status: str
    status_reason: str
    linked_at: datetime
    status_changed_at: datetime | None
    topups: list[dict[str, Any]] = field(default_factory=list)
    topped_up: int = 0
    spent: int = 0
    transferred_out: int = 0
    withdrawn: int = 0
    locks: list[dict[str, Any]] = field(default_factory=list)
    cases: list[dict[str, Any]] = field(default_factory=list)
    bank_notices: int = 0
    spend: list[SpendLine] = field(default_factory=list)


@dataclass
class AccountLookup:
    """What kouza knows about one bank account."""

    bank_code: str
    linked: bool
    links: list[LinkView] = field(default_factory=list)
    bank_name: str = ""
    """The bank's name in the Zengin list."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CallCentre:
    """Enquiries, lookups and spend traces."""

    def take_enquiry(
        self,
        session: Session,
        *,
        caller_name: str,
        caller_contact: str,
        account: AccountRef | None,
        notes: str,
        actor: str,
        open_case: bool = False,
    ) -> tuple[Enquiry, AccountLookup | None]:
        """Record an enquiry (and open a case on the linked wallet if asked); audited."""
        if not caller_name.strip() or not notes.strip():
            raise InvalidOpsInput("an enquiry needs the caller's name and what they said")
        fingerprint = account.fingerprint(runtime_of(session).secret) if account else None
        lookup = (
            self._lookup(session, account.bank_code, fingerprint)
            if account and fingerprint
            else None
        )
        wallet_id = uuid.UUID(lookup.links[0].wallet_id) if lookup and lookup.links else None
        enquiry = Enquiry(
            caller_name=caller_name.strip()[:200],
            caller_contact=caller_contact.strip()[:200],
            bank_code=account.bank_code if account else None,
            account_fingerprint=fingerprint,
            wallet_id=wallet_id,
            notes=notes.strip()[:2000],
            actor=actor[:120],
            created_at=runtime_of(session).now(),
        )
        session.add(enquiry)
        session.flush()
        if open_case and wallet_id is not None:
            case = cases.open(
                session,
                wallet_id=wallet_id,
                source=f"enquiry:{enquiry.id}",
                summary=f"call-centre enquiry: {notes.strip()}"[:500],
                actor=actor,
            )
            enquiry.case_id = case.id
            session.flush()
        controls.audit(
            session,
            actor=actor,
            action="enquiry.take",
            subject=str(enquiry.id),
            reason="call-centre enquiry",
            details={
                "bank": enquiry.bank_code,
                "wallet": str(wallet_id or ""),
                "case": str(enquiry.case_id or ""),
            },
        )
        return enquiry, lookup

    def lookup(self, session: Session, account: AccountRef, *, actor: str) -> AccountLookup:
        """Whether and which wallet the account is linked to, and what it did; audited."""
        fingerprint = account.fingerprint(runtime_of(session).secret)
        controls.audit(
            session,
            actor=actor,
            action="callcentre.lookup",
            subject=fingerprint[:16],
            reason="call-centre account lookup",
            details={"bank": account.bank_code},
        )
        return self._lookup(session, account.bank_code, fingerprint)

    def enquiries(self, session: Session, *, limit: int = 100) -> Sequence[Enquiry]:
        return session.scalars(
            select(Enquiry).order_by(Enquiry.created_at.desc()).limit(limit)
        ).all()

    def spend_trace(self, session: Session, wallet_id: uuid.UUID) -> list[SpendLine]:
        """Every payment of the wallet, oldest first: merchant, category, time, amount."""
        rows = session.execute(
            select(Payment, Merchant)
            .join(Merchant, Merchant.id == Payment.merchant_id)
            .where(Payment.wallet_id == wallet_id)
            .order_by(Payment.created_at, Payment.id)
        ).all()
        return [
            SpendLine(
                payment.created_at,
                str(payment.id),
                str(merchant.id),
                merchant.name,
                payment.category,
                payment.amount,
                payment.refunded_amount,
            )
            for payment, merchant in rows
        ]

    def _lookup(self, session: Session, bank_code: str, fingerprint: str) -> AccountLookup:
        links = session.scalars(
            select(BankLink)
            .where(BankLink.account_fingerprint == fingerprint)
            .order_by(BankLink.created_at.desc())
        ).all()
        return AccountLookup(
            bank_code,
            bool(links),
            [self._view(session, link) for link in links],
            bank_name=zengin.bank_name(bank_code),
        )

    def _view(self, session: Session, link: BankLink) -> LinkView:
        wallet = session.get_one(Wallet, link.wallet_id)
        view = LinkView(
            str(link.id),
            str(wallet.id),
            wallet.status,
            wallet.created_at,
            link.bank_code,
            link.account_last3,
            link.status,
            link.status_reason,
            link.created_at,
            link.status_changed_at,
        )
        for movement in session.scalars(
            select(BankMovement)
            .where(BankMovement.wallet_id == wallet.id)
            .order_by(BankMovement.created_at)
        ):
            if movement.status != "posted":
                continue
            if movement.direction == MovementDirection.CREDIT.value:
                view.withdrawn += movement.amount
            elif movement.link_id == link.id:
                view.topped_up += movement.amount
                view.topups.append(
                    {
                        "at": movement.created_at,
                        "amount": movement.amount,
                        "movement_id": str(movement.id),
                    }
                )
        view.spend = self.spend_trace(session, wallet.id)
        view.spent = sum(line.amount - line.refunded for line in view.spend)
        view.transferred_out = sum(
            session.scalars(select(Transfer.amount).where(Transfer.source_wallet_id == wallet.id))
        )
        view.locks = [
            {
                "locked_at": lock.locked_at,
                "by": lock.actor,
                "reason": lock.reason,
                "unlocked_at": lock.unlocked_at,
            }
            for lock in session.scalars(
                select(WalletLock)
                .where(WalletLock.wallet_id == wallet.id)
                .order_by(WalletLock.locked_at)
            )
        ]
        view.cases = [
            {"case_id": str(case.id), "status": case.status, "opened_at": case.created_at}
            for case in session.scalars(
                select(Case).where(Case.wallet_id == wallet.id).order_by(Case.created_at)
            )
        ]
        view.bank_notices = len(
            session.scalars(
                select(BankLockNotice.id).where(BankLockNotice.link_id == link.id)
            ).all()
        )
        return view


def spend_csv(lines: Sequence[SpendLine]) -> str:
    """The spend trace as CSV (UTC ISO times, integer yen)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "time_utc",
            "payment_id",
            "merchant_id",
            "merchant",
            "category",
            "amount_yen",
            "refunded_yen",
        ]
    )
    for line in lines:
        writer.writerow(
            [
                line.at.isoformat(),
                line.payment_id,
                line.merchant_id,
                line.merchant,
                line.category,
                line.amount,
                line.refunded,
            ]
        )
    return out.getvalue()


callcentre = CallCentre()
"""The call-centre service singleton."""
