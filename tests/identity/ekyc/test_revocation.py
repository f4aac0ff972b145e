"""Revocation through CRLs and OCSP, as the JPKI verifier sees it; unknown always refuses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from kouza.identity.ekyc.devca import DevCertificateAuthority, TestCard, TestCitizen
from kouza.identity.ekyc.jpki import JPKI_SIGNING_POLICY_OIDS, JpkiVerifier
from kouza.identity.ekyc.nonces import InMemoryNonceStore
from kouza.identity.ekyc.result import EkycFailure
from kouza.identity.ekyc.revocation import (
    CrlRevocationChecker,
    OcspRevocationChecker,
    RevocationState,
    RevocationStatus,
)

from .conftest import NOW, Attempt, CrlShelf, MakeVerifier

Handler = Callable[[httpx.Request], httpx.Response]


def _ocsp(handler: Handler, **options: object) -> OcspRevocationChecker:
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return OcspRevocationChecker(client=client, **options)  # type: ignore[arg-type]


class TestCrl:
    def test_revocation_takes_effect_when_a_new_crl_is_published(
        self,
        attempt: Attempt,
        card: TestCard,
        dev_ca: DevCertificateAuthority,
        crl_shelf: CrlShelf,
    ) -> None:
        before = attempt(card)
        dev_ca.revoke(
            card.certificate.serial_number, now=NOW, reason=x509.ReasonFlags.affiliation_changed
        )
        with_old_crl = attempt(card)
        crl_shelf.publish(at=NOW + timedelta(minutes=1))

        after = attempt(card, at=NOW + timedelta(minutes=2))

        assert before.ok is True
        assert with_old_crl.ok is True  # CRL latency: the reason OCSP is preferred
        assert after.failure is EkycFailure.CERTIFICATE_REVOKED
        assert after.revocation is not None
        assert after.revocation.state is RevocationState.REVOKED
        assert after.revocation.revocation_reason is x509.ReasonFlags.affiliation_changed
        assert after.revocation.revoked_at == NOW

    def test_stale_crl_is_refused(
        self, attempt: Attempt, card: TestCard, crl_shelf: CrlShelf
    ) -> None:
        crl_shelf.publish(at=NOW - timedelta(days=2), next_update=timedelta(days=1))

        result = attempt(card)

        assert result.failure is EkycFailure.REVOCATION_UNKNOWN
        assert result.revocation is not None
        assert "stale" in result.revocation.reason

    def test_crl_from_the_future_is_refused(
        self, attempt: Attempt, card: TestCard, crl_shelf: CrlShelf
    ) -> None:
        crl_shelf.publish(at=NOW + timedelta(hours=1))

        assert attempt(card).failure is EkycFailure.REVOCATION_UNKNOWN

    def test_crl_older_than_max_age_is_refused(
        self,
        attempt: Attempt,
        card: TestCard,
        crl_shelf: CrlShelf,
        make_verifier: MakeVerifier,
    ) -> None:
        crl_shelf.publish(at=NOW - timedelta(hours=13), next_update=timedelta(days=7))
        checker = CrlRevocationChecker(loader=crl_shelf.load, max_age=timedelta(hours=12))

        assert attempt(card, using=make_verifier(checker)).failure is (
            EkycFailure.REVOCATION_UNKNOWN
        )

    def test_crl_signed_by_an_impostor_with_the_same_name_is_ignored(
        self,
        attempt: Attempt,
        card: TestCard,
        make_verifier: MakeVerifier,
        rsa_keys: list[rsa.RSAPrivateKey],
    ) -> None:
        impostor = DevCertificateAuthority.create(now=NOW, root_key=rsa_keys[4])
        checker = CrlRevocationChecker(impostor.crls(now=NOW))

        result = attempt(card, using=make_verifier(checker))

        assert result.failure is EkycFailure.REVOCATION_UNKNOWN

    def test_garbage_crl_means_unknown(
        self, attempt: Attempt, card: TestCard, make_verifier: MakeVerifier
    ) -> None:
        checker = CrlRevocationChecker([b"not a crl"])

        assert attempt(card, using=make_verifier(checker)).failure is (
            EkycFailure.REVOCATION_UNKNOWN
        )

    def test_pem_crl_is_read(
        self,
        attempt: Attempt,
        card: TestCard,
        dev_ca: DevCertificateAuthority,
        make_verifier: MakeVerifier,
    ) -> None:
        crl = x509.load_der_x509_crl(dev_ca.crls(now=NOW)[0])
        checker = CrlRevocationChecker(crl.public_bytes(serialization.Encoding.PEM))

        assert attempt(card, using=make_verifier(checker)).ok is True

    def test_every_ca_below_the_anchor_is_checked(
        self, rsa_keys: list[rsa.RSAPrivateKey], card: TestCard
    ) -> None:
        ca = DevCertificateAuthority.create(
            now=NOW, with_intermediate=True, root_key=rsa_keys[0], intermediate_key=rsa_keys[1]
        )
        leaf_only = CrlRevocationChecker([ca.issuing.crl(now=NOW)])
        intermediate, root = ca.issuing.certificate, ca.root.certificate

        status = leaf_only.check(intermediate, root, NOW)

        assert status.state is RevocationState.UNKNOWN


def _scoped_crl(
    dev_ca: DevCertificateAuthority, extension: x509.ExtensionType, *, revoked: int | None = None
) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(dev_ca.issuing.certificate.subject)
        .last_update(NOW)
        .next_update(NOW + timedelta(days=1))
        .add_extension(extension, critical=True)
    )
    if revoked is not None:
        entry = x509.RevokedCertificateBuilder().serial_number(revoked).revocation_date(NOW)
        builder = builder.add_revoked_certificate(entry.build())
    crl = builder.sign(dev_ca.issuing.key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.DER)


def _partition(uri: str) -> x509.IssuingDistributionPoint:
    return x509.IssuingDistributionPoint(
        full_name=[x509.UniformResourceIdentifier(uri)],
        relative_name=None,
        only_contains_user_certs=True,
        only_contains_ca_certs=False,
        only_some_reasons=None,
        indirect_crl=False,
        only_contains_attribute_certs=False,
    )


class TestCrlScope:
    def test_the_certificates_own_partition_is_used(
        self,
        attempt: Attempt,
        card: TestCard,
        dev_ca: DevCertificateAuthority,
        make_verifier: MakeVerifier,
    ) -> None:
        own = _partition("http://devca.kouza.invalid/crl/root.der")
        crl = _scoped_crl(dev_ca, own, revoked=card.certificate.serial_number)

        result = attempt(card, using=make_verifier(CrlRevocationChecker([crl])))

        assert result.failure is EkycFailure.CERTIFICATE_REVOKED

    def test_another_partition_says_nothing_about_this_certificate(
        self,
        attempt: Attempt,
        card: TestCard,
        dev_ca: DevCertificateAuthority,
        make_verifier: MakeVerifier,
    ) -> None:
        other = _scoped_crl(dev_ca, _partition("http://devca.kouza.invalid/crl/part-7.der"))

        result = attempt(card, using=make_verifier(CrlRevocationChecker([other])))

        assert result.failure is EkycFailure.REVOCATION_UNKNOWN

    def test_a_delta_crl_alone_is_not_a_complete_list(
        self,
        attempt: Attempt,
        card: TestCard,
        dev_ca: DevCertificateAuthority,
        make_verifier: MakeVerifier,
    ) -> None:
        delta = _scoped_crl(dev_ca, x509.DeltaCRLIndicator(1))

        result = attempt(card, using=make_verifier(CrlRevocationChecker([delta])))

        assert result.failure is EkycFailure.REVOCATION_UNKNOWN

    def test_a_failing_loader_means_unknown(
        self, attempt: Attempt, card: TestCard, make_verifier: MakeVerifier
    ) -> None:
        def loader(issuer: x509.Certificate) -> bytes | None:
            raise OSError("download failed")

        checker = CrlRevocationChecker(loader=loader)

        assert checker.check(card.certificate, card.certificate, NOW).state is (
            RevocationState.UNKNOWN
        )
        assert attempt(card, using=make_verifier(checker)).failure is (
            EkycFailure.REVOCATION_UNKNOWN
        )


class _Broken:
    def check(
        self, certificate: x509.Certificate, issuer: x509.Certificate, now: datetime
    ) -> RevocationStatus:
        raise RuntimeError("checker bug")


class TestCheckerContract:
    def test_a_raising_checker_fails_closed(
        self, attempt: Attempt, card: TestCard, make_verifier: MakeVerifier
    ) -> None:
        result = attempt(card, using=make_verifier(_Broken()))

        assert result.failure is EkycFailure.REVOCATION_UNKNOWN
        assert result.ok is False


class TestOcsp:
    def test_good(
        self,
        attempt: Attempt,
        card: TestCard,
        dev_ca: DevCertificateAuthority,
        make_verifier: MakeVerifier,
    ) -> None:
        seen: list[httpx.Request] = []
        serve = dev_ca.ocsp_handler(lambda: NOW)

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return serve(request)

        result = attempt(card, using=make_verifier(_ocsp(handler)))

        assert result.ok is True
        assert result.revocation == RevocationStatus(RevocationState.GOOD, "OCSP: good", "ocsp")
        assert str(seen[0].url) == "http://devca.kouza.invalid/ocsp"
        assert seen[0].headers["Content-Type"] == "application/ocsp-request"

    def test_revoked(
        self,
        attempt: Attempt,
        card: TestCard,
        dev_ca: DevCertificateAuthority,
        make_verifier: MakeVerifier,
    ) -> None:
        verifier = make_verifier(_ocsp(dev_ca.ocsp_handler(lambda: NOW)))
        dev_ca.revoke(
            card.certificate.serial_number, now=NOW, reason=x509.ReasonFlags.key_compromise
        )

        result = attempt(card, using=verifier)

        assert result.failure is EkycFailure.CERTIFICATE_REVOKED
        assert result.revocation is not None
        assert result.revocation.revocation_reason is x509.ReasonFlags.key_compromise

    def test_unknown_to_the_responder(
        self,
        attempt: Attempt,
        card: TestCard,
        dev_ca: DevCertificateAuthority,
        make_verifier: MakeVerifier,
    ) -> None:
        del dev_ca.issuing.issued[card.certificate.serial_number]
        verifier = make_verifier(_ocsp(dev_ca.ocsp_handler(lambda: NOW)))

        assert attempt(card, using=verifier).failure is EkycFailure.REVOCATION_UNKNOWN

    @pytest.mark.parametrize(
        "handler",
        [
            lambda request: httpx.Response(500),
            lambda request: httpx.Response(200, content=b"garbage"),
            lambda request: (_ for _ in ()).throw(httpx.ConnectError("down")),
        ],
        ids=["http-500", "garbage", "unreachable"],
    )
    def test_responder_failures_refuse(
        self, attempt: Attempt, card: TestCard, make_verifier: MakeVerifier, handler: Handler
    ) -> None:
        assert attempt(card, using=make_verifier(_ocsp(handler))).failure is (
            EkycFailure.REVOCATION_UNKNOWN
        )

    def test_unsuccessful_status_refuses(
        self, attempt: Attempt, card: TestCard, make_verifier: MakeVerifier
    ) -> None:
        body = ocsp.OCSPResponseBuilder.build_unsuccessful(
            ocsp.OCSPResponseStatus.TRY_LATER
        ).public_bytes(serialization.Encoding.DER)

        result = attempt(
            card, using=make_verifier(_ocsp(lambda r: httpx.Response(200, content=body)))
        )

        assert result.failure is EkycFailure.REVOCATION_UNKNOWN

    def test_answer_signed_by_an_impostor_is_refused(
        self,
        attempt: Attempt,
        card: TestCard,
        make_verifier: MakeVerifier,
        rsa_keys: list[rsa.RSAPrivateKey],
    ) -> None:
        impostor = DevCertificateAuthority.create(now=NOW, root_key=rsa_keys[4])

        def forge(request: httpx.Request) -> httpx.Response:
            parsed = ocsp.load_der_ocsp_request(request.content)
            body = (
                ocsp.OCSPResponseBuilder()
                .add_response_by_hash(
                    issuer_name_hash=parsed.issuer_name_hash,
                    issuer_key_hash=parsed.issuer_key_hash,
                    serial_number=parsed.serial_number,
                    algorithm=parsed.hash_algorithm,
                    cert_status=ocsp.OCSPCertStatus.GOOD,
                    this_update=NOW,
                    next_update=NOW + timedelta(hours=1),
                    revocation_time=None,
                    revocation_reason=None,
                )
                .responder_id(ocsp.OCSPResponderEncoding.NAME, impostor.root.certificate)
                .sign(impostor.root.key, hashes.SHA256())
                .public_bytes(serialization.Encoding.DER)
            )
            return httpx.Response(200, content=body)

        result = attempt(card, using=make_verifier(_ocsp(forge)))

        assert result.failure is EkycFailure.REVOCATION_UNKNOWN

    def test_replayed_answer_with_another_nonce_is_refused(
        self,
        attempt: Attempt,
        card: TestCard,
        dev_ca: DevCertificateAuthority,
        make_verifier: MakeVerifier,
    ) -> None:
        serve = dev_ca.ocsp_handler(lambda: NOW)
        recorded: list[bytes] = []

        def replay(request: httpx.Request) -> httpx.Response:
            if not recorded:
                recorded.append(serve(request).content)
            return httpx.Response(200, content=recorded[0])

        verifier = make_verifier(_ocsp(replay))
        first = attempt(card, using=verifier)

        second = attempt(card, using=verifier)

        assert first.ok is True
        assert second.failure is EkycFailure.REVOCATION_UNKNOWN
        assert second.revocation is not None
        assert "nonce" in second.revocation.reason

    def test_stale_answer_is_refused(
        self,
        attempt: Attempt,
        card: TestCard,
        dev_ca: DevCertificateAuthority,
        make_verifier: MakeVerifier,
    ) -> None:
        verifier = make_verifier(_ocsp(dev_ca.ocsp_handler(lambda: NOW - timedelta(hours=2))))

        result = attempt(card, using=verifier)

        assert result.failure is EkycFailure.REVOCATION_UNKNOWN
        assert result.revocation is not None
        assert "stale" in result.revocation.reason

    def test_configured_url_overrides_the_certificate(
        self,
        attempt: Attempt,
        card: TestCard,
        dev_ca: DevCertificateAuthority,
        make_verifier: MakeVerifier,
    ) -> None:
        urls: list[str] = []
        serve = dev_ca.ocsp_handler(lambda: NOW)

        def handler(request: httpx.Request) -> httpx.Response:
            urls.append(str(request.url))
            return serve(request)

        checker = _ocsp(handler, responder_url="https://platform.example/ocsp")

        assert attempt(card, using=make_verifier(checker)).ok is True
        assert urls == ["https://platform.example/ocsp"]


def _delegated_handler(
    dev_ca: DevCertificateAuthority, key: rsa.RSAPrivateKey, *, with_ocsp_eku: bool
) -> Handler:
    builder = dev_ca.issuing.end_entity_builder(
        public_key=key.public_key(),
        common_name="OCSP responder",
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=30),
    )
    if with_ocsp_eku:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False
        )
    responder = dev_ca.issuing.sign(builder)

    def handle(request: httpx.Request) -> httpx.Response:
        parsed = ocsp.load_der_ocsp_request(request.content)
        body = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=parsed.issuer_name_hash,
                issuer_key_hash=parsed.issuer_key_hash,
                serial_number=parsed.serial_number,
                algorithm=parsed.hash_algorithm,
                cert_status=ocsp.OCSPCertStatus.GOOD,
                this_update=NOW,
                next_update=None,
                revocation_time=None,
                revocation_reason=None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, responder)
            .certificates([responder])
            .sign(key, hashes.SHA256())
            .public_bytes(serialization.Encoding.DER)
        )
        return httpx.Response(200, content=body)

    return handle


class TestDelegatedResponder:
    def test_responder_with_ocsp_signing_usage_is_trusted(
        self,
        attempt: Attempt,
        card: TestCard,
        dev_ca: DevCertificateAuthority,
        make_verifier: MakeVerifier,
        rsa_keys: list[rsa.RSAPrivateKey],
    ) -> None:
        handler = _delegated_handler(dev_ca, rsa_keys[3], with_ocsp_eku=True)

        assert attempt(card, using=make_verifier(_ocsp(handler))).ok is True

    def test_responder_without_ocsp_signing_usage_is_not(
        self,
        attempt: Attempt,
        card: TestCard,
        dev_ca: DevCertificateAuthority,
        make_verifier: MakeVerifier,
        rsa_keys: list[rsa.RSAPrivateKey],
    ) -> None:
        handler = _delegated_handler(dev_ca, rsa_keys[3], with_ocsp_eku=False)

        result = attempt(card, using=make_verifier(_ocsp(handler)))

        assert result.failure is EkycFailure.REVOCATION_UNKNOWN
        assert result.revocation is not None
        assert "delegated" in result.revocation.reason

    def test_answer_without_next_update_expires_after_max_age(
        self,
        attempt: Attempt,
        card: TestCard,
        dev_ca: DevCertificateAuthority,
        make_verifier: MakeVerifier,
        rsa_keys: list[rsa.RSAPrivateKey],
    ) -> None:
        handler = _delegated_handler(dev_ca, rsa_keys[3], with_ocsp_eku=True)
        checker = _ocsp(handler, max_age=timedelta(minutes=10))

        later = attempt(card, using=make_verifier(checker), at=NOW + timedelta(minutes=11))

        assert later.failure is EkycFailure.REVOCATION_UNKNOWN


class TestWholeChain:
    def test_leaf_and_intermediate_are_both_asked_over_ocsp(
        self,
        rsa_keys: list[rsa.RSAPrivateKey],
        citizen: TestCitizen,
        nonces: InMemoryNonceStore,
    ) -> None:
        ca = DevCertificateAuthority.create(
            now=NOW, with_intermediate=True, root_key=rsa_keys[0], intermediate_key=rsa_keys[1]
        )
        card = ca.issue_card(citizen, now=NOW, key=rsa_keys[2])
        asked: list[int] = []
        serve = ca.ocsp_handler(lambda: NOW)

        def handler(request: httpx.Request) -> httpx.Response:
            asked.append(ocsp.load_der_ocsp_request(request.content).serial_number)
            return serve(request)

        verifier = JpkiVerifier(
            trust_anchors=ca.trust_anchors,
            intermediates=ca.intermediates,
            policy_oids=JPKI_SIGNING_POLICY_OIDS,
            revocation=_ocsp(handler),
            nonces=nonces,
        )
        nonce = nonces.issue(NOW)
        ca.revoke(ca.issuing.certificate.serial_number, now=NOW)

        result = verifier.verify(
            certificate=card.certificate_der, signature=card.sign_nonce(nonce), nonce=nonce, now=NOW
        )

        assert asked == [card.certificate.serial_number, ca.issuing.certificate.serial_number]
        assert result.failure is EkycFailure.CERTIFICATE_REVOKED
        assert "signing CA" in result.message
