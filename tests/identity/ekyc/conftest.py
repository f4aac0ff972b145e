"""Fixtures for the eKYC tests: one development CA world per test, keys generated once.

RSA key generation is the slow part, so a small pool of keys is made once per session and
reused; every test still gets its own CA objects (revocations never leak between tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from kouza.identity.ekyc.devca import (
    DevCertificateAuthority,
    TestCard,
    TestCitizen,
    generate_rsa_key,
)
from kouza.identity.ekyc.jpki import JPKI_SIGNING_POLICY_OIDS, JpkiVerifier
from kouza.identity.ekyc.nonces import InMemoryNonceStore
from kouza.identity.ekyc.result import EkycResult, Sex
from kouza.identity.ekyc.revocation import CrlRevocationChecker, RevocationChecker

NOW = datetime(2026, 4, 1, 1, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def rsa_keys() -> list[rsa.RSAPrivateKey]:
    """Root, intermediate, two cards, and a spare for a foreign CA."""
    return [generate_rsa_key() for _ in range(5)]


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def citizen() -> TestCitizen:
    return TestCitizen(
        name="山田　太郎",
        address="東京都千代田区霞が関二丁目１番２号",
        birth_date=date(1985, 6, 15),
        sex=Sex.MALE,
    )


@pytest.fixture
def dev_ca(rsa_keys: list[rsa.RSAPrivateKey]) -> DevCertificateAuthority:
    return DevCertificateAuthority.create(now=NOW, root_key=rsa_keys[0])


@pytest.fixture
def card(
    dev_ca: DevCertificateAuthority, citizen: TestCitizen, rsa_keys: list[rsa.RSAPrivateKey]
) -> TestCard:
    return dev_ca.issue_card(citizen, now=NOW, key=rsa_keys[2])


@pytest.fixture
def nonces() -> InMemoryNonceStore:
    return InMemoryNonceStore()


@dataclass
class CrlShelf:
    """Where the CA publishes CRLs and the checker's loader fetches them."""

    ca: DevCertificateAuthority
    published: list[bytes] = field(default_factory=list)

    def publish(self, *, at: datetime = NOW, next_update: timedelta = timedelta(days=1)) -> None:
        self.published = self.ca.crls(now=at, next_update=next_update)

    def load(self, issuer: x509.Certificate) -> bytes | None:
        for raw in self.published:
            if x509.load_der_x509_crl(raw).issuer == issuer.subject:
                return raw
        return None


@pytest.fixture
def crl_shelf(dev_ca: DevCertificateAuthority) -> CrlShelf:
    shelf = CrlShelf(dev_ca)
    shelf.publish()
    return shelf


@pytest.fixture
def crl_checker(crl_shelf: CrlShelf) -> CrlRevocationChecker:
    return CrlRevocationChecker(loader=crl_shelf.load)


MakeVerifier = Callable[..., JpkiVerifier]


@pytest.fixture
def make_verifier(
    dev_ca: DevCertificateAuthority, nonces: InMemoryNonceStore, crl_checker: CrlRevocationChecker
) -> MakeVerifier:
    def make(revocation: RevocationChecker | None = None) -> JpkiVerifier:
        return JpkiVerifier(
            trust_anchors=dev_ca.trust_anchors,
            intermediates=dev_ca.intermediates,
            policy_oids=JPKI_SIGNING_POLICY_OIDS,
            revocation=revocation or crl_checker,
            nonces=nonces,
        )

    return make


@pytest.fixture
def verifier(make_verifier: MakeVerifier) -> JpkiVerifier:
    return make_verifier()


Attempt = Callable[..., EkycResult]


@pytest.fixture
def attempt(verifier: JpkiVerifier, nonces: InMemoryNonceStore) -> Attempt:
    """One JPKI attempt: a fresh nonce, signed by ``card``, verified at ``at``."""

    def run(
        card: TestCard,
        *,
        at: datetime = NOW,
        using: JpkiVerifier | None = None,
        certificate: bytes | None = None,
    ) -> EkycResult:
        nonce = nonces.issue(at)
        return (using or verifier).verify(
            certificate=certificate if certificate is not None else card.certificate_der,
            signature=card.sign_nonce(nonce),
            nonce=nonce,
            now=at,
        )

    return run
