"""The customer's wallet pages in Chromium, against the live wallet and bank (issue 19).

1. The 2020 attack through the customer pages: an e-mail-only sign-up types the victim's
   legacy account (number, kana name, PIN) into the link form — refused, the reason shown.
2. A customer signs up, verifies the e-mail and the phone, the browser creates its device key
   (WebCrypto, non-extractable, in IndexedDB), passes eKYC with a development card, links the
   OAuth bank through the bank's own pages, tops up and pays a merchant's QR code.

Every page visited is checked with axe-core. The bank's pages are selected by label and role
only (they are restyled elsewhere).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from cryptography.hazmat.primitives import serialization
from playwright.sync_api import Page, expect
from sqlalchemy import select

from kouza.bank.core import core
from kouza.identity.ekyc import CrlRevocationChecker
from kouza.identity.ekyc.devca import DevCertificateAuthority, TestCitizen
from kouza.identity.ekyc.result import Sex
from kouza.identity.proofing import EkycConfiguration, JpkiConfiguration
from kouza.linking.models import BankLink
from kouza.wallet.models import MerchantCategory
from kouza.wallet.service import wallets
from kouza.webapp.account import DEV_CARD_PASSPHRASE
from tests.browser.conftest import LiveWorld, assert_accessible
from tests.identity.support import CrlShelf
from tests.webapp.support import CODE

PASSWORD = "a sturdy passphrase for kouza"
HANAKO = TestCitizen(
    name="佐藤　花子",
    address="岡山県岡山市北区1-1",
    birth_date=date(1985, 5, 5),
    sex=Sex.FEMALE,
)


KEYS_IN_INDEXEDDB = """() => new Promise((resolve) => {
  const open = indexedDB.open("kouza-wallet", 1);
  open.onsuccess = () => {
    const store = open.result.transaction("device-keys").objectStore("device-keys");
    const all = store.getAll();
    all.onsuccess = () => resolve(all.result.map((record) => ({
      extractable: record.keys.privateKey.extractable,
      curve: record.keys.privateKey.algorithm.namedCurve,
    })));
  };
})"""


def code_sent_to(world: LiveWorld, recipient: str) -> str:
    found = CODE.search(world.mailbox.last_to(recipient).body)
    assert found is not None
    return found.group(1)


def sign_up(page: Page, world: LiveWorld, email: str) -> None:
    page.goto(f"{world.wallet_url}/app/signup")
    assert_accessible(page, "sign-up")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up and get a code").click()
    expect(page.get_by_role("heading", name="Verify your e-mail address")).to_be_visible()
    assert_accessible(page, "e-mail code")
    page.get_by_label("Code from the e-mail").fill(code_sent_to(world, email))
    page.get_by_role("button", name="Verify", exact=True).click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert_accessible(page, "sign-in")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Home")).to_be_visible()
    assert_accessible(page, "home")


def step_up_if_asked(page: Page, world: LiveWorld, e164: str, submit: str) -> None:
    """When kouza asks for an SMS step-up, take it and submit the form again."""
    offer = page.get_by_role("button", name="Text me a code")
    if offer.count() == 0:
        return
    assert_accessible(page, "a step-up offered")
    offer.click()
    assert_accessible(page, "the step-up code")
    page.get_by_label("Code from the SMS").fill(code_sent_to(world, e164))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("Confirmed. Submit again")).to_be_visible()
    page.get_by_role("button", name=submit).click()


def test_the_2020_attack_through_the_customer_pages_is_refused_with_the_reason(
    page: Page, live_world: LiveWorld
) -> None:
    victim = live_world.legacy_victim
    sign_up(page, live_world, "attacker@example.net")
    page.get_by_role("link", name="Bank accounts").click()
    assert_accessible(page, "bank accounts")
    legacy = page.locator("section", has=page.get_by_role("heading", name=re.compile("PIN")))
    legacy.get_by_label("Bank code").fill(victim.bank_code)
    legacy.get_by_label("Branch number").fill(victim.branch_code)
    legacy.get_by_label("Account number").fill(victim.number)
    legacy.get_by_label("Account holder").fill(victim.name_kana)
    legacy.get_by_label("PIN").fill(victim.pin)
    legacy.get_by_role("button", name="Link this account").click()

    refusal = page.get_by_role("alert")
    expect(refusal).to_be_visible()
    expect(refusal).to_contain_text("kouza says:")
    expect(refusal).to_contain_text(re.compile("verif|not accept", re.I))
    assert_accessible(page, "the refused link")
    with live_world.rt.db.session() as session:
        assert session.scalars(select(BankLink)).all() == []
    with live_world.bank_rt.db.session() as session:
        account = core.account(
            session,
            bank_code=victim.bank_code,
            branch_code=victim.branch_code,
            number=victim.number,
        )
        assert account.balance == 500_000
    page.goto(f"{live_world.wallet_url}/app/banks?lang=ja")  # Japanese, the pages' default
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    assert_accessible(page, "bank accounts in Japanese")


def dev_card(world: LiveWorld) -> tuple[str, str]:
    """A development CA trusted by the wallet, and Hanako's card from it (PEM files)."""
    now = datetime.now(UTC)
    ca = DevCertificateAuthority.create(now=now)
    card = ca.issue_card(HANAKO, now=now)
    crls = CrlShelf(ca.cas)
    crls.publish(now)
    world.rt.ekyc = EkycConfiguration(  # type: ignore[attr-defined]
        jpki=JpkiConfiguration(
            trust_anchors=ca.trust_anchors,
            intermediates=ca.intermediates,
            revocation=CrlRevocationChecker(loader=crls.load),
        )
    )
    certificate = card.certificate.public_bytes(serialization.Encoding.PEM).decode()
    key = card.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(DEV_CARD_PASSPHRASE.encode()),
    ).decode()
    return certificate, key


