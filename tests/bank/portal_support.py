"""Builders for the holder portal's tests: a holder with internet banking and a linked account,
and a browser (TestClient) that signs in as a person would."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date

import httpx
import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kouza.bank.core import CustomerData, core
from kouza.bank.legacy_form import legacy_linking
from kouza.bank.models import AccountType, Alert, BankOutboxMessage, Link, OutboxKind
from kouza.bank.runtime import BankRuntime
from kouza.bank.transfers import TransferKind, TransferRequest, transfers
from kouza.kit.clock import ManualClock
from tests.bank.helpers import Holder

BANK = "0125"
PORTAL = f"/banks/{BANK}/portal"
NOTICE = f"/banks/{BANK}/notice"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class IbCustomer:
    """A holder at the legacy bank who also has internet banking (password + TOTP)."""

    holder: Holder
    password: str
    totp: pyotp.TOTP


def ib_customer(
    rt: BankRuntime, *, number: str = "1234567", email: str = "taro@example.jp"
) -> IbCustomer:
    birth = date(1960, 4, 1)
    with rt.db.unit_of_work() as session:
        bank = core.bank(session, BANK)
        customer = core.add_customer(
            session,
            bank,
            CustomerData(
                name_kanji="山田 太郎",
                name_kana="ﾔﾏﾀﾞ ﾀﾛｳ",
                birth_date=birth,
                address="宮城県仙台市青葉区中央3-3-20",
                phone="+81227111111",
                email=email,
            ),
            internet_banking_password=PASSWORD,
        )
        _, seed = core.add_otp_device(session, customer, label="token")
        core.open_account(
            session,
            customer,
            branch=core.branch(session, bank, "100"),
            account_type=AccountType.ORDINARY,
            number=number,
            pin="4321",
            balance=500_000,
        )
    holder = Holder(BANK, "100", number, "ﾔﾏﾀﾞ ﾀﾛｳ", "4321", birth, email)
    return IbCustomer(holder, PASSWORD, pyotp.TOTP(seed))


def link(rt: BankRuntime, holder: Holder, client_id: str = "kouza-wallet") -> Link:
    """A legacy-form link of the holder's account (the holder is sent a notice)."""
    with rt.db.unit_of_work() as session:
        made = legacy_linking.link(
            session,
            client=core.client(session, client_id),
            bank_code=BANK,
            form=holder.form(wallet_reference=f"w-{uuid.uuid4().hex[:6]}"),
            source="ip:198.51.100.1",
        )
        session.expunge(made)
        return made


def debit(
    rt: BankRuntime, link_id: uuid.UUID, amount: int, client_id: str = "kouza-wallet"
) -> None:
    with rt.db.unit_of_work() as session:
        transfers.execute(
            session,
            client=core.client(session, client_id),
            request=TransferRequest(
                kind=TransferKind.DEBIT,
                link_id=link_id,
                amount=amount,
                idempotency_key=uuid.uuid4().hex,
                description="ﾄﾞｺﾓｺｳｻﾞ",
            ),
        )


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


def sign_in(
    browser: TestClient,
    clock: ManualClock,
    who: IbCustomer,
    *,
    password: str | None = None,
    otp: str | None = None,
) -> httpx.Response:
    """Open the portal, type branch, number and password, then the one-time password."""
    page = browser.get(PORTAL)
    assert page.status_code == 200, page.text
    otp_page = browser.post(
        f"{PORTAL}/login",
        data={
            "csrf_token": csrf_of(page),
            "branch_code": "100",
            "account_number": who.holder.number,
            "password": password or who.password,
        },
    )
    assert otp_page.status_code == 200 and "one-time password" in otp_page.text, otp_page.text
    return browser.post(
        f"{PORTAL}/otp",
        data={"csrf_token": csrf_of(otp_page), "otp": otp or who.totp.at(clock.now())},
        follow_redirects=False,
    )


def count(rt: BankRuntime, model: type, *conditions: object) -> int:
    with rt.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0)


def webhook_count(rt: BankRuntime) -> int:
    return count(rt, BankOutboxMessage, BankOutboxMessage.kind == OutboxKind.WEBHOOK.value)


def alerts(rt: BankRuntime) -> list[tuple[str, str]]:
    with rt.db.session() as session:
        return [(a.kind, a.subject) for a in session.scalars(select(Alert).order_by(Alert.id))]


def link_status(rt: BankRuntime, link_id: uuid.UUID) -> str:
    with rt.db.session() as session:
        return session.get_one(Link, link_id).status
