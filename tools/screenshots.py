"""Screenshots of every screen, taken in Chromium from a freshly built demo world.

    .venv/bin/python tools/screenshots.py [--out docs/images/screens] [--only console,app,bank]

Builds ``kouza demo`` in a temporary folder (its real attack, cases, customers and holders),
serves the wallet and the bank on free loopback ports, and drives Debian's Chromium through
Playwright as the people of the story would: the analyst signs in to the console with password +
TOTP, the customer uses the wallet pages, the victim opens the bank's notice and its portal. Each
screen is written as a PNG to ``--out`` (README.md and docs/screens.md show them). Japanese text
needs a CJK font in the browser's system (Debian: ``fonts-noto-cjk``).
"""

from __future__ import annotations

import argparse
import re
import socket
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyotp
from PIL import Image
from playwright.sync_api import Page, sync_playwright

from kouza.controls.cases import cases
from kouza.demo.run import open_demo
from kouza.demo.systems import Systems
from kouza.demo.world import DemoWorld

CHROMIUM = "/usr/bin/chromium"
CODE = re.compile(r"\b(\d{6})\b")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Shooter:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.taken: list[str] = []

    def __call__(self, page: Page, name: str, *, full_page: bool = True) -> None:
        page.wait_for_load_state("networkidle")
        path = self.out / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        # a palette of 256 colours keeps flat UI pixels exact and the files a third the size
        with Image.open(path) as shot:
            small = shot.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
        small.save(path, optimize=True)
        self.taken.append(name)
        print(f"  {path}")


def console(page: Page, world: DemoWorld, systems: Systems, shoot: Shooter) -> None:
    """The fraud desk on the demo's attack: overview, queue, the theft's case, the analyst's
    compensation request approved by a second admin, the call centre, rules and reports."""
    url = world.wallet_url
    analyst = next(o for o in world.operators if o.role == "analyst")
    admins = [o for o in world.operators if o.role == "admin"]
    desk = next(o for o in world.operators if o.role == "call_centre")
    page.goto(f"{url}/console/login?lang=en")
    shoot(page, "console-sign-in")
    sign_in_operator(page, url, admins[0].name, admins[0].password, admins[0].totp_seed)
    shoot(page, "console-overview")
    page.goto(f"{url}/console/?lang=ja")
    shoot(page, "console-overview-ja")
    page.goto(f"{url}/console/cases?lang=en")
    shoot(page, "console-cases")
    with systems.rt.db.session() as session:
        case = cases.open_case_of(session, uuid.UUID(world.attack.fraud_wallet_id))
    if case is None:
        raise RuntimeError("the demo's robbed-victim case is not open")
    page.goto(f"{url}/console/cases/{case.id}")
    shoot(page, "console-case")
    for state, why in (
        ("investigating", "looking at the theft"),
        ("confirmed_fraud", "the victim's bank confirmed the debit was not his"),
    ):
        form = page.locator("form[action$='/status']")
        form.locator("select[name=to]").select_option(state)
        form.locator("input[name=reason]").fill(why)
        form.locator("button[type=submit]").click()
    form = page.locator("form[action$='/compensation']")
    form.locator("input[name=reason]").fill("confirmed fraud: restore the victim's account")
    form.locator("button[type=submit]").click()
    page.goto(f"{url}/console/approvals?lang=en")
    shoot(page, "console-approvals-pending")
    page.context.clear_cookies()
    sign_in_operator(page, url, admins[1].name, admins[1].password, admins[1].totp_seed)
    page.goto(f"{url}/console/approvals?lang=en")
    page.locator("form[action$='/approve'] button[type=submit]").first.click()
    shoot(page, "console-approvals-approved")
    page.goto(f"{url}/console/cases/{case.id}")
    shoot(page, "console-case-compensated")
    page.context.clear_cookies()
    sign_in_operator(page, url, analyst.name, analyst.password, analyst.totp_seed)
    page.goto(f"{url}/console/rules?lang=en")
    shoot(page, "console-rules")
    page.goto(f"{url}/console/reports?lang=en")
    shoot(page, "console-reports")
    page.goto(f"{url}/console/reports/regulator?lang=en")
    shoot(page, "console-regulator-report")
    page.context.clear_cookies()
    sign_in_operator(page, url, desk.name, desk.password, desk.totp_seed)
    victim = world.holder(world.attack.victim)
    page.fill("#f-bank_code", victim.bank_code)
    page.fill("#f-branch", victim.branch)
    page.fill("#f-account_number", victim.account_number)
    page.locator("form[action$='/lookup'] button[type=submit]").click()
    shoot(page, "console-call-centre")