def test_a_customer_signs_up_verifies_links_through_the_bank_tops_up_and_pays_a_qr(
    page: Page, live_world: LiveWorld
) -> None:
    world, holder = live_world, live_world.ib_holder
    certificate, card_key = dev_card(world)
    e164 = "+819022223333"
    sign_up(page, world, "hanako@example.jp")

    # phone + SMS code; the browser creates its device key while the form is sent
    page.get_by_role("link", name="Verify your phone").click()
    assert_accessible(page, "phone")
    page.get_by_label("Mobile phone number").fill("090-2222-3333")
    page.get_by_role("button", name="Text me a code").click()
    assert_accessible(page, "SMS code")
    page.get_by_label("Code from the SMS").fill(code_sent_to(world, e164))
    page.get_by_role("button", name="Confirm and create the key").click()
    expect(page.get_by_text("this browser's device key is registered")).to_be_visible()
    page.get_by_role("link", name="Device keys").click()
    expect(page.get_by_text("This browser holds a registered device key.")).to_be_visible()
    assert_accessible(page, "device keys")
    stored = page.evaluate(KEYS_IN_INDEXEDDB)
    assert stored == [{"extractable": False, "curve": "P-256"}]

    # eKYC with the development card
    page.get_by_role("link", name="Home").click()
    page.get_by_role("link", name="Verify your identity").click()
    assert_accessible(page, "eKYC")
    page.get_by_label("The card's signing certificate").fill(certificate)
    page.get_by_label("The development card's key file").fill(card_key)
    page.get_by_label("Card signing password").fill(DEV_CARD_PASSPHRASE)
    page.get_by_label("Your name in kana").fill(holder.name_kana)
    page.get_by_role("button", name="Verify with the card").click()
    expect(page.get_by_text("Your identity is verified.")).to_be_visible()
    expect(page.locator("#level")).to_have_text("Verified")

    # link the OAuth bank through the bank's own pages
    page.get_by_role("link", name="Link a bank account").click()
    assert_accessible(page, "bank accounts")
    oauth = page.locator(
        "section", has=page.get_by_role("heading", name=re.compile("bank's pages"))
    )
    oauth.get_by_label("Bank code").fill("0010")
    oauth.get_by_role("button", name="Continue to my bank").click()
    step_up_if_asked(page, world, e164, "Continue to my bank")
    expect(page).to_have_url(re.compile(re.escape(world.bank_url)))
    assert_accessible(page, "the bank's login")
    page.get_by_label(re.compile("branch", re.I)).fill("100")
    page.get_by_label(re.compile("account number", re.I)).fill(holder.number)
    page.get_by_label(re.compile("password", re.I)).fill(holder.password)
    page.get_by_role("button", name=re.compile("next|次へ", re.I)).click()
    assert_accessible(page, "the bank's one-time password")
    page.get_by_label(re.compile("one-time", re.I)).fill(holder.totp.now())
    page.get_by_role("button", name=re.compile("log in|ログイン", re.I)).click()
    if page.get_by_role("radio").count():
        assert_accessible(page, "the bank's account choice")
        page.get_by_role("radio").first.check()
        page.get_by_role("button", name=re.compile("next|次へ", re.I)).click()
    assert_accessible(page, "the bank's consent")
    page.get_by_role("button", name=re.compile("approve|同意する", re.I)).click()
    expect(page).to_have_url(re.compile(re.escape(world.wallet_url) + "/app"))
    expect(page.get_by_text("Your bank account is linked.")).to_be_visible()
    assert_accessible(page, "home, linked")

    # top up 20,000 yen
    page.get_by_role("link", name="Top up").click()
    assert_accessible(page, "top-up")
    page.get_by_label("Amount (yen)").fill("20000")
    page.get_by_role("button", name="Top up").last.click()
    step_up_if_asked(page, world, e164, "Top up")
    expect(page.get_by_text("Topped up ¥20,000.")).to_be_visible()
    assert_accessible(page, "topped up")

    # pay a merchant's QR code: the till shows it, the customer pastes its payload
    with world.rt.db.unit_of_work() as session:
        shop = wallets.create_merchant(
            session, name="Family Mart Okayama", category=MerchantCategory.CONVENIENCE_STORE
        )
    page.goto(f"{world.wallet_url}/app/merchants/{shop.id}/qr")
    assert_accessible(page, "the merchant's QR")
    expect(page.get_by_role("img", name=re.compile("Family Mart Okayama"))).to_be_visible()
    payload = page.get_by_label(re.compile("QR payload")).input_value()
    page.get_by_role("link", name="Pay", exact=True).click()
    assert_accessible(page, "pay")
    page.get_by_label("QR code payload").fill(payload)
    page.get_by_label("Amount (yen)").fill("4500")
    page.get_by_role("button", name="Pay", exact=True).click()
    step_up_if_asked(page, world, e164, "Pay")
    expect(page.get_by_text("Paid ¥4,500.")).to_be_visible()
    assert_accessible(page, "paid")

    page.get_by_role("link", name="Home").click()
    expect(page.locator("#balance")).to_have_text("¥15,500")
    page.get_by_role("link", name="Statement").click()
    assert_accessible(page, "statement")
    rows = page.locator("#statement tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("-¥4,500")
    expect(rows.nth(0)).to_contain_text("¥15,500")
    expect(rows.nth(1)).to_contain_text("+¥20,000")
    page.get_by_role("link", name="Notices").click()
    assert_accessible(page, "notices")
    expect(page.get_by_role("cell", name="hanako@example.jp").first).to_be_visible()
