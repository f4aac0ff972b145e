"""The wallet's composition root: the one place its runtime is typed and built.

:class:`KouzaRuntime` is :class:`~kouza.runtime.Runtime` (settings, clock, database,
senders, secret) plus every collaborator a domain keeps per runtime, each a typed field:

==========================  =========================================================  ==========
field                       what                                                       used by
==========================  =========================================================  ==========
``ekyc``                    trust anchors, policies, revocation (None: no eKYC)         identity
``limits``                  the wallet's limit set                                      wallet
``risk_engine``             rules + feature store                                       risk
``risk_reads``              which feature reads an event needs                          risk
``risk_autocommit``         the API's one-statement decision store (PostgreSQL)         risk
``risk_model``              the learned risk model (``KOUZA_RISK_MODEL``), or None      risk
``bank_client``             the wallet's HTTP client of the bank                        linking
``bank_client_key``         the wallet's private_key_jwt / DPoP signing key             linking
``bank_jwks``               the bank's webhook signing keys, cached                     linking
``webhook_replays``         bank events already accepted                                linking
``operator_cache``          verified operator tokens (5 s)                              controls
``after_bank_call``         fault injection after a bank answer (crash tests)           linking
``after_compensation_call`` fault injection after a compensation transfer               ops
``lock_listeners``          told of each new wallet lock (the banks' lock notices)      wallet
``reconcile_matchers``      claim bank transfers made outside movements (compensation)  linking
==========================  =========================================================  ==========

The two hook lists are how a lower layer causes an effect in a higher one without importing
it: the wallet tells "a wallet was locked" to whoever registered (linking sends the banks a
signed notice), and reconciliation asks the registered matchers whether a bank transfer it does
not know is theirs (ops' compensation credits).

A field that is None is built on first use by the domain that owns it, from settings (the risk
engine warms its in-memory store through the caller's session, which does not exist here). Each
domain reads its fields through a small Protocol it declares beside the code that uses them
(``LimitsPort``, ``RiskPort``, ``BankClientPort``, …), so no domain imports this module and a
reader sees what each needs; :func:`_provides_every_port` makes mypy prove that this class
satisfies all of them. There is no string-keyed registry: a misspelt field fails type checking.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from joserfc.jwk import ECKey
from sqlalchemy import Engine

from kouza.config import Settings
from kouza.controls.dependencies import OperatorCachePort
from kouza.controls.models import Operator
from kouza.identity.proofing import EkycConfiguration, EkycPort
from kouza.identity.providers import build_sms_sender, load_ekyc_configuration
from kouza.kit.clock import Clock, SystemClock
from kouza.kit.notify import Sender, require_production_senders
from kouza.kit.outbox import deliver_after_commit
from kouza.linking.client import BankClient, BankClientPort
from kouza.linking.keys import ClientKeyPort
from kouza.linking.movements import AfterBankCallPort
from kouza.linking.notices import notify_lock
from kouza.linking.receiver import CachedKeys, WebhookPort
from kouza.linking.reconcile import TransferMatcher, TransferMatchersPort
from kouza.ops.compensation import AfterCompensationCallPort, reconcile_compensation
from kouza.protocol.webhooks import MemoryReplayCache
from kouza.risk.engine import LearnedScorer, RiskEngine
from kouza.risk.plan import ReadPlanner
from kouza.risk.service import RiskPort, load_risk_model
from kouza.runtime import Runtime, build_email_sender
from kouza.wallet.limits import LimitSet, LimitsPort
from kouza.wallet.locks import LockListener, LockListenersPort


@dataclass(eq=False)
class KouzaRuntime(Runtime):
    """The wallet's runtime with its typed collaborators (see the module docstring)."""

    ekyc: EkycConfiguration | None = None
    limits: LimitSet | None = None
    risk_engine: RiskEngine | None = None
    risk_reads: ReadPlanner = field(default_factory=ReadPlanner)
    risk_autocommit: Engine | None = None
    risk_model: LearnedScorer | None = None
    bank_client: BankClient | None = None
    bank_client_key: ECKey | None = None
    bank_jwks: CachedKeys | None = None
    webhook_replays: MemoryReplayCache = field(default_factory=MemoryReplayCache)
    operator_cache: dict[str, tuple[float, Operator]] = field(default_factory=dict)
    after_bank_call: Callable[[uuid.UUID], Any] | None = None
    after_compensation_call: Callable[[uuid.UUID], Any] | None = None
    lock_listeners: list[LockListener] = field(default_factory=lambda: [notify_lock])
    reconcile_matchers: list[TransferMatcher] = field(
        default_factory=lambda: [reconcile_compensation]
    )


def _provides_every_port(
    runtime: KouzaRuntime,
) -> tuple[
    EkycPort,
    LimitsPort,
    RiskPort,
    BankClientPort,
    ClientKeyPort,
    WebhookPort,
    OperatorCachePort,
    AfterBankCallPort,
    AfterCompensationCallPort,
    LockListenersPort,
    TransferMatchersPort,
]:
    """Never called: mypy checks that a :class:`KouzaRuntime` is every domain's port."""
    rt = runtime
    return (rt, rt, rt, rt, rt, rt, rt, rt, rt, rt, rt)


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    senders: dict[str, Sender] | None = None,
    database_url: str | None = None,
) -> KouzaRuntime:
    """A runtime with its database opened. Senders default to development mailbox files (the
    SMS gateway as configured); eKYC trust comes from settings (:mod:`kouza.identity.providers`).
    A production runtime refuses development senders."""
    runtime = KouzaRuntime(settings=settings, clock=clock or SystemClock())
    runtime.secret = settings.resolved_secret_key()
    runtime.senders = dict(senders or {})
    if "email" not in runtime.senders:
        runtime.senders["email"] = build_email_sender(settings)
    if "sms" not in runtime.senders:
        runtime.senders["sms"] = build_sms_sender(settings)
    runtime.open_database(
        database_url or settings.resolved_database_url(), after_commit=[deliver_after_commit]
    )
    runtime.ekyc = load_ekyc_configuration(settings, now=runtime.now())
    runtime.risk_model = load_risk_model(settings)
    if settings.env == "production":
        require_production_senders(runtime.senders)
    return runtime
