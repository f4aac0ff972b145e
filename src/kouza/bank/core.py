"""Core banking records: banks, branches, customers, accounts, their secrets, operator clients.

The formats are the Zengin ones: a bank is four digits, a branch three, an account number seven
(unique per branch: the Zengin address of an account is bank + branch + number, and the type is
checked as a separate field), holder names in half-width kana. Secrets arrive in plain text only
here and leave as argon2id hashes (PIN, internet-banking password), Fernet tokens (TOTP seed) or
HMAC (client secret); nothing here logs or returns them except the one-time client secret and
TOTP seed handed back to whoever created them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.bank.errors import (
    AccountExists,
    BankExists,
    ClientExists,
    InvalidBankData,
    InvalidClient,
    UnknownAccount,
    UnknownBank,
    UnknownBranch,
    UnknownClient,
)
from kouza.bank.kana import to_zengin_kana
from kouza.bank.keys import decrypt_totp_seed, encrypt_totp_seed
from kouza.bank.models import (
    Account,
    AccountType,
    AuthProfile,
    Bank,
    Branch,
    Customer,
    NoticeChannel,
    OperatorClient,
    OtpDevice,
)
from kouza.bank.runtime import bank_runtime_of
from kouza.kit import zengin
from kouza.kit.db import add_unique
from kouza.kit.security import (
    constant_time_equal,
    hash_password,
    keyed_hash,
    random_token,
)

BANK_CODE = re.compile(r"[0-9]{4}")
BRANCH_CODE = re.compile(r"[0-9]{3}")
ACCOUNT_NUMBER = re.compile(r"[0-9]{7}")
PIN = re.compile(r"[0-9]{4}")


def require_format(value: str, pattern: re.Pattern[str], what: str) -> str:
    """``value`` if it matches ``pattern`` exactly; a clear 400 otherwise."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidBankData(f"{what} must be {pattern.pattern!r}", field=what)
    return value


@dataclass(frozen=True)
class BankConfig:
    """A bank's linking and monitoring configuration."""

    auth_profile: AuthProfile = AuthProfile.LEGACY_PIN
    notice_channel: NoticeChannel = NoticeChannel.EMAIL
    monitor_failed_links: bool = False
    monitor_max_failures: int = 10
    monitor_min_accounts: int = 5
    monitor_window_seconds: int = 3600
    monitor_block_seconds: int = 86400
    mandate_max_per_debit: int = 300_000
    mandate_max_30_days: int = 300_000
    mandate_days: int = 365


@dataclass(frozen=True)
class CustomerData:
    """What a bank records about a person at account opening."""

    name_kanji: str
    name_kana: str
    birth_date: date
    address: str
    phone: str
    email: str


