"""eKYC flow: nonces in the database, verifier configuration from the runtime, records, promotion.

The verifiers in :mod:`kouza.identity.ekyc` are a pure library; this module binds them to the
wallet. ``KouzaRuntime.ekyc`` holds an :class:`EkycConfiguration` (trust anchors, policy
OIDs, revocation checkers, face matcher): tests and the simulator put the development CA's roots
there, production the J-LIS roots and the platform operator's OCSP. Nothing here knows which.

Every attempt is stored as an :class:`EkycVerification` whether it succeeds or not (the
certificate, signature, nonce, time, result, failure reason and attributes). A refusal is raised
as ``EkycRefused`` with ``keep_changes=True``, so the record and the spent nonce are committed
while nothing else changes. On success the verified attributes become the user's
:class:`VerifiedIdentity`, pending re-verification requirements are cleared, and the user is
promoted (to ``verified`` if the ``phone`` level was reached).

**Kana name.** The user declares the reading of their name with each submission. Without a
kanji-to-kana dictionary (and readings of names are not derivable anyway), kouza checks what can
be checked: it normalises to the Zengin form with :func:`normalize_zengin_name`, requires kana
only (no letters, digits or company abbreviations), and requires as many space-separated parts
as the verified name has (family and given name, separated by U+3000 in JPKI). A declared name
that fails these checks is refused before the nonce is spent when it cannot be normalised, and
recorded as a failed attempt (``kana_name_inconsistent``) when it does not fit the verified name.
The declared reading proves nothing (a card for 山田 太郎 is accepted with any two-part
reading), so it is never what a bank relies on: every link carries the card's kanji name and
birth date (``VerifiedIdentity.name`` / ``birth_date``) and the bank compares those with its own
holder record; the declared kana is only one more check there (ADR 0023).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from cryptography import x509
from cryptography.x509 import ObjectIdentifier
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kouza.identity import levels, ratelimits
from kouza.identity.ekyc import (
    JPKI_SIGNING_POLICY_OIDS,
    ChipRead,
    DevFaceMatcher,
    EkycMethod,
    EkycResult,
    FaceMatcher,
    IcChipVerifier,
    JpkiVerifier,
    NonceRefusal,
    RevocationChecker,
)
from kouza.identity.errors import EkycNotConfigured, EkycRefused, InvalidKanaName
from kouza.identity.models import (
    EkycNonce,
    EkycVerification,
    User,
    VerificationLevel,
    VerifiedIdentity,
)
from kouza.identity.names import NameNormalizationError, normalize_zengin_name
from kouza.identity.settings import seconds, setting
from kouza.kit.security import keyed_hash, random_token
from kouza.runtime import runtime_of

KANA_INCONSISTENT = "kana_name_inconsistent"
_KANA_ONLY = re.compile(r"^[\uff66-\uff9f ]+$")
_NAME_SEPARATORS = re.compile(r"[\s\u3000]+")


@dataclass(frozen=True)
class JpkiConfiguration:
    """What the JPKI verifier trusts: pinned roots, accepted policies, revocation."""

    trust_anchors: Sequence[x509.Certificate]
    revocation: RevocationChecker
    intermediates: Sequence[x509.Certificate] = ()
    policy_oids: Collection[ObjectIdentifier] = JPKI_SIGNING_POLICY_OIDS


@dataclass(frozen=True)
class IcChipConfiguration:
    """What the IC-chip verifier trusts: issuer roots, revocation, the face-match provider."""

    trust_anchors: Sequence[x509.Certificate]
    revocation: RevocationChecker
    face_matcher: FaceMatcher
    intermediates: Sequence[x509.Certificate] = ()
    policy_oids: Collection[ObjectIdentifier] | None = None
    face_match_threshold: float = 0.8
    require_active_authentication: bool = False


@dataclass(frozen=True)
class EkycConfiguration:
    """The methods this operator offers and their trust (``KouzaRuntime.ekyc``)."""

    jpki: JpkiConfiguration | None = None
    ic_chip: IcChipConfiguration | None = None


class DatabaseNonceStore:
    """A :class:`~kouza.identity.ekyc.NonceStore` in ``ekyc_nonces``, bound to a user and method.

    A nonce issued to another user or for another method is "unknown" here, which binds the
    challenge to the session that asked for it. Only keyed hashes of nonces are stored.
    """

    def __init__(
        self, session: Session, *, user_id: uuid.UUID, method: EkycMethod, ttl: timedelta
    ) -> None:
        self._session = session
        self._user_id = user_id
        self._method = method
        self._ttl = ttl

    def _hash(self, nonce: str) -> str:
        return keyed_hash(runtime_of(self._session).secret, nonce, purpose="ekyc-nonce")

    def issue(self, now: datetime) -> str:
        """A new random nonce valid for the configured time to live."""
        nonce = random_token(32)
        self._session.add(
            EkycNonce(
                nonce_hash=self._hash(nonce),
                user_id=self._user_id,
                method=self._method.value,
                created_at=now,
                expires_at=now + self._ttl,
            )
        )
        self._session.flush()
        return nonce

    def consume(self, nonce: str, now: datetime) -> bool:
        """One conditional UPDATE: true exactly once, before expiry, for this user and method."""
        result = self._session.execute(
            update(EkycNonce)
            .where(
                EkycNonce.nonce_hash == self._hash(nonce),
                EkycNonce.user_id == self._user_id,
                EkycNonce.method == self._method.value,
                EkycNonce.used_at.is_(None),
                EkycNonce.expires_at > now,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return getattr(result, "rowcount", 0) == 1

    def refusal_reason(self, nonce: str, now: datetime) -> NonceRefusal:
        """Unknown (also: another user's or method's), replayed, or expired."""
        row = self._session.scalars(
            select(EkycNonce).where(
                EkycNonce.nonce_hash == self._hash(nonce),
                EkycNonce.user_id == self._user_id,
                EkycNonce.method == self._method.value,
            )
        ).one_or_none()
        if row is None:
            return NonceRefusal.UNKNOWN
        if row.used_at is not None:
            return NonceRefusal.REPLAYED
        return NonceRefusal.EXPIRED if now >= row.expires_at else NonceRefusal.UNKNOWN


class EkycPort(Protocol):
    """What eKYC needs from the runtime (``kouza.assembly.KouzaRuntime``)."""

    ekyc: EkycConfiguration | None
    """None: this server offers no eKYC (``ekyc_not_configured``)."""


def ekyc_configuration(session: Session) -> EkycConfiguration | None:
    """The eKYC configuration of the runtime ``session`` belongs to, if any."""
    return cast(EkycPort, runtime_of(session)).ekyc


def _configuration(session: Session) -> EkycConfiguration:
    configuration = ekyc_configuration(session)
    if configuration is None:
        raise EkycNotConfigured("eKYC is not configured on this server")
    return configuration


def _nonces(session: Session, user: User, method: EkycMethod) -> DatabaseNonceStore:
    return DatabaseNonceStore(
        session, user_id=user.id, method=method, ttl=seconds(session, "ekyc_nonce_ttl_seconds")
    )


def _require_offered(session: Session, method: EkycMethod) -> None:
    configuration = _configuration(session)
    offered = configuration.jpki if method is EkycMethod.JPKI else configuration.ic_chip
    if offered is None:
        raise EkycNotConfigured(f"eKYC method '{method.value}' is not offered on this server")
    if (
        isinstance(offered, IcChipConfiguration)
        and isinstance(offered.face_matcher, DevFaceMatcher)
        and runtime_of(session).settings.env == "production"
    ):
        # the stand-in compares hashes, so any copy of the chip photo would pass as a selfie
        raise EkycNotConfigured(
            "the IC-chip method is configured with the development face matcher, which "
            "production refuses: configure a real face matcher and liveness check"
        )


def start_ekyc(session: Session, user: User, method: EkycMethod) -> str:
    """A fresh nonce for the user's card (JPKI) or chip (IC chip) to sign."""
    levels.require_level(user, VerificationLevel.PHONE, action="eKYC")
    _require_offered(session, method)
    ratelimits.check(
        session,
        [
            ratelimits.Limit(
                "user",
                f"ekyc:{user.id}",
                setting(session, "ekyc_starts_per_user_per_day"),
                timedelta(days=1),
            )
        ],
    )
    return _nonces(session, user, method).issue(runtime_of(session).now())


