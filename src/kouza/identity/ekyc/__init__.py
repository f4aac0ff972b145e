"""Online identity proofing (eKYC) under 犯収法施行規則 6条1項1号: JPKI (ワ) and IC chip (へ).

The photo-of-ID + selfie method (ホ) is deliberately absent: it is abolished from 2027-04-01.
See ``docs/ekyc.md`` for the design, the J-LIS profile details and what remains uncertain.

Verifiers (``JpkiVerifier``, ``IcChipVerifier``) take trust anchors, policies, a revocation
checker, a nonce store and the time from the caller, and return an ``EkycResult`` for any
input. The development CA (``kouza.identity.ekyc.devca``, ``devchip``, ``devca_cli``) is for
tests and demos and is never imported by the verifiers.
"""

from kouza.identity.ekyc.facematch import DevFaceMatcher, FaceMatch, FaceMatcher
from kouza.identity.ekyc.icchip import ChipRead, DataGroup, IcChipVerifier
from kouza.identity.ekyc.jpki import (
    JPKI_SIGNING_POLICY_OID,
    JPKI_SIGNING_POLICY_OIDS,
    JpkiVerifier,
    challenge_message,
)
from kouza.identity.ekyc.nonces import InMemoryNonceStore, NonceRefusal, NonceStore
from kouza.identity.ekyc.result import (
    EkycFailure,
    EkycMethod,
    EkycResult,
    Sex,
    VerifiedAttributes,
)
from kouza.identity.ekyc.revocation import (
    CrlRevocationChecker,
    OcspRevocationChecker,
    RevocationChecker,
    RevocationState,
    RevocationStatus,
)

__all__ = [
    "JPKI_SIGNING_POLICY_OID",
    "JPKI_SIGNING_POLICY_OIDS",
    "ChipRead",
    "CrlRevocationChecker",
    "DataGroup",
    "DevFaceMatcher",
    "EkycFailure",
    "EkycMethod",
    "EkycResult",
    "FaceMatch",
    "FaceMatcher",
    "IcChipVerifier",
    "InMemoryNonceStore",
    "JpkiVerifier",
    "NonceRefusal",
    "NonceStore",
    "OcspRevocationChecker",
    "RevocationChecker",
    "RevocationState",
    "RevocationStatus",
    "Sex",
    "VerifiedAttributes",
    "challenge_message",
]
