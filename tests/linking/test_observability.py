"""Observability across wallet → bank: the fraud desk's counters where links and top-ups
happen, one trace over both systems, the wallet's request id in the bank's log lines — and no
secret in any log line of a whole customer journey."""

from __future__ import annotations

import contextvars
import io
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import select

from kouza.api.app import create_app
from kouza.identity.models import Device, User
from kouza.kit.logs import configure_logging, reset_logging
from kouza.kit.metrics import sample_value
from kouza.kit.tracing import use_tracer_provider
from kouza.risk.service import risk
from kouza.wallet.models import Wallet
from tests.identity.support import DeviceKey
from tests.linking.conftest import LEGACY_BANK, OAUTH_BANK, STAFF_TOKEN, World, is_transfer
from tests.linking.oauth_support import (
    approve,
    browser,
    csrf_of,
    forwarded,
    ib_holder,
    register_wallet_at_bank,
)
from tests.linking.support import (
    Person,
    charge,
    email_customer,
    link_body,
    linked_under_2019,
    login,
    policy_2019,
    record_ekyc,
    signed,
)

REVIEW_BIG = (
    "version: t\nrules:\n  - id: review-big\n"
    "    events: [topup]\n    when: event.amount >= 100000\n"
    "    outcome: review\n"
)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Every log line of this process — kouza's, uvicorn's, httpx's, SQLAlchemy's — as the
    servers write them (JSON, DEBUG and up)."""
    stream = io.StringIO()
    configure_logging(log_format="json", level="DEBUG", stream=stream)
    yield stream
    reset_logging()


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


class TestCounters:
    def test_a_refused_link_counts_its_bank_and_reason(self, world: World) -> None:
        policy_2019(world)
        person = email_customer(world)
        headers = login(world, person)
        url = f"/v1/wallets/{person.wallet.id}/bank-links"
        refused = world.wallet.post(url, json=link_body(world.victim, pin="0000"), headers=headers)
        assert refused.status_code == 422, refused.text
        reason = refused.json()["error"]
        linked = world.wallet.post(url, json=link_body(world.victim), headers=headers)
        assert linked.status_code == 201, linked.text

        metrics = world.rt.metrics
        legacy = {"bank": LEGACY_BANK, "method": "legacy"}
        assert metrics.link_attempts.value(**legacy) == 2
        assert metrics.link_refusals.value(**legacy, reason=reason) == 1
        assert metrics.links_created.value(**legacy) == 1
        text = world.wallet.get("/metrics").text
        assert sample_value(text, "kouza_link_refusals_total", legacy | {"reason": reason}) == 1
        # the bank counts the true reason, which the wallet is never told
        bank = world.bank_rt.metrics
        assert bank.legacy_link_refusals.value(bank=LEGACY_BANK, reason="wrong_pin") == 1
        assert bank.legacy_link_attempts.value(bank=LEGACY_BANK) == 2

    def test_an_unknown_bank_code_is_not_a_label(self, world: World) -> None:
        policy_2019(world)
        person = email_customer(world)
        body = link_body(world.victim, bank_code="9999")
        answer = world.wallet.post(
            f"/v1/wallets/{person.wallet.id}/bank-links", json=body, headers=login(world, person)
        )
        assert answer.status_code >= 400
        assert world.rt.metrics.link_attempts.value(bank="other", method="legacy") == 1
        assert '"9999"' not in world.wallet.get("/metrics").text

    def test_top_ups_count_posted_held_refused_and_unknown(self, world: World) -> None:
        linked = linked_under_2019(world)
        risk.load_rules(world.rt, REVIEW_BIG, source="test.yaml")
        assert charge(world, linked, 30_000, "posted").status_code == 201
        held = charge(world, linked, 100_000, "held")
        assert held.status_code == 201 and held.json()["review"] == "held"
        assert charge(world, linked, 150_000, "over-mandate").status_code == 422
        world.transport.lose_response = is_transfer
        assert charge(world, linked, 1_000, "lost").status_code >= 500

        topups = world.rt.metrics.topups
        for outcome in ("posted", "held", "refused", "unknown"):
            assert topups.value(bank=LEGACY_BANK, outcome=outcome) == 1, outcome
        text = world.wallet.get("/metrics").text
        # every attempt is recorded once with its decision, refused ones too: the rule fired
        # on the held 100,000 and on the refused 150,000
        fired = {"rule": "review-big", "outcome": "review", "shadow": "false"}
        assert sample_value(text, "kouza_risk_rules_fired_total", fired) == 2
        decisions = "kouza_risk_decisions_total"
        assert sample_value(text, decisions, {"event": "topup", "outcome": "review"}) == 2
        assert sample_value(text, decisions, {"event": "topup", "outcome": "allow"}) == 2
        assert world.bank_rt.metrics.debits.value(outcome="executed") == 3


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """This process traces into memory (set before the world is built, as a server would)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    use_tracer_provider(provider)
    yield exporter
    use_tracer_provider(None)


