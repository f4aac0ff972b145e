"""The wallet's OAuth link, wallet → bank in-process over HTTP, and its refusals.

The holder's side is driven as a browser would: the bank's login, OTP and consent pages with
their CSRF tokens and session cookie. Every refusal asserts that no link exists on either side
and no money moved.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import parse_qs

import pytest
from sqlalchemy import func, select, text

from kouza.bank.models import Link
from kouza.linking.keys import b64url_sha256
from kouza.linking.models import BankLinkToken, BankOAuthFlow
from tests.linking.conftest import LEGACY_BANK, OAUTH_BANK, World
from tests.linking.oauth_support import (
    IbHolder,
    approve,
    browser,
    callback,
    forwarded,
    ib_balance,
    ib_holder,
    log_in_at_bank,
    redirect_query,
    register_wallet_at_bank,
    start,
)
from tests.linking.support import (
    Person,
    email_customer,
    links,
    login,
    signed,
    verified_customer,
    wallet_balance,
)


@pytest.fixture
def holder(world: World) -> IbHolder:
    register_wallet_at_bank(world)
    return ib_holder(world)


@pytest.fixture
def hanako(world: World) -> Person:
    """The holder's own wallet: verified with the holder's kana name and birth date."""
    return verified_customer(
        world,
        name="佐藤　花子",
        birth_date=date(1985, 5, 5),
        kana="サトウ ハナコ",
        phone="090-1111-2222",
        e164="+819011112222",
    )


def bank_links(world: World) -> int:
    with world.bank_rt.db.unit_of_work() as session:
        return int(session.scalar(select(func.count()).select_from(Link)) or 0)


def flow_statuses(world: World) -> list[str]:
    with world.rt.db.unit_of_work() as session:
        return list(
            session.scalars(select(BankOAuthFlow.status).order_by(BankOAuthFlow.created_at))
        )


def authorized(world: World, person: Person, holder: IbHolder) -> dict[str, str]:
    """Start, log in at the bank, approve: the bank's redirect query."""
    started = start(world, person)
    assert started.status_code == 201, started.text
    with browser(world) as page:
        return approve(
            page, log_in_at_bank(world, page, started.json()["authorization_url"], holder)
        )


def top_up(world: World, person: Person, link_id: str, amount: int, key: str) -> dict[str, object]:
    answer = world.wallet.post(
        f"/v1/wallets/{person.wallet.id}/topups",
        json={"link_id": link_id, "amount": amount} | signed(world, person, "charge"),
        headers=login(world, person) | {"Idempotency-Key": key},
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, object] = answer.json()
    return body


