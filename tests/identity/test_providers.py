"""Production providers: the HTTP SMS gateway and the eKYC trust configuration from settings."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from kouza.assembly import build_runtime
from kouza.config import Settings
from kouza.identity.ekyc import CrlRevocationChecker, OcspRevocationChecker
from kouza.identity.ekyc.devca import DevCertificateAuthority
from kouza.identity.ekyc.devca_store import DEFAULT_PASSPHRASE, DevCaStore
from kouza.identity.models import EkycRecheckOutcome
from kouza.identity.providers import (
    ProviderConfigurationError,
    build_sms_sender,
    load_ekyc_configuration,
)
from kouza.identity.rechecks import check_certificate
from kouza.identity.smsgateway import HttpSmsSender, SmsDeliveryFailed
from kouza.kit.notify import FileMailbox, Message
from tests.identity.support import CITIZEN

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
URL = "https://sms.example.test/v1/messages"
TEXT = "kouza: 493817 is your code to verify this phone number."


def message() -> Message:
    return Message(channel="sms", recipient="+819012345678", subject="", body=TEXT, sent_at=NOW)


def gateway(
    statuses: list[int | Exception],
    seen: list[httpx.Request],
    sleeps: list[float] | None = None,
    attempts: int = 3,
) -> HttpSmsSender:
    answers = iter(statuses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, json={"id": "m-1"})

    return HttpSmsSender(
        url=URL,
        api_key="key-123",
        sender_id="kouza",
        max_attempts=attempts,
        client=httpx.Client(transport=httpx.MockTransport(handler)),
        sleep=(sleeps if sleeps is not None else []).append,
    )


class TestHttpSmsSender:
    def test_posts_json_with_the_bearer_key(self) -> None:
        seen: list[httpx.Request] = []
        gateway([202], seen).send(message())
        [request] = seen
        assert (request.method, str(request.url)) == ("POST", URL)
        assert request.headers["Authorization"] == "Bearer key-123"
        assert len(request.headers["Idempotency-Key"]) == 36
        assert json.loads(request.content) == {"to": "+819012345678", "from": "kouza", "text": TEXT}

    def test_retries_5xx_429_and_network_errors_with_one_idempotency_key(self) -> None:
        seen: list[httpx.Request] = []
        sleeps: list[float] = []
        sender = gateway([503, httpx.ConnectTimeout("slow"), 429, 200], seen, sleeps, attempts=4)
        sender.send(message())
        assert len(seen) == 4 and sleeps == [0.5, 1.0, 2.0]
        assert len({request.headers["Idempotency-Key"] for request in seen}) == 1

    def test_a_4xx_is_final(self) -> None:
        seen: list[httpx.Request] = []
        with pytest.raises(SmsDeliveryFailed, match="HTTP 400"):
            gateway([400, 200], seen).send(message())
        assert len(seen) == 1

    def test_gives_up_after_max_attempts(self) -> None:
        seen: list[httpx.Request] = []
        with pytest.raises(SmsDeliveryFailed, match="after 3 attempts"):
            gateway([500, 502, httpx.ConnectError("down")], seen).send(message())
        assert len(seen) == 3

    def test_never_logs_or_raises_the_code(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.DEBUG)
        with pytest.raises(SmsDeliveryFailed) as caught:
            gateway([503, 400], []).send(message())
        gateway([200], []).send(message())
        assert "493817" not in caplog.text and "493817" not in str(caught.value)
        assert "+819012345678" not in caplog.text and "+8190****5678" in caplog.text

    def test_refuses_plain_http_and_a_missing_key(self) -> None:
        with pytest.raises(ValueError, match="https"):
            HttpSmsSender(url="http://sms.example.test", api_key="k", sender_id="kouza")
        with pytest.raises(ValueError, match="API key"):
            HttpSmsSender(url=URL, api_key="", sender_id="kouza")


class TestSmsSenderSelection:
    def test_file_by_default_http_when_configured(self, tmp_path: Path) -> None:
        assert isinstance(build_sms_sender(Settings(var_dir=tmp_path)), FileMailbox)
        settings = Settings(
            var_dir=tmp_path,
            sms_sender="http",
            sms_gateway_url=URL,
            sms_gateway_api_key="k",
        )
        assert isinstance(build_sms_sender(settings), HttpSmsSender)
        runtime = build_runtime(settings, database_url=f"sqlite:///{tmp_path}/k.db")
        assert isinstance(runtime.senders["sms"], HttpSmsSender)
        runtime.db.dispose()

    def test_misconfigured_gateway_stops_start_up(self, tmp_path: Path) -> None:
        settings = Settings(var_dir=tmp_path, sms_sender="http", sms_gateway_url=URL)
        with pytest.raises(ProviderConfigurationError, match="KOUZA_SMS_GATEWAY_API_KEY"):
            build_runtime(settings, database_url=f"sqlite:///{tmp_path}/k.db")


@pytest.fixture
def dev_ca(identity_rsa_keys: list[rsa.RSAPrivateKey]) -> DevCertificateAuthority:
    return DevCertificateAuthority.create(now=NOW, root_key=identity_rsa_keys[0])


def write_roots(tmp_path: Path, ca: DevCertificateAuthority, encoding: Encoding) -> Path:
    path = tmp_path / ("roots.pem" if encoding is Encoding.PEM else "root.der")
    path.write_bytes(b"".join(root.public_bytes(encoding) for root in ca.trust_anchors))
    return path


def ekyc_settings(tmp_path: Path, roots: list[Path], **extra: object) -> Settings:
    values: dict[str, object] = {"ekyc_revocation_url": "http://ocsp.example.test"} | extra
    return Settings(var_dir=tmp_path, ekyc_jpki_root_certificates=roots, **values)  # type: ignore[arg-type]


class TestEkycConfigurationLoader:
    def test_nothing_configured_means_no_ekyc(self, tmp_path: Path) -> None:
        assert load_ekyc_configuration(Settings(var_dir=tmp_path), now=NOW) is None

    def test_pem_or_der_roots_with_ocsp(
        self, tmp_path: Path, dev_ca: DevCertificateAuthority
    ) -> None:
        for encoding in (Encoding.PEM, Encoding.DER):
            settings = ekyc_settings(tmp_path, [write_roots(tmp_path, dev_ca, encoding)])
            config = load_ekyc_configuration(settings, now=NOW)
            assert config is not None and config.jpki is not None and config.ic_chip is None
            assert list(config.jpki.trust_anchors) == dev_ca.trust_anchors
            assert isinstance(config.jpki.revocation, OcspRevocationChecker)

    def test_crl_over_http_decides_revocation(
        self,
        tmp_path: Path,
        dev_ca: DevCertificateAuthority,
        identity_rsa_keys: list[rsa.RSAPrivateKey],
    ) -> None:
        card = dev_ca.issue_card(CITIZEN, now=NOW, key=identity_rsa_keys[1])
        fetched: list[str] = []

        def crl_server(request: httpx.Request) -> httpx.Response:
            fetched.append(str(request.url))
            return httpx.Response(200, content=dev_ca.root.crl(now=NOW))

        settings = ekyc_settings(
            tmp_path,
            [write_roots(tmp_path, dev_ca, Encoding.PEM)],
            ekyc_revocation="crl",
            ekyc_revocation_url="https://crl.example.test/jpki.crl",
        )

        def outcome() -> EkycRecheckOutcome:
            client = httpx.Client(transport=httpx.MockTransport(crl_server))
            config = load_ekyc_configuration(settings, now=NOW, client=client)
            assert config is not None and config.jpki is not None
            assert isinstance(config.jpki.revocation, CrlRevocationChecker)
            return check_certificate(config.jpki, card.certificate_der, NOW)[0]

        assert outcome() is EkycRecheckOutcome.GOOD
        dev_ca.revoke(card.certificate.serial_number, now=NOW)
        assert outcome() is EkycRecheckOutcome.REVOKED
        assert fetched == ["https://crl.example.test/jpki.crl"] * 2

    def test_the_dev_cas_crls_are_read_from_disk_at_every_check(
        self,
        tmp_path: Path,
        identity_rsa_keys: list[rsa.RSAPrivateKey],
    ) -> None:
        """``file:var/devca/crl``: what ``kouza dev ca init`` prints; no CRL server to run,
        and a revocation written by ``kouza dev ca revoke`` counts at the next check."""
        ca = DevCertificateAuthority.create(now=NOW, root_key=identity_rsa_keys[0])
        card = ca.issue_card(CITIZEN, now=NOW, key=identity_rsa_keys[1])
        store = DevCaStore(tmp_path / "devca", DEFAULT_PASSPHRASE)
        store.create(ca)
        store.write_crls(ca, now=NOW)
        settings = ekyc_settings(
            tmp_path,
            [tmp_path / "devca" / "root.cert.pem"],
            ekyc_revocation="crl",
            ekyc_revocation_url=f"file:{tmp_path / 'devca' / 'crl'}",
        )
        config = load_ekyc_configuration(settings, now=NOW)
        assert config is not None and config.jpki is not None

        assert check_certificate(config.jpki, card.certificate_der, NOW)[0] is (
            EkycRecheckOutcome.GOOD
        )
        store.revoke(
            ca, card.certificate.serial_number, now=NOW, reason=x509.ReasonFlags.unspecified
        )
        store.write_crls(ca, now=NOW)
        assert check_certificate(config.jpki, card.certificate_der, NOW)[0] is (
            EkycRecheckOutcome.REVOKED
        )

        for refused, message in (
            ({"env": "production"}, "refused in production"),
            ({"ekyc_revocation": "ocsp"}, "KOUZA_EKYC_REVOCATION=crl"),
        ):
            wrong = settings.model_copy(update=refused)
            with pytest.raises(ProviderConfigurationError, match=message):
                load_ekyc_configuration(wrong, now=NOW)

    def test_clear_errors(self, tmp_path: Path, dev_ca: DevCertificateAuthority) -> None:
        missing = tmp_path / "nope.pem"
        with pytest.raises(
            ProviderConfigurationError,
            match=r"KOUZA_EKYC_JPKI_ROOT_CERTIFICATES: cannot read .*nope\.pem",
        ):
            load_ekyc_configuration(ekyc_settings(tmp_path, [missing]), now=NOW)
        junk = tmp_path / "junk.pem"
        junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
        with pytest.raises(ProviderConfigurationError, match=r"junk\.pem is not a PEM or DER"):
            load_ekyc_configuration(ekyc_settings(tmp_path, [junk]), now=NOW)
        card = dev_ca.issue_card(CITIZEN, now=NOW)
        leaf = tmp_path / "leaf.der"
        leaf.write_bytes(card.certificate_der)
        with pytest.raises(ProviderConfigurationError, match="not a CA certificate"):
            load_ekyc_configuration(ekyc_settings(tmp_path, [leaf]), now=NOW)
        roots = write_roots(tmp_path, dev_ca, Encoding.PEM)
        with pytest.raises(ProviderConfigurationError, match="valid only from"):
            load_ekyc_configuration(
                ekyc_settings(tmp_path, [roots]), now=NOW + timedelta(days=365 * 30)
            )
        with pytest.raises(ProviderConfigurationError, match="KOUZA_EKYC_REVOCATION_URL"):
            load_ekyc_configuration(
                ekyc_settings(tmp_path, [roots], ekyc_revocation_url=""), now=NOW
            )
        with pytest.raises(ProviderConfigurationError, match="KOUZA_EKYC_JPKI_POLICY_OIDS"):
            load_ekyc_configuration(
                ekyc_settings(tmp_path, [roots], ekyc_jpki_policy_oids=["not-an-oid"]), now=NOW
            )

    def test_build_runtime_installs_it_or_refuses_to_start(
        self, tmp_path: Path, dev_ca: DevCertificateAuthority
    ) -> None:
        roots = write_roots(tmp_path, dev_ca, Encoding.PEM)
        settings = ekyc_settings(tmp_path, [roots])
        runtime = build_runtime(settings, database_url=f"sqlite:///{tmp_path}/k.db")
        assert runtime.ekyc.jpki.trust_anchors
        runtime.db.dispose()
        with pytest.raises(ProviderConfigurationError, match="cannot read"):
            build_runtime(
                ekyc_settings(tmp_path, [tmp_path / "gone.pem"]),
                database_url=f"sqlite:///{tmp_path}/k.db",
            )