def _route(span: ReadableSpan) -> str:
    return str((span.attributes or {}).get("http.route", ""))


def test_one_trace_runs_from_the_wallet_through_the_bank(
    spans: InMemorySpanExporter, world: World
) -> None:
    # ``spans`` comes first: tracing is on before the world (its apps, engines, clients) exists
    policy_2019(world)
    person = email_customer(world)
    bank_request = world.transport.bank.request

    def as_another_process(*args: Any, **kwargs: Any) -> httpx.Response:
        # the bank sees nothing of the wallet's in-process context, only the headers
        answer: httpx.Response = contextvars.Context().run(bank_request, *args, **kwargs)
        return answer

    world.transport.bank.request = as_another_process  # type: ignore[method-assign]
    headers = login(world, person)
    spans.clear()
    answer = world.wallet.post(
        f"/v1/wallets/{person.wallet.id}/bank-links", json=link_body(world.victim), headers=headers
    )
    assert answer.status_code == 201, answer.text

    finished = spans.get_finished_spans()
    servers = [span for span in finished if span.kind is SpanKind.SERVER]
    (wallet,) = [s for s in servers if _route(s) == "/v1/wallets/{wallet_id}/bank-links"]
    (bank,) = [s for s in servers if _route(s) == "/v1/banks/{bank_code}/legacy-links"]
    assert wallet.context is not None and bank.context is not None and bank.parent is not None
    assert bank.context.trace_id == wallet.context.trace_id
    (call,) = [
        s
        for s in finished
        if s.kind is SpanKind.CLIENT
        and s.context is not None
        and s.context.span_id == bank.parent.span_id
    ]
    assert call.context is not None and call.context.trace_id == wallet.context.trace_id
    (sent,) = forwarded(world, "/legacy-links")
    assert sent.headers["traceparent"].split("-")[1] == format(wallet.context.trace_id, "032x")
    # every statement, in the wallet's database and in the bank's, is a span of the trace
    statements = [s for s in finished if "db.system" in str(s.attributes)]
    assert statements and all(
        s.context is not None and s.context.trace_id == wallet.context.trace_id for s in statements
    )
    at_the_bank = {bank.context.span_id}
    for span in finished:  # children end before their parents: walk from the end
        if span.parent is not None and span.parent.span_id in at_the_bank and span.context:
            at_the_bank.add(span.context.span_id)
    bank_statements = [s for s in statements if s.context and s.context.span_id in at_the_bank]
    assert 0 < len(bank_statements) < len(statements)


def test_the_banks_log_lines_carry_the_wallets_request_id(
    world: World, log_lines: io.StringIO
) -> None:
    policy_2019(world)
    person = email_customer(world)
    answer = world.wallet.post(
        f"/v1/wallets/{person.wallet.id}/bank-links",
        json=link_body(world.victim),
        headers=login(world, person) | {"X-Request-ID": "wallet-req-7"},
    )
    assert answer.status_code == 201, answer.text
    assert answer.headers["X-Request-ID"] == "wallet-req-7"
    (sent,) = forwarded(world, "/legacy-links")
    assert sent.headers["X-Request-ID"] == "wallet-req-7"

    access = [line for line in parsed(log_lines) if line["logger"] == "kouza.access"]
    routes = {line["route"]: line for line in access}
    wallet = routes["/v1/wallets/{wallet_id}/bank-links"]
    bank = routes["/v1/banks/{bank_code}/legacy-links"]
    assert wallet["request_id"] == bank["request_id"] == "wallet-req-7"
    assert (wallet["status"], bank["status"]) == (201, 201)


# --- no secret in any log line -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """An app behind a real uvicorn server on a loopback port, in a thread (its log lines are
    uvicorn's real ones)."""

    def __init__(self, app: Any) -> None:
        self.port = _free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            log_level="debug",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> httpx.Client:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        return self.client

    def __exit__(self, *_exc: object) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=20)