class TestStrongFlow:
    def test_link_then_top_up_through_the_dpop_bound_token(
        self, world: World, holder: IbHolder, hanako: Person
    ) -> None:
        before = ib_balance(world, holder)
        started = start(world, hanako)
        assert started.status_code == 201, started.text
        url = started.json()["authorization_url"]
        assert url.startswith(
            f"{world.bank_rt.settings.issuer}/v1/banks/{OAUTH_BANK}/oauth/authorize?"
        )
        # the PAR: private_key_jwt, PKCE S256, dpop_jkt, the VERIFIED identity
        (par,) = forwarded(world, "/oauth/par")
        pushed = {k: v[0] for k, v in parse_qs(par.content.decode()).items()}
        assert pushed["client_assertion_type"].endswith("jwt-bearer")
        assert pushed["code_challenge_method"] == "S256"
        # the card's kanji name and birth date decide at the bank; the kana is a second check
        assert (pushed["holder_name"], pushed["holder_birth_date"], pushed["holder_name_kana"]) == (
            "佐藤　花子",
            "1985-05-05",
            "サトウ ハナコ",
        )
        assert pushed["wallet_reference"] == str(hanako.wallet.id) and "client_secret" not in pushed

        with browser(world) as page:
            consent_page = log_in_at_bank(world, page, url, holder)
            # the holder reads the consent long enough for the PAR's DPoP nonce to go stale
            world.clock.advance(seconds=250)
            query = approve(page, consent_page)
        assert query["iss"] == f"{world.bank_rt.settings.issuer}/v1/banks/{OAUTH_BANK}"

        linked = callback(world, hanako, query)
        assert linked.status_code == 201, linked.text
        link = linked.json()
        assert (link["bank_code"], link["status"], link["account_last3"]) == (
            OAUTH_BANK,
            "active",
            "",
        )
        assert (link["max_per_debit"], link["max_30_days"]) == (100_000, 300_000)
        tokens = forwarded(world, "/oauth/token")
        assert len(tokens) == 2  # use_dpop_nonce, then the retry with the bank's nonce
        stale, fresh = (_claims(request.headers["DPoP"]) for request in tokens)
        assert stale["nonce"] != fresh["nonce"]
        assert bank_links(world) == 1 and flow_statuses(world) == ["completed"]

        charged = top_up(world, hanako, link["id"], 30_000, "first")
        assert charged["status"] == "posted" and charged["review"] is None
        (debit,) = forwarded(world, "/debits")
        assert debit.headers["Authorization"].startswith("DPoP ")
        assert _claims(debit.headers["DPoP"])["ath"] == b64url_sha256(
            debit.headers["Authorization"].removeprefix("DPoP ")
        )
        assert before - ib_balance(world, holder) == 30_000
        balance = wallet_balance(world, hanako)
        assert (balance.balance, balance.available, balance.pending_in) == (30_000, 30_000, 0)

    def test_tokens_and_flow_secrets_are_not_stored_in_plain_text(
        self, world: World, holder: IbHolder, hanako: Person
    ) -> None:
        query = authorized(world, hanako, holder)
        linked = callback(world, hanako, query)
        assert linked.status_code == 201, linked.text
        top_up(world, hanako, linked.json()["id"], 1_000, "k")
        access_token = forwarded(world, "/debits")[0].headers["Authorization"].split(" ", 1)[1]
        token_request = parse_qs(forwarded(world, "/oauth/token")[-1].content.decode())
        verifier = token_request["code_verifier"][0]
        with world.rt.db.engine.connect() as connection:
            token_row = " ".join(
                str(value)
                for value in connection.execute(text("SELECT * FROM bank_link_tokens")).one()
            )
            flow_row = " ".join(
                str(value)
                for value in connection.execute(text("SELECT * FROM bank_oauth_flows")).one()
            )
        assert len(access_token) > 20 and access_token not in token_row
        assert verifier not in flow_row and query["state"] not in flow_row
        assert '"d"' not in token_row and '"d"' not in flow_row  # no private JWK in clear
        with world.rt.db.unit_of_work() as session:
            assert session.scalar(select(func.count()).select_from(BankLinkToken)) == 1

    def test_the_dpop_token_alone_is_useless_without_its_key(
        self, world: World, holder: IbHolder, hanako: Person
    ) -> None:
        linked = callback(world, hanako, authorized(world, hanako, holder))
        link = linked.json()
        top_up(world, hanako, link["id"], 1_000, "k")
        stolen = forwarded(world, "/debits")[0]
        before = ib_balance(world, holder)
        replayed = world.bank.post(
            stolen.url.path,
            json={"amount": 50_000},
            headers={
                "Authorization": stolen.headers["Authorization"],
                "DPoP": stolen.headers["DPoP"],
                "Idempotency-Key": "thief",
            },
        )
        assert replayed.status_code == 401
        assert ib_balance(world, holder) == before


def _claims(token: str) -> dict[str, object]:
    import base64
    import json

    payload = token.split(".")[1]
    decoded: dict[str, object] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