def sign_in_operator(page: Page, url: str, name: str, password: str, seed: str) -> None:
    page.goto(f"{url}/console/login?lang=en")
    page.fill("#f-name", name)
    page.fill("#f-password", password)
    page.fill("#f-code", pyotp.TOTP(seed).now())
    page.locator("main button[type=submit]").click()
    page.wait_for_url(lambda current: "/login" not in current)


def customer_app(page: Page, world: DemoWorld, systems: Systems, shoot: Shooter) -> None:
    """The 2020 attack refused, then Ichiro's whole first hour: sign-up to a QR payment."""
    url = world.wallet_url
    email_only = next(c for c in world.customers if c.level == "email")
    victim = world.holder(world.attack.victim)
    sign_in_customer(page, url, email_only.email, email_only.password)
    page.goto(f"{url}/app/banks?lang=en")
    page.fill("#f-bank_code", victim.bank_code)
    page.fill("#f-branch", victim.branch)
    page.fill("#f-account_number", victim.account_number)
    page.fill("#f-holder_name", victim.name_kana)
    page.fill("#f-pin", victim.pin)
    page.locator("form:has(#f-pin) button[type=submit]").click()
    shoot(page, "app-2020-attack-refused")
    page.context.clear_cookies()

    ichiro = next(h for h in world.holders if "Ichiro" in h.label)
    card = next(c for c in world.cards if "Ichiro" in c.label)
    email, phone, e164 = "ichiro.new@example.jp", "090-5555-0199", "+819055550199"
    page.goto(f"{url}/app/signup?lang=en")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill("a sturdy passphrase for kouza")
    shoot(page, "app-sign-up")
    page.get_by_role("button", name="Sign up and get a code").click()
    page.get_by_label("Code from the e-mail").fill(code_sent(systems, "email", email))
    page.get_by_role("button", name="Verify", exact=True).click()
    sign_in_customer(page, url, email, "a sturdy passphrase for kouza")
    page.get_by_role("link", name="Verify your phone").click()
    page.get_by_label("Mobile phone number").fill(phone)
    page.get_by_role("button", name="Text me a code").click()
    page.get_by_label("Code from the SMS").fill(code_sent(systems, "sms", e164))
    shoot(page, "app-phone-and-device-key")
    page.get_by_role("button", name="Confirm and create the key").click()
    page.get_by_role("link", name="Home").click()
    page.get_by_role("link", name="Verify your identity").click()
    page.get_by_label("The card's signing certificate").fill(
        Path(card.certificate_file).read_text()
    )
    page.get_by_label("The development card's key file").fill(Path(card.key_file).read_text())
    page.get_by_label("Card signing password").fill(card.passphrase)
    page.get_by_label("Your name in kana").fill(card.kana)
    shoot(page, "app-ekyc")
    page.get_by_role("button", name="Verify with the card").click()
    page.get_by_role("link", name="Link a bank account").click()
    shoot(page, "app-banks")
    page.fill("#f-oauth_bank_code", ichiro.bank_code)
    page.locator("form:has(#f-oauth_bank_code) button[type=submit]").click()
    step_up_if_asked(page, systems, e164, "Continue to my bank")
    page.wait_for_url(lambda current: current.startswith(world.bank_url))
    page.get_by_label(re.compile("branch", re.I)).fill(ichiro.branch)
    page.get_by_label(re.compile("account number", re.I)).fill(ichiro.account_number)
    page.get_by_label(re.compile("password", re.I)).fill(ichiro.ib_password)
    shoot(page, "bank-ib-login")
    page.get_by_role("button", name=re.compile("next|次へ", re.I)).click()
    page.get_by_label(re.compile("one-time", re.I)).fill(pyotp.TOTP(ichiro.totp_seed).now())
    shoot(page, "bank-ib-one-time-password")
    page.get_by_role("button", name=re.compile("log in|ログイン", re.I)).click()
    if page.get_by_role("radio").count():
        page.get_by_role("radio").first.check()
        page.get_by_role("button", name=re.compile("next|次へ", re.I)).click()
    shoot(page, "bank-ib-consent")
    page.get_by_role("button", name=re.compile("approve|同意する", re.I)).click()
    page.wait_for_url(lambda current: current.startswith(url))
    page.get_by_role("link", name="Top up").click()
    page.get_by_label("Amount (yen)").fill("20000")
    page.get_by_role("button", name="Top up").last.click()
    step_up_if_asked(page, systems, e164, "Top up")
    shoot(page, "app-topped-up")
    merchant = world.merchants[0]
    page.goto(f"{url}/app/merchants/{merchant.merchant_id}/qr?amount=1200")
    shoot(page, "app-merchant-qr")
    payload = page.get_by_label(re.compile("QR payload")).input_value()
    page.get_by_role("link", name="Pay", exact=True).click()
    page.get_by_label(re.compile("QR payload|QR", re.I)).first.fill(payload)
    shoot(page, "app-pay")
    page.get_by_role("button", name="Pay").last.click()
    step_up_if_asked(page, systems, e164, "Pay")
    page.get_by_role("link", name="Statement").click()
    shoot(page, "app-statement")
    page.goto(f"{url}/app/?lang=ja")
    shoot(page, "app-home-ja")


