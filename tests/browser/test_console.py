"""The fraud team's story in a real browser: an analyst signs in with password and TOTP, sees
the alert a 2020-style attack raised, opens the case, confirms fraud, stops new links to the
bank and requests compensation; an admin signs in and approves; the victim's money is back at
the bank. Every page visited passes axe-core."""

from __future__ import annotations

import uuid
from importlib import resources

import httpx
from playwright.sync_api import Page, expect

from kouza.controls.models import OperatorRole
from kouza.identity.service import identity
from kouza.risk.service import risk
from kouza.wallet.models import MerchantCategory, Wallet
from kouza.wallet.service import wallets
from tests.browser.conftest import LEGACY_BANK, LiveWorld, assert_accessible
from tests.console.support import Staff, make_staff
from tests.factories import PASSWORD, customer
from tests.linking.support import bank_balance, link_body, policy_2019

VICTIM_BALANCE = 500_000
STOLEN = 100_000


def attack(world: LiveWorld) -> uuid.UUID:
    """The 2020 pattern through the real services: an e-mail-only wallet links the victim's
    account with leaked details and charges it under the 2019 design; then, under today's
    rules, it tries to spend the money at an electronics shop the same day — refused for review
    (rule ``resellable-spend-new-wallet``), which raises the alert the analyst picks up. The
    wallet is not locked yet: that is the analyst's call. Returns the fraud wallet."""
    policy_2019(world)  # type: ignore[arg-type]
    fraud = customer(world.rt, world.mailbox, device=False)
    with world.rt.db.unit_of_work() as session:
        token = identity.login(session, email=fraud.email, password=PASSWORD)
        shop = wallets.create_merchant(
            session, name="Akiba Denki", category=MerchantCategory.ELECTRONICS
        )
        qr = wallets.merchant_qr(session, merchant_id=shop.id)
    headers = {"Authorization": f"Bearer {token}"}
    wallet = f"{world.wallet_url}/v1/wallets/{fraud.wallet.id}"
    linked = httpx.post(
        f"{wallet}/bank-links", json=link_body(world.legacy_victim), headers=headers
    )
    assert linked.status_code == 201, linked.text
    charged = httpx.post(
        f"{wallet}/topups",
        json={"link_id": linked.json()["id"], "amount": STOLEN},
        headers=headers | {"Idempotency-Key": "fraud-1"},
    )
    assert charged.status_code == 201, charged.text
    shipped = resources.files("kouza.risk").joinpath("rulesets/default.yaml").read_text("utf-8")
    risk.load_rules(world.rt, shipped, source="default.yaml")
    spent = httpx.post(
        f"{wallet}/payments",
        json={"qr": qr, "amount": 60_000},
        headers=headers | {"Idempotency-Key": "fraud-2"},
    )
    assert spent.status_code == 422 and spent.json()["error"] == "held_for_review", spent.text
    return fraud.wallet.id


def wallet_status(world: LiveWorld, wallet_id: uuid.UUID) -> str:
    with world.rt.db.unit_of_work() as session:
        return session.get_one(Wallet, wallet_id).status


def sign_in(page: Page, world: LiveWorld, staff: Staff) -> None:
    page.goto(f"{world.wallet_url}/console/login")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to the operator console")
    assert_accessible(page, "the console's sign-in page")
    page.get_by_label("Operator name").fill(staff.name)
    page.get_by_label("Password").fill(staff.password)
    page.get_by_label("Authenticator code").fill(staff.totp.now())
    page.get_by_role("button", name="Sign in").click()


def test_an_analyst_stops_the_attack_and_an_admin_approves_the_compensation(
    page: Page, live_world: LiveWorld
) -> None:
    world = live_world
    fraud_wallet = attack(world)
    assert bank_balance(world, world.legacy_victim) == VICTIM_BALANCE - STOLEN  # type: ignore[arg-type]
    analyst = make_staff(world.rt, "aiko")
    admin = make_staff(world.rt, "bunta", OperatorRole.ADMIN)

    sign_in(page, world, analyst)
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    expect(page.get_by_text("Signed in as aiko")).to_be_visible()
    assert_accessible(page, "the overview")
    page.get_by_role("link", name="Manage kill switches").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Kill switches")
    assert_accessible(page, "the kill switches")
    page.go_back()
    alert = page.get_by_role("table").filter(has_text="Raised by").get_by_role("link").first
    expect(alert).to_be_visible()
    alert.click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("Case")
    expect(page.get_by_text("resellable-spend-new-wallet").first).to_be_visible()
    assert_accessible(page, "the case page")
    page.locator("#r-lock").fill("spending a stranger's money on electronics")
    page.get_by_role("button", name="Lock the wallet").click()
    expect(
        page.get_by_text("The wallet is locked and the banks are being notified.")
    ).to_be_visible()
    expect(page.get_by_role("button", name="Request unlock")).to_be_visible()
    assert wallet_status(world, fraud_wallet) == "locked"

    page.get_by_role("button", name="Assign to me").click()
    expect(page.get_by_text("The case is yours.")).to_be_visible()
    page.get_by_label("New state").select_option("confirmed_fraud")
    page.get_by_label("Note (reason)").fill("the victim never used the wallet: leaked details")
    page.get_by_role("button", name="Change the state").click()
    expect(page.get_by_text("The case's state changed.")).to_be_visible()

    page.get_by_label("What to stop").select_option("bank_links")
    page.get_by_label("Bank code or merchant id").fill(LEGACY_BANK)
    page.locator("#r-switch").fill("leaked details used against this bank")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("The kill switch is on.")).to_be_visible()

    page.locator("#r-compensation").fill("refund the victim in full")
    page.get_by_role("button", name="Request compensation").click()
    expect(page.get_by_text("Requested. It runs once another admin approves it.")).to_be_visible()
    assert_accessible(page, "the case page after the actions")

    page.get_by_role("link", name="Approvals").click()
    expect(
        page.get_by_text("You cannot approve your own request; another admin must.")
    ).to_be_visible()
    assert_accessible(page, "the approvals page (analyst)")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to the operator console")

    sign_in(page, world, admin)
    page.get_by_role("link", name="Approvals").click()
    assert_accessible(page, "the approvals page (admin)")
    page.get_by_role("button", name="Approve and run").first.click()
    expect(page.get_by_text("Approved and done.")).to_be_visible()
    assert_accessible(page, "the approvals page after approving")

    assert bank_balance(world, world.legacy_victim) == VICTIM_BALANCE  # type: ignore[arg-type]
