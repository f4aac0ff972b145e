"""Identity's outward providers, built from settings when a runtime starts.

:func:`kouza.assembly.build_runtime` builds them with :func:`build_sms_sender` and
:func:`load_ekyc_configuration`:

- the ``sms`` sender: ``KOUZA_SMS_SENDER=file`` (development mailbox file, the default) or
  ``http`` (:class:`~kouza.identity.smsgateway.HttpSmsSender` with the gateway URL and key);
- ``KouzaRuntime.ekyc``: when ``KOUZA_EKYC_JPKI_ROOT_CERTIFICATES`` names files, an
  :class:`~kouza.identity.proofing.EkycConfiguration` offering JPKI with those pinned roots,
  the accepted policies (the J-LIS signing policy unless configured) and a revocation checker
  on ``KOUZA_EKYC_REVOCATION_URL`` (OCSP, or a CRL fetched over HTTP and cached until its
  nextUpdate). Without roots nothing is set, and eKYC answers ``ekyc_not_configured``.

A missing, unreadable or invalid file, a root that is not a CA or is expired, a missing
revocation URL or a bad policy OID stops start-up with :class:`ProviderConfigurationError`
naming the setting and the file — a server must not run with half a trust store. The IC-chip
method is not configured here: it needs a real face-match provider, which kouza does not ship.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from cryptography import x509
from cryptography.x509 import ObjectIdentifier

from kouza.identity.ekyc import (
    JPKI_SIGNING_POLICY_OIDS,
    CrlRevocationChecker,
    OcspRevocationChecker,
    RevocationChecker,
)
from kouza.identity.proofing import EkycConfiguration, JpkiConfiguration
from kouza.identity.smsgateway import HttpSmsSender
from kouza.kit.notify import FileMailbox, Sender

if TYPE_CHECKING:
    from kouza.config import Settings

_CRL_MAX_CACHE = timedelta(hours=1)


class ProviderConfigurationError(ValueError):
    """A provider setting is missing or points at something unusable."""


def build_sms_sender(settings: Settings, *, client: httpx.Client | None = None) -> Sender:
    """The ``sms`` sender the settings select."""
    if settings.sms_sender == "file":
        return FileMailbox(settings.var_dir / "mailbox" / "sms.jsonl")
    try:
        return HttpSmsSender(
            url=settings.sms_gateway_url,
            api_key=settings.sms_gateway_api_key.get_secret_value(),
            sender_id=settings.sms_gateway_sender_id,
            client=client,
            timeout_seconds=settings.sms_gateway_timeout_seconds,
            max_attempts=settings.sms_gateway_max_attempts,
        )
    except ValueError as error:
        raise ProviderConfigurationError(
            f"KOUZA_SMS_SENDER=http but the gateway is misconfigured: {error} "
            "(set KOUZA_SMS_GATEWAY_URL and KOUZA_SMS_GATEWAY_API_KEY)"
        ) from None


def _read_certificates(setting: str, path: Path) -> list[x509.Certificate]:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ProviderConfigurationError(
            f"{setting}: cannot read {path}: {error.strerror or error}"
        ) from None
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise ProviderConfigurationError(
            f"{setting}: {path} is not a PEM or DER X.509 certificate"
        ) from None


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def load_ca_certificates(
    setting: str, paths: Sequence[Path], now: datetime
) -> list[x509.Certificate]:
    """Every certificate in ``paths``; each must be a CA certificate valid at ``now``."""
    loaded: list[x509.Certificate] = []
    for path in paths:
        for certificate in _read_certificates(setting, path):
            subject = certificate.subject.rfc4514_string()
            if not _is_ca(certificate):
                raise ProviderConfigurationError(
                    f"{setting}: {path} holds {subject}, which is not a CA certificate"
                )
            if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
                raise ProviderConfigurationError(
                    f"{setting}: {path} holds {subject}, valid only from "
                    f"{certificate.not_valid_before_utc:%Y-%m-%d} to "
                    f"{certificate.not_valid_after_utc:%Y-%m-%d}"
                )
            loaded.append(certificate)
    return loaded


def _policy_oids(values: Sequence[str]) -> frozenset[ObjectIdentifier]:
    if not values:
        return JPKI_SIGNING_POLICY_OIDS
    try:
        return frozenset(ObjectIdentifier(value.strip()) for value in values)
    except ValueError:
        raise ProviderConfigurationError(
            f"KOUZA_EKYC_JPKI_POLICY_OIDS: not dotted OIDs: {list(values)!r}"
        ) from None


class HttpCrlLoader:
    """Fetches a CRL from a URL for :class:`CrlRevocationChecker`; caches it until nextUpdate
    (at most an hour). Any failure answers None, which the checker reads as ``unknown``."""

    def __init__(
        self, url: str, client: httpx.Client, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self._url = url
        self._client = client
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._cached: tuple[bytes, datetime] | None = None

    def __call__(self, issuer: x509.Certificate) -> bytes | None:
        now = self._clock()
        with self._lock:
            if self._cached is not None and now < self._cached[1]:
                return self._cached[0]
            try:
                response = self._client.get(self._url)
            except httpx.HTTPError:
                return None
            if response.status_code != 200:
                return None
            self._cached = (response.content, self._fresh_until(response.content, now))
            return response.content

    @staticmethod
    def _fresh_until(raw: bytes, now: datetime) -> datetime:
        try:
            crl = (
                x509.load_pem_x509_crl(raw)
                if raw.lstrip().startswith(b"-----BEGIN")
                else x509.load_der_x509_crl(raw)
            )
        except ValueError:
            return now  # not cached: the checker refuses it and the next check fetches again
        next_update = crl.next_update_utc
        return min(next_update, now + _CRL_MAX_CACHE) if next_update else now


class CrlFileLoader:
    """Reads the development CA's CRLs from disk for :class:`CrlRevocationChecker`, on every
    check, so ``kouza dev ca revoke`` takes effect at once with no server to run. ``path`` is a
    CRL file or a directory of them (``var/devca/crl``: one per CA); the CRL whose issuer is
    the certificate's issuer is returned. Development only (``file:`` revocation URLs)."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __call__(self, issuer: x509.Certificate) -> bytes | None:
        files = sorted(self._path.glob("*.der")) if self._path.is_dir() else [self._path]
        for file in files:
            try:
                raw = file.read_bytes()
                crl = x509.load_der_x509_crl(raw)
            except (OSError, ValueError):
                continue
            if crl.issuer == issuer.subject:
                return raw
        return None