class BankCore:
    """Banks, branches, customers, accounts, OTP devices and operator clients."""

    def create_bank(
        self, session: Session, *, code: str, name: str, name_kana: str, config: BankConfig
    ) -> Bank:
        """Register a bank in this deployment."""
        require_format(code, BANK_CODE, "bank_code")
        zengin.bank(code)  # a simulated bank is still a real one (422 otherwise)
        bank = Bank(
            code=code,
            name=name,
            name_kana=to_zengin_kana(name_kana),
            created_at=bank_runtime_of(session).now(),
            auth_profile=config.auth_profile.value,
            notice_channel=config.notice_channel.value,
            **{
                k: v for k, v in vars(config).items() if k not in ("auth_profile", "notice_channel")
            },
        )
        add_unique(session, bank, BankExists("a bank with this code exists", bank_code=code))
        return bank

    def bank(self, session: Session, code: str) -> Bank:
        """The bank with ``code``."""
        require_format(code, BANK_CODE, "bank_code")
        bank = session.scalars(select(Bank).where(Bank.code == code)).one_or_none()
        if bank is None:
            raise UnknownBank("no bank with this code here", bank_code=code)
        return bank

    def banks(self, session: Session) -> Sequence[Bank]:
        """Every bank of this deployment, by code."""
        return session.scalars(select(Bank).order_by(Bank.code)).all()

    def add_branch(self, session: Session, bank: Bank, *, code: str, name: str) -> Branch:
        """Open a branch."""
        require_format(code, BRANCH_CODE, "branch_code")
        zengin.branch(bank.code, code, field="branch_code")
        branch = Branch(bank_id=bank.id, code=code, name=name)
        add_unique(session, branch, BankExists("a branch with this code exists", code=code))
        return branch

    def branch(self, session: Session, bank: Bank, code: str) -> Branch:
        """The branch ``code`` of ``bank``."""
        require_format(code, BRANCH_CODE, "branch_code")
        branch = session.scalars(
            select(Branch).where(Branch.bank_id == bank.id, Branch.code == code)
        ).one_or_none()
        if branch is None:
            raise UnknownBranch("no such branch", bank_code=bank.code, branch_code=code)
        return branch

    def add_customer(
        self,
        session: Session,
        bank: Bank,
        data: CustomerData,
        *,
        internet_banking_password: str | None = None,
    ) -> Customer:
        """Record a customer (KYC done at the counter)."""
        customer = Customer(
            bank_id=bank.id,
            name_kanji=data.name_kanji,
            name_kana=to_zengin_kana(data.name_kana),
            birth_date=data.birth_date,
            address=data.address,
            phone=data.phone,
            email=data.email,
            created_at=bank_runtime_of(session).now(),
            internet_banking_password_hash=(
                hash_password(internet_banking_password) if internet_banking_password else None
            ),
        )
        session.add(customer)
        session.flush()
        return customer

    def open_account(
        self,
        session: Session,
        customer: Customer,
        *,
        branch: Branch,
        account_type: AccountType,
        number: str,
        pin: str,
        balance: int = 0,
        overdraft_limit: int = 0,
    ) -> Account:
        """Open an account with a cash-card PIN (stored as argon2id)."""
        require_format(number, ACCOUNT_NUMBER, "account_number")
        require_format(pin, PIN, "pin")
        if overdraft_limit < 0 or balance < -overdraft_limit:
            raise InvalidBankData("balance below the overdraft limit, or a negative limit")
        account = Account(
            bank_id=customer.bank_id,
            branch_id=branch.id,
            customer_id=customer.id,
            account_type=account_type.value,
            number=number,
            balance=balance,
            overdraft_limit=overdraft_limit,
            pin_hash=hash_password(pin),
            created_at=bank_runtime_of(session).now(),
        )
        add_unique(
            session,
            account,
            AccountExists("this account number is taken at the branch", number=number),
        )
        return account

    def find_account(
        self, session: Session, bank: Bank, *, branch_code: str, number: str
    ) -> Account | None:
        """The account at ``branch_code``/``number`` of ``bank``, if any."""
        return session.scalars(
            select(Account)
            .join(Branch, Account.branch_id == Branch.id)
            .where(Branch.bank_id == bank.id, Branch.code == branch_code, Account.number == number)
        ).one_or_none()

    def account(
        self, session: Session, *, bank_code: str, branch_code: str, number: str
    ) -> Account:
        """The account, or :class:`UnknownAccount` (staff and holder lookups only)."""
        bank = self.bank(session, bank_code)
        require_format(branch_code, BRANCH_CODE, "branch_code")
        require_format(number, ACCOUNT_NUMBER, "account_number")
        account = self.find_account(session, bank, branch_code=branch_code, number=number)
        if account is None:
            raise UnknownAccount("no such account", bank_code=bank_code, number=number)
        return account

    def add_otp_device(
        self, session: Session, customer: Customer, *, label: str
    ) -> tuple[OtpDevice, str]:
        """Register a TOTP device; returns it and its base32 seed (shown once)."""
        runtime = bank_runtime_of(session)
        bank = session.get_one(Bank, customer.bank_id)
        seed = pyotp.random_base32()
        device = OtpDevice(
            customer_id=customer.id,
            label=label,
            created_at=runtime.now(),
            secret_encrypted=encrypt_totp_seed(runtime.secret, bank_code=bank.code, seed=seed),
        )
        session.add(device)
        session.flush()
        return device, seed

    def verify_otp(self, session: Session, device: OtpDevice, code: str) -> bool:
        """Whether ``code`` is the device's TOTP now (±1 step)."""
        runtime = bank_runtime_of(session)
        customer = session.get_one(Customer, device.customer_id)
        bank = session.get_one(Bank, customer.bank_id)
        seed = decrypt_totp_seed(runtime.secret, bank_code=bank.code, token=device.secret_encrypted)
        return pyotp.TOTP(seed).verify(code, for_time=runtime.now(), valid_window=1)

    def register_client(
        self, session: Session, *, client_id: str, name: str, webhook_url: str | None = None
    ) -> tuple[OperatorClient, str]:
        """Register a wallet operator; returns it and its client secret (shown once)."""
        runtime = bank_runtime_of(session)
        secret = "bcs_" + random_token()
        client = OperatorClient(
            client_id=client_id,
            name=name,
            webhook_url=webhook_url,
            created_at=runtime.now(),
            secret_hash=keyed_hash(runtime.secret, secret, purpose="bank-client"),
        )
        add_unique(
            session, client, ClientExists("a client with this id exists", client_id=client_id)
        )
        return client, secret

    def authenticate_client(
        self, session: Session, *, client_id: str | None, secret: str
    ) -> OperatorClient:
        """The client whose secret this is (and whose id it is, when one is given)."""
        digest = keyed_hash(bank_runtime_of(session).secret, secret, purpose="bank-client")
        client = session.scalars(
            select(OperatorClient).where(OperatorClient.secret_hash == digest)
        ).one_or_none()
        if client is None or (
            client_id is not None and not constant_time_equal(client.client_id, client_id)
        ):
            raise InvalidClient("unknown client or wrong client secret")
        return client

    def client(self, session: Session, client_id: str) -> OperatorClient:
        """The operator client with ``client_id``."""
        client = session.scalars(
            select(OperatorClient).where(OperatorClient.client_id == client_id)
        ).one_or_none()
        if client is None:
            raise UnknownClient("no operator client with this id", client_id=client_id)
        return client


core = BankCore()
"""The core banking service singleton."""
