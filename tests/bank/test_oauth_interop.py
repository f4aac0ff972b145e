"""Interoperability: a third-party FAPI client (requests-oauth2client) links and debits.

The library does discovery, PAR, PKCE, ``private_key_jwt`` (its own assertions, audience = the
endpoint URL as RFC 9126 allows), DPoP with server nonces at the AS and the RS, and checks
``state`` and ``iss`` in the authorization response. Its ``requests`` session reaches the bank's
ASGI app through a transport adapter; the holder's login, OTP and consent are posted as forms.
The library signs with wall-clock time, so the bank's manual clock is set to the present.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import jwskate
import pytest
import requests
from fastapi.testclient import TestClient
from requests.adapters import BaseAdapter
from requests_oauth2client import DPoPToken, OAuth2Client, PrivateKeyJwt

from kouza.bank.app import create_bank_app
from kouza.bank.core import core
from kouza.bank.models import Account
from kouza.bank.oauth.clients import oauth_clients
from kouza.bank.runtime import BankRuntime
from kouza.kit.clock import ManualClock
from tests.bank.helpers import make_client
from tests.bank.test_oauth import (
    BASE_URL,
    CLIENT_ID,
    ISSUER,
    REDIRECT_URI,
    consent,
    csrf_of,
    make_ib_holder,
    make_oauth_bank,
)


class AsgiAdapter(BaseAdapter):
    """A ``requests`` transport that hands every request to the bank's ASGI app."""

    def __init__(self, app: TestClient) -> None:
        super().__init__()
        self.app = app

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        answer = self.app.request(
            request.method or "GET",
            request.url or "",
            headers=dict(request.headers),
            content=request.body,
            follow_redirects=False,
        )
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers.update(answer.headers)
        response._content = answer.content
        response.url = request.url or ""
        response.request = request
        response.connection = self  # type: ignore[attr-defined]  # DPoPToken resends through it
        response.encoding = answer.encoding
        return response

    def close(self) -> None:
        """Nothing to release."""


@pytest.fixture
def app(bank_rt: BankRuntime) -> Iterator[TestClient]:
    with TestClient(create_bank_app(bank_rt), base_url=BASE_URL) as client:
        yield client


def test_requests_oauth2client_links_an_account_and_debits_it(
    bank_rt: BankRuntime,
    app: TestClient,
    clock: ManualClock,
) -> None:
    clock.set(datetime.now(UTC))  # the library signs with the wall clock
    make_oauth_bank(bank_rt)
    holder = make_ib_holder(bank_rt)
    client_key = jwskate.Jwk.generate(alg="ES256", kid="wallet-signing-1")
    make_client(bank_rt, CLIENT_ID)
    with bank_rt.db.unit_of_work() as session:
        oauth_clients.register(
            session,
            core.client(session, CLIENT_ID),
            redirect_uris=[REDIRECT_URI],
            jwks={"keys": [client_key.public_jwk().to_dict()]},
        )
    http = requests.Session()
    http.mount(BASE_URL, AsgiAdapter(app))
    document = http.get(f"{ISSUER}/.well-known/oauth-authorization-server").json()
    oauth = OAuth2Client.from_discovery_document(
        document,
        issuer=ISSUER,
        auth=PrivateKeyJwt(CLIENT_ID, client_key),
        session=http,
        redirect_uri=REDIRECT_URI,
        dpop_bound_access_tokens=True,
    )

    request = oauth.authorization_request(
        scope="debit",
        nonce=None,
        holder_name="佐藤 花子",
        holder_name_kana="サトウ ハナコ",
        holder_birth_date="1985-06-15",
        wallet_reference="wallet-77",
        max_per_debit="20000",
    )
    pushed = oauth.pushed_authorization_request(request)
    page = app.get(pushed.uri)
    otp_page = app.post(
        urlsplit(f"{ISSUER}/oauth/authorize/login").path,
        data={
            "csrf_token": csrf_of(page),
            "branch_code": "100",
            "account_number": holder.number,
            "password": holder.password,
        },
    )
    consent_page = app.post(
        f"{ISSUER}/oauth/authorize/otp",
        data={"csrf_token": csrf_of(otp_page), "otp": holder.totp.at(clock.now())},
    )
    callback = consent(_CallbackWallet(app), consent_page)
    response = request.validate_callback(
        f"{REDIRECT_URI}?"
        + "&".join(f"{k}={requests.utils.quote(v, safe='')}" for k, v in callback.items())
    )
    token = oauth.authorization_code(response)

    assert isinstance(token, DPoPToken)
    assert token.kwargs["max_per_debit"] == 20_000
    link_id = token.kwargs["link_id"]
    debit = http.post(
        f"{BASE_URL}/v1/links/{link_id}/debits",
        json={"amount": 15_000},
        headers={"Idempotency-Key": "interop-1"},
        auth=token,
    )
    assert debit.status_code == 201, debit.text
    with bank_rt.db.session() as session:
        assert session.get_one(Account, holder.account_ids[0]).balance == 385_000


class _CallbackWallet:
    """Just enough of the test wallet for :func:`tests.bank.test_oauth.consent`."""

    def __init__(self, api: TestClient) -> None:
        self.api = api
