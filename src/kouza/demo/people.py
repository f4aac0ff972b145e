"""People of the demo, driven over HTTP: wallet customers through the wallet's API (the calls
the app makes, a device key held here), and a holder's browser on the bank's pages.

Every call goes to the served systems; a refusal the builder did not expect stops the build
with the answer's problem document (:class:`~kouza.demo.systems.DemoError`).
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
from cryptography.hazmat.primitives import serialization
from joserfc import jws
from joserfc.jwk import ECKey

from kouza.demo.systems import DemoError, Systems
from kouza.identity.devices import signing_payload
from kouza.identity.ekyc.devca import TestCard

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Customer:
    """A wallet customer as the demo drives them."""

    email: str
    password: str
    token: str
    user_id: uuid.UUID
    wallet_id: uuid.UUID
    phone: str = ""
    device_id: uuid.UUID | None = None
    key: ECKey | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class IbLogin:
    """What a holder types at the bank's internet banking."""

    bank_code: str
    branch: str
    account_number: str
    password: str
    totp_seed: str


class WalletApi:
    """The wallet's HTTP API as the app calls it."""

    def __init__(self, systems: Systems) -> None:
        self.systems = systems
        self.http = httpx.Client(base_url=systems.wallet_url, timeout=60)
        self._keys = 0

    def close(self) -> None:
        self.http.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        who: Customer | None = None,
        key: str | None = None,
        expect: Collection[int] = (200, 201, 202),
    ) -> httpx.Response:
        headers = dict(who.headers) if who else {}
        if key is not None:
            headers["Idempotency-Key"] = key
        answer = self.http.request(method, path, json=body, headers=headers)
        if answer.status_code == 401 and who is not None and 401 not in expect:
            # the story moves on by days: a login (24 h) ends as it would; log in again
            who.token = self.login(who.email, who.password)
            headers |= who.headers
            answer = self.http.request(method, path, json=body, headers=headers)
        if answer.status_code not in expect:
            raise DemoError(f"{method} {path} answered {answer.status_code}: {answer.text}")
        return answer

    def idempotency_key(self) -> str:
        self._keys += 1
        return f"demo-{self._keys}-{uuid.uuid4().hex[:8]}"

    def sign_up(self, email: str, password: str) -> Customer:
        """Sign up, confirm the e-mailed code, log in and open a wallet."""
        self.call("POST", "/v1/auth/signup", body={"email": email, "password": password})
        code = self.systems.wallet_mail["email"].code_for(email)
        self.call("POST", "/v1/auth/verify-email", body={"email": email, "code": code})
        token = self.login(email, password)
        me = self.http.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
        who = Customer(email, password, token, uuid.UUID(me["id"]), uuid.UUID(int=0))
        wallet = self.call("POST", "/v1/wallets", who=who).json()
        who.wallet_id = uuid.UUID(wallet["id"])
        return who

    def login(self, email: str, password: str) -> str:
        answer = self.call("POST", "/v1/auth/login", body={"email": email, "password": password})
        token: str = answer.json()["access_token"]
        return token

    def add_phone(self, who: Customer, phone: str) -> None:
        """Confirm a mobile number by its SMS code, registering a new device key with it."""
        challenge = self.call(
            "POST", "/v1/phone/verification", body={"phone": phone}, who=who
        ).json()
        code = self.systems.wallet_mail["sms"].code_for(challenge["phone"])
        key = ECKey.generate_key("P-256")
        confirmed = self.call(
            "POST",
            f"/v1/phone/verification/{challenge['challenge_id']}/confirm",
            body={
                "code": code,
                "device": {"name": "demo phone", "jwk": key.as_dict(private=False)},
            },
            who=who,
        ).json()
        who.phone, who.key = challenge["phone"], key
        who.device_id = uuid.UUID(confirmed["device"]["id"])

    def signed(self, who: Customer, action: str) -> dict[str, str]:
        """The device's signature over a fresh challenge, as body members."""
        if who.device_id is None or who.key is None:
            return {}
        nonce = self.call(
            "POST", f"/v1/devices/{who.device_id}/challenges", body={"action": action}, who=who
        ).json()["nonce"]
        payload = signing_payload(
            nonce=nonce, action=action, device_id=who.device_id, user_id=who.user_id
        )
        signature = jws.serialize_compact(
            {"alg": "ES256"}, json.dumps(payload).encode(), who.key, algorithms=["ES256"]
        )
        return {"device_id": str(who.device_id), "nonce": nonce, "signature": signature}

    def verify_with_card(self, who: Customer, card: TestCard, kana: str) -> None:
        """eKYC by the JPKI method: the card signs the server's nonce."""
        nonce = self.call("POST", "/v1/ekyc/sessions", body={"method": "jpki"}, who=who).json()[
            "nonce"
        ]
        der = card.certificate.public_bytes(serialization.Encoding.DER)
        self.call(
            "POST",
            "/v1/ekyc/jpki",
            body={
                "certificate": base64.b64encode(der).decode(),
                "signature": base64.b64encode(card.sign_nonce(nonce)).decode(),
                "nonce": nonce,
                "kana_name": kana,
            },
            who=who,
        )

    def link_oauth(self, who: Customer, login: IbLogin, now_totp: str) -> str:
        """Link an account at an OAuth bank: the holder logs in at the bank's pages and
        consents; the app relays the redirect. Returns the link id."""
        started = self.call(
            "POST",
            f"/v1/wallets/{who.wallet_id}/bank-links/oauth",
            body={"bank_code": login.bank_code} | self.signed(who, "bank.link"),
            who=who,
        ).json()
        with BankBrowser(self.systems.bank_url) as browser:
            query = browser.authorize(started["authorization_url"], login, now_totp)
        body: dict[str, Any] = dict(query)
        if who.device_id is not None:
            body["device_id"] = str(who.device_id)
        link = self.call(
            "POST", f"/v1/wallets/{who.wallet_id}/bank-links/oauth/callback", body=body, who=who
        ).json()
        link_id: str = link["id"]
        return link_id

    def link_legacy(
        self, who: Customer, form: dict[str, str], *, expect: Collection[int] = (201,)
    ) -> httpx.Response:
        """The legacy form (account number, PIN, name) as typed on the link page."""
        return self.call(
            "POST",
            f"/v1/wallets/{who.wallet_id}/bank-links",
            body=form | self.signed(who, "bank.link"),
            who=who,
            expect=expect,
        )

    def top_up(self, who: Customer, link_id: str, amount: int) -> dict[str, Any]:
        answer = self.call(
            "POST",
            f"/v1/wallets/{who.wallet_id}/topups",
            body={"link_id": link_id, "amount": amount} | self.signed(who, "charge"),
            who=who,
            key=self.idempotency_key(),
        )
        moved: dict[str, Any] = answer.json()
        return moved

    def pay(self, who: Customer, qr: str, amount: int) -> None:
        self.call(
            "POST",
            f"/v1/wallets/{who.wallet_id}/payments",
            body={"qr": qr, "amount": amount} | self.signed(who, "payment"),
            who=who,
            key=self.idempotency_key(),
        )

    def transfer(self, who: Customer, to: Customer, amount: int, message: str) -> None:
        self.call(
            "POST",
            f"/v1/wallets/{who.wallet_id}/transfers",
            body={"to_wallet_id": str(to.wallet_id), "amount": amount, "message": message}
            | self.signed(who, "transfer"),
            who=who,
            key=self.idempotency_key(),
        )

    def balance(self, who: Customer) -> int:
        wallet = self.call("GET", f"/v1/wallets/{who.wallet_id}", who=who).json()
        balance: int = wallet["balance"]
        return balance