def declared_kana(raw: str) -> str:
    """The declared reading in Zengin form; kana and spaces only."""
    try:
        kana = normalize_zengin_name(raw)
    except NameNormalizationError as exc:
        raise InvalidKanaName(f"the kana name is not usable: {exc.message}") from None
    if not _KANA_ONLY.fullmatch(kana):
        raise InvalidKanaName(
            "give the reading of your name in kana only (no letters, digits "
            "or company abbreviations)",
            normalized=kana,
        )
    return kana


def _inconsistency(kana: str, verified_name: str) -> str | None:
    name_parts = [part for part in _NAME_SEPARATORS.split(verified_name) if part]
    kana_parts = kana.split(" ")
    if len(name_parts) > 1 and len(kana_parts) != len(name_parts):
        return (
            f"the kana name has {len(kana_parts)} part(s) but the verified name has "
            f"{len(name_parts)} (family and given name): separate them with a space"
        )
    return None


def _attributes_json(result: EkycResult) -> dict[str, Any] | None:
    attributes = result.attributes
    if attributes is None:
        return None
    return {
        "name": attributes.name,
        "address": attributes.address,
        "birth_date": attributes.birth_date.isoformat(),
        "sex": attributes.sex.value if attributes.sex else None,
        "contains_substitute_characters": attributes.contains_substitute_characters,
        "document_number": attributes.document_number,
        "document_expires_on": (
            attributes.document_expires_on.isoformat() if attributes.document_expires_on else None
        ),
    }


