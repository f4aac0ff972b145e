"""Fixtures of the customer pages' tests: the development CA as the wallet's eKYC trust."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kouza.identity.ekyc.devca import DevCertificateAuthority, generate_rsa_key
from kouza.identity.ekyc.devchip import DevDocumentIssuer
from kouza.kit.clock import ManualClock
from kouza.runtime import Runtime
from tests.identity.support import CITIZEN, CrlShelf, EkycWorld, ekyc_configuration


@pytest.fixture(scope="session")
def webapp_rsa_keys() -> list[rsa.RSAPrivateKey]:
    return [generate_rsa_key() for _ in range(2)]


@pytest.fixture
def ekyc_world(
    rt: Runtime, clock: ManualClock, webapp_rsa_keys: list[rsa.RSAPrivateKey]
) -> EkycWorld:
    ca = DevCertificateAuthority.create(now=clock.now(), root_key=webapp_rsa_keys[0])
    issuer = DevDocumentIssuer.create(now=clock.now())
    card = ca.issue_card(CITIZEN, now=clock.now(), key=webapp_rsa_keys[1])
    built = EkycWorld(ca, issuer, CrlShelf(ca.cas), CrlShelf([issuer.root]), card)
    built.publish(clock.now())
    rt.ekyc = ekyc_configuration(built)  # type: ignore[attr-defined]
    return built
