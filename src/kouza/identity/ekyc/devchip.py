"""A development ID-card issuer for the IC-chip method (へ), for tests and the simulator.

It plays the card issuer: an issuer root (ICAO's CSCA) certifies a document signer, which signs
EF.SOD of each chip it personalises: a CMS SignedData (built with asn1crypto) over the
LDSSecurityObject listing the data groups' hashes, with the content-type and message-digest
signed attributes and the document-signer certificate inside, as ICAO 9303-10 prescribes. A
:class:`TestChip` then answers a read the way a real chip and reading app would: the data
groups, EF.SOD, and, when the chip has a key, an active-authentication signature over the
server nonce. Keys are ECDSA P-256, which is realistic for current ID chips and keeps
tests fast. The verifier only ever sees the root as a trust anchor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import ClassVar

import httpx
from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kouza.identity.ekyc import icchip
from kouza.identity.ekyc.devca import DevCa, ocsp_http_handler
from kouza.identity.ekyc.icchip import ChipRead, DataGroup
from kouza.identity.ekyc.result import Sex

SIGNER_VALIDITY = timedelta(days=3 * 365)
_SIGNER_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def generate_ec_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 key."""
    return ec.generate_private_key(ec.SECP256R1())


@dataclass(frozen=True)
class TestChipHolder:
    """What an issuer writes to a chip."""

    __test__: ClassVar[bool] = False  # not a pytest test class, despite the name

    name: str
    address: str
    birth_date: date
    sex: Sex | None
    document_number: str
    expires_on: date
    face_image: bytes

    def data_groups(self) -> dict[int, bytes]:
        """DG1–DG3 in the verifier's encoding."""
        return {
            DataGroup.HOLDER: icchip.encode_holder_group(
                name=self.name, address=self.address, birth_date=self.birth_date, sex=self.sex
            ),
            DataGroup.FACE: icchip.encode_face_group(self.face_image),
            DataGroup.DOCUMENT: icchip.encode_document_group(
                number=self.document_number, expires_on=self.expires_on
            ),
        }


@dataclass
class TestChip:
    """A personalised chip; ``read`` is what the user's app would send for a nonce."""

    __test__: ClassVar[bool] = False  # not a pytest test class, despite the name

    data_groups: dict[int, bytes]
    sod: bytes
    chip_key: ec.EllipticCurvePrivateKey | None = None

    def read(self, nonce: str) -> ChipRead:
        """The chip's answer, with active authentication over ``nonce`` when it has a key."""
        signature = None
        if self.chip_key is not None:
            message = icchip.active_authentication_message(nonce)
            signature = self.chip_key.sign(message, ec.ECDSA(hashes.SHA256()))
        return ChipRead(
            data_groups=dict(self.data_groups),
            sod=self.sod,
            active_authentication_signature=signature,
        )


class DevDocumentIssuer:
    """Issuer root + document signer that personalise :class:`TestChip` objects."""

    def __init__(
        self, root: DevCa, signer_key: ec.EllipticCurvePrivateKey, signer: x509.Certificate
    ) -> None:
        self.root = root
        self.signer_key = signer_key
        self.signer = signer

    @classmethod
    def create(cls, *, now: datetime, common_name: str = "ID card issuer") -> DevDocumentIssuer:
        """A new issuer root and one document signer valid from ``now``."""
        root = DevCa.self_signed(
            key=generate_ec_key(),
            common_name=f"kouza DEVELOPMENT {common_name} root",
            label=f"{common_name} root",
            now=now,
        )
        signer_key = generate_ec_key()
        builder = root.end_entity_builder(
            public_key=signer_key.public_key(),
            common_name=f"kouza DEVELOPMENT {common_name} document signer",
            not_before=now - timedelta(minutes=5),
            not_after=now + SIGNER_VALIDITY,
        ).add_extension(_SIGNER_USAGE, critical=True)
        return cls(root, signer_key, root.sign(builder))

    @property
    def trust_anchors(self) -> list[x509.Certificate]:
        """What an IC-chip verifier pins."""
        return [self.root.certificate]

    def issue_chip(self, holder: TestChipHolder, *, with_chip_key: bool = True) -> TestChip:
        """Personalise a chip for ``holder`` (with an active-authentication key by default)."""
        groups = holder.data_groups()
        chip_key = generate_ec_key() if with_chip_key else None
        if chip_key is not None:
            groups[DataGroup.CHIP_KEY] = icchip.encode_chip_key_group(chip_key.public_key())
        return TestChip(data_groups=groups, sod=self.sign_sod(groups), chip_key=chip_key)

    def sign_sod(self, groups: dict[int, bytes]) -> bytes:
        """EF.SOD over ``groups``, signed by this issuer's document signer."""
        return self.sign_content(icchip.encode_lds_security_object(groups))

    def sign_content(self, content: bytes) -> bytes:
        """EF.SOD around any LDSSecurityObject bytes (tests sign malformed ones too)."""
        return sign_sod(content, key=self.signer_key, certificate=self.signer)

    def revoke_signer(self, *, now: datetime) -> None:
        """Revoke the document signer (as after a key compromise)."""
        self.root.revoke(self.signer.serial_number, now=now, reason=x509.ReasonFlags.key_compromise)

    def crl(self, *, now: datetime) -> bytes:
        """The issuer root's CRL (covers document signers)."""
        return self.root.crl(now=now)

    def ocsp_handler(
        self, clock: Callable[[], datetime]
    ) -> Callable[[httpx.Request], httpx.Response]:
        """An ``httpx.MockTransport`` handler serving the issuer's OCSP."""
        return ocsp_http_handler([self.root], clock)


def sign_sod(
    content: bytes, *, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate
) -> bytes:
    """EF.SOD: SignedData over ``content`` with signed attributes, signed by ``key``."""
    hasher = hashes.Hash(hashes.SHA256())
    hasher.update(content)
    attributes = cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": [icchip.LDS_SECURITY_OBJECT_OID]}),
            cms.CMSAttribute({"type": "message_digest", "values": [hasher.finalize()]}),
        ]
    )
    signer = asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": {
                        "issuer": signer.issuer,
                        "serial_number": signer.serial_number,
                    }
                }
            ),
            "digest_algorithm": {"algorithm": "sha256"},
            "signed_attrs": attributes,
            "signature_algorithm": {"algorithm": "sha256_ecdsa"},
            "signature": key.sign(attributes.dump(), ec.ECDSA(hashes.SHA256())),
        }
    )
    signed = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [{"algorithm": "sha256"}],
            "encap_content_info": {
                "content_type": icchip.LDS_SECURITY_OBJECT_OID,
                "content": content,
            },
            "certificates": [signer],
            "signer_infos": [signer_info],
        }
    )
    info = cms.ContentInfo({"content_type": "signed_data", "content": signed})
    return icchip.wrap_sod(bytes(info.dump()))
