"""Revocation re-checks of stored JPKI verifications, and demotion when a certificate is revoked.

A JPKI signing certificate is revoked when the holder moves, marries, loses the card or dies
(docs/ekyc.md). A verification that passed last year may therefore no longer describe the person:
the name or address the bank match relied on can be stale. :func:`recheck_jpki` re-runs the
configured revocation checker (``KouzaRuntime.ekyc.jpki.revocation``: OCSP or CRL in
production, the development CA's CRLs in tests) over the certificate behind every
``verified_identities`` row that is still in force and came from JPKI:

- ``good``: nothing changes;
- ``revoked``: the identity is marked revoked (``revoked_at``, reason), the user is lowered from
  ``verified`` to what remains (:func:`kouza.identity.levels.settle`, audited), charging and
  linking are refused with ``reverification_required`` until a new eKYC succeeds (the balance
  stays spendable), and the user is told by e-mail;
- ``unknown`` (responder down, stale CRL): nothing changes — a network failure must not demote
  thousands of customers — and the run reports it so the operator runs it again;
- ``uncheckable``: the chain no longer validates at the time of the check (the certificate
  expired, so CRLs no longer list it): nothing changes and it is reported.

Each check is stored as an :class:`~kouza.identity.models.EkycRecheck`. The verifier library is
used as is (``ChainValidator``, ``require_not_revoked``): this module knows nothing of which CA
it talks to.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.identity import levels
from kouza.identity.ekyc import EkycFailure, EkycMethod
from kouza.identity.ekyc.pki import ChainValidator, Refusal, load_certificate, require_not_revoked
from kouza.identity.errors import EkycNotConfigured
from kouza.identity.models import (
    EkycRecheck,
    EkycRecheckOutcome,
    EkycVerification,
    User,
    VerifiedIdentity,
)
from kouza.identity.proofing import JpkiConfiguration, ekyc_configuration
from kouza.kit import outbox
from kouza.runtime import runtime_of


@dataclass
class RecheckSummary:
    """What one run found: counts per outcome and the users it demoted."""

    checked: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    demoted: list[str] = field(default_factory=list)
    """Ids of the users lowered from ``verified``."""


def _jpki_configuration(session: Session) -> JpkiConfiguration:
    configuration = ekyc_configuration(session)
    if configuration is None or configuration.jpki is None:
        raise EkycNotConfigured("JPKI is not configured on this server: nothing to re-check with")
    return configuration.jpki


def check_certificate(
    config: JpkiConfiguration, certificate_der: bytes, now: datetime
) -> tuple[EkycRecheckOutcome, str]:
    """The revocation state of a stored certificate at ``now``, with a reason."""
    try:
        certificate = load_certificate(certificate_der)
        chain = ChainValidator(
            trust_anchors=config.trust_anchors, intermediates=config.intermediates
        ).validate(certificate, now)
        status = require_not_revoked(chain, config.revocation, now)
    except Refusal as refusal:
        if refusal.failure is EkycFailure.CERTIFICATE_REVOKED:
            return EkycRecheckOutcome.REVOKED, refusal.message
        if refusal.failure is EkycFailure.REVOCATION_UNKNOWN:
            return EkycRecheckOutcome.UNKNOWN, refusal.message
        return EkycRecheckOutcome.UNCHECKABLE, refusal.message
    return EkycRecheckOutcome.GOOD, status.reason


def _identities_in_force(session: Session) -> list[tuple[VerifiedIdentity, EkycVerification]]:
    rows = session.execute(
        select(VerifiedIdentity, EkycVerification)
        .join(EkycVerification, EkycVerification.id == VerifiedIdentity.verification_id)
        .where(
            VerifiedIdentity.revoked_at.is_(None),
            EkycVerification.method == EkycMethod.JPKI.value,
        )
        .order_by(VerifiedIdentity.user_id)
    ).all()
    return [(identity, verification) for identity, verification in rows]


def _demote(session: Session, identity: VerifiedIdentity, reason: str, *, actor: str) -> bool:
    user = session.get(User, identity.user_id)
    assert user is not None, "a verified identity belongs to a user"
    now = runtime_of(session).now()
    identity.revoked_at = now
    identity.revocation_reason = reason[:200]
    lowered = levels.settle(
        session, user, actor=actor, reason=f"JPKI certificate revoked: {reason}"[:500]
    )
    settings = runtime_of(session).settings
    outbox.enqueue(
        session,
        channel="email",
        recipient=user.email,
        subject=f"{settings.operator_name}: please verify your identity again",
        body="The identity document you verified with (My Number card signing certificate) has "
        "been revoked, for example after a move or a new card. Until you verify again in the "
        "app, charging from your bank and linking banks are paused; your balance stays "
        "spendable.",
    )
    return lowered is not None


def recheck_jpki(session: Session, *, actor: str) -> RecheckSummary:
    """Re-check every JPKI identity in force; demote users whose certificate is revoked."""
    config = _jpki_configuration(session)
    now = runtime_of(session).now()
    summary = RecheckSummary()
    for identity, verification in _identities_in_force(session):
        outcome, reason = check_certificate(config, verification.certificate_der, now)
        demoted = outcome is EkycRecheckOutcome.REVOKED and _demote(
            session, identity, reason, actor=actor
        )
        session.add(
            EkycRecheck(
                verification_id=verification.id,
                user_id=identity.user_id,
                outcome=outcome.value,
                reason=reason[:500],
                demoted=demoted,
                checked_at=now,
            )
        )
        summary.checked += 1
        summary.outcomes[outcome.value] += 1
        if demoted:
            summary.demoted.append(str(identity.user_id))
    session.flush()
    return summary
