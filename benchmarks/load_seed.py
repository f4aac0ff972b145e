"""Seed the load test's customers through the real services (run by ``benchmarks/load.py``).

Run with the same ``KOUZA_*`` environment as the servers, while the bank API is up (the wallet
reaches it over HTTP as in production). Writes one JSON file: the customers' logins, device keys
(private, in the harness's temporary folder only) and links, the merchants' static QR codes.

Per customer, the way a real one gets there (``src/kouza/sim/driver.py`` does the same for the
simulator):

1. the bank (in-process, its own database) opens an account for a person with internet banking
   and a hardware OTP token (argon2 with small parameters, as the simulator's seeding does: the
   bank's hashes are not what is measured);
2. the wallet: sign-up and the e-mailed code, a wallet, a phone verified by SMS with the app's
   P-256 device key registered, eKYC by a JPKI signature from a development CA's card (the
   servers never see the CA: eKYC is done here);
3. the OAuth link: the wallet pushes the authorization request to the bank over HTTP (the shipped
   rule ``link-soon-after-signup`` asks for an SMS step-up, answered like a person would), the
   person's browser logs in at the bank's pages with the password and the TOTP code and consents,
   and the wallet exchanges the code (DPoP-bound token);
4. an opening balance from the operator float (cash at a store terminal), and one ¥10,000
   top-up through the bank to prove the link moves money.

Each customer acts from their own /24 (the shipped ``many-accounts-from-network`` rule blocks a
network that links five accounts within an hour, as it should).
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jaconv
import pyotp
from joserfc import jws
from joserfc.jwk import ECKey
from sqlalchemy.orm import Session

from kouza.assembly import KouzaRuntime, build_runtime
from kouza.bank.assembly import build_bank_runtime
from kouza.bank.core import BankConfig, CustomerData, core
from kouza.bank.models import AccountType, AuthProfile
from kouza.bank.seed import FAMILY_NAMES, GIVEN_NAMES
from kouza.bank.settings import BankSettings
from kouza.config import Settings
from kouza.errors import KouzaError
from kouza.identity.devices import SensitiveAction, signing_payload
from kouza.identity.ekyc import CrlRevocationChecker
from kouza.identity.ekyc.devca import DevCertificateAuthority, TestCitizen, generate_rsa_key
from kouza.identity.ekyc.result import EkycMethod, Sex
from kouza.identity.models import User
from kouza.identity.proofing import EkycConfiguration, JpkiConfiguration
from kouza.identity.service import identity
from kouza.kit import zengin
from kouza.kit.notify import Message
from kouza.kit.security import password_cost
from kouza.linking.links import Caller
from kouza.linking.models import MovementDirection
from kouza.linking.movements import MovementService, MoveRequest
from kouza.linking.oauth import OAuthCallback, oauth_links
from kouza.linking.policy import DeviceProof
from kouza.wallet.models import MerchantCategory
from kouza.wallet.service import wallets

BANK_CODE = "0010"
"""りそな銀行: an ``oauth`` bank of the embedded table (internet banking + OTP)."""
BANK_NAME = "りそな銀行"
CODE = re.compile(r"\b(\d{6})\b")
OPENING_BALANCE = 200_000
FIRST_TOPUP = 10_000
BANK_BALANCE = 100_000_000
MERCHANT_CATEGORIES = (
    MerchantCategory.CONVENIENCE_STORE,
    MerchantCategory.SUPERMARKET,
    MerchantCategory.RESTAURANT,
    MerchantCategory.TRANSPORT,
    MerchantCategory.DRUGSTORE,
)


class Inbox:
    """The e-mail and SMS senders of the seeding runtimes: the last message per recipient."""

    def __init__(self) -> None:
        self.last: dict[str, Message] = {}

    def send(self, message: Message) -> None:
        self.last[message.recipient] = message

    def code(self, recipient: str) -> str:
        found = CODE.search(self.last[recipient].body)
        if found is None:
            raise RuntimeError(f"no code in the last message to {recipient}")
        return found.group(1)


@dataclass
class Person:
    """A bank customer who becomes a wallet customer."""

    index: int
    kanji: str
    kana: str
    """Half-width Zengin kana (the bank's)."""
    birth_date: date
    branch: str
    number: str
    ib_password: str
    totp_seed: str = ""
    phone: str = ""
    ip: str = ""
    email: str = ""
    password: str = ""
    user_id: uuid.UUID | None = None
    wallet_id: uuid.UUID | None = None
    device: ECKey = field(default_factory=lambda: ECKey.generate_key("P-256"))
    device_id: uuid.UUID | None = None
    link_id: uuid.UUID | None = None


def seed_bank(bank_settings: BankSettings, count: int) -> list[Person]:
    """One ``oauth`` bank with ``count`` customers who have internet banking and a token."""
    bank_rt = build_bank_runtime(bank_settings, senders={"email": Inbox(), "sms": Inbox()})
    home = zengin.branch(BANK_CODE, zengin.home_branch(BANK_CODE))
    people: list[Person] = []
    try:
        with password_cost(time_cost=1, memory_cost=1024), bank_rt.db.unit_of_work() as session:
            bank = core.create_bank(
                session,
                code=BANK_CODE,
                name=BANK_NAME,
                name_kana=zengin.bank(BANK_CODE).kana,
                config=BankConfig(
                    auth_profile=AuthProfile.OAUTH,
                    mandate_max_per_debit=1_000_000,
                    mandate_max_30_days=100_000_000,
                ),
            )
            branch = core.add_branch(session, bank, code=home.code, name=home.name)
            for index in range(count):
                family = FAMILY_NAMES[index % len(FAMILY_NAMES)]
                given = GIVEN_NAMES[(index // len(FAMILY_NAMES)) % len(GIVEN_NAMES)]
                person = Person(
                    index=index,
                    kanji=f"{family[0]} {given[0]}",
                    kana=f"{family[1]} {given[1]}",
                    birth_date=date(1960, 1, 1) + timedelta(days=97 * index),
                    branch=home.code,
                    number=f"{3_000_000 + index:07d}",
                    ib_password=secrets.token_urlsafe(16),
                    phone=f"090{40_000_000 + index:08d}",
                    ip=f"10.{index // 250}.{index % 250}.7",
                    email=f"load{index:05d}@example.jp",
                    password=secrets.token_urlsafe(18),
                )
                customer = core.add_customer(
                    session,
                    bank,
                    CustomerData(
                        name_kanji=person.kanji,
                        name_kana=person.kana,
                        birth_date=person.birth_date,
                        address=f"東京都千代田区千代田{index}",
                        phone="+81" + person.phone[1:],
                        email=f"holder{index:05d}@mail.example.jp",
                    ),
                    internet_banking_password=person.ib_password,
                )
                _, person.totp_seed = core.add_otp_device(session, customer, label="token")
                core.open_account(
                    session,
                    customer,
                    branch=branch,
                    account_type=AccountType.ORDINARY,
                    number=person.number,
                    pin=f"{index % 10_000:04d}",
                    balance=BANK_BALANCE,
                )
                people.append(person)
    finally:
        bank_rt.db.dispose()
    return people


class WalletSeeder:
    """Walks each person through the wallet's onboarding and the bank's OAuth pages."""

    def __init__(self, rt: KouzaRuntime, inbox: Inbox, bank_url: str) -> None:
        self.rt = rt
        self.inbox = inbox
        self.bank_url = bank_url
        now = rt.now()
        self.ca = DevCertificateAuthority.create(now=now, root_key=generate_rsa_key())
        self.card_key = generate_rsa_key()
        rt.ekyc = EkycConfiguration(
            jpki=JpkiConfiguration(
                trust_anchors=self.ca.trust_anchors,
                intermediates=self.ca.intermediates,
                revocation=CrlRevocationChecker([ca.crl(now=now) for ca in self.ca.cas]),
            )
        )
        self.movements = MovementService()

    def user(self, session: Session, person: Person) -> User:
        assert person.user_id is not None
        return session.get_one(User, person.user_id)

    def caller(self, session: Session, person: Person, action: SensitiveAction | None) -> Caller:
        user = self.user(session, person)
        assert person.wallet_id is not None and person.device_id is not None
        proof = None
        if action is not None:
            nonce = identity.issue_device_challenge(session, user, person.device_id, action.value)
            payload = signing_payload(
                nonce=nonce, action=action.value, device_id=person.device_id, user_id=user.id
            )
            signature = jws.serialize_compact(
                {"alg": "ES256"}, json.dumps(payload).encode(), person.device, algorithms=["ES256"]
            )
            proof = DeviceProof(nonce=nonce, signature=signature)
        return Caller(
            user=user,
            wallet_id=person.wallet_id,
            ip=person.ip,
            device_id=person.device_id,
            proof=proof,
        )

    def onboard(self, person: Person) -> None:
        """Sign-up, e-mail code, wallet, phone with the device key, eKYC."""
        db = self.rt.db
        with db.unit_of_work() as session:
            identity.signup(session, email=person.email, password=person.password)
        code = self.inbox.code(person.email)
        with db.unit_of_work() as session:
            person.user_id = identity.verify_email(session, email=person.email, code=code).id
        with db.unit_of_work() as session:
            user = self.user(session, person)
            person.wallet_id = wallets.open_wallet(session, user=user, ip=person.ip).id
            challenge = identity.start_phone_verification(
                session, user, phone=person.phone, ip=person.ip
            )
            challenge_id = challenge.id
        code = self.inbox.code("+81" + person.phone[1:])
        with db.unit_of_work() as session:
            person.device_id = identity.complete_phone_verification(
                session,
                self.user(session, person),
                challenge_id=challenge_id,
                code=code,
                device_jwk=dict(person.device.as_dict(private=False)),
                device_name="phone",
            ).id
        citizen = TestCitizen(
            name=person.kanji,
            address="東京都千代田区1-1",
            birth_date=person.birth_date,
            sex=Sex.FEMALE,
        )
        card = self.ca.issue_card(citizen, now=self.rt.now(), key=self.card_key)
        with db.unit_of_work() as session:
            nonce = identity.start_ekyc(session, self.user(session, person), EkycMethod.JPKI)
        with db.unit_of_work() as session:
            identity.submit_jpki(
                session,
                self.user(session, person),
                certificate=card.certificate_der,
                signature=card.sign_nonce(nonce),
                nonce=nonce,
                kana_name=jaconv.h2z(person.kana, kana=True, ascii=False, digit=False),
            )

    def step_up(self, person: Person, purpose: str) -> None:
        """The SMS step-up a person answers when the risk engine asks for one."""
        with self.rt.db.unit_of_work() as session:
            challenge = identity.start_step_up(
                session, self.user(session, person), purpose, ip=person.ip
            )
        code = self.inbox.code("+81" + person.phone[1:])
        with self.rt.db.unit_of_work() as session:
            identity.complete_step_up(session, self.user(session, person), challenge, code)

    def start_link(self, person: Person) -> str:
        for attempt in range(2):
            try:
                with self.rt.db.unit_of_work() as session:
                    started = oauth_links.start(
                        session, self.caller(session, person, SensitiveAction.LINK_BANK), BANK_CODE
                    )
                    return started.authorization_url
            except KouzaError as refusal:
                if refusal.code != "step_up_required" or attempt:
                    raise
                self.step_up(person, SensitiveAction.LINK_BANK.value)
        raise AssertionError("unreachable")

    def link(self, person: Person) -> None:
        """The OAuth link: PAR by the wallet, login + OTP + consent in the person's browser."""
        url = self.start_link(person)
        base = f"/v1/banks/{BANK_CODE}/oauth/authorize"
        with httpx.Client(base_url=self.bank_url, follow_redirects=True, timeout=30) as browser:
            page = browser.get(url)
            otp_page = browser.post(
                f"{base}/login",
                data={
                    "csrf_token": _csrf(page.text),
                    "branch_code": person.branch,
                    "account_number": person.number,
                    "password": person.ib_password,
                },
            )
            if "one-time password" not in otp_page.text:
                raise RuntimeError(f"the bank refused {person.email}'s internet-banking login")
            consent = browser.post(
                f"{base}/otp",
                data={
                    "csrf_token": _csrf(otp_page.text),
                    "otp": pyotp.TOTP(person.totp_seed).now(),
                },
            )
            answer = browser.post(
                f"{base}/consent",
                data={"csrf_token": _csrf(consent.text), "decision": "approve"},
                follow_redirects=False,
            )
        if answer.status_code != 303:
            raise RuntimeError(f"the bank did not authorize the link: {answer.status_code}")
        query = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}
        with self.rt.db.unit_of_work() as session:
            link = oauth_links.complete(
                session,
                self.caller(session, person, None),
                OAuthCallback(
                    state=query.get("state", ""),
                    code=query.get("code"),
                    iss=query.get("iss"),
                    error=query.get("error"),
                ),
            )
            person.link_id = link.id

    def fund(self, person: Person) -> None:
        """The opening balance from the float, then a first top-up through the bank."""
        assert person.wallet_id is not None and person.link_id is not None
        with self.rt.db.unit_of_work() as session:
            wallets.credit_from_float(
                session,
                wallet_id=person.wallet_id,
                amount=OPENING_BALANCE,
                reason="load test: opening balance",
            )
        with self.rt.db.unit_of_work() as session:
            caller = self.caller(session, person, SensitiveAction.CHARGE)
            session.expunge_all()
        answer = self.movements.move(
            self.rt,
            MoveRequest(
                caller, MovementDirection.DEBIT, person.link_id, FIRST_TOPUP, uuid.uuid4().hex
            ),
        )
        if answer.status != "posted" or answer.review:
            raise RuntimeError(f"the first top-up of {person.email} was not posted: {answer}")

    def merchants(self, count: int) -> list[dict[str, str]]:
        made = []
        with self.rt.db.unit_of_work() as session:
            for index in range(count):
                category = MERCHANT_CATEGORIES[index % len(MERCHANT_CATEGORIES)]
                merchant = wallets.create_merchant(
                    session, name=f"Load shop {index:03d}", category=category
                )
                session.flush()
                qr = wallets.merchant_qr(session, merchant_id=merchant.id)
                made.append({"id": str(merchant.id), "category": category.value, "qr": qr})
        return made


def token(rt: KouzaRuntime, person: Person) -> str:
    """A session from the load generator's address, so that locust's users start signed in
    (all of them logging in at once, 0.27 s of argon2id each, would be a storm no app makes)."""
    with rt.db.unit_of_work() as session:
        return identity.login(session, email=person.email, password=person.password, ip="127.0.0.1")


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if found is None:
        raise RuntimeError("no CSRF token on the bank's page")
    return unescape(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, required=True)
    parser.add_argument("--merchants", type=int, default=20)
    parser.add_argument("--bank-url", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    started = time.monotonic()
    people = seed_bank(BankSettings(), args.customers)
    inbox = Inbox()
    rt = build_runtime(Settings(), senders={"email": inbox, "sms": inbox})
    seeder = WalletSeeder(rt, inbox, args.bank_url)
    try:
        merchants = seeder.merchants(args.merchants)
        for person in people:
            seeder.onboard(person)
            seeder.link(person)
            seeder.fund(person)
            if person.index % 25 == 24:
                print(f"  seeded {person.index + 1}/{len(people)} customers", flush=True)
        customers: list[dict[str, Any]] = [
            {
                "token": token(rt, person),
                "email": person.email,
                "password": person.password,
                "wallet_id": str(person.wallet_id),
                "device_id": str(person.device_id),
                "device_jwk": person.device.as_dict(private=True),
                "link_id": str(person.link_id),
            }
            for person in people
        ]
    finally:
        rt.db.dispose()
    args.out.touch(mode=0o600)
    args.out.write_text(
        json.dumps(
            {
                "customers": customers,
                "merchants": merchants,
                "bank_opening_yen": BANK_BALANCE * len(people),
            }
        )
    )
    print(
        f"seeded {len(people)} linked customers and {len(merchants)} merchants "
        f"in {time.monotonic() - started:.0f}s",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
