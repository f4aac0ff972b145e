"""The incident's reverse brute force: one PIN tried across 200 account numbers.

No single account reaches its own 3-try lockout, so an unmonitored legacy bank links every
account whose PIN happens to be the one tried. A bank that monitors failed links per source
blocks the source after ``monitor_max_failures`` failures across ``monitor_min_accounts``
accounts and raises an alert.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kouza.bank.app import create_bank_app
from kouza.bank.core import CustomerData, core
from kouza.bank.models import Account, AccountType, Alert, Link, SourceBlock
from kouza.bank.runtime import BankRuntime
from kouza.kit.clock import ManualClock
from tests.bank.helpers import make_bank, make_client

ACCOUNTS = 200
TRIED_PIN = "1234"


@dataclass(frozen=True)
class Leaked:
    number: str
    name_kana: str


def seed_victims(rt: BankRuntime) -> tuple[list[Leaked], int]:
    """200 accounts; every 25th has the PIN the attacker tries. Returns leaks and that count."""
    rng = random.Random(2020)
    leaked, matching = [], 0
    with rt.db.unit_of_work() as session:
        bank = core.bank(session, "0125")
        branch = core.branch(session, bank, "100")
        for index in range(ACCOUNTS):
            pin = TRIED_PIN if index % 25 == 0 else f"{rng.randrange(10_000):04d}"
            if pin == TRIED_PIN and index % 25:  # exactly every 25th account shares the PIN
                pin = "4321"
            matching += pin == TRIED_PIN
            name = f"ﾃｽﾄ ﾀﾛｳ{index:03d}"
            customer = core.add_customer(
                session,
                bank,
                CustomerData(
                    name_kanji=f"試験 太郎{index}",
                    name_kana=name,
                    birth_date=date(1970, 1, 1),
                    address="宮城県",
                    phone="+81220000000",
                    email=f"v{index}@example.jp",
                ),
            )
            number = f"{1_000_000 + index * 37:07d}"
            core.open_account(
                session,
                customer,
                branch=branch,
                account_type=AccountType.ORDINARY,
                number=number,
                pin=pin,
                balance=300_000,
            )
            leaked.append(Leaked(number, name))
    return leaked, matching


def attack(
    rt: BankRuntime, clock: ManualClock, leaked: list[Leaked], auth: tuple[str, str]
) -> tuple[int, int]:
    """Try the PIN on every leaked account; stop when blocked. Returns (tried, linked)."""
    tried = linked = 0
    with TestClient(create_bank_app(rt)) as api:
        for victim in leaked:
            clock.advance(seconds=2)
            response = api.post(
                "/v1/banks/0125/legacy-links",
                auth=auth,
                json={
                    "branch_code": "100",
                    "account_type": "ordinary",
                    "account_number": victim.number,
                    "holder_kana": victim.name_kana,
                    "pin": TRIED_PIN,
                    "wallet_reference": f"attacker-{victim.number}",
                    "end_user_source": "ip:203.0.113.66",
                },
            )
            if response.status_code == 429:
                assert response.json()["error"] == "source_blocked"
                break
            assert response.status_code in (201, 422), response.text
            tried += 1
            linked += response.status_code == 201
    return tried, linked


def count(rt: BankRuntime, model: type[object]) -> int:
    with rt.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_an_unmonitored_legacy_bank_links_every_account_with_the_tried_pin(
    bank_rt: BankRuntime,
    clock: ManualClock,
) -> None:
    make_bank(bank_rt)
    leaked, matching = seed_victims(bank_rt)

    tried, linked = attack(bank_rt, clock, leaked, make_client(bank_rt))

    assert (tried, matching) == (200, 8)
    assert linked == matching == count(bank_rt, Link)
    assert count(bank_rt, Alert) == 0
    with bank_rt.db.session() as session:  # nobody reached the per-account lockout
        assert session.scalar(select(func.max(Account.pin_failures))) == 1


def test_a_monitoring_bank_blocks_the_source_early_and_alerts(
    bank_rt: BankRuntime,
    clock: ManualClock,
) -> None:
    make_bank(bank_rt, monitor_failed_links=True, monitor_max_failures=10, monitor_min_accounts=5)
    leaked, _ = seed_victims(bank_rt)

    tried, linked = attack(bank_rt, clock, leaked, make_client(bank_rt))

    assert (tried, linked) == (11, 1)  # the first account's PIN matched, then 10 failures
    with bank_rt.db.session() as session:
        alert = session.scalars(select(Alert)).one()
        block = session.scalars(select(SourceBlock)).one()
    assert (alert.kind, alert.subject) == ("reverse_brute_force", "ip:203.0.113.66")
    assert alert.details == {"failures": 10, "distinct_accounts": 10, "window_seconds": 3600}
    assert block.blocked_until - block.blocked_at == timedelta(days=1)


def test_the_block_expires(bank_rt: BankRuntime, clock: ManualClock) -> None:
    make_bank(
        bank_rt,
        monitor_failed_links=True,
        monitor_max_failures=10,
        monitor_min_accounts=5,
        monitor_block_seconds=600,
    )
    leaked, _ = seed_victims(bank_rt)
    auth = make_client(bank_rt)
    attack(bank_rt, clock, leaked[:20], auth)
    clock.advance(seconds=601)

    tried, _ = attack(bank_rt, clock, leaked[25:26], auth)

    assert tried == 1