def _revocation(settings: Settings, client: httpx.Client) -> RevocationChecker:
    url = settings.ekyc_revocation_url
    if url.startswith("file:"):
        return _file_revocation(settings, Path(url.removeprefix("file:")))
    if not url.startswith(("https://", "http://")):
        raise ProviderConfigurationError(
            "KOUZA_EKYC_REVOCATION_URL must be the http(s) URL of the OCSP responder or CRL "
            "(JPKI cannot be offered without a revocation check)"
        )
    if settings.ekyc_revocation == "ocsp":
        return OcspRevocationChecker(client=client, responder_url=url)
    return CrlRevocationChecker(loader=HttpCrlLoader(url, client))


def _file_revocation(settings: Settings, path: Path) -> RevocationChecker:
    """The development CA's CRLs read from disk (``file:var/devca/crl``)."""
    if settings.env == "production":
        raise ProviderConfigurationError(
            "KOUZA_EKYC_REVOCATION_URL: file: URLs read the development CA's CRLs and are "
            "refused in production"
        )
    if settings.ekyc_revocation != "crl":
        raise ProviderConfigurationError(
            "KOUZA_EKYC_REVOCATION_URL: a file: URL holds CRLs; set KOUZA_EKYC_REVOCATION=crl"
        )
    return CrlRevocationChecker(loader=CrlFileLoader(path))


def load_ekyc_configuration(
    settings: Settings, *, now: datetime, client: httpx.Client | None = None
) -> EkycConfiguration | None:
    """The production eKYC configuration, or None when no JPKI roots are configured."""
    if not settings.ekyc_jpki_root_certificates:
        return None
    roots = load_ca_certificates(
        "KOUZA_EKYC_JPKI_ROOT_CERTIFICATES", settings.ekyc_jpki_root_certificates, now
    )
    intermediates = load_ca_certificates(
        "KOUZA_EKYC_JPKI_INTERMEDIATE_CERTIFICATES",
        settings.ekyc_jpki_intermediate_certificates,
        now,
    )
    http = client or httpx.Client(timeout=settings.ekyc_revocation_timeout_seconds)
    return EkycConfiguration(
        jpki=JpkiConfiguration(
            trust_anchors=roots,
            intermediates=intermediates,
            revocation=_revocation(settings, http),
            policy_oids=_policy_oids(settings.ekyc_jpki_policy_oids),
        )
    )
