"""Builders for OAuth linking tests: the bank registers the wallet, a holder with internet
banking, and a browser that walks the bank's pages as a person would."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
from fastapi.testclient import TestClient

from kouza.bank.app import create_bank_app
from kouza.bank.core import CustomerData, core
from kouza.bank.models import AccountType
from kouza.bank.runtime import BankRuntime
from kouza.linking.keys import client_jwks
from tests.linking.conftest import OAUTH_BANK, World
from tests.linking.support import Person, login, signed

REDIRECT_URI = "https://wallet.kouza.test/bank-callback"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class IbHolder:
    """A customer of the oauth bank with internet banking and a TOTP device."""

    number: str
    name_kana: str
    birth_date: date
    password: str
    totp: pyotp.TOTP


def register_wallet_at_bank(world: World) -> None:
    """Bank staff register the wallet's public client key and redirect URI (over HTTP)."""
    world.rt.settings.bank_oauth_redirect_uri = REDIRECT_URI
    answer = world.bank.put(
        f"/v1/counter/operators/{world.rt.settings.bank_client_id}/oauth-registration",
        json={"redirect_uris": [REDIRECT_URI], "jwks": client_jwks(world.rt)},
        headers=world.staff(),
    )
    assert answer.status_code == 201, answer.text


def ib_holder(
    world: World,
    *,
    number: str = "7000001",
    name_kana: str = "ｻﾄｳ ﾊﾅｺ",
    birth_date: date = date(1985, 5, 5),
    balance: int = 400_000,
) -> IbHolder:
    """An account holder at the oauth bank who can log in to internet banking."""
    return ib_holder_at(
        world.bank_rt, number=number, name_kana=name_kana, birth_date=birth_date, balance=balance
    )


def ib_holder_at(
    bank_rt: BankRuntime,
    *,
    number: str = "7000001",
    name_kana: str = "ｻﾄｳ ﾊﾅｺ",
    birth_date: date = date(1985, 5, 5),
    balance: int = 400_000,
) -> IbHolder:
    """:func:`ib_holder` on a bank runtime of any world (the browser tests' live one too)."""
    password = "correct horse battery"
    with bank_rt.db.unit_of_work() as session:
        bank = core.bank(session, OAUTH_BANK)
        branch = core.branch(session, bank, "100")
        customer = core.add_customer(
            session,
            bank,
            CustomerData(
                name_kanji="佐藤 花子",
                name_kana=name_kana,
                birth_date=birth_date,
                address="岡山県岡山市北区1-1",
                phone="+819011112222",
                email="hanako.ib@example.jp",
            ),
            internet_banking_password=password,
        )
        _, seed = core.add_otp_device(session, customer, label="hardware token")
        core.open_account(
            session,
            customer,
            branch=branch,
            account_type=AccountType.ORDINARY,
            number=number,
            pin="2020",
            balance=balance,
        )
    return IbHolder(number, name_kana, birth_date, password, pyotp.TOTP(seed))


def ib_balance(world: World, holder: IbHolder) -> int:
    with world.bank_rt.db.unit_of_work() as session:
        return core.account(
            session, bank_code=OAUTH_BANK, branch_code="100", number=holder.number
        ).balance


@contextmanager
def browser(world: World) -> Iterator[TestClient]:
    """The holder's browser at the bank (its own cookie jar, the bank's public https URL)."""
    with TestClient(
        create_bank_app(world.bank_rt), base_url=world.bank_rt.settings.issuer
    ) as client:
        yield client


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


def start(world: World, person: Person, bank_code: str = OAUTH_BANK) -> httpx.Response:
    """The app asks the wallet to start an OAuth link (device-signed)."""
    body: dict[str, Any] = {"bank_code": bank_code}
    if person.device is not None:
        body |= signed(world, person, "bank.link")
    answer: httpx.Response = world.wallet.post(
        f"/v1/wallets/{person.wallet.id}/bank-links/oauth", json=body, headers=login(world, person)
    )
    return answer


def log_in_at_bank(world: World, page: TestClient, url: str, holder: IbHolder) -> httpx.Response:
    """Open the authorization URL, log in with password and TOTP; the page that follows."""
    login_page = page.get(url)
    assert login_page.status_code == 200, login_page.text
    otp_page = page.post(
        f"/v1/banks/{OAUTH_BANK}/oauth/authorize/login",
        data={
            "csrf_token": csrf_of(login_page),
            "branch_code": "100",
            "account_number": holder.number,
            "password": holder.password,
        },
    )
    assert "one-time password" in otp_page.text, otp_page.text
    answer: httpx.Response = page.post(
        f"/v1/banks/{OAUTH_BANK}/oauth/authorize/otp",
        data={"csrf_token": csrf_of(otp_page), "otp": holder.totp.at(world.clock.now())},
    )
    return answer


def approve(page: TestClient, consent_page: httpx.Response) -> dict[str, str]:
    """Approve on the consent page; the redirect's query (code, state, iss)."""
    assert "consent" in consent_page.text.lower() or "同意" in consent_page.text
    answer = page.post(
        f"/v1/banks/{OAUTH_BANK}/oauth/authorize/consent",
        data={"csrf_token": csrf_of(consent_page), "decision": "approve"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return redirect_query(answer.headers["location"])


def redirect_query(location: str) -> dict[str, str]:
    assert location.startswith(REDIRECT_URI + "?"), location
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


def callback(world: World, person: Person, query: dict[str, str]) -> httpx.Response:
    """The app relays the bank's redirect to the wallet."""
    body: dict[str, Any] = dict(query)
    if person.device is not None:
        body["device_id"] = str(person.device.id)
    answer: httpx.Response = world.wallet.post(
        f"/v1/wallets/{person.wallet.id}/bank-links/oauth/callback",
        json=body,
        headers=login(world, person),
    )
    return answer


def forwarded(world: World, suffix: str) -> list[httpx.Request]:
    """Requests the wallet sent to the bank whose path ends with ``suffix``."""
    return [r for r in world.transport.requests if r.url.path.endswith(suffix)]
