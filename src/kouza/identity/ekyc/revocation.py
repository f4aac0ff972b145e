"""Is this certificate revoked? Pluggable checkers, all failing closed.

A JPKI signing certificate is revoked when any of the four attributes it carries changes (a move,
a marriage), when the card is lost, or when the holder dies; an IC-chip document signer can be
revoked when its key leaks. A verification that skips revocation would accept a person at an
address they left, so every verifier takes a :class:`RevocationChecker` and refuses unless the
answer is :attr:`RevocationState.GOOD`.

Design:

- A checker answers ``good``, ``revoked`` or ``unknown`` for one (certificate, issuer) pair at an
  injected time. It never raises for anything the network or the CA sent: broken, stale,
  unsigned or mismatched revocation data is ``unknown``, and the verifiers treat ``unknown`` as a
  refusal (fail closed). A checker that cannot reach its source must not say ``good``.
- :class:`CrlRevocationChecker` reads CRLs (fixed DER/PEM bytes, or a loader called per issuer),
  verifies each CRL's signature against the issuer, and refuses CRLs that are stale (past
  nextUpdate), from the future, deltas, or older than an optional ``max_age``.
- :class:`OcspRevocationChecker` builds an RFC 6960 request, posts it through an injected
  ``httpx.Client`` (so tests and the simulator use ``httpx.MockTransport``), and accepts the
  answer only if it is signed by the issuer or by a responder certificate the issuer delegated
  (``id-kp-OCSPSigning``), matches the CertID asked for, is fresh, and echoes our nonce when the
  responder supports nonces.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

DEFAULT_CLOCK_SKEW = timedelta(minutes=5)
"""Tolerance for a revocation source whose clock runs a little ahead of ours."""


class RevocationState(StrEnum):
    """What a revocation source said about one certificate."""

    GOOD = "good"
    """The source vouches that the certificate is not revoked at the time asked."""
    REVOKED = "revoked"
    """The certificate is revoked."""
    UNKNOWN = "unknown"
    """No trustworthy answer (unreachable, stale, unsigned, mismatched); verifiers refuse."""


@dataclass(frozen=True)
class RevocationStatus:
    """A checker's answer, with enough detail for the verification record."""

    state: RevocationState
    reason: str
    """Human explanation: why unknown, or the revocation reason."""
    source: str
    """``crl`` or ``ocsp`` (or another checker's name)."""
    revoked_at: datetime | None = None
    revocation_reason: x509.ReasonFlags | None = None

    @property
    def is_good(self) -> bool:
        """True only for a positive, verified ``good`` answer."""
        return self.state is RevocationState.GOOD


class RevocationChecker(Protocol):
    """Answers whether ``certificate`` (issued by ``issuer``) is revoked at ``now``."""

    def check(
        self, certificate: x509.Certificate, issuer: x509.Certificate, now: datetime
    ) -> RevocationStatus:
        """Never raises for bad revocation data: answers ``unknown`` instead."""
        ...


