"""Certificate checks shared by the JPKI and IC-chip verifiers.

Each check either returns or raises :class:`Refusal` carrying the :class:`EkycFailure` to report;
the verifiers catch it in one place and turn it into an :class:`EkycResult`. Nothing here knows
which CA it is talking to: trust comes only from the anchors and policies the caller passes.

Path validation is delegated to ``cryptography.x509.verification`` (RFC 5280 path building with
signature, validity, basicConstraints and name-constraint checks at an injected time) with
extension policies loosened from the Web PKI defaults to what government PKIs issue: no
extendedKeyUsage on the leaf, and a *critical* certificatePolicies extension, which JPKI marks
critical and which the library would otherwise reject as unaccounted-for. The policy OIDs
themselves, key usage and validity dates are checked here, before or after path building, so
that each gets its own precise failure code.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from kouza.identity.ekyc.nonces import NonceRefusal, NonceStore
from kouza.identity.ekyc.result import (
    EkycFailure,
    EkycMethod,
    EkycResult,
    VerifiedAttributes,
)
from kouza.identity.ekyc.revocation import RevocationChecker, RevocationState, RevocationStatus

MAX_CHAIN_DEPTH = 4
"""JPKI is leaf → root; a few levels leave room for an intermediate and a link certificate."""


class Refusal(Exception):
    """Internal: a check refused the input. Never escapes a verifier."""

    def __init__(
        self, failure: EkycFailure, message: str, *, revocation: RevocationStatus | None = None
    ) -> None:
        super().__init__(message)
        self.failure = failure
        self.message = message
        self.revocation = revocation


_NONCE_FAILURES = {
    NonceRefusal.UNKNOWN: (EkycFailure.NONCE_UNKNOWN, "the nonce was not issued by this server"),
    NonceRefusal.EXPIRED: (EkycFailure.NONCE_EXPIRED, "the nonce expired; ask for a new one"),
    NonceRefusal.REPLAYED: (EkycFailure.NONCE_REPLAYED, "the nonce was already used (replay)"),
}


@dataclass
class VerificationRecord:
    """Collects what one attempt learned, so that a refusal still stores the full record."""

    method: EkycMethod
    certificate_der: bytes
    nonce: str
    signature: bytes
    checked_at: datetime
    certificate_serial: int | None = None
    issuer: str | None = None
    revocation: RevocationStatus | None = None
    face_match_score: float | None = None

    def note_certificate(self, certificate: x509.Certificate) -> None:
        """Record the parsed certificate's DER, serial and issuer."""
        self.certificate_der = certificate.public_bytes(Encoding.DER)
        self.certificate_serial = certificate.serial_number
        self.issuer = certificate.issuer.rfc4514_string()

    def refused(self, refusal: Refusal) -> EkycResult:
        """The stored result of a refused attempt."""
        if refusal.revocation is not None:
            self.revocation = refusal.revocation
        return self._result(ok=False, failure=refusal.failure, message=refusal.message)

    def accepted(self, attributes: VerifiedAttributes, message: str) -> EkycResult:
        """The stored result of a successful attempt."""
        return self._result(ok=True, failure=None, message=message, attributes=attributes)

    def _result(
        self,
        *,
        ok: bool,
        failure: EkycFailure | None,
        message: str,
        attributes: VerifiedAttributes | None = None,
    ) -> EkycResult:
        return EkycResult(
            ok=ok,
            failure=failure,
            message=message,
            attributes=attributes,
            method=self.method,
            certificate_der=self.certificate_der,
            certificate_serial=self.certificate_serial,
            issuer=self.issuer,
            checked_at=self.checked_at,
            nonce=self.nonce,
            signature=self.signature,
            revocation=self.revocation,
            face_match_score=self.face_match_score,
        )


def consume_nonce(nonces: NonceStore, nonce: str, now: datetime) -> None:
    """Use up ``nonce`` first, so every attempt, good or bad, spends its challenge."""
    if nonces.consume(nonce, now):
        return
    failure, message = _NONCE_FAILURES[nonces.refusal_reason(nonce, now)]
    raise Refusal(failure, message)


def require_aware(now: datetime) -> None:
    """The caller's clock must be timezone-aware; a naive time is a programming error."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")


def load_certificate(data: bytes) -> x509.Certificate:
    """Parse DER or PEM and force every extension to parse; refuse anything malformed."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            certificate = x509.load_pem_x509_certificate(data)
        else:
            certificate = x509.load_der_x509_certificate(data)
        _ = certificate.extensions  # extensions parse lazily; a broken one must refuse here
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as error:
        raise Refusal(
            EkycFailure.CERTIFICATE_MALFORMED, f"not a well-formed X.509 certificate: {error}"
        ) from error
    return certificate


def require_valid_period(certificate: x509.Certificate, now: datetime) -> None:
    """Refuse a certificate that is not yet valid or has expired at ``now``."""
    if now < certificate.not_valid_before_utc:
        raise Refusal(
            EkycFailure.CERTIFICATE_NOT_YET_VALID,
            f"the certificate is valid only from {certificate.not_valid_before_utc.isoformat()}",
        )
    if now > certificate.not_valid_after_utc:
        raise Refusal(
            EkycFailure.CERTIFICATE_EXPIRED,
            f"the certificate expired at {certificate.not_valid_after_utc.isoformat()}",
        )


