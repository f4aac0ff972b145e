"""Wallet operations: open, top up, pay by QR, refund, transfer, statement.

Every money-moving operation follows the same steps inside the caller's unit of work: lock the
wallet row(s) in id order (:mod:`kouza.kit.locking`), check status and limits under that lock,
move the money through :mod:`kouza.ledger.service`, then record the business fact pointing at
the journal entry. Ownership is the caller's job (the endpoints resolve wallets through
:meth:`WalletService.owned_wallet`, which answers "not found" for another user's wallet so ids
cannot be probed).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kouza.controls.models import SwitchScope
from kouza.controls.overrides import overrides
from kouza.controls.switches import switches
from kouza.identity.devices import SensitiveAction, SignedChallenge
from kouza.identity.models import User, VerificationLevel
from kouza.identity.proofs import ProofMethod, Proven, prove
from kouza.identity.service import identity
from kouza.kit.db import add_unique
from kouza.kit.locking import lock_row, lock_rows
from kouza.ledger.models import AccountKind, EntryKind
from kouza.ledger.repository import StatementRow
from kouza.ledger.service import Balance, ledger, transfer_spec
from kouza.risk.events import EventType, RiskEvent
from kouza.risk.rules import Outcome
from kouza.risk.service import risk
from kouza.runtime import runtime_of
from kouza.wallet import qr as qr_codes
from kouza.wallet.enforcement import enforce
from kouza.wallet.errors import (
    AmountMismatch,
    InvalidQr,
    MerchantNotActive,
    QrAlreadyPaid,
    RefundTooLarge,
    SelfTransfer,
    UnknownMerchant,
    UnknownPayment,
    UnknownWallet,
    WalletExists,
    WalletNotActive,
)
from kouza.wallet.limits import check_limits
from kouza.wallet.models import (
    Merchant,
    MerchantCategory,
    MovementKind,
    Payment,
    Refund,
    TopUp,
    Transfer,
    Wallet,
    WalletStatus,
)
from kouza.wallet.repository import lock_owned_wallet, lock_wallet


class WalletService:
    """Wallets, merchants and the movements between them."""

    # --- wallets -------------------------------------------------------------------------

    def open_wallet(self, session: Session, *, user: User, ip: str = "") -> Wallet:
        """Open the user's wallet (one per user; needs a verified e-mail)."""
        identity.require_level(user, VerificationLevel.EMAIL, action="opening a wallet")
        wallet_id = uuid.uuid4()
        account = ledger.open_account(
            session,
            kind=AccountKind.CUSTOMER_WALLET,
            code=f"wallet:{wallet_id}",
            name=f"wallet of {user.email}",
        )
        now = runtime_of(session).now()
        wallet = Wallet(
            id=wallet_id,
            user_id=user.id,
            ledger_account_id=account.id,
            status=WalletStatus.ACTIVE.value,
            created_at=now,
        )
        add_unique(session, wallet, WalletExists("this user already has a wallet"))
        domain = user.email.rpartition("@")[2]
        self._judge(
            session,
            user,
            wallet,
            "wallet.open",
            RiskEvent(
                type=EventType.SIGNUP,
                at=now,
                wallet=str(wallet.id),
                user=str(user.id),
                ip=ip,
                email_domain=domain,
            ),
        )
        return wallet

    def get_wallet(self, session: Session, wallet_id: uuid.UUID) -> Wallet:
        wallet = session.get(Wallet, wallet_id)
        if wallet is None:
            raise UnknownWallet("no such wallet", wallet_id=str(wallet_id))
        return wallet

    def owned_wallet(self, session: Session, *, user: User, wallet_id: uuid.UUID) -> Wallet:
        """The wallet if ``user`` owns it; otherwise the same "not found" as an unknown id."""
        wallet = session.get(Wallet, wallet_id)
        if wallet is None or wallet.user_id != user.id:
            raise UnknownWallet("no such wallet", wallet_id=str(wallet_id))
        return wallet

    def wallets_of(self, session: Session, *, user: User) -> Sequence[Wallet]:
        return session.scalars(select(Wallet).where(Wallet.user_id == user.id)).all()

    def balance(self, session: Session, wallet: Wallet) -> Balance:
        return ledger.balance(session, wallet.ledger_account_id)

    def statement(
        self, session: Session, wallet: Wallet, *, limit: int = 100, before_id: int | None = None
    ) -> list[StatementRow]:
        return ledger.statement(session, wallet.ledger_account_id, limit=limit, before_id=before_id)

    def set_status(self, session: Session, *, wallet_id: uuid.UUID, status: WalletStatus) -> Wallet:
        wallet = self._lock_wallet(session, wallet_id)
        wallet.status = status.value
        session.flush()
        return wallet

    # --- merchants -----------------------------------------------------------------------

    def create_merchant(
        self, session: Session, *, name: str, category: MerchantCategory
    ) -> Merchant:
        merchant_id = uuid.uuid4()
        account = ledger.open_account(
            session, kind=AccountKind.MERCHANT, code=f"merchant:{merchant_id}", name=name
        )
        merchant = Merchant(
            id=merchant_id,
            name=name,
            category=category.value,
            ledger_account_id=account.id,
            active=True,
            created_at=runtime_of(session).now(),
        )
        session.add(merchant)
        session.flush()
        return merchant

    def get_merchant(self, session: Session, merchant_id: uuid.UUID) -> Merchant:
        merchant = session.get(Merchant, merchant_id)
        if merchant is None:
            raise UnknownMerchant("no such merchant", merchant_id=str(merchant_id))
        return merchant

    def list_merchants(self, session: Session) -> Sequence[Merchant]:
        return session.scalars(select(Merchant).order_by(Merchant.created_at)).all()

    def merchant_qr(
        self,
        session: Session,
        *,
        merchant_id: uuid.UUID,
        amount: int | None = None,
        order_ref: str | None = None,
    ) -> str:
        """A signed QR payload: dynamic (amount + one-time order ref) or static."""
        merchant = self.get_merchant(session, merchant_id)
        runtime = runtime_of(session)
        ttl = None
        if amount is not None:
            order_ref = order_ref or uuid.uuid4().hex
            ttl = timedelta(seconds=runtime.settings.qr_ttl_seconds)
        return qr_codes.sign(
            runtime.secret,
            merchant_id=merchant.id,
            now=runtime.now(),
            amount=amount,
            order_ref=order_ref,
            ttl=ttl,
        )

    # --- movements -----------------------------------------------------------------------

    def credit_from_float(
        self,
        session: Session,
        *,
        wallet_id: uuid.UUID,
        amount: int,
        reason: str,
        idempotency_key: str | None = None,
    ) -> TopUp:
        """Operator credit from the operator float (testing, goodwill); limits apply.

        A retry with the same ``idempotency_key`` returns the first top-up before any check, so
        limits the first attempt used up cannot refuse its own retry.
        """
        wallet = self._lock_wallet(session, wallet_id)
        float_account = ledger.system_account(session, AccountKind.OPERATOR_FLOAT)
        spec = transfer_spec(
            kind=EntryKind.TOPUP,
            source=float_account,
            destination=wallet.ledger_account_id,
            amount=amount,
            description=f"credit from operator float: {reason}"[:500],
            idempotency_key=f"float:{idempotency_key}" if idempotency_key else None,
            reference={"wallet": str(wallet.id), "source": "operator_float"},
        )
        replayed = ledger.replay(session, spec)
        if replayed is not None:
            return self._record_topup(session, wallet, amount, replayed.id, reason, True)
        self._require_active(wallet, incoming=True)
        self._check_limits(session, wallet, MovementKind.TOPUP, amount)
        posted = ledger.post_entry(session, spec)
        return self._record_topup(session, wallet, amount, posted.id, reason, posted.replayed)

    def _record_topup(
        self,
        session: Session,
        wallet: Wallet,
        amount: int,
        entry_id: int,
        reason: str,
        replayed: bool,
    ) -> TopUp:
        if replayed:
            existing = session.scalars(select(TopUp).where(TopUp.entry_id == entry_id)).first()
            if existing is not None:
                return existing
        topup = TopUp(
            wallet_id=wallet.id,
            source=AccountKind.OPERATOR_FLOAT.value,
            amount=amount,
            entry_id=entry_id,
            reason=reason,
            created_at=runtime_of(session).now(),
        )
        session.add(topup)
        session.flush()
        return topup

    def pay(
        self,
        session: Session,
        *,
        user: User,
        wallet_id: uuid.UUID,
        qr: str,
        amount: int | None = None,
        signed: SignedChallenge | None = None,
        ip: str = "",
    ) -> Payment:
        """Pay the merchant named by a kouza-signed QR code (above the free amount, or during
        a cool-off after a credential change, with a device signature or SMS step-up)."""
        identity.require_level(user, VerificationLevel.EMAIL, action="paying")
        runtime = runtime_of(session)
        payload = qr_codes.verify(runtime.secret, qr, now=runtime.now())
        amount = self._payment_amount(payload, amount)
        merchant = session.get(Merchant, payload.merchant_id)
        if merchant is None:
            raise InvalidQr("the QR code names an unknown merchant")
        if not merchant.active:
            raise MerchantNotActive("this merchant does not accept payments now")
        switches.require_open(session, SwitchScope.MERCHANT_PAYMENTS, str(merchant.id))
        wallet = self._lock_owned(session, user=user, wallet_id=wallet_id)
        self._require_active(wallet)
        proven = prove(
            session,
            user,
            action=SensitiveAction.PAY,
            signed=signed,
            required=amount > overrides.settings(session).money_out_free_payment_yen,
        )
        self._check_limits(session, wallet, MovementKind.PAYMENT, amount, merchant.category)
        self._judge(
            session,
            user,
            wallet,
            "payment",
            RiskEvent(
                type=EventType.PAYMENT,
                at=runtime.now(),
                wallet=str(wallet.id),
                user=str(user.id),
                device=proven.device,
                ip=ip,
                merchant=str(merchant.id),
                category=merchant.category,
                amount=amount,
            ),
            proven,
        )
        return self._record_payment(session, wallet, merchant, amount, payload.order_ref)

    def _payment_amount(self, payload: qr_codes.QrPayload, amount: int | None) -> int:
        if payload.amount is None:
            if amount is None:
                raise AmountMismatch("this QR code has no amount: send one")
            return amount
        if amount is not None and amount != payload.amount:
            raise AmountMismatch(
                "the amount differs from the one in the QR code", qr_amount=payload.amount
            )
        return payload.amount

    def _record_payment(
        self,
        session: Session,
        wallet: Wallet,
        merchant: Merchant,
        amount: int,
        order_ref: str | None,
    ) -> Payment:
        payment_id = uuid.uuid4()
        posted = ledger.transfer(
            session,
            kind=EntryKind.PAYMENT,
            source=wallet.ledger_account_id,
            destination=merchant.ledger_account_id,
            amount=amount,
            description=f"payment to {merchant.name}"[:500],
            reference={
                "payment": str(payment_id),
                "merchant": str(merchant.id),
                "merchant_name": merchant.name,
                "category": merchant.category,
            },
        )
        payment = Payment(
            id=payment_id,
            wallet_id=wallet.id,
            merchant_id=merchant.id,
            category=merchant.category,
            amount=amount,
            refunded_amount=0,
            order_ref=order_ref,
            entry_id=posted.id,
            created_at=runtime_of(session).now(),
        )
        if order_ref is None:
            # a static QR: no order to pay twice (NULLs never collide in the unique key), so no
            # savepoint around the insert
            session.add(payment)
            session.flush()
        else:
            add_unique(session, payment, QrAlreadyPaid("this QR code has already been paid"))
        return payment

    def refund(
        self, session: Session, *, payment_id: uuid.UUID, amount: int, reason: str
    ) -> Refund:
        """Return (part of) a payment from the merchant to the wallet."""
        payment = lock_row(session, Payment, payment_id)
        if payment is None:
            raise UnknownPayment("no such payment", payment_id=str(payment_id))
        if amount > payment.amount - payment.refunded_amount:
            raise RefundTooLarge(
                "refund exceeds what is left of the payment",
                refundable=payment.amount - payment.refunded_amount,
            )
        merchant = self.get_merchant(session, payment.merchant_id)
        wallet = self._lock_wallet(session, payment.wallet_id)
        posted = ledger.transfer(
            session,
            kind=EntryKind.REFUND,
            source=merchant.ledger_account_id,
            destination=wallet.ledger_account_id,
            amount=amount,
            description=f"refund from {merchant.name}: {reason}"[:500],
            reference={
                "payment": str(payment.id),
                "merchant": str(merchant.id),
                "merchant_name": merchant.name,
            },
        )
        payment.refunded_amount += amount
        refund = Refund(
            payment_id=payment.id,
            amount=amount,
            reason=reason,
            entry_id=posted.id,
            created_at=runtime_of(session).now(),
        )
        session.add(refund)
        session.flush()
        return refund

    def transfer(
        self,
        session: Session,
        *,
        user: User,
        source_wallet_id: uuid.UUID,
        destination_wallet_id: uuid.UUID,
        amount: int,
        message: str = "",
        signed: SignedChallenge | None = None,
        ip: str = "",
    ) -> Transfer:
        """Send money from the user's wallet to another wallet (device-signed or SMS
        stepped-up: every transfer, ADR 0021)."""
        identity.require_level(user, VerificationLevel.EMAIL, action="sending money")
        if source_wallet_id == destination_wallet_id:
            raise SelfTransfer("cannot send money to the same wallet")
        wallets = {
            w.id: w for w in lock_rows(session, Wallet, [source_wallet_id, destination_wallet_id])
        }
        source, destination = wallets.get(source_wallet_id), wallets.get(destination_wallet_id)
        if source is None or source.user_id != user.id:
            raise UnknownWallet("no such wallet", wallet_id=str(source_wallet_id))
        if destination is None:
            raise UnknownWallet("no such recipient wallet", wallet_id=str(destination_wallet_id))
        self._require_active(source)
        self._require_active(destination, incoming=True)
        proven = prove(session, user, action=SensitiveAction.TRANSFER, signed=signed, required=True)
        self._check_limits(session, source, MovementKind.TRANSFER, amount)
        self._check_limits(session, destination, MovementKind.INCOMING_TRANSFER, amount)
        self._judge(
            session,
            user,
            source,
            "transfer",
            RiskEvent(
                type=EventType.TRANSFER,
                at=runtime_of(session).now(),
                wallet=str(source.id),
                user=str(user.id),
                device=proven.device,
                ip=ip,
                amount=amount,
                attributes=self._payee_attributes(session, source, destination),
            ),
            proven,
        )
        transfer_id = uuid.uuid4()
        posted = ledger.transfer(
            session,
            kind=EntryKind.TRANSFER,
            source=source.ledger_account_id,
            destination=destination.ledger_account_id,
            amount=amount,
            description=f"transfer: {message}"[:500] if message else "transfer",
            reference={
                "transfer": str(transfer_id),
                "from": str(source.id),
                "to": str(destination.id),
            },
        )
        transfer = Transfer(
            id=transfer_id,
            source_wallet_id=source.id,
            destination_wallet_id=destination.id,
            amount=amount,
            message=message,
            entry_id=posted.id,
            created_at=runtime_of(session).now(),
        )
        session.add(transfer)
        session.flush()
        return transfer

    # --- helpers -------------------------------------------------------------------------

    def _payee_attributes(
        self, session: Session, source: Wallet, destination: Wallet
    ) -> dict[str, Any]:
        """What the risk engine is told about a transfer's payee: its wallet, how long that
        wallet has existed, whether this wallet has sent it money before, and how many other
        wallets sent it money in the last seven days (a first transfer to a days-old wallet,
        or to one collecting from many people, is how mules are paid, ADR 0033)."""
        now = runtime_of(session).now()
        paid_before = session.scalar(
            select(Transfer.id)
            .where(
                Transfer.source_wallet_id == source.id,
                Transfer.destination_wallet_id == destination.id,
            )
            .limit(1)
        )
        senders = session.scalar(
            select(func.count(func.distinct(Transfer.source_wallet_id))).where(
                Transfer.destination_wallet_id == destination.id,
                Transfer.source_wallet_id != source.id,
                Transfer.created_at >= now - timedelta(days=7),
            )
        )
        return {
            "to": str(destination.id),
            "payee_age_hours": round((now - destination.created_at).total_seconds() / 3600, 1),
            "payee_known": paid_before is not None,
            "payee_senders_7d": int(senders or 0),
        }

    def _judge(
        self,
        session: Session,
        user: User,
        wallet: Wallet,
        purpose: str,
        event: RiskEvent,
        proven: Proven | None = None,
    ) -> None:
        """Ask the risk engine and act on its decision (kouza.wallet.enforcement).

        A ``step_up`` decision is already met when this very action was proven with an SMS
        step-up (the same code would be asked for twice otherwise), or signed by an
        established device (:func:`kouza.wallet.enforcement.enforce`).
        """
        decision = risk.assess(session, event)
        if (
            decision.outcome is Outcome.STEP_UP
            and proven is not None
            and proven.method is ProofMethod.SMS_OTP
        ):
            return
        enforce(
            session,
            decision,
            user=user,
            wallet_id=wallet.id,
            purpose=purpose,
            signed_by=proven.device_id if proven is not None else None,
        )

    def _lock_wallet(self, session: Session, wallet_id: uuid.UUID) -> Wallet:
        return lock_wallet(session, wallet_id)

    def _lock_owned(self, session: Session, *, user: User, wallet_id: uuid.UUID) -> Wallet:
        return lock_owned_wallet(session, user_id=user.id, wallet_id=wallet_id)

    def _require_active(self, wallet: Wallet, *, incoming: bool = False) -> None:
        if wallet.status == WalletStatus.ACTIVE.value:
            return
        direction = "receive money" if incoming else "move money"
        raise WalletNotActive(
            f"this wallet is {wallet.status} and cannot {direction}", wallet_id=str(wallet.id)
        )

    def _check_limits(
        self,
        session: Session,
        wallet: Wallet,
        kind: MovementKind,
        amount: int,
        category: str | None = None,
    ) -> None:
        check_limits(session, wallet, kind, amount, category=category)


wallets = WalletService()
"""The wallet service singleton."""