def verify_signature(
    public_key: object, signature: bytes, data: bytes, hash_algorithm: hashes.HashAlgorithm | None
) -> bool:
    """True if ``signature`` over ``data`` verifies with ``public_key``; False for any failure.

    RSA is PKCS#1 v1.5 (what CAs and OCSP responders use); RSA-PSS-signed responses are not
    accepted, which is a refusal (``unknown``), never an acceptance.
    """
    try:
        if isinstance(public_key, rsa.RSAPublicKey) and hash_algorithm is not None:
            public_key.verify(signature, data, padding.PKCS1v15(), hash_algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and hash_algorithm is not None:
            public_key.verify(signature, data, ec.ECDSA(hash_algorithm))
        elif isinstance(public_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            public_key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return True


_ISSUER_KEY_TYPES = (
    rsa.RSAPublicKey,
    ec.EllipticCurvePublicKey,
    ed25519.Ed25519PublicKey,
    ed448.Ed448PublicKey,
)
"""Key types that can sign a CRL (DSA is deliberately left out)."""


def _unknown(reason: str, source: str) -> RevocationStatus:
    return RevocationStatus(RevocationState.UNKNOWN, reason, source)


# --- CRL ------------------------------------------------------------------------------------

CrlLoader = Callable[[x509.Certificate], bytes | None]
"""Given the issuer certificate, return its current CRL (DER or PEM), or None if unavailable."""


class CrlRevocationChecker:
    """Revocation from CRLs: fixed bytes, or a loader called with the issuer on every check."""

    source = "crl"

    def __init__(
        self,
        crls: bytes | Sequence[bytes] = (),
        *,
        loader: CrlLoader | None = None,
        max_age: timedelta | None = None,
        clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
    ) -> None:
        self._crls = [crls] if isinstance(crls, bytes) else list(crls)
        self._loader = loader
        self._max_age = max_age
        self._clock_skew = clock_skew

    def check(
        self, certificate: x509.Certificate, issuer: x509.Certificate, now: datetime
    ) -> RevocationStatus:
        """Find the issuer's CRL, prove it authentic and fresh, then look up the serial."""
        crl = self._authentic_crl(certificate, issuer)
        if crl is None:
            return _unknown(
                f"no CRL signed by {issuer.subject.rfc4514_string()} covers this certificate",
                self.source,
            )
        stale = self._staleness(crl, now)
        if stale is not None:
            return _unknown(stale, self.source)
        entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
        if entry is None:
            return RevocationStatus(RevocationState.GOOD, "not on the CRL", self.source)
        return _revoked_from_crl_entry(entry, self.source)

    def _candidates(self, issuer: x509.Certificate) -> list[bytes]:
        if self._loader is None:
            return self._crls
        # The loader is the caller's I/O (a download, a file); whatever it raises, the
        # contract of a checker is to answer "unknown", never to raise.
        try:
            loaded = self._loader(issuer)
        except Exception:
            return []
        return [loaded] if loaded is not None else []

    def _authentic_crl(
        self, certificate: x509.Certificate, issuer: x509.Certificate
    ) -> x509.CertificateRevocationList | None:
        for raw in self._candidates(issuer):
            crl = _parse_crl(raw)
            if crl is None or crl.issuer != issuer.subject:
                continue
            if _crl_covers(crl, certificate) and _crl_signed_by(crl, issuer):
                return crl
        return None

    def _staleness(self, crl: x509.CertificateRevocationList, now: datetime) -> str | None:
        next_update = crl.next_update_utc
        if next_update is None:
            return "the CRL has no nextUpdate, so its freshness cannot be judged"
        if now > next_update:
            return f"the CRL is stale: nextUpdate {next_update.isoformat()} has passed"
        if crl.last_update_utc > now + self._clock_skew:
            return "the CRL was issued in the future"
        if self._max_age is not None and now - crl.last_update_utc > self._max_age:
            return f"the CRL is older than the accepted {self._max_age}"
        return None


def _parse_crl(raw: bytes) -> x509.CertificateRevocationList | None:
    try:
        if raw.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(raw)
        return x509.load_der_x509_crl(raw)
    except ValueError:
        return None


def _crl_covers(crl: x509.CertificateRevocationList, certificate: x509.Certificate) -> bool:
    """True if ``crl`` is a complete list for the scope ``certificate`` falls in.

    Reading a CRL as "the full list" when it is not could turn revoked into good: a delta CRL
    lists only changes, an indirect CRL can speak for other issuers, and a partitioned CRL
    (JPKI partitions its CRLs) only covers the certificates whose CRL distribution point names
    that partition.
    """
    try:
        if any(isinstance(ext.value, x509.DeltaCRLIndicator) for ext in crl.extensions):
            return False
        idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        return True
    except ValueError:
        return False
    if idp.indirect_crl or idp.only_some_reasons or idp.only_contains_attribute_certs:
        return False
    if idp.relative_name is not None:
        return False  # not used by JPKI; refusing is safer than guessing its scope
    is_ca = _is_ca(certificate)
    if (idp.only_contains_user_certs and is_ca) or (idp.only_contains_ca_certs and not is_ca):
        return False
    return idp.full_name is None or _names_partition(certificate, idp.full_name)


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _names_partition(certificate: x509.Certificate, partition: list[x509.GeneralName]) -> bool:
    try:
        points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return False
    wanted = set(partition)
    return any(point.full_name and wanted & set(point.full_name) for point in points)


def _crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    key = issuer.public_key()
    if not isinstance(key, _ISSUER_KEY_TYPES):
        return False
    try:
        return crl.is_signature_valid(key)
    except (TypeError, ValueError, UnsupportedAlgorithm):
        return False


def _revoked_from_crl_entry(entry: x509.RevokedCertificate, source: str) -> RevocationStatus:
    try:
        reason: x509.ReasonFlags | None = entry.extensions.get_extension_for_class(
            x509.CRLReason
        ).value.reason
    except (x509.ExtensionNotFound, ValueError):
        reason = None
    label = reason.value if reason is not None else "unspecified"
    return RevocationStatus(
        RevocationState.REVOKED,
        f"revoked ({label})",
        source,
        revoked_at=entry.revocation_date_utc,
        revocation_reason=reason,
    )


# --- OCSP -----------------------------------------------------------------------------------


class OcspRevocationChecker:
    """Revocation from an OCSP responder reached through an injected ``httpx.Client``."""

    source = "ocsp"

    def __init__(
        self,
        *,
        client: httpx.Client,
        responder_url: str | None = None,
        max_age: timedelta = timedelta(days=1),
        clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
        send_nonce: bool = True,
    ) -> None:
        self._client = client
        self._responder_url = responder_url
        self._max_age = max_age
        self._clock_skew = clock_skew
        self._send_nonce = send_nonce

    def check(
        self, certificate: x509.Certificate, issuer: x509.Certificate, now: datetime
    ) -> RevocationStatus:
        """Ask the responder, then accept only an authentic, matching, fresh answer."""
        url = self._responder_url or _ocsp_url(certificate)
        if url is None:
            return _unknown("no OCSP responder configured or named in the certificate", "ocsp")
        nonce = os.urandom(32) if self._send_nonce else None
        request = _build_request(certificate, issuer, nonce)
        body = self._post(url, request.public_bytes(Encoding.DER))
        if body is None:
            return _unknown(f"the OCSP responder at {url} did not answer", self.source)
        return self._judge(body, request, issuer, nonce, now)

    def _post(self, url: str, request_der: bytes) -> bytes | None:
        try:
            response = self._client.post(
                url, content=request_der, headers={"Content-Type": "application/ocsp-request"}
            )
        except httpx.HTTPError:
            return None
        return response.content if response.status_code == 200 else None

    def _judge(
        self,
        body: bytes,
        request: ocsp.OCSPRequest,
        issuer: x509.Certificate,
        nonce: bytes | None,
        now: datetime,
    ) -> RevocationStatus:
        try:
            response = ocsp.load_der_ocsp_response(body)
        except ValueError:
            return _unknown("the OCSP response is not valid DER", self.source)
        if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            return _unknown(f"OCSP responder said {response.response_status.name}", self.source)
        problem = _response_problem(response, issuer, nonce, now)
        if problem is not None:
            return _unknown(problem, self.source)
        single = _matching_single_response(response, request)
        if single is None:
            return _unknown("the OCSP response is about another certificate", self.source)
        return self._status_of(single, now)

    def _status_of(self, single: ocsp.OCSPSingleResponse, now: datetime) -> RevocationStatus:
        stale = _ocsp_staleness(single, now, self._max_age, self._clock_skew)
        if stale is not None:
            return _unknown(stale, self.source)
        status = single.certificate_status
        if status is ocsp.OCSPCertStatus.GOOD:
            return RevocationStatus(RevocationState.GOOD, "OCSP: good", self.source)
        if status is ocsp.OCSPCertStatus.REVOKED:
            reason = single.revocation_reason
            label = reason.value if reason is not None else "unspecified"
            return RevocationStatus(
                RevocationState.REVOKED,
                f"revoked ({label})",
                self.source,
                revoked_at=single.revocation_time_utc,
                revocation_reason=reason,
            )
        return _unknown("the OCSP responder does not know this certificate", self.source)


def _ocsp_url(certificate: x509.Certificate) -> str | None:
    try:
        access = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    except (x509.ExtensionNotFound, ValueError):
        return None
    for description in access.value:
        location = description.access_location
        if description.access_method == AuthorityInformationAccessOID.OCSP and isinstance(
            location, x509.UniformResourceIdentifier
        ):
            return location.value
    return None


def _build_request(
    certificate: x509.Certificate, issuer: x509.Certificate, nonce: bytes | None
) -> ocsp.OCSPRequest:
    # SHA-1 CertIDs are what RFC 6960 responders (JPKI's included) are required to understand;
    # the hash only names the certificate, it protects nothing.
    builder = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build()


def _response_problem(
    response: ocsp.OCSPResponse, issuer: x509.Certificate, nonce: bytes | None, now: datetime
) -> str | None:
    signer = _responder_certificate(response, issuer, now)
    if signer is None:
        return "the OCSP response is not signed by the issuer or a responder it delegated"
    if not verify_signature(
        signer.public_key(),
        response.signature,
        response.tbs_response_bytes,
        response.signature_hash_algorithm,
    ):
        return "the OCSP response signature does not verify"
    if nonce is not None and not _nonce_echo_ok(response, nonce):
        return "the OCSP response answers another request (nonce mismatch)"
    return None


def _responder_certificate(
    response: ocsp.OCSPResponse, issuer: x509.Certificate, now: datetime
) -> x509.Certificate | None:
    if _is_responder(response, issuer):
        return issuer
    for candidate in response.certificates:
        if _is_responder(response, candidate) and _is_delegated_responder(candidate, issuer, now):
            return candidate
    return None


def _is_responder(response: ocsp.OCSPResponse, certificate: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return response.responder_name == certificate.subject
    key_id = x509.SubjectKeyIdentifier.from_public_key(certificate.public_key())
    return response.responder_key_hash == key_id.digest


def _is_delegated_responder(
    candidate: x509.Certificate, issuer: x509.Certificate, now: datetime
) -> bool:
    # RFC 6960 4.2.2.2: a delegated responder is issued directly by the CA and carries
    # id-kp-OCSPSigning; without that check any certificate the CA ever issued could vouch.
    try:
        candidate.verify_directly_issued_by(issuer)
        usage = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm, x509.ExtensionNotFound):
        return False
    in_validity = candidate.not_valid_before_utc <= now <= candidate.not_valid_after_utc
    return in_validity and ExtendedKeyUsageOID.OCSP_SIGNING in usage


def _nonce_echo_ok(response: ocsp.OCSPResponse, nonce: bytes) -> bool:
    # Responders that serve pre-produced answers do not echo nonces (RFC 8954 allows it); then
    # freshness rests on thisUpdate/nextUpdate. A nonce that is echoed must be ours.
    try:
        echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return True
    except ValueError:
        return False
    return echoed == nonce


def _matching_single_response(
    response: ocsp.OCSPResponse, request: ocsp.OCSPRequest
) -> ocsp.OCSPSingleResponse | None:
    for single in response.responses:
        if (
            single.serial_number == request.serial_number
            and single.issuer_key_hash == request.issuer_key_hash
            and single.issuer_name_hash == request.issuer_name_hash
            and single.hash_algorithm.name == request.hash_algorithm.name
        ):
            return single
    return None


def _ocsp_staleness(
    single: ocsp.OCSPSingleResponse, now: datetime, max_age: timedelta, clock_skew: timedelta
) -> str | None:
    if single.this_update_utc > now + clock_skew:
        return "the OCSP response is dated in the future"
    next_update = single.next_update_utc
    if next_update is not None and now > next_update:
        return "the OCSP response is stale: nextUpdate has passed"
    if next_update is None and now - single.this_update_utc > max_age:
        return f"the OCSP response is older than the accepted {max_age}"
    return None
