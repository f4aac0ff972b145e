"""Face matching for the IC-chip method: is the selfie the person on the chip's photo?

Face matching and liveness detection are bought from a provider; kouza only defines the
interface (:class:`FaceMatcher`) and the rule applied to its answer (the IC-chip verifier's
threshold). A provider that fails or times out raises; the verifier treats that as
``face_check_unavailable`` and refuses (fail closed).

:class:`DevFaceMatcher` is the deterministic local implementation for development, tests and the
simulator. It does no image processing at all: a "selfie" matches a reference photo exactly
when it is :func:`dev_selfie_for` that photo (a marker plus the photo's SHA-256), so tests can
produce a matching or a non-matching selfie without images or models.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

DEV_SELFIE_MARKER = b"KOUZA-DEV-SELFIE\x00"


@dataclass(frozen=True)
class FaceMatch:
    """A provider's answer."""

    score: float
    """Similarity in [0, 1]; 1 is certainly the same person."""
    live: bool
    """The provider's liveness verdict on the selfie (not a photo of a photo, not a replay)."""


class FaceMatcher(Protocol):
    """Compares a live selfie with the reference photo read from the chip."""

    def compare(self, *, reference: bytes, selfie: bytes) -> FaceMatch:
        """Score the selfie against the reference; raise if the provider cannot answer."""
        ...


class FaceMatchUnavailable(Exception):
    """A provider could not answer (for implementations to raise; the verifier refuses)."""


def dev_selfie_for(reference: bytes) -> bytes:
    """A development "selfie" that :class:`DevFaceMatcher` accepts as matching ``reference``."""
    return DEV_SELFIE_MARKER + hashlib.sha256(reference).digest()


class DevFaceMatcher:
    """Deterministic stand-in: score 1.0 for :func:`dev_selfie_for` the reference, else 0.0."""

    def compare(self, *, reference: bytes, selfie: bytes) -> FaceMatch:
        """Exact comparison against the marker; live when the marker is present."""
        live = selfie.startswith(DEV_SELFIE_MARKER)
        score = 1.0 if selfie == dev_selfie_for(reference) else 0.0
        return FaceMatch(score=score, live=live)
