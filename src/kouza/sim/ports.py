"""The driver as the adversary and the fraud team see it: the members they may use, as ports.

:class:`~kouza.sim.driver.Runner` builds an :class:`~kouza.sim.adversary.Adversary` and a
:class:`~kouza.sim.fraudteam.FraudTeam` and hands each itself. They read the world's state and
act through the driver's primitive actions listed here, and nothing else; ``Runner`` has each
member with this signature (structural typing: mypy checks it where the two are built). So
neither module imports the driver, and the driver's other ~1,000 lines stay out of their view.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session

from kouza.errors import KouzaError
from kouza.identity.devices import SensitiveAction, SignedChallenge
from kouza.identity.ekyc.devca import TestCitizen
from kouza.identity.models import User
from kouza.runtime import Runtime
from kouza.sim.agents import Account, Attempt
from kouza.sim.population import Citizen, Plan
from kouza.sim.profiles import DefenceProfile
from kouza.sim.results import ProfileResult
from kouza.sim.scenario import Scenario
from kouza.sim.world import World

T = TypeVar("T")


class DriverPort(Protocol):
    """What both use: the world, its scenario and result, a unit of work, the follow-up queue."""

    scenario: Scenario
    world: World
    rt: Runtime
    """The wallet's runtime (``world.rt``)."""
    result: ProfileResult

    def call(self, work: Callable[[Session], T]) -> tuple[T | None, KouzaError | None]:
        """Run ``work`` in one unit of work: its answer, or the refusal it raised."""
        ...

    def schedule(
        self, at: datetime, kind: str, attempt: Attempt | None = None, data: Any = None
    ) -> None:
        """Queue a follow-up (a :class:`~kouza.sim.agents.FollowUp` kind) at ``at``."""
        ...


class FraudTeamPort(DriverPort, Protocol):
    """What holders and the operator's fraud team use."""

    profile: DefenceProfile
    owner_of_wallet: dict[uuid.UUID, int]
    """Honest wallet id → citizen index."""
    not_me_reports: int
    """Holders who said "not me" to their bank (counted by the fraud team)."""


class AdversaryPort(DriverPort, Protocol):
    """What the attackers use: the plan and the accounts in play, and the people's actions."""

    plan: Plan
    rng: random.Random
    honest: dict[int, Account]
    """Honest person index → their wallet account."""
    joined: list[int]
    merchants: list[tuple[uuid.UUID, str, str]]
    """(merchant id, category, QR) of the world's shops."""
    counter: int
    """Numbers new e-mail addresses and idempotency keys (the adversary draws from it too)."""
    attack_accounts: dict[uuid.UUID, int]
    """Attacker wallet id → attacker index."""
    attack_users: dict[uuid.UUID, int]
    """User of an attacker's wallet → attacker index."""
    attacker_ips: dict[str, int]
    """Networks attackers acted from → attacker index."""
    taken_payments: list[tuple[uuid.UUID, int, int]]
    """(payment id, victim citizen, attacker) of payments made from a taken-over wallet."""

    def user(self, session: Session, account: Account) -> User: ...

    def signed(
        self, session: Session, account: Account, action: SensitiveAction
    ) -> SignedChallenge | None:
        """What the app sends with money out: its device's signature, when it holds a key."""
        ...

    def sign_up(self, email: str, ip: str, password: str = ...) -> Account | KouzaError:
        """A verified e-mail address and an open wallet."""
        ...

    def verify_phone(self, account: Account, phone: str) -> KouzaError | None: ...

    def verify_identity(
        self, account: Account, citizen: TestCitizen, kana: str
    ) -> KouzaError | None: ...

    def reach_link_level(
        self,
        account: Account,
        phone: str,
        citizen: TestCitizen | None,
        kana: str,
        *,
        oauth: bool = False,
    ) -> KouzaError | None:
        """Do what the profile asks before linking: a phone (and device key), then eKYC."""
        ...

    def step_up(self, account: Account, purpose: str) -> bool:
        """Answer a step-up with the SMS code of the account's phone; False if there is none."""
        ...

    def bank_is_oauth(self, bank_code: str) -> bool: ...

    def link_legacy(
        self, account: Account, citizen: Citizen, *, pin: str, holder: str
    ) -> tuple[uuid.UUID | None, KouzaError | None]:
        """Link ``citizen``'s account through the bank's legacy form (PIN and holder name)."""
        ...

    def link_oauth(
        self, account: Account, citizen: Citizen
    ) -> tuple[uuid.UUID | None, KouzaError | None]:
        """Link through the bank's strong flow, walked with ``citizen``'s credentials."""
        ...

    def top_up(self, account: Account, link_id: uuid.UUID, amount: int) -> KouzaError | None: ...

    def pay_returning(
        self, account: Account, qr: str, amount: int
    ) -> tuple[uuid.UUID | None, KouzaError | None]:
        """Pay; the payment's id (None if refused) and the refusal."""
        ...

    def record_stage(self, attempt: Attempt, stage: str) -> None:
        """Count ``attempt`` at ``stage`` of the attack funnel (once, moving forward only)."""
        ...

    def record_refusal(self, attempt: Attempt, refusal: KouzaError) -> None:
        """Count the refusal's code (and the rules behind it) for the attempt's attacker."""
        ...

    def linked(self, attempt: Attempt, account: Account, link_id: uuid.UUID) -> None:
        """A victim's account is linked to a wallet the attacker controls: charge it."""
        ...

    def attempt_link(self, attempt: Attempt) -> None:
        """The older strategies' play: open (or reuse) a wallet and link the victim's account."""
        ...
