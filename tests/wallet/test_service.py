"""The wallet service: opening wallets, QR payments, refunds, transfers, operator credits.

Every refusal also checks that nothing moved: balances, business rows and journal entries are
compared with a snapshot taken before the refused call, and the ledger still verifies.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from joserfc import jws
from sqlalchemy import func, select

from kouza.errors import IdempotencyConflict
from kouza.identity.devices import SensitiveAction
from kouza.identity.errors import LevelRequired
from kouza.identity.models import User
from kouza.identity.service import identity
from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox
from kouza.ledger import repository as ledger_repository
from kouza.ledger.errors import InsufficientFunds, InvalidAmount
from kouza.ledger.models import AccountKind, JournalEntry, LedgerAccount, Posting
from kouza.ledger.service import ledger
from kouza.runtime import Runtime
from kouza.wallet import qr as qr_codes
from kouza.wallet.errors import (
    AmountMismatch,
    InvalidQr,
    LimitExceeded,
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
from kouza.wallet.models import (
    Merchant,
    MerchantCategory,
    Payment,
    Refund,
    TopUp,
    Transfer,
    Wallet,
    WalletStatus,
)
from kouza.wallet.service import wallets
from tests.factories import (
    PASSWORD,
    Customer,
    balance_of,
    customer,
    merchant,
    signed,
    verified_user,
)

# --- helpers ------------------------------------------------------------------------------


def counts(rt: Runtime) -> dict[str, int]:
    """How many rows each money-related table holds."""
    models: tuple[Any, ...] = (
        Payment,
        Refund,
        Transfer,
        TopUp,
        JournalEntry,
        Posting,
        Wallet,
        LedgerAccount,
    )
    with rt.db.session() as session:
        return {
            model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in models
        }


def account_balance(rt: Runtime, account_id: int) -> int:
    with rt.db.session() as session:
        return ledger.balance(session, account_id).balance


def float_balance(rt: Runtime) -> int:
    with rt.db.session() as session:
        account = ledger_repository.account_by_code(session, AccountKind.OPERATOR_FLOAT.value)
        return account.balance if account is not None else 0


def ledger_ok(rt: Runtime) -> bool:
    with rt.db.session() as session:
        report = ledger.verify(session)
    assert report.problems == []
    return report.ok


class Snapshot:
    """Balances and row counts before a refused call, to prove that nothing moved."""

    def __init__(self, rt: Runtime, *account_ids: int) -> None:
        self.rt = rt
        self.account_ids = account_ids
        self.balances = [account_balance(rt, a) for a in account_ids]
        self.float = float_balance(rt)
        self.counts = counts(rt)

    def assert_unchanged(self) -> None:
        assert [account_balance(self.rt, a) for a in self.account_ids] == self.balances
        assert float_balance(self.rt) == self.float
        assert counts(self.rt) == self.counts
        assert ledger_ok(self.rt)


def make_qr(
    rt: Runtime, merchant_id: uuid.UUID, amount: int | None = None, order_ref: str | None = None
) -> str:
    with rt.db.unit_of_work() as session:
        return wallets.merchant_qr(
            session, merchant_id=merchant_id, amount=amount, order_ref=order_ref
        )


def pay(
    rt: Runtime,
    who: Customer,
    qr: str,
    amount: int | None = None,
    wallet_id: uuid.UUID | None = None,
) -> Payment:
    with rt.db.unit_of_work() as session:
        return wallets.pay(
            session,
            user=who.user,
            wallet_id=wallet_id or who.wallet.id,
            qr=qr,
            amount=amount,
            signed=signed(rt, who, SensitiveAction.PAY),
        )


def refund(rt: Runtime, payment_id: uuid.UUID, amount: int, reason: str = "returned") -> Refund:
    with rt.db.unit_of_work() as session:
        return wallets.refund(session, payment_id=payment_id, amount=amount, reason=reason)


def transfer(
    rt: Runtime,
    who: Customer,
    to: uuid.UUID,
    amount: int,
    source: uuid.UUID | None = None,
    message: str = "",
) -> Transfer:
    with rt.db.unit_of_work() as session:
        return wallets.transfer(
            session,
            user=who.user,
            source_wallet_id=source or who.wallet.id,
            destination_wallet_id=to,
            amount=amount,
            message=message,
            signed=signed(rt, who, SensitiveAction.TRANSFER),
        )


def set_status(rt: Runtime, wallet_id: uuid.UUID, status: WalletStatus) -> None:
    with rt.db.unit_of_work() as session:
        wallets.set_status(session, wallet_id=wallet_id, status=status)


def alter_claims(qr: str, **changes: Any) -> str:
    """The same signature over a payload whose claims were changed (a tampered QR)."""
    header, payload, signature = qr.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    raw = json.dumps(claims, separators=(",", ":")).encode()
    forged = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def flip_payload_char(qr: str) -> str:
    """Change one character in the middle of the payload part."""
    header, payload, signature = qr.split(".")
    middle = len(payload) // 2
    replacement = "B" if payload[middle] != "B" else "C"
    return f"{header}.{payload[:middle]}{replacement}{payload[middle + 1 :]}.{signature}"


# --- wallets ------------------------------------------------------------------------------


class TestOpenWallet:
    def test_opens_an_empty_active_wallet(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        user = verified_user(rt, mailbox)
        with rt.db.unit_of_work() as session:
            wallet = wallets.open_wallet(session, user=user)
        assert wallet.user_id == user.id
        assert wallet.status == WalletStatus.ACTIVE.value
        assert balance_of(rt, wallet) == 0
        with rt.db.session() as session:
            account = session.get(LedgerAccount, wallet.ledger_account_id)
            assert account is not None
            assert account.kind == AccountKind.CUSTOMER_WALLET.value
            assert account.code == f"wallet:{wallet.id}"

    def test_user_below_email_level_cannot_open_one(self, rt: Runtime) -> None:
        with rt.db.unit_of_work() as session:
            user = identity.signup(session, email="unverified@example.jp", password=PASSWORD)
        before = counts(rt)
        with pytest.raises(LevelRequired) as caught, rt.db.unit_of_work() as session:
            wallets.open_wallet(session, user=user)
        assert caught.value.code == "verification_level_required"
        assert caught.value.status_code == 403
        assert caught.value.details == {"required": "email", "current": "none"}
        assert counts(rt) == before

    def test_second_wallet_refused(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=1_000)
        before = Snapshot(rt, alice.wallet.ledger_account_id)
        with pytest.raises(WalletExists) as caught, rt.db.unit_of_work() as session:
            wallets.open_wallet(session, user=alice.user)
        assert caught.value.status_code == 409
        before.assert_unchanged()


class TestSetStatus:
    def test_lock_then_unlock(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=5_000)
        shop = merchant(rt)
        set_status(rt, alice.wallet.id, WalletStatus.LOCKED)
        with pytest.raises(WalletNotActive):
            pay(rt, alice, make_qr(rt, shop.id, 100))
        set_status(rt, alice.wallet.id, WalletStatus.ACTIVE)
        pay(rt, alice, make_qr(rt, shop.id, 100))
        assert balance_of(rt, alice.wallet) == 4_900

    def test_unknown_wallet(self, rt: Runtime) -> None:
        with pytest.raises(UnknownWallet):
            set_status(rt, uuid.uuid4(), WalletStatus.LOCKED)


class TestCreditFromFloat:
    def test_credits_the_wallet_and_the_float_goes_negative(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        alice = customer(rt, mailbox)
        with rt.db.unit_of_work() as session:
            topup = wallets.credit_from_float(
                session, wallet_id=alice.wallet.id, amount=10_000, reason="welcome"
            )
        assert topup.amount == 10_000
        assert topup.source == "operator_float"
        assert topup.reason == "welcome"
        assert balance_of(rt, alice.wallet) == 10_000
        assert float_balance(rt) == -10_000
        assert ledger_ok(rt)

    def test_same_key_credits_once(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox)
        first = second = None
        for _ in range(2):
            with rt.db.unit_of_work() as session:
                topup = wallets.credit_from_float(
                    session,
                    wallet_id=alice.wallet.id,
                    amount=3_000,
                    reason="promo",
                    idempotency_key="promo-1",
                )
            first, second = second, topup
        assert first is not None and second is not None
        assert (first.id, first.entry_id) == (second.id, second.entry_id)
        assert balance_of(rt, alice.wallet) == 3_000
        assert counts(rt)["topups"] == 1

    def test_same_key_other_amount_conflicts(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox)
        with rt.db.unit_of_work() as session:
            wallets.credit_from_float(
                session,
                wallet_id=alice.wallet.id,
                amount=3_000,
                reason="promo",
                idempotency_key="promo-1",
            )
        before = Snapshot(rt, alice.wallet.ledger_account_id)
        with pytest.raises(IdempotencyConflict), rt.db.unit_of_work() as session:
            wallets.credit_from_float(
                session,
                wallet_id=alice.wallet.id,
                amount=4_000,
                reason="promo",
                idempotency_key="promo-1",
            )
        before.assert_unchanged()

    def test_retry_with_same_key_replays_even_near_the_balance_cap(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        # top-ups and balance are capped at ¥1,000,000: 500,000 + 300,000 = 800,000 is fine;
        # the retry of the ¥300,000 credit must replay it, not be re-checked as new money.
        alice = customer(rt, mailbox, balance=500_000)
        for _ in range(2):
            with rt.db.unit_of_work() as session:
                wallets.credit_from_float(
                    session,
                    wallet_id=alice.wallet.id,
                    amount=300_000,
                    reason="promo",
                    idempotency_key="promo-2",
                )
        assert balance_of(rt, alice.wallet) == 800_000

    def test_locked_wallet_cannot_receive(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=1_000)
        set_status(rt, alice.wallet.id, WalletStatus.LOCKED)
        before = Snapshot(rt, alice.wallet.ledger_account_id)
        with pytest.raises(WalletNotActive), rt.db.unit_of_work() as session:
            wallets.credit_from_float(session, wallet_id=alice.wallet.id, amount=500, reason="x")
        before.assert_unchanged()

    def test_unknown_wallet(self, rt: Runtime) -> None:
        before = Snapshot(rt)
        with pytest.raises(UnknownWallet), rt.db.unit_of_work() as session:
            wallets.credit_from_float(session, wallet_id=uuid.uuid4(), amount=500, reason="x")
        before.assert_unchanged()

    def test_limit_applies(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox)
        before = Snapshot(rt, alice.wallet.ledger_account_id)
        with pytest.raises(LimitExceeded) as caught, rt.db.unit_of_work() as session:
            wallets.credit_from_float(
                session, wallet_id=alice.wallet.id, amount=500_001, reason="x"
            )
        assert caught.value.details["limit"] == "per-transaction limit"
        before.assert_unchanged()


# --- merchants and QR codes ---------------------------------------------------------------


class TestCreateMerchant:
    def test_creates_merchant_with_own_account(self, rt: Runtime) -> None:
        shop = merchant(rt, "Bic Camera Yurakucho", MerchantCategory.ELECTRONICS)
        assert shop.active is True
        assert shop.category == "electronics"
        with rt.db.session() as session:
            account = session.get(LedgerAccount, shop.ledger_account_id)
            assert account is not None
            assert (account.kind, account.code, account.balance) == (
                "merchant",
                f"merchant:{shop.id}",
                0,
            )
            assert [m.id for m in wallets.list_merchants(session)] == [shop.id]


class TestMerchantQr:
    def test_dynamic_qr_carries_amount_order_ref_and_expiry(
        self, rt: Runtime, clock: ManualClock
    ) -> None:
        shop = merchant(rt)
        value = make_qr(rt, shop.id, 3_200, order_ref="till-7")
        payload = qr_codes.verify(rt.secret, value, now=clock.now())
        assert payload.merchant_id == shop.id
        assert payload.amount == 3_200
        assert payload.order_ref == "till-7"
        assert payload.issued_at == clock.now()
        assert payload.expires_at == clock.now() + timedelta(seconds=15 * 60)

    def test_dynamic_qr_gets_a_fresh_order_ref(self, rt: Runtime, clock: ManualClock) -> None:
        shop = merchant(rt)
        refs = {
            qr_codes.verify(rt.secret, make_qr(rt, shop.id, 100), now=clock.now()).order_ref
            for _ in range(2)
        }
        assert len(refs) == 2 and None not in refs

    def test_static_qr_has_no_amount_and_no_expiry(self, rt: Runtime, clock: ManualClock) -> None:
        shop = merchant(rt)
        payload = qr_codes.verify(rt.secret, make_qr(rt, shop.id), now=clock.now())
        assert (payload.amount, payload.order_ref, payload.expires_at) == (None, None, None)

    def test_unknown_merchant(self, rt: Runtime) -> None:
        with pytest.raises(UnknownMerchant) as caught:
            make_qr(rt, uuid.uuid4(), 100)
        assert caught.value.status_code == 404


# --- payments -----------------------------------------------------------------------------


class TestPay:
    def test_dynamic_qr_pays_the_amount_in_the_qr(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        shop = merchant(rt)
        payment = pay(rt, alice, make_qr(rt, shop.id, 3_200, order_ref="order-1"))
        assert payment.amount == 3_200
        assert payment.refunded_amount == 0
        assert payment.merchant_id == shop.id
        assert payment.wallet_id == alice.wallet.id
        assert payment.category == "convenience_store"
        assert payment.order_ref == "order-1"
        assert payment.created_at == clock.now()
        assert balance_of(rt, alice.wallet) == 6_800
        assert account_balance(rt, shop.ledger_account_id) == 3_200
        assert float_balance(rt) == -10_000
        assert ledger_ok(rt)

    def test_dynamic_qr_with_the_same_explicit_amount(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        shop = merchant(rt)
        pay(rt, alice, make_qr(rt, shop.id, 3_200), amount=3_200)
        assert balance_of(rt, alice.wallet) == 6_800

    def test_dynamic_qr_with_another_amount_is_refused(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        shop = merchant(rt)
        before = Snapshot(rt, alice.wallet.ledger_account_id, shop.ledger_account_id)
        with pytest.raises(AmountMismatch) as caught:
            pay(rt, alice, make_qr(rt, shop.id, 3_200), amount=320)
        assert caught.value.code == "amount_mismatch"
        assert caught.value.status_code == 400
        assert caught.value.details == {"qr_amount": 3_200}
        before.assert_unchanged()

    def test_dynamic_qr_paid_twice_is_refused(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        shop = merchant(rt)
        value = make_qr(rt, shop.id, 3_200)
        pay(rt, alice, value)
        before = Snapshot(rt, alice.wallet.ledger_account_id, shop.ledger_account_id)
        with pytest.raises(QrAlreadyPaid) as caught:
            pay(rt, alice, value)
        assert caught.value.status_code == 409
        before.assert_unchanged()
        assert balance_of(rt, alice.wallet) == 6_800

    def test_dynamic_qr_paid_by_another_customer_is_refused(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        bob = customer(rt, mailbox, balance=10_000)
        shop = merchant(rt)
        value = make_qr(rt, shop.id, 3_200)
        pay(rt, alice, value)
        before = Snapshot(rt, bob.wallet.ledger_account_id, shop.ledger_account_id)
        with pytest.raises(QrAlreadyPaid):
            pay(rt, bob, value)
        before.assert_unchanged()

    def test_static_qr_takes_the_typed_amount(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        shop = merchant(rt)
        value = make_qr(rt, shop.id)
        first = pay(rt, alice, value, amount=480)
        second = pay(rt, alice, value, amount=1_020)  # a sticker is paid again and again
        assert (first.amount, first.order_ref) == (480, None)
        assert (second.amount, second.order_ref) == (1_020, None)
        assert balance_of(rt, alice.wallet) == 8_500
        assert account_balance(rt, shop.ledger_account_id) == 1_500

    def test_static_qr_without_amount_is_refused(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        shop = merchant(rt)
        before = Snapshot(rt, alice.wallet.ledger_account_id, shop.ledger_account_id)
        with pytest.raises(AmountMismatch) as caught:
            pay(rt, alice, make_qr(rt, shop.id))
        assert caught.value.message == "this QR code has no amount: send one"
        before.assert_unchanged()

    def test_static_qr_with_non_positive_amount_is_refused(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        shop = merchant(rt)
        static = make_qr(rt, shop.id)
        before = Snapshot(rt, alice.wallet.ledger_account_id, shop.ledger_account_id)
        for amount in (0, -100):
            with pytest.raises(InvalidAmount):
                pay(rt, alice, static, amount=amount)
            before.assert_unchanged()

    def test_qr_signed_with_another_secret_is_refused(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        shop = merchant(rt)
        forged = qr_codes.sign(
            b"another-operator-secret",
            merchant_id=shop.id,
            now=clock.now(),
            amount=100,
            order_ref="forged",
            ttl=timedelta(minutes=15),
        )
        before = Snapshot(rt, alice.wallet.ledger_account_id, shop.ledger_account_id)
        with pytest.raises(InvalidQr) as caught:
            pay(rt, alice, forged)
        assert caught.value.code == "invalid_qr"
        assert caught.value.status_code == 400
        before.assert_unchanged()

    def test_qr_with_a_changed_payload_character_is_refused(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        shop = merchant(rt)
        value = make_qr(rt, shop.id, 3_200)
        before = Snapshot(rt, alice.wallet.ledger_account_id, shop.ledger_account_id)
        with pytest.raises(InvalidQr):
            pay(rt, alice, flip_payload_char(value))
        before.assert_unchanged()

    def test_qr_with_a_lowered_amount_is_refused(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        shop = merchant(rt)
        value = make_qr(rt, shop.id, 3_200)
        before = Snapshot(rt, alice.wallet.ledger_account_id, shop.ledger_account_id)
        with pytest.raises(InvalidQr):
            pay(rt, alice, alter_claims(value, amt=1))
        before.assert_unchanged()
        pay(rt, alice, value)  # the genuine code still works
        assert balance_of(rt, alice.wallet) == 6_800

    def test_qr_pointed_at_another_merchant_is_refused(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        shop, mule_shop = merchant(rt), merchant(rt, "Mule Shop")
        value = make_qr(rt, shop.id, 3_200)
        before = Snapshot(rt, alice.wallet.ledger_account_id, mule_shop.ledger_account_id)
        with pytest.raises(InvalidQr):
            pay(rt, alice, alter_claims(value, mid=str(mule_shop.id)))
        before.assert_unchanged()

    def test_garbage_is_refused(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        long_signature = make_qr(rt, merchant(rt).id) + "x"
        before = Snapshot(rt, alice.wallet.ledger_account_id)
        for value in ["", "hello", "a.b.c", "x" * 2049, long_signature]:
            with pytest.raises(InvalidQr):
                pay(rt, alice, value, amount=100)
            before.assert_unchanged()

    def test_jws_of_another_type_is_refused(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        shop = merchant(rt)
        claims = {
            "v": 1,
            "mid": str(shop.id),
            "amt": 100,
            "ref": "r",
            "iat": int(clock.now().timestamp()),
            "exp": None,
        }
        token = jws.serialize_compact(
            {"alg": "Ed25519", "typ": "JWT"},
            json.dumps(claims).encode(),
            qr_codes.signing_key(rt.secret),
            algorithms=["Ed25519"],
        )
        with pytest.raises(InvalidQr, match="not a kouza payment QR code"):
            pay(rt, alice, token)
        assert balance_of(rt, alice.wallet) == 10_000

    def test_qr_with_a_non_positive_amount_is_refused(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        shop = merchant(rt)
        before = Snapshot(rt, alice.wallet.ledger_account_id, shop.ledger_account_id)
        for amount in (0, -5):
            value = qr_codes.sign(
                rt.secret,
                merchant_id=shop.id,
                now=clock.now(),
                amount=amount,
                order_ref="bad",
                ttl=timedelta(minutes=15),
            )
            with pytest.raises(InvalidQr, match="QR amount is invalid"):
                pay(rt, alice, value)
            before.assert_unchanged()

    def test_expired_qr_is_refused(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        shop = merchant(rt)
        value = make_qr(rt, shop.id, 3_200)
        clock.advance(seconds=rt.settings.qr_ttl_seconds + 1)
        before = Snapshot(rt, alice.wallet.ledger_account_id, shop.ledger_account_id)
        with pytest.raises(InvalidQr, match="expired"):
            pay(rt, alice, value)
        before.assert_unchanged()

    def test_qr_just_before_expiry_is_accepted(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        shop = merchant(rt)
        value = make_qr(rt, shop.id, 3_200)
        clock.advance(seconds=rt.settings.qr_ttl_seconds - 1)
        pay(rt, alice, value)
        assert balance_of(rt, alice.wallet) == 6_800

    def test_qr_of_an_unknown_merchant_is_refused(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        value = qr_codes.sign(rt.secret, merchant_id=uuid.uuid4(), now=clock.now())
        before = Snapshot(rt, alice.wallet.ledger_account_id)
        with pytest.raises(InvalidQr, match="unknown merchant"):
            pay(rt, alice, value, amount=100)
        before.assert_unchanged()

    def test_qr_of_an_inactive_merchant_is_refused(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        shop = merchant(rt)
        value = make_qr(rt, shop.id, 3_200)
        with rt.db.unit_of_work() as session:
            row = session.get(Merchant, shop.id)
            assert row is not None
            row.active = False
        before = Snapshot(rt, alice.wallet.ledger_account_id, shop.ledger_account_id)
        with pytest.raises(MerchantNotActive) as caught:
            pay(rt, alice, value)
        assert caught.value.status_code == 422
        before.assert_unchanged()

    def test_insufficient_funds(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=3_199)
        shop = merchant(rt)
        before = Snapshot(rt, alice.wallet.ledger_account_id, shop.ledger_account_id)
        with pytest.raises(InsufficientFunds) as caught:
            pay(rt, alice, make_qr(rt, shop.id, 3_200))
        assert caught.value.code == "insufficient_funds"
        assert caught.value.status_code == 422
        before.assert_unchanged()

    def test_exact_balance_can_be_spent(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=3_200)
        shop = merchant(rt)
        pay(rt, alice, make_qr(rt, shop.id, 3_200))
        assert balance_of(rt, alice.wallet) == 0
        assert ledger_ok(rt)

    def test_locked_wallet_cannot_pay(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        shop = merchant(rt)
        set_status(rt, alice.wallet.id, WalletStatus.LOCKED)
        before = Snapshot(rt, alice.wallet.ledger_account_id, shop.ledger_account_id)
        with pytest.raises(WalletNotActive) as caught:
            pay(rt, alice, make_qr(rt, shop.id, 3_200))
        assert caught.value.status_code == 403
        before.assert_unchanged()
        assert balance_of(rt, alice.wallet) == 10_000

    def test_closed_wallet_cannot_pay(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        shop = merchant(rt)
        set_status(rt, alice.wallet.id, WalletStatus.CLOSED)
        before = Snapshot(rt, alice.wallet.ledger_account_id, shop.ledger_account_id)
        with pytest.raises(WalletNotActive):
            pay(rt, alice, make_qr(rt, shop.id, 100))
        before.assert_unchanged()

    def test_from_another_users_wallet_is_refused(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        mallory = customer(rt, mailbox)
        shop = merchant(rt)
        before = Snapshot(rt, alice.wallet.ledger_account_id, shop.ledger_account_id)
        with pytest.raises(UnknownWallet) as caught:
            pay(rt, mallory, make_qr(rt, shop.id, 3_200), wallet_id=alice.wallet.id)
        assert caught.value.status_code == 404
        before.assert_unchanged()

    def test_user_below_email_level_cannot_pay(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        shop = merchant(rt)
        with rt.db.unit_of_work() as session:
            unverified = identity.signup(session, email="new@example.jp", password=PASSWORD)
        stranger = Customer(user=unverified, wallet=alice.wallet, email="new@example.jp")
        before = Snapshot(rt, alice.wallet.ledger_account_id, shop.ledger_account_id)
        with pytest.raises(LevelRequired):
            pay(rt, stranger, make_qr(rt, shop.id, 100))
        before.assert_unchanged()


# --- refunds ------------------------------------------------------------------------------


class TestRefund:
    def test_partial_refund(self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        shop = merchant(rt)
        payment = pay(rt, alice, make_qr(rt, shop.id, 3_200))
        done = refund(rt, payment.id, 1_200, reason="one item returned")
        assert (done.payment_id, done.amount, done.reason) == (
            payment.id,
            1_200,
            "one item returned",
        )
        assert done.created_at == clock.now()
        with rt.db.session() as session:
            row = session.get(Payment, payment.id)
            assert row is not None and row.refunded_amount == 1_200
        assert balance_of(rt, alice.wallet) == 8_000
        assert account_balance(rt, shop.ledger_account_id) == 2_000
        assert ledger_ok(rt)

    def test_refunds_up_to_the_payment_then_refuses(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        shop = merchant(rt)
        payment = pay(rt, alice, make_qr(rt, shop.id, 3_200))
        refund(rt, payment.id, 1_200)
        refund(rt, payment.id, 2_000)
        assert balance_of(rt, alice.wallet) == 10_000
        assert account_balance(rt, shop.ledger_account_id) == 0
        before = Snapshot(rt, alice.wallet.ledger_account_id, shop.ledger_account_id)
        with pytest.raises(RefundTooLarge) as caught:
            refund(rt, payment.id, 1)
        assert caught.value.details == {"refundable": 0}
        before.assert_unchanged()

    def test_larger_than_remaining_is_refused(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        shop = merchant(rt)
        payment = pay(rt, alice, make_qr(rt, shop.id, 3_200))
        refund(rt, payment.id, 1_200)
        before = Snapshot(rt, alice.wallet.ledger_account_id, shop.ledger_account_id)
        with pytest.raises(RefundTooLarge) as caught:
            refund(rt, payment.id, 2_001)
        assert caught.value.code == "refund_too_large"
        assert caught.value.status_code == 422
        assert caught.value.details == {"refundable": 2_000}
        before.assert_unchanged()
        with rt.db.session() as session:
            row = session.get(Payment, payment.id)
            assert row is not None and row.refunded_amount == 1_200

    def test_non_positive_amount_is_refused(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        shop = merchant(rt)
        payment = pay(rt, alice, make_qr(rt, shop.id, 3_200))
        before = Snapshot(rt, alice.wallet.ledger_account_id, shop.ledger_account_id)
        for amount in (0, -1_000):
            with pytest.raises(InvalidAmount):
                refund(rt, payment.id, amount)
            before.assert_unchanged()

    def test_unknown_payment(self, rt: Runtime) -> None:
        before = Snapshot(rt)
        with pytest.raises(UnknownPayment) as caught:
            refund(rt, uuid.uuid4(), 100)
        assert caught.value.status_code == 404
        before.assert_unchanged()


# --- transfers ----------------------------------------------------------------------------


class TestTransfer:
    def test_moves_money_between_wallets(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        bob = customer(rt, mailbox)
        done = transfer(rt, alice, bob.wallet.id, 2_500, message="lunch")
        assert (done.source_wallet_id, done.destination_wallet_id, done.amount, done.message) == (
            alice.wallet.id,
            bob.wallet.id,
            2_500,
            "lunch",
        )
        assert done.created_at == clock.now()
        assert balance_of(rt, alice.wallet) == 7_500
        assert balance_of(rt, bob.wallet) == 2_500
        assert ledger_ok(rt)

    def test_to_self_is_refused(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        before = Snapshot(rt, alice.wallet.ledger_account_id)
        with pytest.raises(SelfTransfer) as caught:
            transfer(rt, alice, alice.wallet.id, 100)
        assert caught.value.code == "self_transfer"
        assert caught.value.status_code == 400
        before.assert_unchanged()

    def test_from_a_wallet_the_user_does_not_own(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        mallory = customer(rt, mailbox)
        before = Snapshot(rt, alice.wallet.ledger_account_id, mallory.wallet.ledger_account_id)
        with pytest.raises(UnknownWallet) as caught:
            transfer(rt, mallory, mallory.wallet.id, 5_000, source=alice.wallet.id)
        assert caught.value.details == {"wallet_id": str(alice.wallet.id)}
        before.assert_unchanged()

    def test_to_an_unknown_wallet(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        before = Snapshot(rt, alice.wallet.ledger_account_id)
        nowhere = uuid.uuid4()
        with pytest.raises(UnknownWallet) as caught:
            transfer(rt, alice, nowhere, 100)
        assert caught.value.details == {"wallet_id": str(nowhere)}
        before.assert_unchanged()

    def test_locked_source_cannot_send(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        bob = customer(rt, mailbox)
        set_status(rt, alice.wallet.id, WalletStatus.LOCKED)
        before = Snapshot(rt, alice.wallet.ledger_account_id, bob.wallet.ledger_account_id)
        with pytest.raises(WalletNotActive, match="cannot move money"):
            transfer(rt, alice, bob.wallet.id, 100)
        before.assert_unchanged()
        assert balance_of(rt, alice.wallet) == 10_000

    def test_locked_destination_cannot_receive(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        bob = customer(rt, mailbox, balance=700)
        set_status(rt, bob.wallet.id, WalletStatus.LOCKED)
        before = Snapshot(rt, alice.wallet.ledger_account_id, bob.wallet.ledger_account_id)
        with pytest.raises(WalletNotActive, match="cannot receive money") as caught:
            transfer(rt, alice, bob.wallet.id, 100)
        assert caught.value.details == {"wallet_id": str(bob.wallet.id)}
        before.assert_unchanged()
        assert balance_of(rt, bob.wallet) == 700

    def test_insufficient_funds(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=1_000)
        bob = customer(rt, mailbox)
        before = Snapshot(rt, alice.wallet.ledger_account_id, bob.wallet.ledger_account_id)
        with pytest.raises(InsufficientFunds):
            transfer(rt, alice, bob.wallet.id, 1_001)
        before.assert_unchanged()

    def test_non_positive_amount(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=1_000)
        bob = customer(rt, mailbox)
        before = Snapshot(rt, alice.wallet.ledger_account_id, bob.wallet.ledger_account_id)
        for amount in (0, -500):
            with pytest.raises(InvalidAmount):
                transfer(rt, alice, bob.wallet.id, amount)
            before.assert_unchanged()

    def test_user_below_email_level_cannot_send(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=1_000)
        bob = customer(rt, mailbox)
        with rt.db.unit_of_work() as session:
            unverified: User = identity.signup(session, email="new@example.jp", password=PASSWORD)
        stranger = Customer(user=unverified, wallet=alice.wallet, email="new@example.jp")
        before = Snapshot(rt, alice.wallet.ledger_account_id, bob.wallet.ledger_account_id)
        with pytest.raises(LevelRequired):
            transfer(rt, stranger, bob.wallet.id, 100)
        before.assert_unchanged()


# --- reading ------------------------------------------------------------------------------


class TestStatement:
    def test_newest_first_with_running_balance(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        bob = customer(rt, mailbox)
        shop = merchant(rt)
        pay(rt, alice, make_qr(rt, shop.id, 3_200))
        transfer(rt, alice, bob.wallet.id, 800)
        with rt.db.session() as session:
            lines = wallets.statement(session, alice.wallet)
            paged = wallets.statement(session, alice.wallet, limit=2)
            rest = wallets.statement(session, alice.wallet, before_id=paged[-1].posting_id)
        assert [(x.kind, x.amount, x.balance_after) for x in lines] == [
            ("transfer", -800, 6_000),
            ("payment", -3_200, 6_800),
            ("topup", 10_000, 10_000),
        ]
        assert [x.posting_id for x in paged] == [x.posting_id for x in lines[:2]]
        assert [x.posting_id for x in rest] == [lines[2].posting_id]


class TestTransferPayeeSignals:
    """What the risk engine is told about a transfer's payee (ADR 0033)."""

    def _last_transfer_event(self, rt: Runtime) -> dict[str, Any]:
        from kouza.risk.models import RiskEventRecord

        with rt.db.session() as session:
            row = session.scalars(
                select(RiskEventRecord)
                .where(RiskEventRecord.type == "transfer")
                .order_by(RiskEventRecord.id.desc())
            ).first()
            assert row is not None and row.attributes is not None
            return dict(row.attributes)

    def test_age_first_payment_and_other_senders(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        payee = customer(rt, mailbox)
        clock.advance(hours=30)
        senders = [customer(rt, mailbox, balance=10_000) for _ in range(3)]
        transfer(rt, senders[0], payee.wallet.id, 1_000)
        first = self._last_transfer_event(rt)
        assert first == {
            "to": str(payee.wallet.id),
            "payee_age_hours": 30.0,
            "payee_known": False,
            "payee_senders_7d": 0,
        }
        transfer(rt, senders[1], payee.wallet.id, 1_000)
        transfer(rt, senders[0], payee.wallet.id, 1_000)
        again = self._last_transfer_event(rt)
        assert (again["payee_known"], again["payee_senders_7d"]) == (True, 1)
        clock.advance(days=8)
        transfer(rt, senders[2], payee.wallet.id, 1_000)
        later = self._last_transfer_event(rt)
        assert (later["payee_known"], later["payee_senders_7d"]) == (False, 0)
