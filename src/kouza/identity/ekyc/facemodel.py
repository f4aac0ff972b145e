"""A real face matcher: dlib's face detector and ResNet face descriptor, run locally.

The weights are the ones ``face_recognition_models`` ships (dlib's
``dlib_face_recognition_resnet_model_v1``: 128-dimension descriptors, 99.38 % on LFW, with the
5-point landmark model for alignment); dlib itself comes prebuilt from ``dlib-bin``. The
``face_recognition`` package is deliberately not used: it is a thin wrapper over the same three
dlib calls, and it depends on the ``dlib`` source distribution, which would compile for tens of
minutes on install (ADR 0023).

**Score.** dlib's authors calibrate the Euclidean distance between two descriptors with a
tolerance of 0.6 (same person at or below). :class:`DlibFaceMatcher` maps distance linearly to a
score, ``1 - distance / 3`` clamped to [0, 1], so that the IC-chip verifier's default threshold
(0.8) is exactly that tolerance: a stricter operator raises the threshold.

**Faces.** The reference (the chip photo) and the selfie must each show a face; when several
are detected the largest is compared (a chip photo is a portrait; a selfie's subject is
closest). An image that does not decode or shows no face scores 0.

**Liveness is not done here.** Telling a live person from a printed photo, a screen or a
deepfake needs presentation-attack detection that kouza does not ship; the caller supplies a
:class:`LivenessCheck` (the capture SDK's verdict), and its answer is passed through unchanged.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Callable
from pathlib import Path

import dlib
import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from kouza.identity.ekyc.facematch import FaceMatch, FaceMatchUnavailable

LivenessCheck = Callable[[bytes], bool]
"""Whether the selfie was taken of a live person (a liveness provider's verdict)."""

TOLERANCE = 0.6
"""dlib's recommended descriptor distance for "same person"."""
_SCORE_SLOPE = (1.0 - 0.8) / TOLERANCE
_MAX_SIDE = 1024
"""Larger images are scaled down first: detection time grows with the pixel count."""
_UPSAMPLE = 1


def _models_dir() -> Path:
    # find_spec locates the package without importing it (its __init__ needs pkg_resources)
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise FaceMatchUnavailable("the face_recognition_models package is not installed")
    return Path(spec.origin).parent / "models"


class DlibFaceMatcher:
    """A :class:`~kouza.identity.ekyc.facematch.FaceMatcher` on dlib's ResNet descriptor."""

    def __init__(self, *, liveness: LivenessCheck, models_dir: Path | None = None) -> None:
        folder = models_dir or _models_dir()
        self._liveness = liveness
        self._detector = dlib.get_frontal_face_detector()
        self._landmarks = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
        self._encoder = dlib.face_recognition_model_v1(
            str(folder / "dlib_face_recognition_resnet_model_v1.dat")
        )

    def compare(self, *, reference: bytes, selfie: bytes) -> FaceMatch:
        """Descriptor distance between the largest faces, as a score; liveness from the check."""
        live = bool(self._liveness(selfie))
        known, candidate = self.descriptor(reference), self.descriptor(selfie)
        if known is None or candidate is None:
            return FaceMatch(score=0.0, live=live)
        return FaceMatch(score=score_of(float(np.linalg.norm(known - candidate))), live=live)

    def descriptor(self, image: bytes) -> NDArray[np.float64] | None:
        """The 128-dimension descriptor of the largest face in ``image``, or None."""
        pixels = _rgb(image)
        if pixels is None:
            return None
        faces = self._detector(pixels, _UPSAMPLE)
        if len(faces) == 0:
            return None
        face = max(faces, key=lambda rectangle: rectangle.area())
        shape = self._landmarks(pixels, face)
        return np.array(self._encoder.compute_face_descriptor(pixels, shape), dtype=np.float64)


def score_of(distance: float) -> float:
    """Distance 0 → 1.0, the 0.6 tolerance → 0.8, 3.0 and beyond → 0.0."""
    return min(1.0, max(0.0, 1.0 - distance * _SCORE_SLOPE))


def _rgb(image: bytes) -> NDArray[np.uint8] | None:
    try:
        with Image.open(io.BytesIO(image)) as opened:
            picture = opened.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    picture.thumbnail((_MAX_SIDE, _MAX_SIDE))
    return np.asarray(picture, dtype=np.uint8)
