"""Realistic banks and customers for development and the simulator, from a seeded RNG.

The partner banks of the 2020 incident carry their real Zengin codes; kana names and branches
come from the Zengin list (:mod:`kouza.kit.zengin`, the ``zengin-code`` package), and a test
checks every code and name against it. Two of the eleven banks with damage have merged since
2020 and appear under their successors' codes: みちのく銀行 (0121) is now 青森みちのく銀行
(0117), 第三銀行 is now 三十三銀行 (0154). The authentication profiles are a
simulator assumption, not a record of each bank's 2020 form: the eleven banks with damage use
``legacy_pin``; the others stand for the banks that required a one-time password or internet-
banking login, and use ``oauth``.

Customers get kanji and half-width kana names from small embedded lists, random 7-digit account
numbers (unique per branch), PINs and balances. Secrets are generated here and hashed at once;
the plain values are returned only so that a developer can ask for them (``--show-secrets``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.bank.core import BankConfig, CustomerData, core
from kouza.bank.models import AccountType, AuthProfile, Bank, Customer, NoticeChannel
from kouza.kit import zengin


@dataclass(frozen=True)
class PartnerBank:
    """A bank of the embedded table."""

    code: str
    name: str
    name_kana: str
    damaged_in_2020: bool


PARTNER_BANKS = (
    PartnerBank("0125", "七十七銀行", "ｼﾁｼﾞﾕｳｼﾁ", damaged_in_2020=True),
    PartnerBank("0152", "大垣共立銀行", "ｵｵｶﾞｷｷﾖｳﾘﾂ", damaged_in_2020=True),
    PartnerBank("0168", "中国銀行", "ﾁﾕｳｺﾞｸ", damaged_in_2020=True),
    PartnerBank("0126", "東邦銀行", "ﾄｳﾎｳ", damaged_in_2020=True),
    PartnerBank("0166", "鳥取銀行", "ﾄﾂﾄﾘ", damaged_in_2020=True),
    PartnerBank("0157", "滋賀銀行", "ｼｶﾞ", damaged_in_2020=True),
    PartnerBank("0163", "紀陽銀行", "ｷﾖｳ", damaged_in_2020=True),
    PartnerBank("0117", "青森みちのく銀行", "ｱｵﾓﾘﾐﾁﾉｸ", damaged_in_2020=True),
    PartnerBank("0154", "三十三銀行", "ｻﾝｼﾞﾕｳｻﾝ", damaged_in_2020=True),
    PartnerBank("9900", "ゆうちょ銀行", "ﾕｳﾁﾖ", damaged_in_2020=True),
    PartnerBank("0040", "イオン銀行", "ｲｵﾝ", damaged_in_2020=True),
    PartnerBank("0010", "りそな銀行", "ﾘｿﾅ", damaged_in_2020=False),
    PartnerBank("0129", "足利銀行", "ｱｼｶｶﾞ", damaged_in_2020=False),
    PartnerBank("0130", "常陽銀行", "ｼﾞﾖｳﾖｳ", damaged_in_2020=False),
)
BRANCHES_PER_BANK = 3
"""Branches seeded per bank: the first ones of the bank's Zengin list, by code."""
FAMILY_NAMES = (
    ("佐藤", "ｻﾄｳ"),
    ("鈴木", "ｽｽﾞｷ"),
    ("高橋", "ﾀｶﾊｼ"),
    ("田中", "ﾀﾅｶ"),
    ("伊藤", "ｲﾄｳ"),
    ("渡辺", "ﾜﾀﾅﾍﾞ"),
    ("山本", "ﾔﾏﾓﾄ"),
    ("中村", "ﾅｶﾑﾗ"),
    ("小林", "ｺﾊﾞﾔｼ"),
    ("加藤", "ｶﾄｳ"),
    ("吉田", "ﾖｼﾀﾞ"),
    ("山田", "ﾔﾏﾀﾞ"),
    ("佐々木", "ｻｻｷ"),
    ("斎藤", "ｻｲﾄｳ"),
    ("井上", "ｲﾉｳｴ"),
)
GIVEN_NAMES = (
    ("太郎", "ﾀﾛｳ"),
    ("花子", "ﾊﾅｺ"),
    ("翔太", "ｼﾖｳﾀ"),
    ("美咲", "ﾐｻｷ"),
    ("健一", "ｹﾝｲﾁ"),
    ("陽子", "ﾖｳｺ"),
    ("大輔", "ﾀﾞｲｽｹ"),
    ("由美", "ﾕﾐ"),
    ("誠", "ﾏｺﾄ"),
    ("恵子", "ｹｲｺ"),
    ("拓也", "ﾀｸﾔ"),
    ("裕子", "ﾕｳｺ"),
    ("修", "ｵｻﾑ"),
    ("直美", "ﾅｵﾐ"),
)
CITIES = (
    "宮城県仙台市青葉区",
    "岐阜県大垣市",
    "岡山県岡山市北区",
    "福島県福島市",
    "鳥取県鳥取市",
    "滋賀県大津市",
    "和歌山県和歌山市",
    "青森県青森市",
    "三重県松阪市",
)


