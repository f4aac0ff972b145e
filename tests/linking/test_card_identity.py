"""The bank compares the name and birth date from the customer's card, at every profile (ADR 0023).

The mule of 2020: a real person with a real card (山田 太郎) whose wallet was verified while it
declared someone else's reading (サトウ ハナコ: eKYC cannot tell a reading from a name) and who
holds 佐藤 花子's leaked PIN, or her relayed internet-banking login. Before ADR 0023 the wallet
sent the declared reading and a typed birth date, so the bank's kana check passed. Now every
link carries the card's kanji name and birth date and the bank compares them with its holder.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from kouza.bank.core import CustomerData, core
from kouza.bank.models import AccountType, AttemptOutcome, AuthProfile, Link, LinkAttempt
from kouza.kit import zengin
from tests.bank.helpers import make_bank
from tests.linking.conftest import OAUTH_BANK, World
from tests.linking.oauth_support import (
    IbHolder,
    approve,
    browser,
    callback,
    ib_holder,
    log_in_at_bank,
    redirect_query,
    register_wallet_at_bank,
    start,
)
from tests.linking.support import (
    Person,
    links,
    login,
    no_rules,
    signed,
    verified_customer,
)

HANAKO_BORN = date(1985, 5, 5)
PROFILES = ["legacy_pin", "legacy_pin_dob", "oauth"]
_LEGACY_CODES = {"legacy_pin": "0168", "legacy_pin_dob": "9900"}


@dataclass(frozen=True)
class Target:
    """佐藤 花子's account at a bank of the given profile, and what a thief knows of it."""

    profile: str
    bank_code: str
    number: str
    pin: str
    internet_banking: IbHolder | None = None


def hanako_account(world: World, profile: str) -> Target:
    if profile == "oauth":
        register_wallet_at_bank(world)
        holder = ib_holder(world, birth_date=HANAKO_BORN)
        return Target(profile, OAUTH_BANK, holder.number, "", holder)
    code = _LEGACY_CODES[profile]
    make_bank(world.bank_rt, code, profile=AuthProfile(profile))
    with world.bank_rt.db.unit_of_work() as session:
        bank = core.bank(session, code)
        customer = core.add_customer(
            session,
            bank,
            CustomerData(
                name_kanji="佐藤 花子",
                name_kana="ｻﾄｳ ﾊﾅｺ",
                birth_date=HANAKO_BORN,
                address="広島県広島市中区1-1",
                phone="+81822222222",
                email="hanako@example.jp",
            ),
        )
        home = core.branch(session, bank, zengin.home_branch(code))
        core.open_account(
            session,
            customer,
            branch=home,
            account_type=AccountType.ORDINARY,
            number="2000001",
            pin="2580",
            balance=300_000,
        )
    world.rt.settings.accepted_legacy_banks = ["0125", *_LEGACY_CODES.values()]
    return Target(profile, code, "2000001", "2580")


def link(world: World, person: Person, target: Target) -> int:
    """Walk the link as far as the person can; the wallet's final HTTP status."""
    if target.profile == "oauth":
        return _link_oauth(world, person, target)
    body: dict[str, Any] = {
        "bank_code": target.bank_code,
        "branch": zengin.home_branch(target.bank_code),
        "account_type": "ordinary",
        "account_number": target.number,
        "pin": target.pin,
        "birth_date": HANAKO_BORN.isoformat(),  # typed: leaked with the PIN
    } | signed(world, person, "bank.link")
    answer = world.wallet.post(
        f"/v1/wallets/{person.wallet.id}/bank-links", json=body, headers=login(world, person)
    )
    return int(answer.status_code)


def _link_oauth(world: World, person: Person, target: Target) -> int:
    assert target.internet_banking is not None
    started = start(world, person)
    assert started.status_code == 201, started.text
    with browser(world) as page:
        # her password and live code, relayed to him (phishing) or typed by her
        after_login = log_in_at_bank(
            world, page, started.json()["authorization_url"], target.internet_banking
        )
        if after_login.status_code == 200:
            query = approve(page, after_login)
        else:
            assert after_login.status_code == 403, after_login.text
            query = redirect_query(_return_url(after_login.text))
    return callback(world, person, query).status_code


def _return_url(page: str) -> str:
    found = re.search(r'id="return" href="([^"]+)"', page)
    assert found is not None, page
    return html.unescape(found.group(1))


def bank_links(world: World) -> int:
    with world.bank_rt.db.unit_of_work() as session:
        return int(session.scalar(select(func.count()).select_from(Link)) or 0)


def legacy_outcomes(world: World) -> list[str]:
    with world.bank_rt.db.unit_of_work() as session:
        return list(session.scalars(select(LinkAttempt.outcome)))


@pytest.mark.parametrize("profile", PROFILES)
class TestTheCardDecides:
    def test_a_mule_with_his_own_card_cannot_link_her_account(
        self, world: World, profile: str
    ) -> None:
        no_rules(world)
        target = hanako_account(world, profile)
        # his card: 山田 太郎, born the same day as her (so only the name differs); the reading
        # he declared at eKYC is hers, which eKYC accepted (two parts, kana only)
        mule = verified_customer(
            world,
            name="山田　太郎",
            birth_date=HANAKO_BORN,
            kana="ｻﾄｳ ﾊﾅｺ",
            phone="090-7777-0001",
            e164="+819077770001",
        )

        status = link(world, mule, target)

        assert status == 422
        assert links(world) == [] and bank_links(world) == 0
        if profile != "oauth":
            assert legacy_outcomes(world) == [AttemptOutcome.NAME_MISMATCH.value]

    def test_her_own_wallet_links(self, world: World, profile: str) -> None:
        no_rules(world)
        target = hanako_account(world, profile)
        # her card separates the names with U+3000, the bank's record with a space
        hanako = verified_customer(
            world,
            name="佐藤\u3000花子",
            birth_date=HANAKO_BORN,
            kana="サトウ ハナコ",
            phone="090-7777-0002",
            e164="+819077770002",
        )

        assert link(world, hanako, target) == 201
        assert len(links(world)) == 1 and bank_links(world) == 1
