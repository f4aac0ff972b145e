"""A development certificate authority that imitates JPKI, for tests, the simulator and demos.

No real My Number card can be used in development, so this module issues certificates shaped
like J-LIS signing certificates to made-up citizens: RSA-2048 keys, a critical key usage of
digitalSignature + nonRepudiation, a critical certificatePolicies extension with the signing
policy OID, the four attributes as subjectAltName ``otherName`` UTF8Strings under
1.2.392.200149.8.5.5 (plus the two substitute-character position fields real certificates
carry), CRL distribution point and OCSP URLs. It can revoke, publish CRLs and answer OCSP
requests, and a :class:`TestCard` signs nonces the way the card does.

Its names all say "DEVELOPMENT" and its URLs are under ``.invalid`` (RFC 2606), so a
certificate from here can never be mistaken for a real one. The verifiers do not know this
module exists: a test wires the dev CA's root in as a trust anchor exactly as production wires
the J-LIS root, and the dev CA's CRL or OCSP responder behind the same revocation checkers.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import ClassVar

import httpx
from asn1crypto import core, keys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from kouza.identity.ekyc import jpki
from kouza.identity.ekyc.result import Sex

CaKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

DEV_CPS_URI = "https://devca.kouza.invalid/cps"
DEV_OCSP_URL = "http://devca.kouza.invalid/ocsp"
DEV_CRL_URL = "http://devca.kouza.invalid/crl/{label}.der"
CA_VALIDITY = timedelta(days=10 * 365)
CARD_VALIDITY = timedelta(days=5 * 365)
"""JPKI signing certificates last until the 5th birthday after issuance; 5 years is close."""
CRL_NEXT_UPDATE = timedelta(days=1)
OCSP_NEXT_UPDATE = timedelta(hours=1)
_BACKDATE = timedelta(minutes=5)
_SIGNING_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=True,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)
_CA_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def generate_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A fresh RSA key (2048 bits like the card unless told otherwise)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def dev_name(common_name: str) -> x509.Name:
    """A distinguished name that cannot be confused with J-LIS's."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kouza DEVELOPMENT CA - NOT JPKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


@dataclass(frozen=True)
class TestCitizen:
    """A made-up person to issue a card to."""

    __test__: ClassVar[bool] = False  # not a pytest test class, despite the name

    name: str
    address: str
    birth_date: date
    sex: Sex

    def other_names(self) -> list[x509.OtherName]:
        """The subjectAltName entries a J-LIS signing certificate carries, in its order."""
        return [
            _other_name(jpki.OID_NAME, self.name),
            _other_name(jpki.OID_BIRTH_DATE, jpki.encode_birth_date(self.birth_date)),
            _other_name(jpki.OID_SEX, _SEX_CODE[self.sex]),
            _other_name(jpki.OID_ADDRESS, self.address),
            _other_name(jpki.OID_NAME_SUBSTITUTES, "0" * len(self.name)),
            _other_name(jpki.OID_ADDRESS_SUBSTITUTES, "0" * len(self.address)),
        ]


_SEX_CODE = {sex: code for code, sex in jpki.SEX_CODES.items()}


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    hasher = hashes.Hash(algorithm)
    hasher.update(data)
    return hasher.finalize()


