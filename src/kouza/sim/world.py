"""One simulated world per defence profile: a wallet and a bank system, wired only by HTTP.

The wallet runtime and the bank runtime are the production ones (``build_runtime``,
``build_bank_runtime``) on SQLite files in the run's folder, sharing one :class:`ManualClock`.
The wallet reaches the bank through its one :class:`BankClient`, whose httpx transport forwards
to the bank's FastAPI app in-process; the bank's webhooks reach the wallet's app the same way.
A profile (:mod:`kouza.sim.profiles`) only sets configuration both systems really have.

Seeding the bank (thousands of customers with hashed PINs) is done once per run into a template
file that each profile's world copies; argon2 runs with small parameters in the simulator
(:func:`kouza.kit.security.password_cost`): the hashes are not a security boundary here, and
verification logic is unchanged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from sqlalchemy import update

from kouza.api.app import create_app
from kouza.assembly import build_runtime
from kouza.bank.app import create_bank_app
from kouza.bank.assembly import build_bank_runtime
from kouza.bank.core import core
from kouza.bank.migrate import upgrade as upgrade_bank
from kouza.bank.models import AuthProfile, Bank, NoticeChannel
from kouza.bank.runtime import BankRuntime
from kouza.bank.settings import BankSettings
from kouza.config import Settings
from kouza.identity.ekyc import CrlRevocationChecker, DevFaceMatcher
from kouza.identity.ekyc.devca import DevCertificateAuthority
from kouza.identity.ekyc.devchip import DevDocumentIssuer
from kouza.identity.proofing import EkycConfiguration, IcChipConfiguration, JpkiConfiguration
from kouza.kit.clock import ManualClock
from kouza.kit.db import make_engine
from kouza.kit.migrate import upgrade
from kouza.kit.notify import Message
from kouza.linking.client import BankClient
from kouza.linking.keys import Signer, client_jwks
from kouza.risk.rules import RuleSet, parse_rule_set
from kouza.risk.service import risk, shipped_rule_set
from kouza.runtime import Runtime
from kouza.sim.profiles import DefenceProfile, TopUpCap
from kouza.wallet.limits import (
    OUTGOING,
    CalendarMonthLimit,
    LimitPolicy,
    LimitSet,
    MaxBalanceLimit,
    PerTransactionLimit,
    RollingWindowLimit,
    Type2TransferCeiling,
)
from kouza.wallet.models import MovementKind

BANK_URL = "http://bank.sim.kouza.test"
WALLET_URL = "http://wallet.sim.kouza.test"
CLIENT_ID = "kouza-wallet"
REDIRECT_URI = "https://wallet.sim.kouza.test/bank-callback"
EMPTY_RULES = "version: none\nrules: []\n"


class LastMessages:
    """A sender that keeps only the last message per recipient (codes are read from it).

    The simulator sends hundreds of thousands of notices; keeping them all would only grow
    memory. ``sent`` counts them; ``listeners`` see every message as it is sent (the driver's
    people reading their bank's notices).
    """

    def __init__(self) -> None:
        self.last: dict[str, Message] = {}
        self.sent = 0
        self.listeners: list[Callable[[Message], None]] = []

    def send(self, message: Message) -> None:
        self.last[message.recipient] = message
        self.sent += 1
        for listener in self.listeners:
            listener(message)

    def last_to(self, recipient: str) -> Message:
        return self.last[recipient]


def _loop_running_in_this_thread() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class InProcess(httpx.BaseTransport):
    """Forwards httpx requests to an ASGI app in this process: httpx's own
    :class:`httpx.ASGITransport`, driven synchronously on an event loop the simulator owns.

    The app is the real FastAPI app with its real middleware and endpoints; only the socket is
    missing. Starlette's ``TestClient`` would do the same through a portal thread, at about
    eight thread hand-offs per request; here the calling thread runs the app's coroutine itself,
    and FastAPI hands synchronous endpoints to its worker thread as it does under a server. A
    request made from another thread (the bank's webhook delivery, which runs after the bank's
    commit in the endpoint's worker thread) gets a loop of its own for that request.
    """

    CLIENT = ("testclient", 50000)
    """The peer address the apps see (what ``TestClient`` reported, so figures do not move)."""

    def __init__(self, app: Any) -> None:
        self.asgi = httpx.ASGITransport(app=app, client=self.CLIENT)
        self.owner = threading.get_ident()
        self.loop = asyncio.new_event_loop()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # a sync request's body is a ByteStream, readable from async code too

        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            response = await self.asgi.handle_async_request(request)
            return response.status_code, response.headers.raw, await response.aread()

        if _loop_running_in_this_thread():
            # someone else's loop owns this thread (a notebook, Playwright's sync API): the app
            # runs on a thread of its own, with a loop of its own, for this request
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="inprocess") as pool:
                status, headers, content = pool.submit(asyncio.run, call()).result()
        elif threading.get_ident() == self.owner and not self.loop.is_running():
            status, headers, content = self.loop.run_until_complete(call())
        else:
            status, headers, content = asyncio.run(call())
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        """Nothing to do: an httpx client closing (the bank opens one per webhook delivery)
        must not end the loop; :meth:`shutdown` does, when the world closes."""

    def shutdown(self) -> None:
        if not self.loop.is_closed():
            if not _loop_running_in_this_thread():
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()


@dataclass
class Ekyc:
    """The development CA and ID-card issuer the simulated citizens' cards come from."""

    ca: DevCertificateAuthority
    issuer: DevDocumentIssuer
    clock: ManualClock
    _published: list[bytes] = field(default_factory=list)
    _day: date | None = None

    def _crl(self, issuer: x509.Certificate) -> bytes | None:
        """The CRL of ``issuer`` as its CA published it on the current simulated day."""
        now = self.clock.now()
        if self._day != now.date():
            self._day = now.date()
            self._published = [ca.crl(now=now) for ca in self.ca.cas]
            self._published.append(self.issuer.crl(now=now))
        for raw in self._published:
            if x509.load_der_x509_crl(raw).issuer == issuer.subject:
                return raw
        return None

    def configuration(self) -> EkycConfiguration:
        return EkycConfiguration(
            jpki=JpkiConfiguration(
                trust_anchors=self.ca.trust_anchors,
                intermediates=self.ca.intermediates,
                revocation=CrlRevocationChecker(loader=self._crl),
            ),
            ic_chip=IcChipConfiguration(
                trust_anchors=self.issuer.trust_anchors,
                revocation=CrlRevocationChecker(loader=self._crl),
                face_matcher=DevFaceMatcher(),
            ),
        )


@dataclass
class World:
    """A wallet and a bank for one profile, and the wires between them."""

    profile: DefenceProfile
    rt: Runtime
    bank_rt: BankRuntime
    clock: ManualClock
    mailbox: LastMessages
    bank_api: httpx.Client
    """The wallet operator's connection to the bank's API (the one its BankClient uses)."""
    browser: httpx.Client
    """A person's browser at the bank's public URL (cookies cleared between people)."""
    transports: list[InProcess]
    totp_seeds: dict[int, str]
    extras: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        self.browser.close()
        self.bank_api.close()
        for transport in self.transports:
            transport.shutdown()
        self.rt.db.dispose()
        self.bank_rt.db.dispose()


def limits_for(profile: DefenceProfile, settings: Settings) -> LimitSet:
    """The wallet's limit policies under ``profile``."""
    if profile.topup_cap is TopUpCap.CALENDAR_MONTH:
        # 2020: a calendar-month charge cap and the legal ceiling; nothing per category
        policies: list[LimitPolicy] = [
            Type2TransferCeiling(cap=settings.limit_type2_ceiling_yen),
            CalendarMonthLimit(cap=profile.topup_cap_yen),
            MaxBalanceLimit(cap=settings.max_wallet_balance_yen),
        ]
        return LimitSet(policies)
    kouza = LimitSet.from_settings(settings)
    policies = [
        RollingWindowLimit(
            cap=profile.topup_cap_yen,
            window=timedelta(days=30),
            kinds=(MovementKind.TOPUP,),
            name="30-day top-up limit",
        )
        if getattr(policy, "name", "") == "30-day top-up limit"
        else policy
        for policy in kouza.policies
    ]
    policies.insert(
        0,
        PerTransactionLimit(
            cap=settings.limit_per_transaction_yen, kinds=(*OUTGOING, MovementKind.TOPUP)
        ),
    )
    return LimitSet(policies)


def build_world(
    profile: DefenceProfile,
    *,
    folder: Path,
    clock: ManualClock,
    bank_template: Path,
    wallet_template: Path,
    client_secret: str,
    legacy_banks: list[str],
    ekyc: Ekyc,
    totp_seeds: dict[int, str],
) -> World:
    """Copy the seeded templates into ``folder`` and configure both systems for ``profile``."""
    folder.mkdir(parents=True, exist_ok=True)
    wallet_db, bank_db = folder / "wallet.db", folder / "bank.db"
    shutil.copyfile(wallet_template, wallet_db)
    shutil.copyfile(bank_template, bank_db)
    mailbox = LastMessages()
    settings = Settings(
        _env_file=None,
        var_dir=folder / "wallet-var",
        secret_key=f"sim-wallet-secret-{profile.name}",
        link_min_level=profile.link_min_level,
        link_name_match=profile.link_name_match,
        accepted_legacy_banks=legacy_banks if profile.accept_legacy_banks else [],
        legacy_bank_links="restricted" if profile.restricted_legacy_links else "refuse",
        require_device_signature=profile.require_device_signature,
        money_out_proof=profile.money_out_proof,
        link_mandate_max_per_debit_yen=profile.topup_cap_yen,
        link_mandate_max_30_days_yen=(
            profile.topup_cap_yen if profile.topup_cap is TopUpCap.ROLLING_30_DAYS else 1_000_000
        ),
        bank_api_url=BANK_URL,
        bank_client_id=CLIENT_ID,
        bank_client_secret=client_secret,
        bank_oauth_redirect_uri=REDIRECT_URI,
    )
    rt = build_runtime(
        settings,
        clock=clock,
        senders={"email": mailbox, "sms": mailbox},
        database_url=f"sqlite:///{wallet_db}",
    )
    rt.limits = limits_for(profile, settings)
    rt.ekyc = ekyc.configuration()
    risk.engine(rt).replace_rules(rules_for(profile))
    to_wallet = InProcess(create_app(rt))

    bank_settings = BankSettings(
        _env_file=None,
        var_dir=folder / "bank-var",
        secret_key="sim-bank-secret",
        staff_token="sim-staff",
    )
    rt.settings.bank_issuer = bank_settings.issuer
    bank_rt = build_bank_runtime(
        bank_settings,
        clock=clock,
        senders={"email": mailbox, "sms": mailbox, "post": mailbox},
        webhook_transport=to_wallet,
        database_url=f"sqlite:///{bank_db}",
    )
    with bank_rt.db.unit_of_work() as session:
        if profile.banks_require_oauth:
            session.execute(update(Bank).values(auth_profile=AuthProfile.OAUTH.value))
        if profile.bank_monitoring:
            session.execute(update(Bank).values(monitor_failed_links=True))
        if profile.topup_cap is TopUpCap.CALENDAR_MONTH:
            session.execute(update(Bank).values(mandate_max_30_days=1_000_000))
        # 2020: the holder learned of a link or a debit from a letter or the passbook
        channel = NoticeChannel.EMAIL if profile.holder_notices else NoticeChannel.POST
        session.execute(update(Bank).values(notice_channel=channel.value))
    to_bank = InProcess(create_bank_app(bank_rt))
    bank_api = httpx.Client(base_url=BANK_URL, transport=to_bank)
    # the wallet authenticates with its client key (private_key_jwt), registered just below;
    # the secret is the legacy fallback it no longer needs (ADR 0022)
    rt.bank_client = BankClient(
        bank_api, client_id=CLIENT_ID, client_secret=client_secret, signer=Signer(rt)
    )
    registered = bank_api.put(
        f"/v1/counter/operators/{CLIENT_ID}/oauth-registration",
        json={"redirect_uris": [REDIRECT_URI], "jwks": client_jwks(rt)},
        headers={"Authorization": "Bearer sim-staff"},
    )
    if registered.status_code != 201:
        raise RuntimeError(f"the bank refused the wallet's OAuth registration: {registered.text}")
    to_bank_pages = InProcess(create_bank_app(bank_rt))
    browser = httpx.Client(
        base_url=bank_settings.issuer, transport=to_bank_pages, follow_redirects=True
    )
    return World(
        profile,
        rt,
        bank_rt,
        clock,
        mailbox,
        bank_api,
        browser,
        [to_wallet, to_bank, to_bank_pages],
        totp_seeds,
    )


def rules_for(profile: DefenceProfile) -> RuleSet:
    """The risk rule set a profile runs: none, or the shipped one less the ablated rules."""
    if profile.risk_rules != "shipped":
        return parse_rule_set(EMPTY_RULES, source=f"profile {profile.name}")
    shipped = shipped_rule_set()
    unknown = set(profile.risk_rules_without) - {rule.id for rule in shipped.rules}
    if unknown:
        raise ValueError(f"profile {profile.name} leaves out unknown rules {sorted(unknown)}")
    kept = tuple(rule for rule in shipped.rules if rule.id not in profile.risk_rules_without)
    return dataclasses.replace(shipped, rules=kept)


def migrate_wallet_template(path: Path) -> None:
    """A migrated, empty wallet database at ``path``."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()


def migrate_bank_template(path: Path) -> None:
    """A migrated, empty bank database at ``path``."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade_bank(engine)
    engine.dispose()


def register_wallet_client(bank_rt: BankRuntime) -> str:
    """Register the wallet operator at the bank; returns its client secret."""
    with bank_rt.db.unit_of_work() as session:
        _, secret = core.register_client(
            session,
            client_id=CLIENT_ID,
            name="kouza (simulated)",
            webhook_url=f"{WALLET_URL}/v1/banks/webhooks",
        )
    return secret


def new_id(rng_bits: int) -> uuid.UUID:
    """A UUID from the run's random stream (so identifiers are reproducible too)."""
    return uuid.UUID(int=rng_bits & ((1 << 128) - 1), version=4)
