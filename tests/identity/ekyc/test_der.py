"""The strict DER helpers."""

from __future__ import annotations

import pytest
from cryptography.x509 import ObjectIdentifier

from kouza.identity.ekyc import der


class TestRoundTrip:
    @pytest.mark.parametrize("value", [0, 1, 127, 128, 255, 256, 2**64, -1, -129])
    def test_integer(self, value: int) -> None:
        assert der.decode_integer(der.decode_single(der.encode_integer(value))) == value

    @pytest.mark.parametrize(
        "dotted", ["1.2.392.200149.8.5.5.1", "2.16.840.1.101.3.4.2.1", "2.999.3", "0.9"]
    )
    def test_oid(self, dotted: str) -> None:
        oid = ObjectIdentifier(dotted)

        assert der.decode_oid(der.decode_single(der.encode_oid(oid))) == oid

    def test_long_form_length(self) -> None:
        encoded = der.encode_octets(b"x" * 300)

        assert encoded[:4] == b"\x04\x82\x01\x2c"
        assert der.expect(der.decode_single(encoded), der.OCTET_STRING) == b"x" * 300


class TestStrictness:
    @pytest.mark.parametrize(
        "data",
        [
            b"\x04\x80\x00\x00",  # indefinite length (BER)
            b"\x04\x81\x01x",  # long form for a short length
            b"\x04\x02x",  # shorter than its length
            b"\x04\x01xy",  # trailing byte
            b"\x1f\x01\x00",  # multi-byte tag
            b"\x04",  # truncated
        ],
    )
    def test_refused(self, data: bytes) -> None:
        with pytest.raises(der.DerError):
            der.decode_single(data)

    def test_non_minimal_integer(self) -> None:
        with pytest.raises(der.DerError):
            der.decode_integer(der.decode_single(b"\x02\x02\x00\x01"))

    def test_printable_string_alphabet(self) -> None:
        with pytest.raises(ValueError, match="PrintableString"):
            der.encode_printable("山田")