def require_policy(
    certificate: x509.Certificate, policy_oids: Collection[x509.ObjectIdentifier]
) -> None:
    """Refuse unless the certificate asserts one of ``policy_oids``."""
    try:
        policies = certificate.extensions.get_extension_for_class(x509.CertificatePolicies).value
    except x509.ExtensionNotFound:
        policies = x509.CertificatePolicies([])
    asserted = {info.policy_identifier for info in policies}
    if not asserted & set(policy_oids):
        found = ", ".join(sorted(oid.dotted_string for oid in asserted)) or "none"
        raise Refusal(
            EkycFailure.POLICY_MISMATCH,
            f"the certificate asserts policies [{found}], none of the accepted ones",
        )


def require_signing_end_entity(certificate: x509.Certificate) -> None:
    """Refuse a CA certificate, or one whose key usage does not allow digital signatures."""
    extensions = certificate.extensions
    try:
        if extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise Refusal(
                EkycFailure.KEY_USAGE_INVALID, "a CA certificate cannot identify a person"
            )
    except x509.ExtensionNotFound:
        pass
    try:
        usage = extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise Refusal(EkycFailure.KEY_USAGE_INVALID, "the certificate has no key usage") from None
    if not usage.digital_signature:
        raise Refusal(
            EkycFailure.KEY_USAGE_INVALID, "the certificate's key usage excludes digital signatures"
        )


def _ca_key_usage(_policy: Policy, _cert: x509.Certificate, usage: x509.KeyUsage | None) -> None:
    # An issuer whose key usage is present must be allowed to sign certificates.
    if usage is not None and not usage.key_cert_sign:
        raise ValueError("issuer key usage lacks keyCertSign")


def _extension_policies() -> tuple[ExtensionPolicy, ExtensionPolicy]:
    ca_policy = (
        ExtensionPolicy.permit_all()
        .require_present(x509.BasicConstraints, Criticality.AGNOSTIC, None)
        .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _ca_key_usage)
        .may_be_present(x509.CertificatePolicies, Criticality.AGNOSTIC, None)
    )
    ee_policy = ExtensionPolicy.permit_all().may_be_present(
        x509.CertificatePolicies, Criticality.AGNOSTIC, None
    )
    return ca_policy, ee_policy


class ChainValidator:
    """Validates a leaf up to pinned trust anchors at a given time."""

    def __init__(
        self,
        *,
        trust_anchors: Sequence[x509.Certificate],
        intermediates: Sequence[x509.Certificate] = (),
    ) -> None:
        if not trust_anchors:
            raise ValueError("at least one trust anchor is required")
        self._store = Store(list(trust_anchors))
        self._intermediates = list(intermediates)
        self._ca_policy, self._ee_policy = _extension_policies()

    def validate(self, leaf: x509.Certificate, now: datetime) -> list[x509.Certificate]:
        """The validated chain ``[leaf, …, anchor]``; refuses if there is none."""
        verifier = (
            PolicyBuilder()
            .store(self._store)
            .time(now)
            .max_chain_depth(MAX_CHAIN_DEPTH)
            .extension_policies(ca_policy=self._ca_policy, ee_policy=self._ee_policy)
            .build_client_verifier()
        )
        try:
            chain = list(verifier.verify(leaf, self._intermediates).chain)
        except (VerificationError, UnsupportedAlgorithm, ValueError) as error:
            raise Refusal(
                EkycFailure.CHAIN_UNTRUSTED,
                f"the certificate does not chain to a pinned trust anchor: {error}",
            ) from error
        if len(chain) < 2:
            # A pinned anchor presented as the leaf has no issuer to ask about revocation.
            raise Refusal(EkycFailure.CHAIN_UNTRUSTED, "a trust anchor cannot be the leaf")
        return chain


def require_not_revoked(
    chain: Sequence[x509.Certificate], checker: RevocationChecker, now: datetime
) -> RevocationStatus:
    """Check every certificate below the anchor against its issuer; refuse unless all good."""
    status = RevocationStatus(RevocationState.UNKNOWN, "no issuer to ask", "none")
    if len(chain) < 2:
        raise Refusal(EkycFailure.REVOCATION_UNKNOWN, "no issuer to ask about revocation")
    for certificate, issuer in itertools.pairwise(chain):
        status = _ask(checker, certificate, issuer, now)
        subject = certificate.subject.rfc4514_string()
        if status.state is RevocationState.REVOKED:
            raise Refusal(
                EkycFailure.CERTIFICATE_REVOKED, f"{subject} is {status.reason}", revocation=status
            )
        if status.state is not RevocationState.GOOD:
            raise Refusal(
                EkycFailure.REVOCATION_UNKNOWN,
                f"revocation status of {subject} is unknown ({status.reason}); refusing",
                revocation=status,
            )
    return status


def _ask(
    checker: RevocationChecker,
    certificate: x509.Certificate,
    issuer: x509.Certificate,
    now: datetime,
) -> RevocationStatus:
    # Checkers are pluggable; if one breaks its contract and raises, the only safe reading
    # is "unknown", which refuses. Catching broadly here is the fail-closed guarantee.
    try:
        return checker.check(certificate, issuer, now)
    except Exception as error:
        return RevocationStatus(
            RevocationState.UNKNOWN, f"revocation checker failed: {error!r}", "error"
        )