class Settled:
    """An HTTP client of the served wallet whose calls return once the server has finished
    them: FastAPI sends the answer before a request's unit of work commits, and the server's
    access line for the request (its ``X-Request-ID``) is written after."""

    def __init__(self, client: httpx.Client, log_lines: io.StringIO) -> None:
        self.client = client
        self.log_lines = log_lines

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        answer = self.client.post(url, **kwargs)
        mark = f'"request_id": "{answer.headers["X-Request-ID"]}"'
        deadline = time.monotonic() + 20
        while not any(
            mark in line and '"logger": "kouza.access"' in line
            for line in self.log_lines.getvalue().splitlines()
        ):
            assert time.monotonic() < deadline, f"{url} never finished"
            time.sleep(0.01)
        return answer


def _code(world: World, recipient: str) -> str:
    """The six-digit code last sent to ``recipient`` (a real server delivers the outbox once
    the unit of work has committed, which may be just after the answer left)."""
    deadline = time.monotonic() + 20
    while True:
        try:
            body = world.mailbox.last_to(recipient).body
            break
        except LookupError:
            assert time.monotonic() < deadline, f"nothing was sent to {recipient}"
            time.sleep(0.02)
    found = re.search(r"\b(\d{6})\b", body)
    assert found is not None, body
    return found.group(1)


def _record_ekyc(world: World, user_id: uuid.UUID) -> None:
    """The user's card said 佐藤　花子, born 1985-05-05."""
    record_ekyc(
        world, user_id, name="佐藤　花子", kana="サトウ ハナコ", birth_date=date(1985, 5, 5)
    )


def _person(world: World, user_id: uuid.UUID, wallet_id: str, key: DeviceKey) -> Person:
    with world.rt.db.session() as session:
        user = session.get_one(User, user_id)
        wallet = session.get_one(Wallet, uuid.UUID(wallet_id))
        device = session.scalars(select(Device).where(Device.user_id == user_id)).one()
    return Person(user, wallet, device, key)


def _secret_pattern(secret: str) -> re.Pattern[str]:
    """A short numeric secret (PIN, six-digit code) as a token of its own, so that it is not
    found inside a UUID group, a timestamp's microseconds or a longer number."""
    if secret.isdigit():
        return re.compile(rf"(?<![\w\-.]){re.escape(secret)}(?![\w\-])")
    return re.compile(re.escape(secret))