def code_sent(systems: Systems, channel: str, recipient: str) -> str:
    found = CODE.search(systems.wallet_mail[channel].last_to(recipient).body)
    if found is None:
        raise RuntimeError(f"no code in the last {channel} to {recipient}")
    return found.group(1)


def step_up_if_asked(page: Page, systems: Systems, e164: str, submit: str) -> None:
    offer = page.get_by_role("button", name="Text me a code")
    if offer.count() == 0:
        return
    offer.click()
    page.get_by_label("Code from the SMS").fill(code_sent(systems, "sms", e164))
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("button", name=submit).click()


def sign_in_customer(page: Page, url: str, email: str, password: str) -> None:
    page.goto(f"{url}/app/signin?lang=en")
    page.fill("#f-email", email)
    page.fill("#f-password", password)
    page.locator("main button[type=submit]").click()
    page.wait_for_url(lambda current: "/signin" not in current)


def bank(page: Page, world: DemoWorld, systems: Systems, shoot: Shooter) -> None:
    """The robbed holder opens the bank's notice, then the portal."""
    victim = world.holder(world.attack.victim)
    page.goto(world.attack.notice_url)
    shoot(page, "bank-notice")
    portal = f"{world.bank_url}/banks/{victim.bank_code}/portal"
    page.goto(portal)
    shoot(page, "bank-portal-sign-in")
    page.fill("#f-branch_code", victim.branch)
    page.fill("#f-account_number", victim.account_number)
    page.fill("#f-password", victim.ib_password)
    page.locator("main button[type=submit]").click()
    page.fill("#f-otp", pyotp.TOTP(victim.totp_seed).now())
    page.locator("main button[type=submit]").click()
    page.wait_for_url(lambda current: current.rstrip("/").endswith("/portal"))
    shoot(page, "bank-portal-home")
    for suffix in ("links", "notices", "history"):
        page.goto(f"{portal}/{suffix}")
        shoot(page, f"bank-portal-{suffix}")


SCREENS: dict[str, Callable[[Page, DemoWorld, Systems, Shooter], None]] = {
    "console": console,
    "app": customer_app,
    "bank": bank,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images/screens"))
    parser.add_argument("--only", default=",".join(SCREENS))
    options = parser.parse_args(argv)
    options.out.mkdir(parents=True, exist_ok=True)
    shoot = Shooter(options.out)
    wallet_url = f"http://127.0.0.1:{free_port()}"
    bank_url = f"http://127.0.0.1:{free_port()}"
    with tempfile.TemporaryDirectory(prefix="kouza-screens-") as folder:
        with open_demo(
            Path(folder) / "demo", wallet_url=wallet_url, bank_url=bank_url, reset=True
        ) as (systems, world):
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                for name in options.only.split(","):
                    context: Any = browser.new_context(
                        viewport={"width": 1280, "height": 860}, locale="en-US"
                    )
                    print(f"{name}:")
                    SCREENS[name](context.new_page(), world, systems, shoot)
                    context.close()
                browser.close()
    print(f"{len(shoot.taken)} screenshots in {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