@dataclass(frozen=True)
class SeededAccount:
    """One seeded account with its plain secrets (for ``--show-secrets`` only)."""

    bank_code: str
    branch_code: str
    number: str
    name_kana: str
    pin: str
    internet_banking_password: str | None
    totp_seed: str | None


@dataclass
class SeedReport:
    """What :func:`seed_banks` created."""

    banks: int = 0
    branches: int = 0
    customers: int = 0
    accounts: list[SeededAccount] = field(default_factory=list)
    skipped_banks: list[str] = field(default_factory=list)


def seed_banks(
    session: Session,
    *,
    rng_seed: int = 2020,
    customers_per_bank: int = 5,
    codes: list[str] | None = None,
) -> SeedReport:
    """Create the embedded banks (or those in ``codes``) with customers; skip existing banks."""
    rng = random.Random(rng_seed)
    report = SeedReport()
    wanted = [bank for bank in PARTNER_BANKS if codes is None or bank.code in codes]
    for partner in wanted:
        if session.scalars(select(Bank).where(Bank.code == partner.code)).first():
            report.skipped_banks.append(partner.code)
            continue
        _seed_bank(session, partner, rng, customers_per_bank, report)
    return report


def _seed_bank(
    session: Session, partner: PartnerBank, rng: random.Random, customers: int, report: SeedReport
) -> None:
    profile = AuthProfile.LEGACY_PIN if partner.damaged_in_2020 else AuthProfile.OAUTH
    channel = NoticeChannel.POST if partner.code == "9900" else NoticeChannel.EMAIL
    listed = zengin.bank(partner.code)
    bank = core.create_bank(
        session,
        code=partner.code,
        name=partner.name,
        name_kana=listed.kana,
        config=BankConfig(auth_profile=profile, notice_channel=channel),
    )
    branches = [
        core.add_branch(session, bank, code=branch.code, name=branch.name)
        for branch in zengin.branches(partner.code)[:BRANCHES_PER_BANK]
    ]
    report.banks += 1
    report.branches += len(branches)
    taken: set[tuple[int, str]] = set()
    for _ in range(customers):
        customer, secrets = _seed_customer(session, bank, rng, profile)
        branch = rng.choice(branches)
        number = _fresh_number(rng, branch.id, taken)
        pin = f"{rng.randrange(10_000):04d}"
        core.open_account(
            session,
            customer,
            branch=branch,
            account_type=AccountType.ORDINARY,
            number=number,
            pin=pin,
            balance=rng.randrange(0, 3_000_001, 1_000),
            overdraft_limit=rng.choice((0, 0, 500_000, 2_000_000)),
        )
        report.customers += 1
        report.accounts.append(
            SeededAccount(bank.code, branch.code, number, customer.name_kana, pin, *secrets)
        )


def _seed_customer(
    session: Session, bank: Bank, rng: random.Random, profile: AuthProfile
) -> tuple[Customer, tuple[str | None, str | None]]:
    family, given = rng.choice(FAMILY_NAMES), rng.choice(GIVEN_NAMES)
    birth = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 62))
    serial = rng.randrange(10**8)
    password = f"ib-{rng.getrandbits(64):016x}" if profile is AuthProfile.OAUTH else None
    customer = core.add_customer(
        session,
        bank,
        CustomerData(
            name_kanji=f"{family[0]} {given[0]}",
            name_kana=f"{family[1]} {given[1]}",
            birth_date=birth,
            address=f"{rng.choice(CITIES)}{rng.randrange(1, 9)}-{serial % 30 + 1}",
            phone=f"+8190{serial:08d}",
            email=f"customer{serial:08d}@example.jp",
        ),
        internet_banking_password=password,
    )
    seed = None
    if password is not None:
        _, seed = core.add_otp_device(session, customer, label="hardware token")
    return customer, (password, seed)


def _fresh_number(rng: random.Random, branch_id: int, taken: set[tuple[int, str]]) -> str:
    while True:
        number = f"{rng.randrange(10**6, 10**7):07d}"
        if (branch_id, number) not in taken:
            taken.add((branch_id, number))
            return number
