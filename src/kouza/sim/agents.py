"""The people and things the simulated world's agents act with: a phone's key, a wallet account
someone runs, one attack attempt, and the follow-ups the world schedules for itself."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from joserfc import jws
from joserfc.jwk import ECKey
from sqlalchemy.orm import Session

from kouza.errors import KouzaError
from kouza.identity.devices import SensitiveAction, SignedChallenge, signing_payload
from kouza.identity.models import User
from kouza.identity.service import identity
from kouza.linking.policy import DeviceProof


class FollowUp:
    """Kinds of actions the world schedules for itself."""

    CHARGE = "charge"
    SPEND = "spend"
    NOT_ME = "not_me"
    """A holder who read a notice about something they did not do calls the bank."""
    OPERATOR = "operator"
    """The operator's fraud team works its queue (playbook profiles)."""
    RETRY = "retry"
    """An attacker comes back to a victim after a refusal (adaptive, within its budget)."""
    CONTROL = "control"
    """The operator's switch from the attacked world, replayed in an honest one."""
    PROBATION = "probation"
    """The hourly run of the release job of restricted links' probation holds (ADR 0032)."""


@dataclass
class Device:
    """A phone's key pair as the app holds it (ES256)."""

    key: ECKey
    device_id: uuid.UUID | None = None

    def proof(self, session: Session, user: User, action: SensitiveAction) -> DeviceProof:
        assert self.device_id is not None
        nonce = identity.issue_device_challenge(session, user, self.device_id, action.value)
        payload = signing_payload(
            nonce=nonce, action=action.value, device_id=self.device_id, user_id=user.id
        )
        signature = jws.serialize_compact(
            {"alg": "ES256"}, json.dumps(payload).encode(), self.key, algorithms=["ES256"]
        )
        return DeviceProof(nonce=nonce, signature=signature)

    def signed(self, session: Session, user: User, action: SensitiveAction) -> SignedChallenge:
        """The proof money out carries: this device's signature over a fresh challenge."""
        assert self.device_id is not None
        proof = self.proof(session, user, action)
        return SignedChallenge(self.device_id, proof.nonce, proof.signature)


@dataclass
class Account:
    """A wallet account someone runs in this world."""

    user_id: uuid.UUID
    wallet_id: uuid.UUID
    email: str
    ip: str
    device: Device | None = None
    """The key the app holds (the only device identity kouza trusts; ADR 0021)."""
    phone: str = ""
    link_id: uuid.UUID | None = None
    links: int = 0
    password: str = ""
    citizen: int = -1
    """The citizen this wallet belongs to (-1: an attacker's own or a mule's wallet)."""


@dataclass
class Attempt:
    """One attack attempt: an attacker going after one victim account."""

    attacker: int
    victim: int
    account: Account | None = None
    stage: int = -1
    link_id: uuid.UUID | None = None
    charges_left: list[int] = field(default_factory=list)
    straddled: bool = False
    tries: int = 0
    """Extra tries used after refusals (``budget``)."""
    payload: dict[str, Any] = field(default_factory=dict)
    """Strategy-specific state (the reference a holder quotes, the mule wallet, …)."""


@dataclass(order=True)
class Dynamic:
    at: datetime
    seq: int
    kind: str = field(compare=False)
    attempt: Attempt | None = field(compare=False)
    data: Any = field(compare=False, default=None)


class NotFooled(KouzaError):
    """The person did not fall for the lure (phishing, a call posing as the bank)."""

    code = "did_not_take_the_bait"