def _key_bits(certificate: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's value (what an OCSP CertID's key hash covers)."""
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return bytes(keys.PublicKeyInfo.load(spki)["public_key"].contents[1:])


def _other_name(oid: x509.ObjectIdentifier, text: str) -> x509.OtherName:
    # cryptography wants the DER of the value inside otherName's [0] EXPLICIT wrapper.
    return x509.OtherName(oid, bytes(core.UTF8String(text).dump()))


@dataclass(frozen=True)
class Revocation:
    """When and why the dev CA revoked a serial."""

    revoked_at: datetime
    reason: x509.ReasonFlags


@dataclass
class DevCa:
    """One CA: its key and certificate, what it issued and what it revoked."""

    key: CaKey
    certificate: x509.Certificate
    label: str
    issued: dict[int, x509.Certificate] = field(default_factory=dict)
    revoked: dict[int, Revocation] = field(default_factory=dict)

    @classmethod
    def self_signed(cls, *, key: CaKey, common_name: str, label: str, now: datetime) -> DevCa:
        """A root: self-signed, CA:true, keyCertSign + cRLSign."""
        name = dev_name(common_name)
        builder = _ca_builder(name, name, key.public_key(), now, path_length=None)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        return cls(key, builder.sign(key, hashes.SHA256()), label)

    def issue_ca(self, *, key: CaKey, common_name: str, label: str, now: datetime) -> DevCa:
        """A subordinate CA certificate (path length 0: it issues end entities only)."""
        builder = (
            _ca_builder(
                dev_name(common_name),
                self.certificate.subject,
                key.public_key(),
                now,
                path_length=0,
            )
            .add_extension(self._aki(), critical=False)
            .add_extension(self._crl_distribution_point(), critical=False)
            .add_extension(_ocsp_access(), critical=False)
        )
        certificate = self.sign(builder)
        return DevCa(key, certificate, label)

    def sign(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        """Sign and remember a certificate."""
        certificate = builder.sign(self.key, hashes.SHA256())
        self.issued[certificate.serial_number] = certificate
        return certificate

    def end_entity_builder(
        self,
        *,
        public_key: CertificatePublicKeyTypes,
        common_name: str,
        not_before: datetime,
        not_after: datetime,
    ) -> x509.CertificateBuilder:
        """The parts every end-entity certificate from this CA shares."""
        return (
            x509.CertificateBuilder()
            .subject_name(dev_name(common_name))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(self._aki(), critical=False)
            .add_extension(self._crl_distribution_point(), critical=False)
            .add_extension(_ocsp_access(), critical=False)
        )

    def revoke(self, serial: int, *, now: datetime, reason: x509.ReasonFlags) -> None:
        """Put ``serial`` on this CA's revocation list."""
        if serial not in self.issued:
            raise KeyError(serial)
        self.revoked[serial] = Revocation(now, reason)

    def crl(self, *, now: datetime, next_update: timedelta = CRL_NEXT_UPDATE) -> bytes:
        """A fresh, signed CRL (DER) listing every revoked serial."""
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now)
            .next_update(now + next_update)
            .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
            .add_extension(self._aki(), critical=False)
        )
        for serial, revocation in sorted(self.revoked.items()):
            builder = builder.add_revoked_certificate(_revoked_entry(serial, revocation))
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def status_of(
        self, serial: int
    ) -> tuple[ocsp.OCSPCertStatus, datetime | None, x509.ReasonFlags | None]:
        """OCSP status: good, revoked (with time and reason) or unknown (never issued)."""
        if serial in self.revoked:
            revocation = self.revoked[serial]
            reason = revocation.reason
            recorded = None if reason is x509.ReasonFlags.unspecified else reason
            return ocsp.OCSPCertStatus.REVOKED, revocation.revoked_at, recorded
        if serial in self.issued:
            return ocsp.OCSPCertStatus.GOOD, None, None
        return ocsp.OCSPCertStatus.UNKNOWN, None, None

    def answers_for(self, request: ocsp.OCSPRequest) -> bool:
        """True if ``request``'s CertID names this CA as issuer."""
        algorithm = request.hash_algorithm
        name_hash = _digest(algorithm, self.certificate.subject.public_bytes())
        key_hash = _digest(algorithm, _key_bits(self.certificate))
        return request.issuer_name_hash == name_hash and request.issuer_key_hash == key_hash

    def _aki(self) -> x509.AuthorityKeyIdentifier:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key())

    def _crl_distribution_point(self) -> x509.CRLDistributionPoints:
        uri = x509.UniformResourceIdentifier(DEV_CRL_URL.format(label=self.label))
        return x509.CRLDistributionPoints(
            [x509.DistributionPoint([uri], relative_name=None, reasons=None, crl_issuer=None)]
        )


def _ca_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    now: datetime,
    *,
    path_length: int | None,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _ocsp_access() -> x509.AuthorityInformationAccess:
    return x509.AuthorityInformationAccess(
        [
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(DEV_OCSP_URL)
            )
        ]
    )


def _revoked_entry(serial: int, revocation: Revocation) -> x509.RevokedCertificate:
    builder = (
        x509.RevokedCertificateBuilder()
        .serial_number(serial)
        .revocation_date(revocation.revoked_at)
    )
    # RFC 5280 5.3.1: omit the reason rather than say "unspecified".
    if revocation.reason is not x509.ReasonFlags.unspecified:
        builder = builder.add_extension(x509.CRLReason(revocation.reason), critical=False)
    return builder.build()


@dataclass(frozen=True)
class TestCard:
    """A stand-in My Number card: the signing certificate and the key the chip would guard."""

    __test__: ClassVar[bool] = False  # not a pytest test class, despite the name

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey

    @property
    def certificate_der(self) -> bytes:
        """The certificate as the card returns it (DER)."""
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def sign_nonce(self, nonce: str) -> bytes:
        """What the card returns: PKCS#1 v1.5 / SHA-256 over the challenge for ``nonce``."""
        return self.private_key.sign(
            jpki.challenge_message(nonce), padding.PKCS1v15(), hashes.SHA256()
        )


