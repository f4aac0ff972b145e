"""Phone, step-up, devices, eKYC and re-verification campaigns over HTTP."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kouza.api.app import create_app
from kouza.controls.models import OperatorRole
from kouza.controls.service import controls
from kouza.identity.models import OtpChallenge, ReverificationCampaign
from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox
from kouza.runtime import Runtime
from tests.factories import PASSWORD
from tests.identity.support import E164, KANA, DeviceKey, EkycWorld, count, sms_code

EMAIL = "hanako@example.jp"
CODE = re.compile(r"\b(\d{6})\b")


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    # the identity router, which carries these endpoints, is already mounted by create_app
    with TestClient(create_app(rt)) as test_client:
        yield test_client


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def logged_in(client: TestClient, mailbox: MemoryMailbox, email: str = EMAIL) -> dict[str, str]:
    assert (
        client.post("/v1/auth/signup", json={"email": email, "password": PASSWORD}).status_code
        == 202
    )
    match = CODE.search(mailbox.last_to(email).body)
    assert match is not None
    assert (
        client.post(
            "/v1/auth/verify-email", json={"email": email, "code": match.group(1)}
        ).status_code
        == 200
    )
    token = client.post("/v1/auth/login", json={"email": email, "password": PASSWORD}).json()[
        "access_token"
    ]
    return bearer(token)


def verify_phone(
    client: TestClient, mailbox: MemoryMailbox, auth: dict[str, str], key: DeviceKey
) -> dict[str, Any]:
    started = client.post("/v1/phone/verification", json={"phone": "090-1234-5678"}, headers=auth)
    assert started.status_code == 202, started.json()
    response = client.post(
        f"/v1/phone/verification/{started.json()['challenge_id']}/confirm",
        headers=auth,
        json={"code": sms_code(mailbox), "device": {"jwk": key.public_jwk, "name": "iPhone"}},
    )
    assert response.status_code == 200, response.json()
    body: dict[str, Any] = response.json()
    return body


def jpki(
    client: TestClient, auth: dict[str, str], world: EkycWorld, *, sign_nonce: str | None = None
) -> Any:
    nonce = client.post("/v1/ekyc/sessions", json={"method": "jpki"}, headers=auth).json()["nonce"]
    return client.post(
        "/v1/ekyc/jpki",
        headers=auth,
        json={
            "certificate": b64(world.card.certificate_der),
            "nonce": nonce,
            "kana_name": KANA,
            "signature": b64(world.card.sign_nonce(sign_nonce or nonce)),
        },
    )


def admin(rt: Runtime) -> dict[str, str]:
    with rt.db.unit_of_work() as session:
        _, token = controls.create_operator(
            session, name="root", role=OperatorRole.ADMIN, actor="test"
        )
    return bearer(token)


class TestPhoneEndpoints:
    def test_verification_reaches_phone_level(
        self, client: TestClient, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        auth = logged_in(client, mailbox)
        body = verify_phone(client, mailbox, auth, DeviceKey.es256())
        assert (body["level"], body["phone"]) == ("phone", E164)
        assert body["device"]["algorithm"] == "ES256"
        assert body["device"]["created_at"] == clock.now().isoformat().replace("+00:00", "Z")

    def test_refusals(self, client: TestClient, mailbox: MemoryMailbox, rt: Runtime) -> None:
        auth = logged_in(client, mailbox)
        landline = client.post(
            "/v1/phone/verification", json={"phone": "03-1234-5678"}, headers=auth
        )
        assert (landline.status_code, landline.json()["error"]) == (400, "invalid_phone_number")
        assert count(rt, OtpChallenge) == 0
        challenge_id = client.post(
            "/v1/phone/verification", json={"phone": "09012345678"}, headers=auth
        ).json()["challenge_id"]
        code = sms_code(mailbox)
        wrong = client.post(
            f"/v1/phone/verification/{challenge_id}/confirm",
            headers=auth,
            json={
                "code": f"{(int(code) + 1) % 10**6:06d}",
                "device": {"jwk": DeviceKey.es256().public_jwk, "name": "x"},
            },
        )
        assert (wrong.status_code, wrong.json()["details"]) == (400, {"attempts_left": 4})
        rsa_like = client.post(
            f"/v1/phone/verification/{challenge_id}/confirm",
            headers=auth,
            json={"code": code, "device": {"jwk": {"kty": "RSA"}, "name": "x"}},
        )
        assert (rsa_like.status_code, rsa_like.json()["error"]) == (400, "unsupported_device_key")
        assert (
            client.post("/v1/phone/verification", json={"phone": "09012345678"}).status_code == 401
        )


class TestDeviceEndpoints:
    def test_step_up_then_register_then_challenge(
        self, client: TestClient, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        auth = logged_in(client, mailbox)
        first = verify_phone(client, mailbox, auth, DeviceKey.es256())
        tablet = DeviceKey.ed25519()
        refused = client.post(
            "/v1/devices", json={"jwk": tablet.public_jwk, "name": "iPad"}, headers=auth
        )
        assert (refused.status_code, refused.json()["error"]) == (403, "step_up_required")
        clock.advance(minutes=1)
        started = client.post("/v1/step-up", json={"purpose": "device.register"}, headers=auth)
        assert started.status_code == 202
        confirmed = client.post(
            f"/v1/step-up/{started.json()['challenge_id']}/confirm",
            json={"code": sms_code(mailbox)},
            headers=auth,
        )
        assert confirmed.json()["purpose"] == "device.register"
        created = client.post(
            "/v1/devices", json={"jwk": tablet.public_jwk, "name": "iPad"}, headers=auth
        )
        assert created.status_code == 201
        assert [d["name"] for d in client.get("/v1/devices", headers=auth).json()] == [
            "iPhone",
            "iPad",
        ]
        issued = client.post(
            f"/v1/devices/{first['device']['id']}/challenges",
            json={"action": "bank.link"},
            headers=auth,
        )
        assert issued.status_code == 201
        assert set(issued.json()) == {"nonce", "action", "device_id", "user_id", "expires_in"}
        unknown = client.post(
            f"/v1/devices/{first['device']['id']}/challenges",
            json={"action": "steal"},
            headers=auth,
        )
        assert (unknown.status_code, unknown.json()["error"]) == (400, "unknown_action")


class TestEkycAndCampaignEndpoints:
    def test_end_to_end(
        self,
        client: TestClient,
        mailbox: MemoryMailbox,
        rt: Runtime,
        world: EkycWorld,
        clock: ManualClock,
    ) -> None:
        auth = logged_in(client, mailbox)
        verify_phone(client, mailbox, auth, DeviceKey.es256())
        refused = jpki(client, auth, world, sign_nonce="other")
        assert refused.status_code == 422
        assert (refused.json()["error"], refused.json()["details"]["failure"]) == (
            "ekyc_refused",
            "signature_invalid",
        )
        accepted = jpki(client, auth, world)
        assert accepted.status_code == 200, accepted.json()
        assert accepted.json()["level"] == "verified"
        assert accepted.json()["verification"]["declared_kana"] == "ﾔﾏﾀﾞ ﾀﾛｳ"
        status = client.get("/v1/identity", headers=auth).json()
        assert (status["may_charge"], status["kana_name"], status["devices"]) == (
            True,
            "ﾔﾏﾀﾞ ﾀﾛｳ",
            1,
        )

        operator = admin(rt)
        user_id = client.get("/v1/me", headers=auth).json()["id"]
        clock.advance(minutes=1)
        started = client.post(
            "/v1/ops/reverification",
            headers=operator,
            json={"name": "re-eKYC", "reason": "linked-bank fraud", "user_ids": [user_id]},
        )
        assert started.status_code == 201, started.json()
        assert (started.json()["pending"], started.json()["cleared"]) == (1, 0)
        status = client.get("/v1/identity", headers=auth).json()
        assert (status["may_charge"], status["pending_reverification"]) == (
            False,
            [started.json()["id"]],
        )
        clock.advance(minutes=1)
        assert jpki(client, auth, world).status_code == 200
        progress = client.get(
            f"/v1/ops/reverification/{started.json()['id']}", headers=operator
        ).json()
        assert (progress["pending"], progress["cleared"]) == (0, 1)
        assert client.get("/v1/identity", headers=auth).json()["may_charge"] is True

    def test_ic_chip_over_http_with_ef_sod(
        self, client: TestClient, mailbox: MemoryMailbox, world: EkycWorld
    ) -> None:
        auth = logged_in(client, mailbox)
        verify_phone(client, mailbox, auth, DeviceKey.es256())
        chip = world.chip()

        def submit(sod: bytes) -> Any:
            nonce = client.post(
                "/v1/ekyc/sessions", json={"method": "ic_chip"}, headers=auth
            ).json()["nonce"]
            read = chip.read(nonce)
            return client.post(
                "/v1/ekyc/ic-chip",
                headers=auth,
                json={
                    "data_groups": {str(n): b64(data) for n, data in read.data_groups.items()},
                    "sod": b64(sod),
                    "active_authentication_signature": b64(
                        read.active_authentication_signature or b""
                    ),
                    "selfie": b64(world.selfie(chip)),
                    "nonce": nonce,
                    "kana_name": KANA,
                },
            )

        broken = submit(chip.sod[:-10])
        assert (broken.status_code, broken.json()["details"]["failure"]) == (
            422,
            "document_malformed",
        )
        assert client.get("/v1/identity", headers=auth).json()["level"] == "phone"
        answer = submit(chip.sod)
        assert answer.status_code == 200, answer.json()
        assert client.get("/v1/identity", headers=auth).json()["level"] == "verified"

    def test_bad_input_is_a_clear_4xx(
        self, client: TestClient, mailbox: MemoryMailbox, rt: Runtime, world: EkycWorld
    ) -> None:
        auth = logged_in(client, mailbox)
        verify_phone(client, mailbox, auth, DeviceKey.es256())
        bad = client.post(
            "/v1/ekyc/jpki",
            headers=auth,
            json={"certificate": "not base64!!", "signature": "", "nonce": "n", "kana_name": KANA},
        )
        assert (bad.status_code, bad.json()["error"]) == (422, "validation_error")
        kana = client.post(
            "/v1/ekyc/jpki",
            headers=auth,
            json={
                "certificate": b64(b"x"),
                "signature": b64(b"y"),
                "nonce": "n",
                "kana_name": "山田",
            },
        )
        assert (kana.status_code, kana.json()["error"]) == (400, "invalid_kana_name")
        both = client.post(
            "/v1/ops/reverification",
            headers=admin(rt),
            json={"name": "x", "reason": "y", "user_ids": [], "every_verified_user": True},
        )
        assert both.status_code == 400
        assert (
            client.post(
                "/v1/ops/reverification",
                headers=auth,
                json={"name": "x", "reason": "y", "every_verified_user": True},
            ).status_code
            == 401
        )
        assert count(rt, ReverificationCampaign) == 0


def test_every_new_endpoint_documents_its_errors(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    prefixes = (
        "/v1/phone",
        "/v1/email/change",
        "/v1/step-up",
        "/v1/devices",
        "/v1/ekyc",
        "/v1/identity",
        "/v1/ops/reverification",
    )
    checked = 0
    for path, operations in paths.items():
        if not path.startswith(prefixes):
            continue
        for operation in operations.values():
            codes = {int(code) for code in operation["responses"] if code.isdigit()}
            assert any(code >= 400 for code in codes), path
            checked += 1
    assert checked == 18
