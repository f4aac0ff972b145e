"""The ``oauth`` linking profile, driven by a minimal wallet-side client built on joserfc.

Every refusal asserts its OAuth error and that nothing changed (no link, no money moved, the
code still usable where the RFCs say a failed attempt must not spend it).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey
from sqlalchemy import func, select

from kouza.bank.app import create_bank_app
from kouza.bank.core import CustomerData, core
from kouza.bank.errors import InvalidBankData
from kouza.bank.models import (
    Account,
    AccountType,
    Alert,
    AuthProfile,
    InternetBankingLogin,
    Link,
    OAuthAccessToken,
    OAuthPushedRequest,
)
from kouza.bank.oauth.clients import oauth_clients
from kouza.bank.oauth.proofs import ASSERTION_TYPE, b64url_sha256
from kouza.bank.runtime import BankRuntime
from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox
from tests.bank.helpers import make_bank, make_client

BASE_URL = "https://bank.kouza.test"
BANK = "0129"  # a real bank whose branch 100 is 本店営業部 (codes are checked)
ISSUER = f"{BASE_URL}/v1/banks/{BANK}"
PAR_URL = f"{ISSUER}/oauth/par"
TOKEN_URL = f"{ISSUER}/oauth/token"
REDIRECT_URI = "https://wallet.kouza.test/bank-callback"
CLIENT_ID = "kouza-wallet"
VERIFIER = "v" * 20 + "-verifier-of-forty-three-plus-chars"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class IbHolder:
    """An internet-banking customer of the oauth bank."""

    number: str
    name_kana: str
    birth_date: date
    password: str
    totp: pyotp.TOTP
    email: str
    account_ids: tuple[int, ...]


def make_ib_holder(
    rt: BankRuntime,
    *,
    number: str = "7654321",
    extra_accounts: int = 0,
    name_kana: str = "ｻﾄｳ ﾊﾅｺ",
    birth_date: date = date(1985, 6, 15),
    email: str = "hanako@example.jp",
    pin: str = "2020",
) -> IbHolder:
    """A customer with an IB password, a TOTP device and one or more accounts."""
    with rt.db.unit_of_work() as session:
        bank = core.bank(session, BANK)
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
                email=email,
            ),
            internet_banking_password="correct horse battery",
        )
        _, seed = core.add_otp_device(session, customer, label="hardware token")
        ids = []
        for index in range(1 + extra_accounts):
            account = core.open_account(
                session,
                customer,
                branch=branch,
                account_type=AccountType.ORDINARY,
                number=str(int(number) + index).zfill(7),
                pin=pin,
                balance=400_000,
            )
            ids.append(account.id)
    return IbHolder(
        number, name_kana, birth_date, "correct horse battery", pyotp.TOTP(seed), email, tuple(ids)
    )


def make_oauth_bank(rt: BankRuntime) -> None:
    make_bank(rt, BANK, profile=AuthProfile.OAUTH)


def register(rt: BankRuntime, key: ECKey | OKPKey, client_id: str = CLIENT_ID) -> None:
    make_client(rt, client_id)
    with rt.db.unit_of_work() as session:
        oauth_clients.register(
            session,
            core.client(session, client_id),
            redirect_uris=[REDIRECT_URI],
            jwks={"keys": [key.as_dict(private=False)]},
        )


@dataclass
class Wallet:
    """A minimal FAPI 2.0 client: private_key_jwt, PAR, PKCE, DPoP — all signed by joserfc."""

    api: TestClient
    clock: ManualClock
    client_key: ECKey
    dpop_key: ECKey | OKPKey | RSAKey = field(default_factory=lambda: ECKey.generate_key("P-256"))
    client_id: str = CLIENT_ID
    nonce: str | None = None

    def now(self) -> int:
        return int(self.clock.now().timestamp())

    def assertion(self, **claims: Any) -> str:
        body = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": ISSUER,
            "iat": self.now(),
            "exp": self.now() + 60,
            "jti": uuid.uuid4().hex,
        } | claims
        header = {"alg": "ES256", "kid": self.client_key.kid}
        return jwt.encode(header, body, self.client_key)

    def proof(
        self,
        method: str,
        url: str,
        *,
        key: ECKey | OKPKey | RSAKey | None = None,
        access_token: str | None = None,
        **claims: Any,
    ) -> str:
        signer = key or self.dpop_key
        body: dict[str, Any] = {
            "htm": method,
            "htu": url,
            "iat": self.now(),
            "jti": uuid.uuid4().hex,
        }
        if self.nonce:
            body["nonce"] = self.nonce
        if access_token is not None:
            body["ath"] = b64url_sha256(access_token)
        alg = {"EC": "ES256", "OKP": "Ed25519", "RSA": "PS256"}[signer.key_type]
        header = {"alg": alg, "typ": "dpop+jwt", "jwk": signer.as_dict(private=False)}
        return jwt.encode(header, body | claims, signer, algorithms=[alg])

    def par_fields(self, **changes: str | None) -> dict[str, str]:
        fields: dict[str, str | None] = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "debit",
            "state": "st-123",
            "code_challenge": b64url_sha256(VERIFIER),
            "code_challenge_method": "S256",
            "dpop_jkt": self.dpop_key.thumbprint(),
            "holder_name": "佐藤　花子",
            "holder_name_kana": "さとう　はなこ",
            "holder_birth_date": "1985-06-15",
            "wallet_reference": "wallet-42",
            "max_per_debit": "50000",
            "max_30_days": "100000",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(),
        } | changes
        return {name: value for name, value in fields.items() if value is not None}

    def par(self, **changes: str | None) -> httpx.Response:
        response = self.api.post(PAR_URL, data=self.par_fields(**changes))
        self.nonce = response.headers.get("DPoP-Nonce", self.nonce)
        return response

    def token(
        self, grant_code: str, /, *, proof: str | None = "auto", **changes: str | None
    ) -> httpx.Response:
        fields: dict[str, str | None] = {
            "grant_type": "authorization_code",
            "code": grant_code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": VERIFIER,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(),
        } | changes
        headers = {}
        if proof == "auto":
            proof = self.proof("POST", TOKEN_URL)
        if proof is not None:
            headers["DPoP"] = proof
        return self.api.post(
            TOKEN_URL, headers=headers, data={k: v for k, v in fields.items() if v is not None}
        )

    def debit(
        self,
        token: str,
        link_id: str,
        amount: int,
        *,
        proof: str | None = None,
        key: str = "top-up-1",
    ) -> httpx.Response:
        url = f"{BASE_URL}/v1/links/{link_id}/debits"
        return self.api.post(
            url,
            json={"amount": amount},
            headers={
                "Authorization": f"DPoP {token}",
                "Idempotency-Key": key,
                "DPoP": proof or self.proof("POST", url, access_token=token),
            },
        )


@pytest.fixture
def api(bank_rt: BankRuntime) -> Iterator[TestClient]:
    with TestClient(create_bank_app(bank_rt), base_url=BASE_URL) as client:
        yield client


@pytest.fixture
def client_key() -> ECKey:
    return ECKey.generate_key("P-256", auto_kid=True)


@pytest.fixture
def wallet(bank_rt: BankRuntime, api: TestClient, clock: ManualClock, client_key: ECKey) -> Wallet:
    make_oauth_bank(bank_rt)
    register(bank_rt, client_key)
    return Wallet(api, clock, client_key)


@pytest.fixture
def holder(bank_rt: BankRuntime, wallet: Wallet) -> IbHolder:
    return make_ib_holder(bank_rt)


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


def start(wallet: Wallet, **changes: str | None) -> httpx.Response:
    pushed = wallet.par(**changes)
    assert pushed.status_code == 201, pushed.text
    return wallet.api.get(
        f"{ISSUER}/oauth/authorize",
        params={"client_id": wallet.client_id, "request_uri": pushed.json()["request_uri"]},
    )


def log_in(
    wallet: Wallet,
    page: httpx.Response,
    holder: IbHolder,
    *,
    password: str | None = None,
    otp: str | None = None,
    number: str | None = None,
) -> httpx.Response:
    csrf = csrf_of(page)
    otp_page = wallet.api.post(
        f"{ISSUER}/oauth/authorize/login",
        data={
            "csrf_token": csrf,
            "branch_code": "100",
            "account_number": number or holder.number,
            "password": password or holder.password,
        },
    )
    assert "one-time password" in otp_page.text, otp_page.text
    code = otp or holder.totp.at(wallet.clock.now())
    return wallet.api.post(
        f"{ISSUER}/oauth/authorize/otp", data={"csrf_token": csrf_of(otp_page), "otp": code}
    )


def consent(wallet: Wallet, page: httpx.Response, decision: str = "approve") -> dict[str, str]:
    response = wallet.api.post(
        f"{ISSUER}/oauth/authorize/consent",
        follow_redirects=False,
        data={"csrf_token": csrf_of(page), "decision": decision},
    )
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def authorize(wallet: Wallet, holder: IbHolder, **changes: str | None) -> str:
    """PAR → login → OTP → consent; the authorization code."""
    page = log_in(wallet, start(wallet, **changes), holder)
    return consent(wallet, page)["code"]


def link_count(rt: BankRuntime) -> int:
    with rt.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Link)) or 0)


def balance(rt: BankRuntime, account_id: int) -> int:
    with rt.db.session() as session:
        return session.get_one(Account, account_id).balance


def exchange(wallet: Wallet, code: str) -> dict[str, Any]:
    """Token request, obeying one use_dpop_nonce round as a real client does."""
    response = wallet.token(code)
    if response.status_code == 400 and response.json()["error"] == "use_dpop_nonce":
        wallet.nonce = response.headers["DPoP-Nonce"]
        response = wallet.token(code)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


class TestDiscovery:
    def test_metadata_names_the_fapi_endpoints_and_choices(self, wallet: Wallet) -> None:
        response = wallet.api.get(f"/v1/banks/{BANK}/.well-known/oauth-authorization-server")

        assert response.status_code == 200
        meta = response.json()
        assert meta["issuer"] == ISSUER
        assert meta["pushed_authorization_request_endpoint"] == PAR_URL
        assert meta["token_endpoint"] == TOKEN_URL
        assert meta["authorization_endpoint"] == f"{ISSUER}/oauth/authorize"
        assert meta["require_pushed_authorization_requests"] is True
        assert meta["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
        assert meta["dpop_signing_alg_values_supported"] == ["ES256", "PS256", "Ed25519"]
        assert meta["code_challenge_methods_supported"] == ["S256"]
        assert meta["authorization_response_iss_parameter_supported"] is True
        assert meta["jwks_uri"] == f"{BASE_URL}/.well-known/jwks.json"
        rfc8414 = wallet.api.get(f"/.well-known/oauth-authorization-server/v1/banks/{BANK}")
        assert rfc8414.json() == meta

    def test_a_legacy_bank_has_no_authorization_server(
        self, bank_rt: BankRuntime, api: TestClient
    ) -> None:
        make_bank(bank_rt, "0125")

        response = api.get("/v1/banks/0125/.well-known/oauth-authorization-server")

        assert response.status_code == 404


class TestFullFlow:
    def test_link_then_debit_with_a_dpop_bound_token(
        self,
        bank_rt: BankRuntime,
        wallet: Wallet,
        holder: IbHolder,
        mailbox: MemoryMailbox,
    ) -> None:
        page = log_in(wallet, start(wallet), holder)
        assert page.status_code == 200
        assert 'id="operator">ドコモ口座<' in page.text
        assert "direct debits to top up the wallet" in page.text
        assert 'id="max_per_debit">¥50,000<' in page.text
        assert 'id="max_30_days">¥100,000<' in page.text
        assert f"本店営業部 (100) 普通 {holder.number}" in page.text
        redirect = consent(wallet, page)
        assert redirect["state"] == "st-123"
        assert redirect["iss"] == ISSUER
        assert link_count(bank_rt) == 0

        token = exchange(wallet, redirect["code"])

        assert token["token_type"] == "DPoP"
        assert (token["scope"], token["max_per_debit"], token["max_30_days"]) == (
            "debit",
            50_000,
            100_000,
        )
        notice = mailbox.last_to(holder.email)
        assert "ドコモ口座" in notice.body and "NM-" in notice.body
        with bank_rt.db.session() as session:
            stored = session.scalars(select(OAuthAccessToken)).one()
            assert stored.jkt == wallet.dpop_key.thumbprint()
            assert token["access_token"] not in stored.token_hash
        debit = wallet.debit(token["access_token"], token["link_id"], 30_000)
        assert debit.status_code == 201, debit.text
        assert balance(bank_rt, holder.account_ids[0]) == 370_000

    def test_the_holder_chooses_among_several_accounts(
        self, bank_rt: BankRuntime, wallet: Wallet
    ) -> None:
        holder = make_ib_holder(bank_rt, extra_accounts=1)
        page = log_in(wallet, start(wallet), holder)
        assert "choose the account" in page.text

        page = wallet.api.post(
            f"{ISSUER}/oauth/authorize/account",
            data={"csrf_token": csrf_of(page), "account_id": str(holder.account_ids[1])},
        )

        assert "7654322" in page.text
        token = exchange(wallet, consent(wallet, page)["code"])
        with bank_rt.db.session() as session:
            link = session.get_one(Link, uuid.UUID(token["link_id"]))
            assert link.account_id == holder.account_ids[1]

    def test_the_holder_refuses(
        self, bank_rt: BankRuntime, wallet: Wallet, holder: IbHolder
    ) -> None:
        page = log_in(wallet, start(wallet), holder)

        redirect = consent(wallet, page, decision="deny")

        assert redirect == {
            "error": "access_denied",
            "error_description": "the holder refused",
            "state": "st-123",
            "iss": ISSUER,
        }
        assert link_count(bank_rt) == 0

    def test_one_link_per_account_and_operator(
        self, bank_rt: BankRuntime, wallet: Wallet, holder: IbHolder, clock: ManualClock
    ) -> None:
        exchange(wallet, authorize(wallet, holder))
        clock.advance(seconds=30)  # a new TOTP step: each is accepted once

        redirect = consent(wallet, log_in(wallet, start(wallet), holder))

        assert redirect["error"] == "access_denied"
        assert "already linked" in redirect["error_description"]
        assert link_count(bank_rt) == 1


class TestPushedRequestRefusals:
    @pytest.mark.parametrize(
        ("changes", "error"),
        [
            ({"code_challenge_method": "plain"}, "invalid_request"),
            ({"code_challenge_method": None}, "invalid_request"),
            ({"code_challenge": None}, "invalid_request"),
            ({"redirect_uri": "https://evil.example/cb"}, "invalid_request"),
            ({"response_type": "token"}, "invalid_request"),
            ({"scope": "debit admin"}, "invalid_request"),
            ({"holder_name_kana": "Sato Hanako 佐藤"}, "invalid_request"),
            ({"holder_name": None}, "invalid_request"),
            ({"holder_name": "　"}, "invalid_request"),
            ({"holder_birth_date": "15/06/1985"}, "invalid_request"),
            ({"request": "eyJhbGciOiJub25lIn0.e30."}, "invalid_request"),
            ({"client_assertion": None}, "invalid_client"),
            ({"client_assertion_type": "urn:other"}, "invalid_client"),
            ({"client_secret": "bcs_x"}, "invalid_client"),
        ],
    )
    def test_refused_and_nothing_stored(
        self, bank_rt: BankRuntime, wallet: Wallet, changes: dict[str, str | None], error: str
    ) -> None:
        response = wallet.par(**changes)

        assert response.json()["error"] == error, response.text
        assert response.status_code == (401 if error == "invalid_client" else 400)
        assert set(response.json()) == {"error", "error_description"}
        with bank_rt.db.session() as session:
            assert session.scalar(select(func.count()).select_from(OAuthPushedRequest)) == 0

    def test_tampered_expired_replayed_or_misaddressed_assertions(self, wallet: Wallet) -> None:
        good = wallet.assertion()
        head, body, signature = good.split(".")
        forged = f"{head}.{body}.{signature[:-4]}AAAA"
        other_key = ECKey.generate_key("P-256", auto_kid=True)
        foreign = jwt.encode(
            {"alg": "ES256", "kid": wallet.client_key.kid},
            {
                "iss": CLIENT_ID,
                "sub": CLIENT_ID,
                "aud": ISSUER,
                "exp": wallet.now() + 60,
                "jti": uuid.uuid4().hex,
            },
            other_key,
        )
        cases = [
            forged,
            foreign,
            wallet.assertion(aud="https://elsewhere.test"),
            wallet.assertion(exp=wallet.now() - 1),
            wallet.assertion(exp=wallet.now() + 3600),
            wallet.assertion(iss="someone-else"),
            wallet.assertion(jti=None),
        ]
        for assertion in cases:
            response = wallet.par(client_assertion=assertion)
            assert (response.status_code, response.json()["error"]) == (401, "invalid_client")

        assert wallet.par(client_assertion=good).status_code == 201
        replay = wallet.par(client_assertion=good)
        assert (replay.status_code, replay.json()["error"]) == (401, "invalid_client")

    def test_the_token_and_par_endpoint_urls_are_accepted_audiences(self, wallet: Wallet) -> None:
        for audience in (PAR_URL, TOKEN_URL):
            assert wallet.par(client_assertion=wallet.assertion(aud=audience)).status_code == 201

    def test_a_legacy_bank_offers_no_par(self, bank_rt: BankRuntime, wallet: Wallet) -> None:
        make_bank(bank_rt, "0125")

        response = wallet.api.post("/v1/banks/0125/oauth/par", data=wallet.par_fields())

        assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


class TestJunk:
    @pytest.mark.parametrize("junk", ["a.b.c", "", "é.é.é", "eyJhbGciOiJub25lIn0.e30.", "x" * 5000])
    def test_junk_assertions_and_proofs_get_oauth_errors(
        self, wallet: Wallet, holder: IbHolder, junk: str
    ) -> None:
        code = authorize(wallet, holder)

        by_assertion = wallet.par(client_assertion=junk)
        by_proof = wallet.token(code, proof=junk if junk.isascii() else "é".encode().hex())
        by_nonce = wallet.token(code, proof=wallet.proof("POST", TOKEN_URL, nonce="ñ"))
        by_amount = wallet.par(max_per_debit="²")

        assert by_assertion.json()["error"] == "invalid_client"
        assert by_proof.json()["error"] == "invalid_dpop_proof"
        assert by_nonce.json()["error"] == "use_dpop_nonce"
        assert by_amount.json()["error"] == "invalid_request"


class TestRequestUri:
    def _pushed(self, wallet: Wallet) -> str:
        response = wallet.par()
        assert response.json()["expires_in"] <= 90
        uri: str = response.json()["request_uri"]
        assert uri.startswith("urn:ietf:params:oauth:request_uri:")
        return uri

    def _open(self, wallet: Wallet, uri: str, client_id: str = CLIENT_ID) -> httpx.Response:
        return wallet.api.get(
            f"{ISSUER}/oauth/authorize", params={"client_id": client_id, "request_uri": uri}
        )

    def test_single_use(self, wallet: Wallet) -> None:
        uri = self._pushed(wallet)
        assert self._open(wallet, uri).status_code == 200

        again = self._open(wallet, uri)

        assert again.status_code == 400
        assert "invalid_request_uri" in again.text

    def test_expires_after_sixty_seconds(self, wallet: Wallet, clock: ManualClock) -> None:
        uri = self._pushed(wallet)
        clock.advance(seconds=61)

        assert "invalid_request_uri" in self._open(wallet, uri).text

    def test_belongs_to_its_client(self, bank_rt: BankRuntime, wallet: Wallet) -> None:
        make_client(bank_rt, "other-wallet")
        uri = self._pushed(wallet)

        assert "invalid_request_uri" in self._open(wallet, uri, "other-wallet").text
        assert self._open(wallet, uri).status_code == 200  # the refusal did not spend it


class TestHolderLogin:
    def _failure_text(self, page: httpx.Response) -> str:
        found = re.search(r'<p role="alert"[^>]*>(.*?)</p>', page.text, re.S)
        assert found, page.text
        return found.group(1)

    def test_every_failure_reads_the_same(
        self, bank_rt: BankRuntime, wallet: Wallet, holder: IbHolder
    ) -> None:
        wrong_password = log_in(wallet, start(wallet), holder, password="wrong")
        wrong_otp = log_in(wallet, start(wallet), holder, otp="000000")
        unknown = log_in(wallet, start(wallet), holder, number="9999999")

        texts = {self._failure_text(page) for page in (wrong_password, wrong_otp, unknown)}

        assert len(texts) == 1 and "Login failed" in texts.pop()
        assert link_count(bank_rt) == 0

    def test_three_failures_lock_the_login(
        self, bank_rt: BankRuntime, wallet: Wallet, holder: IbHolder, clock: ManualClock
    ) -> None:
        page = start(wallet)
        for password in ("bad-1", "bad-2", "bad-3"):
            page = log_in(wallet, page, holder, password=password)
        clock.advance(seconds=31)

        page = log_in(wallet, page, holder)

        assert "Login failed" in page.text
        with bank_rt.db.session() as session:
            login = session.get_one(
                InternetBankingLogin,
                session.scalars(select(InternetBankingLogin.customer_id)).one(),
            )
            assert login.failures == 3 and login.locked_at is not None

    def test_an_otp_is_single_use(self, wallet: Wallet, holder: IbHolder) -> None:
        otp = holder.totp.at(wallet.clock.now())
        consent_page = log_in(wallet, start(wallet), holder, otp=otp)
        assert "consent" in consent_page.text

        again = log_in(wallet, start(wallet), holder, otp=otp)

        assert "Login failed" in again.text

    def test_forms_need_the_session_csrf_token(self, wallet: Wallet, holder: IbHolder) -> None:
        page = start(wallet)
        fields = {
            "branch_code": "100",
            "account_number": holder.number,
            "password": holder.password,
        }

        forged = wallet.api.post(
            f"{ISSUER}/oauth/authorize/login", data=fields | {"csrf_token": "forged"}
        )
        wallet.api.cookies.clear()
        no_session = wallet.api.post(
            f"{ISSUER}/oauth/authorize/login", data=fields | {"csrf_token": csrf_of(page)}
        )

        assert forged.status_code == no_session.status_code == 400
        assert "CSRF" in forged.text and "no bank session" in no_session.text

    def test_identity_mismatch_is_refused_and_the_holder_told(
        self,
        bank_rt: BankRuntime,
        wallet: Wallet,
        holder: IbHolder,
    ) -> None:
        page = log_in(wallet, start(wallet, holder_name_kana="ヤマダ タロウ"), holder)

        assert page.status_code == 403
        assert "does not match this account" in page.text
        back = re.search(r'id="return" href="([^"]+)"', page.text)
        assert back is not None
        query = parse_qs(urlsplit(back.group(1).replace("&amp;", "&")).query)
        assert (query["error"], query["state"], query["iss"]) == (
            ["access_denied"],
            ["st-123"],
            [ISSUER],
        )
        assert link_count(bank_rt) == 0
        with bank_rt.db.session() as session:
            assert session.scalars(select(Alert.kind)).all() == ["oauth_identity_mismatch"]

    def test_a_wrong_birth_date_is_a_mismatch_too(
        self, bank_rt: BankRuntime, wallet: Wallet, holder: IbHolder
    ) -> None:
        page = log_in(wallet, start(wallet, holder_birth_date="1985-06-16"), holder)

        assert page.status_code == 403
        assert link_count(bank_rt) == 0

    def test_the_right_kana_does_not_save_another_cards_name(
        self,
        bank_rt: BankRuntime,
        wallet: Wallet,
        holder: IbHolder,
    ) -> None:
        # a mule's card (山田 太郎) with her reading and birth date typed in: refused
        page = log_in(wallet, start(wallet, holder_name="山田　太郎"), holder)

        assert page.status_code == 403
        assert link_count(bank_rt) == 0

    def test_the_cards_name_without_a_kana_reading_is_enough(
        self,
        bank_rt: BankRuntime,
        wallet: Wallet,
        holder: IbHolder,
    ) -> None:
        page = log_in(wallet, start(wallet, holder_name="佐藤花子", holder_name_kana=None), holder)

        assert page.status_code == 200 and "consent" in page.text.lower()


class TestTokenRefusals:
    @pytest.fixture
    def code(self, wallet: Wallet, holder: IbHolder) -> str:
        return authorize(wallet, holder)  # the PAR response taught the wallet a nonce

    def _refused(self, bank_rt: BankRuntime, response: httpx.Response, error: str) -> None:
        assert (response.status_code, response.json()["error"]) == (400, error), response.text
        assert response.headers["Cache-Control"] == "no-store"
        assert link_count(bank_rt) == 0

    def test_a_missing_or_stale_nonce_gets_a_fresh_one(
        self,
        bank_rt: BankRuntime,
        wallet: Wallet,
        holder: IbHolder,
        clock: ManualClock,
    ) -> None:
        code = authorize(wallet, holder)
        wallet.nonce = None

        first = wallet.token(code)

        self._refused(bank_rt, first, "use_dpop_nonce")
        wallet.nonce = first.headers["DPoP-Nonce"]
        clock.advance(seconds=50)
        assert wallet.token(code).status_code == 200
        clock.advance(seconds=300)
        stale = wallet.token("x" * 43)
        assert (stale.status_code, stale.json()["error"]) == (400, "use_dpop_nonce")
        assert stale.headers["DPoP-Nonce"] != wallet.nonce

    def test_each_bad_request_is_refused_and_the_code_survives(
        self,
        bank_rt: BankRuntime,
        wallet: Wallet,
        code: str,
    ) -> None:
        other_key = ECKey.generate_key("P-256")
        proof = wallet.proof("POST", TOKEN_URL)
        head, body, signature = proof.split(".")
        cases: list[tuple[dict[str, Any], str]] = [
            ({"code_verifier": "w" * 43}, "invalid_grant"),
            ({"redirect_uri": REDIRECT_URI + "/other"}, "invalid_grant"),
            ({"code": "not-a-code"}, "invalid_grant"),
            ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
            ({"proof": None}, "invalid_dpop_proof"),
            ({"proof": f"{head}.{body}.{signature[:-4]}AAAA"}, "invalid_dpop_proof"),
            ({"proof": wallet.proof("POST", f"{ISSUER}/oauth/par")}, "invalid_dpop_proof"),
            ({"proof": wallet.proof("GET", TOKEN_URL)}, "invalid_dpop_proof"),
            (
                {"proof": wallet.proof("POST", TOKEN_URL, iat=wallet.now() - 300)},
                "invalid_dpop_proof",
            ),
            ({"proof": wallet.proof("POST", TOKEN_URL, key=other_key)}, "invalid_grant"),
        ]
        for changes, error in cases:
            self._refused(bank_rt, wallet.token(code, **changes), error)

        assert wallet.token(code, proof=proof).status_code == 200
        assert wallet.token(code, proof=proof).json()["error"] in (
            "invalid_dpop_proof",
            "invalid_grant",
        )

    def test_query_and_fragment_are_ignored_in_htu(self, wallet: Wallet, code: str) -> None:
        proof = wallet.proof("POST", TOKEN_URL + "?x=1#frag")

        assert wallet.token(code, proof=proof).status_code == 200

    def test_a_replayed_proof_is_refused(
        self, bank_rt: BankRuntime, wallet: Wallet, holder: IbHolder, code: str
    ) -> None:
        proof = wallet.proof("POST", TOKEN_URL)
        assert wallet.token(code, proof=proof).status_code == 200
        second = authorize(wallet, make_ib_holder(bank_rt, number="1111111", email="x@example.jp"))

        response = wallet.token(second, proof=proof)

        assert response.json()["error"] == "invalid_dpop_proof"

    def test_an_expired_code(
        self, bank_rt: BankRuntime, wallet: Wallet, code: str, clock: ManualClock
    ) -> None:
        clock.advance(seconds=61)

        self._refused(bank_rt, wallet.token(code), "invalid_grant")

    def test_a_second_use_revokes_the_tokens_issued_from_the_code(
        self,
        bank_rt: BankRuntime,
        wallet: Wallet,
        code: str,
        holder: IbHolder,
    ) -> None:
        token = wallet.token(code).json()

        again = wallet.token(code)

        assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")
        debit = wallet.debit(token["access_token"], token["link_id"], 1_000)
        assert (debit.status_code, debit.json()["error"]) == (401, "invalid_token")
        assert balance(bank_rt, holder.account_ids[0]) == 400_000

    def test_a_code_needs_its_client(self, bank_rt: BankRuntime, wallet: Wallet, code: str) -> None:
        other_key = ECKey.generate_key("P-256", auto_kid=True)
        register(bank_rt, other_key, "other-wallet")
        other = Wallet(
            wallet.api, wallet.clock, other_key, wallet.dpop_key, "other-wallet", wallet.nonce
        )

        self._refused(bank_rt, other.token(code), "invalid_grant")
        assert wallet.token(code).status_code == 200


class TestDebitsWithTheAccessToken:
    @pytest.fixture
    def token(self, wallet: Wallet, holder: IbHolder) -> dict[str, Any]:
        token = exchange(wallet, authorize(wallet, holder))
        first = wallet.debit(token["access_token"], token["link_id"], 1_000, key="warm-up")
        assert first.status_code == 201, first.text  # the token nonce is the resource nonce
        return token

    def _refused(
        self,
        bank_rt: BankRuntime,
        holder: IbHolder,
        response: httpx.Response,
        error: str,
        expected_balance: int = 399_000,
    ) -> None:
        assert (response.status_code, response.json()["error"]) == (401, error), response.text
        assert response.headers["WWW-Authenticate"].startswith(f'DPoP error="{error}"')
        assert balance(bank_rt, holder.account_ids[0]) == expected_balance

    def test_proofs_that_do_not_fit_are_refused(
        self, bank_rt: BankRuntime, wallet: Wallet, holder: IbHolder, token: dict[str, Any]
    ) -> None:
        access, link_id = token["access_token"], token["link_id"]
        url = f"{BASE_URL}/v1/links/{link_id}/debits"
        thief = ECKey.generate_key("P-256")
        used = wallet.proof("POST", url, access_token=access)
        assert wallet.debit(access, link_id, 1_000, proof=used, key="k0").status_code == 201
        cases = [
            wallet.proof("POST", url, key=thief, access_token=access),
            used,
            wallet.proof("POST", f"{BASE_URL}/v1/links/{link_id}/credits", access_token=access),
            wallet.proof("PUT", url, access_token=access),
            wallet.proof("POST", url),
            wallet.proof("POST", url, access_token="another-token"),
        ]
        for index, proof in enumerate(cases):
            self._refused(
                bank_rt,
                holder,
                wallet.debit(access, link_id, 1_000, proof=proof, key=f"k{index + 1}"),
                "invalid_dpop_proof",
                expected_balance=398_000,
            )

    def test_the_token_is_for_its_link_only(
        self, bank_rt: BankRuntime, wallet: Wallet, holder: IbHolder, token: dict[str, Any]
    ) -> None:
        response = wallet.debit(token["access_token"], str(uuid.uuid4()), 1_000, key="k9")

        self._refused(bank_rt, holder, response, "invalid_token")

    def test_a_stale_nonce_is_answered_with_a_new_one(
        self,
        bank_rt: BankRuntime,
        wallet: Wallet,
        holder: IbHolder,
        token: dict[str, Any],
        clock: ManualClock,
    ) -> None:
        clock.advance(seconds=300)

        response = wallet.debit(token["access_token"], token["link_id"], 1_000, key="k7")

        self._refused(bank_rt, holder, response, "use_dpop_nonce")
        assert response.headers["DPoP-Nonce"]

    def test_a_revoked_link_kills_the_token(
        self, bank_rt: BankRuntime, wallet: Wallet, holder: IbHolder, token: dict[str, Any]
    ) -> None:
        revoked = wallet.api.post(
            f"/v1/counter/links/{token['link_id']}/revoke",
            json={"reason": "holder asked"},
            headers={"Authorization": "Bearer staff-test-token"},
        )
        assert revoked.status_code == 200

        response = wallet.debit(token["access_token"], token["link_id"], 1_000, key="k8")

        self._refused(bank_rt, holder, response, "invalid_token")


class TestTheIncidentOnAnOauthBank:
    def test_account_number_name_and_pin_do_not_link(
        self, bank_rt: BankRuntime, wallet: Wallet
    ) -> None:
        victim = make_ib_holder(bank_rt, pin="4321")
        _, secret = make_client(bank_rt, "attacker-wallet-operator")
        legacy = wallet.api.post(
            f"/v1/banks/{BANK}/legacy-links",
            auth=("attacker-wallet-operator", secret),
            json={
                "branch_code": "100",
                "account_type": "ordinary",
                "account_number": victim.number,
                "holder_kana": victim.name_kana,
                "pin": "4321",
                "wallet_reference": "fraud-wallet",
            },
        )
        # the attacker's own e-mail-only wallet pushes the victim's name (it knows it) …
        page = log_in(wallet, start(wallet), victim, password="4321", otp="123456")
        # … and, knowing no internet-banking password and no OTP, cannot get past the login

        assert (legacy.status_code, legacy.json()["error"]) == (403, "legacy_form_not_offered")
        assert "Login failed" in page.text
        assert "consent" not in page.text
        assert link_count(bank_rt) == 0
        assert balance(bank_rt, victim.account_ids[0]) == 400_000


class TestAlgorithmsAndRegistration:
    @pytest.mark.parametrize(
        "make_key",
        [lambda: OKPKey.generate_key("Ed25519"), lambda: RSAKey.generate_key(2048)],
        ids=["Ed25519", "PS256"],
    )
    def test_dpop_keys_of_every_advertised_algorithm(
        self,
        bank_rt: BankRuntime,
        wallet: Wallet,
        holder: IbHolder,
        make_key: Any,
    ) -> None:
        wallet.dpop_key = make_key()

        token = exchange(wallet, authorize(wallet, holder))

        debit = wallet.debit(token["access_token"], token["link_id"], 2_000)
        assert debit.status_code == 201, debit.text
        assert balance(bank_rt, holder.account_ids[0]) == 398_000

    def test_none_and_symmetric_algorithms_are_refused(
        self, wallet: Wallet, holder: IbHolder
    ) -> None:
        code = authorize(wallet, holder)
        body = {
            "htm": "POST",
            "htu": TOKEN_URL,
            "iat": wallet.now(),
            "jti": uuid.uuid4().hex,
            "nonce": wallet.nonce,
        }
        secret = OctKey.generate_key(256)
        hs256 = jwt.encode(
            {"alg": "HS256", "typ": "dpop+jwt", "jwk": secret.as_dict(private=False)}, body, secret
        )

        response = wallet.token(code, proof=hs256)

        assert response.json()["error"] == "invalid_dpop_proof"

    def test_staff_register_a_client_whose_keys_the_bank_fetches(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        clock: ManualClock,
    ) -> None:
        make_oauth_bank(bank_rt)
        make_client(bank_rt, "uri-wallet")
        key = ECKey.generate_key("P-256", auto_kid=True)
        fetched: list[str] = []

        def serve_jwks(request: httpx.Request) -> httpx.Response:
            fetched.append(str(request.url))
            return httpx.Response(200, json={"keys": [key.as_dict(private=False)]})

        bank_rt.webhook_transport = httpx.MockTransport(serve_jwks)
        url = "/v1/counter/operators/uri-wallet/oauth-registration"
        body = {"redirect_uris": [REDIRECT_URI], "jwks_uri": "https://wallet.test/jwks.json"}
        unauthenticated = api.put(url, json=body)
        registered = api.put(url, json=body, headers={"Authorization": "Bearer staff-test-token"})
        wallet = Wallet(api, clock, key, client_id="uri-wallet")

        assert unauthenticated.status_code == 401
        assert registered.status_code == 201, registered.text
        assert wallet.par().status_code == 201
        assert fetched == ["https://wallet.test/jwks.json"]

    def test_registration_refuses_private_keys(self, bank_rt: BankRuntime) -> None:
        make_oauth_bank(bank_rt)
        make_client(bank_rt)
        private = ECKey.generate_key("P-256").as_dict(private=True)

        with bank_rt.db.unit_of_work() as session, pytest.raises(InvalidBankData):
            oauth_clients.register(
                session,
                core.client(session, CLIENT_ID),
                redirect_uris=[REDIRECT_URI],
                jwks={"keys": [private]},
            )