def _record(session: Session, user: User, result: EkycResult, kana: str) -> EkycVerification:
    inconsistency = _inconsistency(kana, result.attributes.name) if result.attributes else None
    record = EkycVerification(
        id=uuid.uuid4(),
        user_id=user.id,
        method=result.method.value,
        ok=result.ok and inconsistency is None,
        failure=KANA_INCONSISTENT
        if inconsistency
        else (result.failure.value if result.failure else None),
        message=(inconsistency or result.message)[:500],
        certificate_der=result.certificate_der,
        certificate_serial=(
            f"{result.certificate_serial:X}" if result.certificate_serial is not None else None
        ),
        issuer=result.issuer[:500] if result.issuer else None,
        signature=result.signature,
        nonce=result.nonce[:128],
        revocation=(
            f"{result.revocation.state.value}: {result.revocation.reason}"[:200]
            if result.revocation
            else None
        ),
        face_match_score=result.face_match_score,
        attributes=_attributes_json(result),
        declared_kana=kana,
        checked_at=result.checked_at,
    )
    session.add(record)
    session.flush()
    return record


def _accept(session: Session, user: User, record: EkycVerification, result: EkycResult) -> None:
    attributes = result.attributes
    assert attributes is not None
    identity = session.get(VerifiedIdentity, user.id) or VerifiedIdentity(user_id=user.id)
    identity.verification_id = record.id
    identity.name = attributes.name
    identity.kana_name = record.declared_kana
    identity.address = attributes.address
    identity.birth_date = attributes.birth_date
    identity.sex = attributes.sex.value if attributes.sex else None
    identity.contains_substitute_characters = attributes.contains_substitute_characters
    identity.verified_at = record.checked_at
    identity.revoked_at = None  # a new successful eKYC replaces a revoked certificate
    identity.revocation_reason = None
    session.add(identity)
    session.flush()
    levels.clear_requirements(session, user, record)
    levels.promote(session, user)


def _conclude(session: Session, user: User, result: EkycResult, kana: str) -> EkycVerification:
    record = _record(session, user, result, kana)
    if not record.ok:
        raise EkycRefused(
            record.message,
            keep_changes=True,
            failure=record.failure,
            verification_id=str(record.id),
        )
    _accept(session, user, record, result)
    return record


def submit_jpki(
    session: Session,
    user: User,
    *,
    certificate: bytes,
    signature: bytes,
    nonce: str,
    kana_name: str,
) -> EkycVerification:
    """Verify a JPKI signature over the user's nonce; record it; promote on success."""
    user = levels.attached(session, user)
    levels.require_level(user, VerificationLevel.PHONE, action="eKYC")
    kana = declared_kana(kana_name)
    _require_offered(session, EkycMethod.JPKI)
    config = _configuration(session).jpki
    assert config is not None
    verifier = JpkiVerifier(
        trust_anchors=config.trust_anchors,
        intermediates=config.intermediates,
        policy_oids=config.policy_oids,
        revocation=config.revocation,
        nonces=_nonces(session, user, EkycMethod.JPKI),
    )
    result = verifier.verify(
        certificate=certificate, signature=signature, nonce=nonce, now=runtime_of(session).now()
    )
    return _conclude(session, user, result, kana)


def submit_ic_chip(
    session: Session, user: User, *, chip: ChipRead, selfie: bytes, nonce: str, kana_name: str
) -> EkycVerification:
    """Verify an IC-chip read and selfie over the user's nonce; record; promote on success."""
    user = levels.attached(session, user)
    levels.require_level(user, VerificationLevel.PHONE, action="eKYC")
    kana = declared_kana(kana_name)
    _require_offered(session, EkycMethod.IC_CHIP)
    config = _configuration(session).ic_chip
    assert config is not None
    verifier = IcChipVerifier(
        trust_anchors=config.trust_anchors,
        intermediates=config.intermediates,
        revocation=config.revocation,
        face_matcher=config.face_matcher,
        policy_oids=config.policy_oids,
        face_match_threshold=config.face_match_threshold,
        require_active_authentication=config.require_active_authentication,
        nonces=_nonces(session, user, EkycMethod.IC_CHIP),
    )
    result = verifier.verify(chip=chip, selfie=selfie, nonce=nonce, now=runtime_of(session).now())
    return _conclude(session, user, result, kana)


def verifications_of(
    session: Session, user: User, *, limit: int = 50
) -> Sequence[EkycVerification]:
    """The user's eKYC records, newest first."""
    return session.scalars(
        select(EkycVerification)
        .where(EkycVerification.user_id == user.id)
        .order_by(EkycVerification.checked_at.desc())
        .limit(limit)
    ).all()