class BankBrowser:
    """A holder's browser on the bank's pages (its own cookie jar)."""

    def __init__(self, bank_url: str) -> None:
        self.bank_url = bank_url
        self.http = httpx.Client(base_url=bank_url, timeout=60)

    def __enter__(self) -> BankBrowser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def _form(self, path: str, page: httpx.Response, **fields: str) -> httpx.Response:
        found = CSRF.search(page.text)
        if found is None:
            raise DemoError(f"the bank's page before {path} has no form: {page.status_code}")
        return self.http.post(path, data={"csrf_token": found.group(1), **fields})

    def authorize(self, url: str, login: IbLogin, code: str) -> dict[str, str]:
        """Log in (password, one-time code) and approve; the redirect's query."""
        base = f"/v1/banks/{login.bank_code}/oauth/authorize"
        page = self.http.get(url)
        page = self._form(
            f"{base}/login",
            page,
            branch_code=login.branch,
            account_number=login.account_number,
            password=login.password,
        )
        page = self._form(f"{base}/otp", page, otp=code)
        answer = self._form(f"{base}/consent", page, decision="approve")
        if answer.status_code != 303:
            raise DemoError(f"the bank did not redirect after consent: {answer.status_code}")
        query = parse_qs(urlsplit(answer.headers["location"]).query)
        if "code" not in query:
            raise DemoError(f"the bank refused the link: {answer.headers['location']}")
        return {name: values[0] for name, values in query.items()}


def totp_code(seed: str, when: float) -> str:
    """The TOTP code of ``seed`` at the Unix time ``when``."""
    return pyotp.TOTP(seed).at(when)
