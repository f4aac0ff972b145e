"""A person at the customer pages over HTTP (TestClient): forms with their CSRF token, the
device key the browser would hold, codes read from the mailbox."""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi.testclient import TestClient

from kouza.api.app import create_app
from kouza.identity.devices import signing_payload
from kouza.kit.notify import MemoryMailbox
from kouza.runtime import Runtime
from tests.identity.support import DeviceKey

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')
CODE = re.compile(r"\b(\d{6})\b")
PASSWORD = "a sturdy passphrase for kouza"


def last_code(mailbox: MemoryMailbox, recipient: str) -> str:
    found = CODE.search(mailbox.last_to(recipient).body)
    assert found is not None
    return found.group(1)


def hidden_fields(page: httpx.Response) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in HIDDEN.findall(page.text)}


def error_shown(page: httpx.Response) -> str:
    """The text of the page's refusal box ("" when none)."""
    found = re.search(
        r'<div class="notice notice-error" role="alert" id="refusal">(.*?)</div>', page.text, re.S
    )
    return html.unescape(re.sub(r"<[^>]+>", " ", found.group(1))) if found else ""


@dataclass
class Visitor:
    """A browser at the wallet pages: its cookies, the last page, its device key."""

    client: TestClient
    mailbox: MemoryMailbox
    page: httpx.Response | None = None
    key: DeviceKey = field(default_factory=DeviceKey.es256)
    device_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None

    def get(self, path: str) -> httpx.Response:
        self.page = self.client.get(path)
        return self.page

    @property
    def csrf(self) -> str:
        assert self.page is not None
        found = CSRF.search(self.page.text)
        assert found, self.page.text
        return found.group(1)

    def post(self, path: str, data: dict[str, str], *, csrf: str | None = None) -> httpx.Response:
        token = self.csrf if csrf is None else csrf
        answer = self.client.post(path, data={**data, "csrf_token": token}, follow_redirects=True)
        self.page = answer
        return answer

    def sign(self, action: str) -> dict[str, str]:
        """What the page's script adds to a form: this browser's signature over a fresh
        challenge from /app/device/challenge."""
        assert self.device_id is not None and self.user_id is not None
        answer = self.client.post(
            "/app/device/challenge",
            data={"action": action, "device_id": str(self.device_id)},
            headers={"X-CSRF-Token": self.csrf},
        )
        assert answer.status_code == 200, answer.text
        issued = answer.json()
        signature = self.key.sign(
            signing_payload(
                nonce=issued["nonce"], action=action, device_id=self.device_id, user_id=self.user_id
            )
        )
        return {"device_id": str(self.device_id), "nonce": issued["nonce"], "signature": signature}

    # --- the onboarding a customer walks ------------------------------------------------

    def sign_up(self, email: str) -> None:
        self.get("/app/signup")
        page = self.post("/app/signup", {"email": email, "password": PASSWORD})
        assert page.status_code == 202, page.text
        page = self.post(
            "/app/verify-email", {"email": email, "code": last_code(self.mailbox, email)}
        )
        assert page.status_code == 200, page.text
        page = self.post("/app/signin", {"email": email, "password": PASSWORD})
        assert page.status_code == 200 and page.url.path == "/app", page.text

    def verify_phone(self, national: str, e164: str) -> None:
        self.get("/app/phone")
        page = self.post("/app/phone", {"phone": national})
        assert page.status_code == 202, page.text
        challenge = hidden_fields(page)["challenge_id"]
        page = self.post(
            "/app/phone/confirm",
            {
                "challenge_id": challenge,
                "phone": national,
                "code": last_code(self.mailbox, e164),
                "device_jwk": json.dumps(self.key.public_jwk),
                "device_name": "test browser",
            },
        )
        assert page.status_code == 200 and "done=phone" in str(page.url), page.text
        listed = re.search(r'data-devices="([^"]*)"', page.text)
        assert listed is not None
        devices = json.loads(html.unescape(listed.group(1)))
        self.device_id = uuid.UUID(devices[0]["id"])
        self.user_id = uuid.UUID(re.search(r'data-user="([^"]+)"', page.text).group(1))  # type: ignore[union-attr]


@contextmanager
def pages(
    rt: Runtime, mailbox: MemoryMailbox, *, base_url: str = "http://testserver"
) -> Iterator[Visitor]:
    with TestClient(create_app(rt), base_url=base_url) as client:
        yield Visitor(client, mailbox)


def form_of(page: httpx.Response, **values: Any) -> dict[str, str]:
    """The page's hidden fields (idempotency key…) with ``values`` typed in."""
    fields = {k: v for k, v in hidden_fields(page).items() if k != "csrf_token"}
    return {**fields, **{k: str(v) for k, v in values.items()}}