def test_no_secret_reaches_any_log_line_of_a_whole_journey(
    world: World, log_lines: io.StringIO
) -> None:
    settings = world.rt.settings
    settings.accepted_legacy_banks = [LEGACY_BANK]
    settings.link_name_match = False  # the legacy form gets the typed name
    register_wallet_at_bank(world)
    holder = ib_holder(world)
    password = "Quartz-Lantern-8472-Ember"
    email = "hanako.journey@example.jp"
    key = DeviceKey.es256()
    secrets: dict[str, str] = {
        "password": password,
        "internet banking password": holder.password,
        "device private key": str(key.key.as_dict(private=True)["d"]),
        "legacy PIN": world.victim.pin,
        "account number": world.victim.number,
        "bank client secret": settings.bank_client_secret,
        "staff token": STAFF_TOKEN,
    }
    with Served(create_app(world.rt)) as client:
        app = Settled(client, log_lines)
        # sign-up, the e-mail code, login
        assert app.post("/v1/auth/signup", json={"email": email, "password": password}).is_success
        secrets["e-mail code"] = _code(world, email)
        verified = app.post(
            "/v1/auth/verify-email", json={"email": email, "code": secrets["e-mail code"]}
        )
        assert verified.status_code == 200, verified.text
        user_id = uuid.UUID(verified.json()["id"])
        token = app.post("/v1/auth/login", json={"email": email, "password": password}).json()[
            "access_token"
        ]
        secrets["bearer token"] = token
        auth = {"Authorization": f"Bearer {token}"}
        # the phone by SMS one-time code, with the device key
        started = app.post("/v1/phone/verification", json={"phone": "090-1111-2222"}, headers=auth)
        assert started.status_code == 202, started.text
        secrets["SMS code"] = _code(world, "+819011112222")
        confirmed = app.post(
            f"/v1/phone/verification/{started.json()['challenge_id']}/confirm",
            headers=auth,
            json={"code": secrets["SMS code"], "device": {"jwk": key.public_jwk, "name": "phone"}},
        )
        assert confirmed.status_code == 200, confirmed.text
        _record_ekyc(world, user_id)
        opened = app.post("/v1/wallets", headers=auth)
        assert opened.status_code == 201, opened.text
        person = _person(world, user_id, opened.json()["id"], key)
        wallet_url = f"/v1/wallets/{person.wallet.id}"

        # the OAuth link: PAR with a client assertion, the holder's password and TOTP at the
        # bank, the code exchanged with PKCE for a DPoP-bound token
        body = {"bank_code": OAUTH_BANK} | signed(world, person, "bank.link")
        secrets["device signature"] = body["signature"]
        oauth = app.post(f"{wallet_url}/bank-links/oauth", json=body, headers=auth)
        assert oauth.status_code == 201, oauth.text
        with browser(world) as page:
            login_page = page.get(oauth.json()["authorization_url"])
            otp_page = page.post(
                f"/v1/banks/{OAUTH_BANK}/oauth/authorize/login",
                data={
                    "csrf_token": csrf_of(login_page),
                    "branch_code": "100",
                    "account_number": holder.number,
                    "password": holder.password,
                },
            )
            secrets["TOTP"] = holder.totp.at(world.clock.now())
            consent = page.post(
                f"/v1/banks/{OAUTH_BANK}/oauth/authorize/otp",
                data={"csrf_token": csrf_of(otp_page), "otp": secrets["TOTP"]},
            )
            query = approve(page, consent)
            for name, value in page.cookies.items():
                secrets[f"bank session cookie {name}"] = value
        secrets["authorization code"] = query["code"]
        secrets["OAuth state"] = query["state"]
        linked = app.post(
            f"{wallet_url}/bank-links/oauth/callback",
            json=query | {"device_id": str(person.device_id)},
            headers=auth,
        )
        assert linked.status_code == 201, linked.text

        # a top-up through the DPoP-bound token
        charged = app.post(
            f"{wallet_url}/topups",
            json={"link_id": linked.json()["id"], "amount": 20_000}
            | signed(world, person, "charge"),
            headers=auth | {"Idempotency-Key": "journey-1"},
        )
        assert charged.status_code == 201, charged.text

        # the legacy form with the account's PIN
        legacy = app.post(
            f"{wallet_url}/bank-links",
            json=link_body(world.victim) | signed(world, person, "bank.link"),
            headers=auth,
        )
        assert legacy.status_code == 201, legacy.text

    for request in world.transport.requests:  # what the wallet sent the bank
        form = parse_qs(request.content.decode(errors="replace"))
        for name in ("client_assertion", "code_verifier"):
            for value in form.get(name, []):
                secrets[f"{name} ({request.url.path})"] = value
        for header in ("Authorization", "DPoP"):
            if header in request.headers:
                value = request.headers[header].split(" ", 1)[-1]
                secrets[f"{header} header ({request.url.path})"] = value
    assert any(name.startswith("client_assertion") for name in secrets)
    assert any(name.startswith("Authorization header (/v1/links/") for name in secrets)

    # the detector finds a short secret where a leak would put it, not inside an id or a time
    assert _secret_pattern("4321").search('{"pin": "4321"} pin=4321')
    assert not _secret_pattern("4321").search("6f1e-4321-9a0b 09:00:00.432100Z")
    text = log_lines.getvalue()
    lines = parsed(log_lines)
    loggers = {line["logger"] for line in lines}
    assert {"kouza.access", "httpx", "uvicorn.error"} <= loggers, loggers
    assert any(line["logger"] == "sqlalchemy.engine.Engine" for line in lines)
    assert all("request_id" in line for line in lines if line["logger"] == "kouza.access")
    leaked = {
        name: [line for line in text.splitlines() if _secret_pattern(secret).search(line)][:1]
        for name, secret in secrets.items()
        if secret and _secret_pattern(secret).search(text)
    }
    assert not leaked, leaked
    assert len(secrets) >= 20, sorted(secrets)


def test_a_second_app_on_one_runtime_serves_the_same_metrics(world: World) -> None:
    again = TestClient(create_app(world.rt))
    assert again.get("/health").status_code == 200
    text = again.get("/metrics").text
    labels = {"method": "GET", "route": "/health", "status": "200"}
    assert sample_value(text, "kouza_http_requests_total", labels) == 1
    assert sample_value(text, "kouza_wallets_locked") == 0