class TestRefusals:
    def test_wrong_state_changes_nothing(
        self, world: World, holder: IbHolder, hanako: Person
    ) -> None:
        query = authorized(world, hanako, holder)
        wrong = callback(world, hanako, query | {"state": "not-the-state"})
        assert wrong.status_code == 400 and wrong.json()["error"] == "oauth_state_invalid"
        assert links(world) == [] and bank_links(world) == 0
        assert flow_statuses(world) == ["pending"] and forwarded(world, "/oauth/token") == []
        # the genuine response still completes: the wrong one spent nothing
        assert callback(world, hanako, query).status_code == 201

    def test_another_users_callback_is_refused(
        self, world: World, holder: IbHolder, hanako: Person
    ) -> None:
        query = authorized(world, hanako, holder)
        thief = verified_customer(
            world,
            name="佐藤　花子",
            birth_date=date(1985, 5, 5),
            kana="サトウ ハナコ",
            phone="090-9999-0000",
            e164="+819099990000",
        )
        stolen = callback(world, thief, query)
        assert stolen.status_code == 400 and stolen.json()["error"] == "oauth_state_invalid"
        assert links(world) == [] and bank_links(world) == 0

    def test_wrong_issuer_is_refused_and_spends_the_flow(
        self, world: World, holder: IbHolder, hanako: Person
    ) -> None:
        query = authorized(world, hanako, holder)
        mixed_up = callback(world, hanako, query | {"iss": "https://evil.example/v1/banks/0010"})
        assert mixed_up.status_code == 400
        assert mixed_up.json()["error"] == "oauth_issuer_mismatch"
        missing = callback(world, hanako, {k: v for k, v in query.items() if k != "iss"})
        assert missing.json()["error"] == "oauth_state_invalid"
        assert links(world) == [] and bank_links(world) == 0
        assert flow_statuses(world) == ["failed"] and forwarded(world, "/oauth/token") == []

    def test_a_used_response_cannot_be_replayed(
        self, world: World, holder: IbHolder, hanako: Person
    ) -> None:
        query = authorized(world, hanako, holder)
        assert callback(world, hanako, query).status_code == 201
        again = callback(world, hanako, query)
        assert again.status_code == 400 and again.json()["error"] == "oauth_state_invalid"
        assert len(links(world)) == 1 and bank_links(world) == 1
        assert len(forwarded(world, "/oauth/token")) in (1, 2)

    def test_a_code_injected_into_another_flow_is_refused_by_the_bank(
        self, world: World, holder: IbHolder, hanako: Person
    ) -> None:
        # the code of flow A presented with the state of flow B: B's PKCE verifier and DPoP key
        # do not match the code, so the bank refuses the exchange
        first = authorized(world, hanako, holder)
        second_start = start(world, hanako)
        assert second_start.status_code == 201
        assert flow_statuses(world) == ["pending", "pending"]
        world.clock.advance(seconds=30)  # a fresh TOTP step (each is accepted once)
        with browser(world) as page:
            second = approve(
                page, log_in_at_bank(world, page, second_start.json()["authorization_url"], holder)
            )
        injected = callback(world, hanako, second | {"code": first["code"]})
        assert injected.status_code == 422, injected.text
        assert injected.json()["error"] == "bank_link_refused"
        assert injected.json()["details"]["bank_error"] == "invalid_grant"
        assert links(world) == [] and bank_links(world) == 0

    def test_name_mismatch_is_refused_at_the_bank(self, world: World, holder: IbHolder) -> None:
        other = verified_customer(
            world,
            name="田中　一郎",
            birth_date=date(1985, 5, 5),
            kana="タナカ イチロウ",
            phone="090-3333-4444",
            e164="+819033334444",
        )
        before = ib_balance(world, holder)
        started = start(world, other)
        assert started.status_code == 201, started.text
        with browser(world) as page:
            page_after_login = log_in_at_bank(
                world, page, started.json()["authorization_url"], holder
            )
        assert page_after_login.status_code == 403
        assert "identity mismatch" in page_after_login.text
        back = _return_url(page_after_login.text)
        query = redirect_query(back)
        assert query["error"] == "access_denied"
        refused = callback(world, other, query)
        assert refused.status_code == 422 and refused.json()["error"] == "bank_link_refused"
        assert links(world) == [] and bank_links(world) == 0
        assert ib_balance(world, holder) == before and flow_statuses(world) == ["failed"]

    def test_email_only_wallet_cannot_even_start(self, world: World, holder: IbHolder) -> None:
        attacker = email_customer(world, "attacker@example.net")
        answer = start(world, attacker)
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"] == "verification_level_required"
        assert forwarded(world, "/oauth/par") == [] and flow_statuses(world) == []

    def test_a_legacy_bank_has_no_oauth_flow(self, world: World, hanako: Person) -> None:
        register_wallet_at_bank(world)
        answer = start(world, hanako, bank_code=LEGACY_BANK)
        assert answer.status_code == 403 and answer.json()["error"] == "oauth_not_offered"
        assert forwarded(world, "/oauth/par") == [] and flow_statuses(world) == []

    def test_an_expired_flow_cannot_complete(
        self, world: World, holder: IbHolder, hanako: Person
    ) -> None:
        query = authorized(world, hanako, holder)
        world.clock.advance(seconds=world.rt.settings.bank_oauth_flow_ttl_seconds + 1)
        late = callback(world, hanako, query)
        assert late.status_code == 400 and late.json()["error"] == "oauth_state_invalid"
        assert links(world) == [] and bank_links(world) == 0


def _return_url(page: str) -> str:
    import html
    import re

    found = re.search(r'id="return" href="([^"]+)"', page)
    assert found, page
    return html.unescape(found.group(1))


def test_client_jwks_is_public(world: World) -> None:
    answer = world.wallet.get("/v1/banks/oauth/jwks.json")
    assert answer.status_code == 200
    (key,) = answer.json()["keys"]
    assert key["kty"] == "EC" and "d" not in key and key["alg"] == "ES256"