class DevCertificateAuthority:
    """A JPKI-like hierarchy: a root, optionally an intermediate, issuing signing certificates."""

    def __init__(self, root: DevCa, issuing: DevCa | None = None) -> None:
        self.root = root
        self.issuing = issuing or root

    @classmethod
    def create(
        cls,
        *,
        now: datetime,
        with_intermediate: bool = False,
        root_key: CaKey | None = None,
        intermediate_key: CaKey | None = None,
    ) -> DevCertificateAuthority:
        """A new hierarchy; pass keys to reuse them (RSA key generation is slow in tests)."""
        root = DevCa.self_signed(
            key=root_key or generate_rsa_key(),
            common_name="kouza DEVELOPMENT JPKI-like root",
            label="root",
            now=now,
        )
        if not with_intermediate:
            return cls(root)
        issuing = root.issue_ca(
            key=intermediate_key or generate_rsa_key(),
            common_name="kouza DEVELOPMENT JPKI-like signing CA",
            label="issuing",
            now=now,
        )
        return cls(root, issuing)

    @property
    def cas(self) -> list[DevCa]:
        """Every CA in the hierarchy, root first."""
        return [self.root] if self.issuing is self.root else [self.root, self.issuing]

    @property
    def trust_anchors(self) -> list[x509.Certificate]:
        """What a verifier pins (the root)."""
        return [self.root.certificate]

    @property
    def intermediates(self) -> list[x509.Certificate]:
        """What a verifier is configured with besides the anchor."""
        return [ca.certificate for ca in self.cas if ca is not self.root]

    def issue_card(
        self,
        citizen: TestCitizen,
        *,
        now: datetime,
        key: rsa.RSAPrivateKey | None = None,
        validity: timedelta = CARD_VALIDITY,
    ) -> TestCard:
        """A card for ``citizen``: a JPKI-shaped signing certificate and its private key."""
        key = key or generate_rsa_key()
        certificate = self.issue_signing_certificate(
            key.public_key(),
            other_names=citizen.other_names(),
            not_before=now - _BACKDATE,
            not_after=now + validity,
        )
        return TestCard(certificate, key)

    def issue_signing_certificate(
        self,
        public_key: CertificatePublicKeyTypes,
        *,
        other_names: Sequence[x509.GeneralName] | None,
        not_before: datetime,
        not_after: datetime,
        policy_oids: Sequence[x509.ObjectIdentifier] = (jpki.JPKI_SIGNING_POLICY_OID,),
    ) -> x509.Certificate:
        """Low level: any key, any SAN (None: no SAN at all), any policies. For tests."""
        builder = self.issuing.end_entity_builder(
            public_key=public_key,
            common_name=f"DEV-{secrets.token_hex(8).upper()}",
            not_before=not_before,
            not_after=not_after,
        ).add_extension(_SIGNING_USAGE, critical=True)
        if other_names is not None:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(list(other_names)), critical=False
            )
        if policy_oids:
            policies = [x509.PolicyInformation(oid, [DEV_CPS_URI]) for oid in policy_oids]
            builder = builder.add_extension(x509.CertificatePolicies(policies), critical=True)
        return self.issuing.sign(builder)

    def revoke(
        self,
        serial: int,
        *,
        now: datetime,
        reason: x509.ReasonFlags = x509.ReasonFlags.unspecified,
    ) -> None:
        """Revoke a serial issued by any CA of the hierarchy."""
        for ca in self.cas:
            if serial in ca.issued:
                ca.revoke(serial, now=now, reason=reason)
                return
        raise KeyError(serial)

    def crls(self, *, now: datetime, next_update: timedelta = CRL_NEXT_UPDATE) -> list[bytes]:
        """A fresh CRL from every CA (the root's covers the intermediate)."""
        return [ca.crl(now=now, next_update=next_update) for ca in self.cas]

    def respond_ocsp(
        self, request_der: bytes, *, now: datetime, next_update: timedelta = OCSP_NEXT_UPDATE
    ) -> bytes:
        """An OCSP responder: a signed answer (by the issuing CA itself) for one request."""
        return respond_ocsp(self.cas, request_der, now=now, next_update=next_update)

    def ocsp_handler(
        self, clock: Callable[[], datetime]
    ) -> Callable[[httpx.Request], httpx.Response]:
        """An ``httpx.MockTransport`` handler serving this CA's OCSP at ``clock()``."""
        return ocsp_http_handler(self.cas, clock)


def respond_ocsp(
    cas: Sequence[DevCa], request_der: bytes, *, now: datetime, next_update: timedelta
) -> bytes:
    """Answer an OCSP request for certificates issued by any of ``cas``."""
    try:
        request = ocsp.load_der_ocsp_request(request_der)
    except ValueError:
        return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    ca = next((ca for ca in cas if ca.answers_for(request)), None)
    if ca is None:
        return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    status, revoked_at, reason = ca.status_of(request.serial_number)
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number,
            algorithm=request.hash_algorithm,
            cert_status=status,
            this_update=now,
            next_update=now + next_update,
            revocation_time=revoked_at,
            revocation_reason=reason,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, ca.certificate)
    )
    try:
        nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value
        builder = builder.add_extension(nonce, critical=False)
    except x509.ExtensionNotFound:
        pass
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    response = ocsp.OCSPResponseBuilder.build_unsuccessful(status)
    return response.public_bytes(serialization.Encoding.DER)


def ocsp_http_handler(
    cas: Sequence[DevCa], clock: Callable[[], datetime]
) -> Callable[[httpx.Request], httpx.Response]:
    """An ``httpx.MockTransport`` handler: POSTed OCSP request in, signed response out."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method != "POST":
            return httpx.Response(405)
        body = respond_ocsp(cas, request.content, now=clock(), next_update=OCSP_NEXT_UPDATE)
        return httpx.Response(
            200, content=body, headers={"Content-Type": "application/ocsp-response"}
        )

    return handle
