"""The bank's pages in Chromium: a holder disowns a link from the notice the bank sent, and
internet banking's login, one-time password and consent pages (axe on every page)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
from playwright.sync_api import Page, expect
from sqlalchemy import select

from kouza.identity.service import identity
from kouza.linking.models import BankLink
from kouza.risk.service import risk
from tests.bank.portal_support import IbCustomer, ib_customer
from tests.browser.conftest import LEGACY_BANK, OAUTH_BANK, LiveWorld, assert_accessible
from tests.factories import PASSWORD, customer
from tests.linking.support import EMPTY_RULES, signed, verified_customer


@dataclass
class _World:
    """What the linking helpers need of a world (the live runtimes)."""

    rt: Any
    mailbox: Any


def _legacy_link(world: LiveWorld, who: IbCustomer) -> str:
    """A wallet customer links the holder's account through the wallet API (legacy form)."""
    settings = world.rt.settings
    settings.link_min_level = "email"
    settings.link_name_match = False
    settings.accepted_legacy_banks = [LEGACY_BANK]
    settings.require_device_signature = False
    risk.load_rules(world.rt, EMPTY_RULES, source="empty.yaml")
    made = customer(world.rt, world.mailbox, device=False)
    with world.rt.db.unit_of_work() as session:
        token = identity.login(session, email=made.user.email, password=PASSWORD)
    answer = httpx.post(
        f"{world.wallet_url}/v1/wallets/{made.wallet.id}/bank-links",
        json={
            "bank_code": LEGACY_BANK,
            "branch": "100",
            "account_type": "ordinary",
            "account_number": who.holder.number,
            "pin": who.holder.pin,
            "holder_name": who.holder.name_kana,
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 201, answer.text
    link_id: str = answer.json()["id"]
    return link_id


def _wallet_link_status(world: LiveWorld, link_id: str) -> str:
    with world.rt.db.unit_of_work() as session:
        status: str = session.scalars(
            select(BankLink.status).where(BankLink.id == uuid.UUID(link_id))
        ).one()
        return status


def _sign_in(page: Page, world: LiveWorld, who: IbCustomer) -> None:
    page.get_by_label("支店番号").fill("100")
    page.get_by_label("口座番号").fill(who.holder.number)
    page.get_by_label("ログインパスワード").fill(who.password)
    page.get_by_role("button", name="次へ").click()
    expect(page.locator("h1")).to_contain_text("One-time password")
    assert_accessible(page, "the portal's one-time password page")
    page.get_by_label("ワンタイムパスワード").fill(who.totp.now())
    page.get_by_role("button", name="ログイン").click()


def test_the_holder_opens_the_notice_presses_not_me_and_the_link_is_gone(
    page: Page, live_world: LiveWorld
) -> None:
    who = ib_customer(live_world.bank_rt, number="2345678", email="ib.taro@example.jp")
    wallet_link = _legacy_link(live_world, who)
    notice = live_world.bank_mailbox.last_to("ib.taro@example.jp").body
    reference = next(word for word in notice.split() if word.startswith("NM-"))

    # the link in the notice carries the reference in its fragment (never sent to the server)
    page.goto(f"{live_world.bank_url}/banks/{LEGACY_BANK}/notice#{reference}")
    expect(page.get_by_label("参照番号")).to_have_value(reference)
    assert_accessible(page, "the notice lookup")
    page.get_by_role("button", name="確認する").click()
    expect(page.locator("#notice")).to_contain_text("***678")
    expect(page.locator("#state")).to_contain_text("Active")
    assert_accessible(page, "the notice")
    page.get_by_role("button", name="心当たりがない").click()
    expect(page.locator("#outcome")).to_contain_text("is revoked")
    expect(page.locator("#state")).to_contain_text("Revoked")
    assert_accessible(page, "the not-me answer")

    deadline = time.monotonic() + 10  # the signed webhook reaches the wallet
    while _wallet_link_status(live_world, wallet_link) != "revoked":
        assert time.monotonic() < deadline, "the wallet's link was not revoked"
        time.sleep(0.1)

    # the holder signs in to the portal: the link shows as revoked, the notice as reported
    page.goto(f"{live_world.bank_url}/banks/{LEGACY_BANK}/portal")
    assert_accessible(page, "the portal's sign-in page")
    _sign_in(page, live_world, who)
    expect(page.locator("h1")).to_contain_text("山田 太郎")
    expect(page.locator("#active-links")).to_have_text("0")
    assert_accessible(page, "the portal's home")
    page.get_by_role("link", name="連携サービス").first.click()
    expect(page.locator("#links")).to_contain_text("Revoked")
    assert_accessible(page, "the portal's links")
    page.get_by_role("link", name="お知らせ").first.click()
    expect(page.locator(f'tr[data-reference="{reference}"]')).to_contain_text("Reported as not you")
    assert_accessible(page, "the portal's notices")
    page.get_by_role("link", name="取引履歴").first.click()
    expect(page.locator("h1")).to_contain_text("Debit history")
    assert_accessible(page, "the portal's history")
    page.get_by_role("button", name="ログアウト").click()
    expect(page.locator("main")).to_contain_text("You have signed out")
    assert_accessible(page, "the portal after sign-out")


def _oauth_authorization_url(world: LiveWorld) -> str:
    """Hanako's own verified wallet starts an OAuth link; the bank page the app opens."""
    live = _World(world.rt, world.mailbox)
    hanako = verified_customer(
        live,  # type: ignore[arg-type]
        name="佐藤　花子",
        birth_date=date(1985, 5, 5),
        kana="サトウ ハナコ",
        phone="090-1111-2222",
        e164="+819011112222",
    )
    with world.rt.db.unit_of_work() as session:
        token = identity.login(session, email=hanako.user.email, password=PASSWORD)
    answer = httpx.post(
        f"{world.wallet_url}/v1/wallets/{hanako.wallet.id}/bank-links/oauth",
        json={"bank_code": OAUTH_BANK} | signed(live, hanako, "bank.link"),  # type: ignore[arg-type]
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 201, answer.text
    url: str = answer.json()["authorization_url"]
    return url.replace(world.bank_rt.settings.issuer, world.bank_url, 1)


def test_internet_banking_login_otp_and_consent_look_like_a_bank_and_pass_axe(
    page: Page, live_world: LiveWorld
) -> None:
    page.goto(_oauth_authorization_url(live_world))
    expect(page.locator("header .brand")).to_contain_text("七十七銀行")
    expect(page.locator("header .brand")).to_contain_text("Internet Banking")
    expect(page.locator(".security-note")).to_contain_text("never asks for your password")
    expect(page.locator("main")).to_contain_text("ドコモ口座")
    assert_accessible(page, "internet banking's login")
    holder = live_world.ib_holder
    page.get_by_label("支店番号").fill("100")
    page.get_by_label("口座番号").fill(holder.number)
    page.get_by_label("ログインパスワード").fill(holder.password)
    page.get_by_role("button", name="次へ").click()
    expect(page.locator("[aria-current=step]")).to_contain_text("One-time password")
    assert_accessible(page, "internet banking's one-time password")
    page.get_by_label("ワンタイムパスワード").fill(holder.totp.now())
    page.get_by_role("button", name="ログイン").click()
    expect(page.locator("#operator")).to_have_text("ドコモ口座")
    expect(page.locator("#max_per_debit")).to_contain_text("¥")
    expect(page.locator("main")).to_contain_text("What it may not do")
    assert_accessible(page, "internet banking's consent")
