"""Fixtures for the identity tests: the development CA world, keys generated once per session."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kouza.identity.ekyc.devca import DevCertificateAuthority, generate_rsa_key
from kouza.identity.ekyc.devchip import DevDocumentIssuer
from kouza.kit.clock import ManualClock
from kouza.runtime import Runtime
from tests.identity.support import CITIZEN, CrlShelf, EkycWorld, ekyc_configuration


@pytest.fixture(scope="session")
def identity_rsa_keys() -> list[rsa.RSAPrivateKey]:
    """CA root, two cards, a foreign root: RSA generation is the slow part of these tests."""
    return [generate_rsa_key() for _ in range(4)]


@pytest.fixture
def world(rt: Runtime, clock: ManualClock, identity_rsa_keys: list[rsa.RSAPrivateKey]) -> EkycWorld:
    """A dev CA and ID issuer configured as the runtime's eKYC provider, CRLs published now."""
    ca = DevCertificateAuthority.create(now=clock.now(), root_key=identity_rsa_keys[0])
    issuer = DevDocumentIssuer.create(now=clock.now())
    card = ca.issue_card(CITIZEN, now=clock.now(), key=identity_rsa_keys[1])
    built = EkycWorld(ca, issuer, CrlShelf(ca.cas), CrlShelf([issuer.root]), card)
    built.publish(clock.now())
    rt.ekyc = ekyc_configuration(built)
    return built
