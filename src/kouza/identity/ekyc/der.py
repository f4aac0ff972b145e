"""The few DER encodings eKYC needs that ``cryptography`` does not expose.

``cryptography`` parses and builds certificates, CRLs and OCSP messages, but hands the value of
a subjectAltName ``otherName`` back as raw DER, and has no public API for the small structures of
the IC-chip model (data groups, the security object). Rather than add an ASN.1 library for a
handful of primitive types, this module implements *strict* DER for exactly those:

- single-byte tags only (universal or context-specific, tag number < 31);
- definite, minimally encoded lengths (no BER indefinite form, no leading zero length bytes);
- no trailing bytes after a value that is meant to stand alone.

Anything else raises :class:`DerError`, which the verifiers turn into a refusal: a value that is
not canonical DER is not something an issuer signed the way we expect.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import Certificate, ObjectIdentifier

INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
OBJECT_IDENTIFIER = 0x06
UTF8_STRING = 0x0C
PRINTABLE_STRING = 0x13
IA5_STRING = 0x16
SEQUENCE = 0x30

_MAX_LENGTH_OCTETS = 4  # 4 GiB is far beyond anything a certificate field or chip file holds


class DerError(ValueError):
    """The bytes are not the strict DER this module accepts."""


@dataclass(frozen=True)
class Tlv:
    """One decoded tag-length-value element."""

    tag: int
    content: bytes


def context_tag(number: int, *, constructed: bool = False) -> int:
    """The single-byte tag ``[number]`` (IMPLICIT primitive unless ``constructed``)."""
    if not 0 <= number < 31:
        raise ValueError("only low tag numbers are supported")
    return 0x80 | (0x20 if constructed else 0) | number


def encode(tag: int, content: bytes) -> bytes:
    """One TLV with a definite, minimal length."""
    return bytes([tag]) + _encode_length(len(content)) + content


def _encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def encode_sequence(*items: bytes) -> bytes:
    """SEQUENCE of already-encoded items."""
    return encode(SEQUENCE, b"".join(items))


def encode_integer(value: int) -> bytes:
    """INTEGER, two's complement, minimal."""
    length = max(1, (value.bit_length() + 8) // 8)
    return encode(INTEGER, value.to_bytes(length, "big", signed=True))


def encode_utf8(text: str) -> bytes:
    """UTF8String."""
    return encode(UTF8_STRING, text.encode("utf-8"))


def encode_printable(text: str) -> bytes:
    """PrintableString; refuses characters outside the PrintableString alphabet."""
    if not all(char.isascii() and (char.isalnum() or char in " '()+,-./:=?") for char in text):
        raise ValueError(f"not a PrintableString: {text!r}")
    return encode(PRINTABLE_STRING, text.encode("ascii"))


def encode_octets(data: bytes) -> bytes:
    """OCTET STRING."""
    return encode(OCTET_STRING, data)


def encode_oid(oid: ObjectIdentifier) -> bytes:
    """OBJECT IDENTIFIER from a dotted string."""
    arcs = [int(part) for part in oid.dotted_string.split(".")]
    body = _base128(arcs[0] * 40 + arcs[1]) + b"".join(_base128(arc) for arc in arcs[2:])
    return encode(OBJECT_IDENTIFIER, body)


def _base128(value: int) -> bytes:
    groups = [value & 0x7F]
    value >>= 7
    while value:
        groups.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(groups))


def read(data: bytes, offset: int = 0) -> tuple[Tlv, int]:
    """Decode the TLV starting at ``offset``; return it and the offset just after it."""
    if offset + 2 > len(data):
        raise DerError("truncated element")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DerError("multi-byte tags are not supported")
    length, content_start = _read_length(data, offset + 1)
    end = content_start + length
    if end > len(data):
        raise DerError("element longer than the data")
    return Tlv(tag, data[content_start:end]), end


def _read_length(data: bytes, offset: int) -> tuple[int, int]:
    first = data[offset]
    if first < 0x80:
        return first, offset + 1
    count = first & 0x7F
    if count == 0:
        raise DerError("indefinite length is BER, not DER")
    if count > _MAX_LENGTH_OCTETS or offset + 1 + count > len(data):
        raise DerError("bad length")
    octets = data[offset + 1 : offset + 1 + count]
    length = int.from_bytes(octets, "big")
    if octets[0] == 0 or length < 0x80:
        raise DerError("length is not minimally encoded")
    return length, offset + 1 + count


def decode_single(data: bytes) -> Tlv:
    """Decode exactly one TLV that must span all of ``data``."""
    tlv, end = read(data)
    if end != len(data):
        raise DerError("trailing bytes after the value")
    return tlv


def decode_items(content: bytes) -> list[Tlv]:
    """Decode the concatenated elements inside a constructed value."""
    items: list[Tlv] = []
    offset = 0
    while offset < len(content):
        tlv, offset = read(content, offset)
        items.append(tlv)
    return items


def expect(tlv: Tlv, tag: int) -> bytes:
    """The content of ``tlv``, refusing any other tag."""
    if tlv.tag != tag:
        raise DerError(f"expected tag 0x{tag:02x}, found 0x{tlv.tag:02x}")
    return tlv.content


def decode_sequence(data: bytes) -> list[Tlv]:
    """The elements of a stand-alone SEQUENCE."""
    return decode_items(expect(decode_single(data), SEQUENCE))


def decode_integer(tlv: Tlv) -> int:
    """A minimally encoded INTEGER."""
    content = expect(tlv, INTEGER)
    if not content:
        raise DerError("empty INTEGER")
    if len(content) > 1 and (
        (content[0] == 0 and content[1] < 0x80) or (content[0] == 0xFF and content[1] >= 0x80)
    ):
        raise DerError("INTEGER is not minimally encoded")
    return int.from_bytes(content, "big", signed=True)


def decode_oid(tlv: Tlv) -> ObjectIdentifier:
    """An OBJECT IDENTIFIER as ``cryptography``'s type."""
    content = expect(tlv, OBJECT_IDENTIFIER)
    if not content or content[-1] & 0x80:
        raise DerError("truncated OBJECT IDENTIFIER")
    values: list[int] = []
    current = 0
    for byte in content:
        if current == 0 and byte == 0x80:  # a leading zero group: not minimal
            raise DerError("OBJECT IDENTIFIER arc is not minimally encoded")
        current = (current << 7) | (byte & 0x7F)
        if not byte & 0x80:
            values.append(current)
            current = 0
    first = min(values[0] // 40, 2)
    arcs = [first, values[0] - 40 * first, *values[1:]]
    return ObjectIdentifier(".".join(str(arc) for arc in arcs))


def spki_key_bits(certificate: Certificate) -> bytes:
    """The subjectPublicKey BIT STRING value (without its unused-bits octet)."""
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    items = decode_sequence(spki)
    if len(items) != 2:
        raise DerError("SubjectPublicKeyInfo must have two elements")
    bits = expect(items[1], BIT_STRING)
    if not bits or bits[0] != 0:
        raise DerError("public key BIT STRING must have no unused bits")
    return bits[1:]


def digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    """One-shot hash; used for OCSP CertIDs and IC-chip data-group hashes."""
    hasher = hashes.Hash(algorithm)
    hasher.update(data)
    return hasher.finalize()
