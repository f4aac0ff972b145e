"""The dlib face matcher on real photographs shipped by installed packages.

The faces: scikit-image's ``astronaut`` (Eileen Collins, NASA) and matplotlib's
``grace_hopper`` sample image. The "selfie" of the astronaut is her photo cropped, mirrored,
rotated, re-lit and re-compressed: not a second photograph, which no package ships, but far
from the bytes of the reference (a hash comparison scores it 0).
"""

from __future__ import annotations

import io

import pytest
from matplotlib import cbook
from PIL import Image, ImageEnhance, ImageOps
from skimage import data as skimage_data

from kouza.identity.ekyc.facematch import DevFaceMatcher
from kouza.identity.ekyc.facemodel import DlibFaceMatcher, score_of


def png(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def jpeg(picture: Image.Image, quality: int = 70) -> bytes:
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=quality)
    return out.getvalue()


def astronaut() -> Image.Image:
    return Image.fromarray(skimage_data.astronaut())  # type: ignore[no-untyped-call]


def astronaut_portrait() -> Image.Image:
    """The chip photo: her head and shoulders (the full picture also shows a flag)."""
    return astronaut().crop((110, 0, 330, 260))


def astronaut_selfie() -> bytes:
    """Another framing of her face, mirrored, enlarged, tilted, brighter, JPEG-compressed."""
    picture = astronaut().crop((80, 10, 360, 290))
    picture = ImageOps.mirror(picture).resize((420, 420)).rotate(6)
    return jpeg(ImageEnhance.Brightness(picture).enhance(1.25))


def hopper() -> bytes:
    with open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), "rb") as handle:
        return handle.read()


@pytest.fixture(scope="module")
def matcher() -> DlibFaceMatcher:
    return DlibFaceMatcher(liveness=lambda selfie: True)


class TestDlibFaceMatcher:
    def test_the_same_person_scores_above_the_threshold(self, matcher: DlibFaceMatcher) -> None:
        reference = png(astronaut_portrait())
        selfie = astronaut_selfie()

        match = matcher.compare(reference=reference, selfie=selfie)

        assert match.score >= 0.8 and match.live
        # the hash stand-in cannot see that this is the same person
        assert DevFaceMatcher().compare(reference=reference, selfie=selfie).score == 0.0

    def test_another_person_scores_below_it(self, matcher: DlibFaceMatcher) -> None:
        match = matcher.compare(reference=png(astronaut_portrait()), selfie=hopper())
        assert match.score < 0.8

    @pytest.mark.parametrize("selfie", [b"", b"not an image", b"\x89PNG\r\n\x1a\n broken"])
    def test_an_undecodable_selfie_scores_zero(
        self, matcher: DlibFaceMatcher, selfie: bytes
    ) -> None:
        assert matcher.compare(reference=png(astronaut_portrait()), selfie=selfie).score == 0.0

    def test_a_picture_without_a_face_scores_zero(self, matcher: DlibFaceMatcher) -> None:
        coffee = png(Image.fromarray(skimage_data.coffee()))  # type: ignore[no-untyped-call]
        assert matcher.compare(reference=png(astronaut_portrait()), selfie=coffee).score == 0.0
        assert matcher.compare(reference=coffee, selfie=astronaut_selfie()).score == 0.0

    def test_liveness_is_the_checks_verdict(self) -> None:
        seen: list[bytes] = []

        def not_live(selfie: bytes) -> bool:
            seen.append(selfie)
            return False

        selfie = astronaut_selfie()
        match = DlibFaceMatcher(liveness=not_live).compare(
            reference=png(astronaut_portrait()), selfie=selfie
        )
        assert match.live is False and seen == [selfie]


@pytest.mark.parametrize(
    ("distance", "score"),
    [
        (0.0, 1.0),
        (0.6, 0.8),
        (0.3, 0.9),
        (3.0, 0.0),
        (5.0, 0.0),
    ],
)
def test_the_score_is_calibrated_on_dlibs_tolerance(distance: float, score: float) -> None:
    assert score_of(distance) == pytest.approx(score)
