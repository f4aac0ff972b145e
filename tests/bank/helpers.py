"""Builders for bank tests: banks, holders with accounts, operator clients, legacy forms."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from kouza.bank.core import BankConfig, CustomerData, core
from kouza.bank.legacy_form import LegacyLinkForm
from kouza.bank.models import AccountType, AuthProfile
from kouza.bank.runtime import BankRuntime
from kouza.kit import zengin

WEBHOOK_URL = "https://wallet.kouza.test/bank-webhooks"


@dataclass(frozen=True)
class Holder:
    """A seeded holder and the details an attacker would need."""

    bank_code: str
    branch_code: str
    number: str
    name_kana: str
    pin: str
    birth_date: date
    email: str

    def form(self, **changes: object) -> LegacyLinkForm:
        form = LegacyLinkForm(
            branch_code=self.branch_code,
            account_type=AccountType.ORDINARY,
            account_number=self.number,
            holder_kana=self.name_kana,
            pin=self.pin,
            wallet_reference="wallet-1",
            birth_date=self.birth_date,
        )
        return replace(form, **changes)  # type: ignore[arg-type]


def make_bank(
    rt: BankRuntime,
    code: str = "0125",
    *,
    profile: AuthProfile = AuthProfile.LEGACY_PIN,
    **config: object,
) -> str:
    with rt.db.unit_of_work() as session:
        bank = core.create_bank(
            session,
            code=code,
            name="七十七銀行",
            name_kana="シチジユウシチ",
            config=BankConfig(auth_profile=profile, **config),
        )  # type: ignore[arg-type]
        home = zengin.branch(code, zengin.home_branch(code))
        core.add_branch(session, bank, code=home.code, name=home.name)
    return code


def make_holder(
    rt: BankRuntime,
    *,
    bank_code: str = "0125",
    number: str = "1234567",
    pin: str = "4321",
    balance: int = 500_000,
    overdraft_limit: int = 0,
    name_kana: str = "ﾔﾏﾀﾞ ﾀﾛｳ",
    email: str = "taro@example.jp",
) -> Holder:
    birth = date(1960, 4, 1)
    with rt.db.unit_of_work() as session:
        bank = core.bank(session, bank_code)
        branch = core.branch(session, bank, zengin.home_branch(bank_code))
        customer = core.add_customer(
            session,
            bank,
            CustomerData(
                name_kanji="山田 太郎",
                name_kana=name_kana,
                birth_date=birth,
                address="宮城県仙台市青葉区中央3-3-20",
                phone="+81227111111",
                email=email,
            ),
        )
        core.open_account(
            session,
            customer,
            branch=branch,
            account_type=AccountType.ORDINARY,
            number=number,
            pin=pin,
            balance=balance,
            overdraft_limit=overdraft_limit,
        )
    return Holder(bank_code, zengin.home_branch(bank_code), number, name_kana, pin, birth, email)


def make_client(
    rt: BankRuntime, client_id: str = "kouza-wallet", webhook_url: str | None = WEBHOOK_URL
) -> tuple[str, str]:
    with rt.db.unit_of_work() as session:
        _, secret = core.register_client(
            session, client_id=client_id, name="ドコモ口座", webhook_url=webhook_url
        )
    return client_id, secret
