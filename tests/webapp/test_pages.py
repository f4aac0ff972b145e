"""The customer pages over HTTP: the same services as the API, CSRF on every form, refusals
shown with the service's message, money moved once per rendered form."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select

from kouza.identity.models import Device, EkycVerification, User
from kouza.identity.service import identity
from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox
from kouza.ledger.service import ledger
from kouza.runtime import Runtime
from kouza.wallet.models import MerchantCategory, Transfer, Wallet
from kouza.wallet.service import wallets
from kouza.webapp.account import DEV_CARD_PASSPHRASE
from kouza.webapp.screen import CATALOG
from tests.factories import customer
from tests.identity.support import KANA, EkycWorld
from tests.webapp.support import PASSWORD, Visitor, error_shown, form_of, last_code, pages


def balance_of(rt: Runtime, email: str) -> int:
    with rt.db.session() as session:
        user = identity.user_by_email(session, email)
        wallet = wallets.wallets_of(session, user=user)[0]
        return ledger.balance(session, wallet.ledger_account_id).balance


def wallet_id_of(rt: Runtime, email: str) -> uuid.UUID:
    with rt.db.session() as session:
        user = identity.user_by_email(session, email)
        return wallets.wallets_of(session, user=user)[0].id


def credit(rt: Runtime, email: str, amount: int) -> None:
    with rt.db.unit_of_work() as session:
        wallets.credit_from_float(
            session, wallet_id=wallet_id_of(rt, email), amount=amount, reason="test"
        )


def onboarded(visitor: Visitor, email: str, national: str = "090-1111-2222") -> None:
    visitor.sign_up(email)
    visitor.verify_phone(national, "+81" + national.replace("-", "")[1:])


class TestCatalogAndRoutes:
    def test_every_message_is_in_japanese_and_english(self) -> None:
        assert CATALOG.incomplete() == []

    def test_no_page_is_in_the_openapi_schema(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        with pages(rt, mailbox) as visitor:
            schema = visitor.client.get("/openapi.json").json()
        assert not [path for path in schema["paths"] if path.startswith("/app")]
        assert "/bank-callback" not in schema["paths"]

    def test_japanese_first_english_on_request(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        with pages(rt, mailbox) as visitor:
            japanese = visitor.get("/app/signin")
            english = visitor.get("/app/signin?lang=en")
            remembered = visitor.get("/app/signup")
        assert '<html lang="ja">' in japanese.text and "ログイン" in japanese.text
        assert '<html lang="en">' in english.text and "Sign in" in english.text
        assert '<html lang="en">' in remembered.text  # the kouza_lang cookie

    def test_the_old_redirect_uri_forwards_to_the_page(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        with pages(rt, mailbox) as visitor:
            answer = visitor.client.get(
                "/bank-callback?code=c&state=s&iss=i", follow_redirects=False
            )
        assert answer.status_code == 307
        assert answer.headers["location"] == "/app/bank-callback?code=c&state=s&iss=i"

    def test_pages_need_a_session(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        with pages(rt, mailbox) as visitor:
            for path in ("/app", "/app/topup", "/app/pay", "/app/statement", "/app/banks"):
                answer = visitor.client.get(path, follow_redirects=False)
                assert answer.status_code == 303, path
                assert answer.headers["location"] == "/app/signin"


class TestSignUpAndSession:
    def test_sign_up_verify_sign_in_opens_the_wallet(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        with pages(rt, mailbox) as visitor:
            visitor.sign_up("hanako@example.jp")
            home = visitor.get("/app?lang=en")
        assert home.status_code == 200
        assert "hanako@example.jp" in home.text
        assert 'id="wallet-id">' + str(wallet_id_of(rt, "hanako@example.jp")) in home.text
        assert balance_of(rt, "hanako@example.jp") == 0

    def test_session_cookie_is_httponly_lax_and_host_prefixed_over_https(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        with pages(rt, mailbox, base_url="https://wallet.kouza.test") as visitor:
            visitor.sign_up("secure@example.jp")
            cookies = [
                c for c in visitor.client.cookies.jar if c.name.endswith("kouza_app_session")
            ]
        assert [c.name for c in cookies] == ["__Host-kouza_app_session"]
        assert cookies[0].secure and cookies[0].path == "/"
        assert cookies[0].has_nonstandard_attr("HttpOnly")
        assert cookies[0].get_nonstandard_attr("SameSite").lower() == "lax"

    def test_a_weak_password_is_refused_with_zxcvbn_advice_and_nothing_created(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        with pages(rt, mailbox) as visitor:
            visitor.get("/app/signup?lang=en")
            page = visitor.post(
                "/app/signup", {"email": "weak@example.jp", "password": "password123"}
            )
        assert page.status_code == 422
        assert "too easy to guess" in error_shown(page)
        assert 'id="f-password-error"' in page.text and 'aria-invalid="true"' in page.text
        with rt.db.session() as session:
            assert session.scalar(select(func.count()).select_from(User)) == 0

    def test_a_form_without_the_csrf_token_changes_nothing(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        with pages(rt, mailbox) as visitor:
            visitor.get("/app/signup")
            page = visitor.post(
                "/app/signup", {"email": "x@example.jp", "password": "a sturdy passphrase"}, csrf=""
            )
            forged = visitor.post(
                "/app/signup",
                {"email": "x@example.jp", "password": "a sturdy passphrase"},
                csrf="0" * 64,
            )
        assert page.status_code == 403 and forged.status_code == 403
        with rt.db.session() as session:
            assert session.scalar(select(func.count()).select_from(User)) == 0

    def test_sign_out_revokes_the_token(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        with pages(rt, mailbox) as visitor:
            visitor.sign_up("out@example.jp")
            stolen = dict(visitor.client.cookies)
            visitor.get("/app")
            page = visitor.post("/app/signout", {})
            assert page.url.path == "/app/signin"
            visitor.client.cookies.clear()
            for name, value in stolen.items():
                visitor.client.cookies.set(name, value)
            again = visitor.client.get("/app", follow_redirects=False)
        assert again.status_code == 303 and again.headers["location"] == "/app/signin"

    def test_wrong_password_shows_the_services_message(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        with pages(rt, mailbox) as visitor:
            visitor.sign_up("who@example.jp")
            visitor.client.cookies.clear()
            visitor.get("/app/signin?lang=en")
            page = visitor.post("/app/signin", {"email": "who@example.jp", "password": "nope"})
        assert page.status_code == 401
        assert "wrong e-mail address or password" in error_shown(page)


class TestPhoneAndDeviceKey:
    def test_the_browser_key_registered_with_the_phone_signs_challenges(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        with pages(rt, mailbox) as visitor:
            onboarded(visitor, "dev@example.jp")
            proof = visitor.sign("transfer")
        with rt.db.session() as session:
            device = session.get_one(Device, visitor.device_id)
            user = session.get_one(User, device.user_id)
        assert user.level == "phone" and device.added_by == "phone_verification"
        assert device.thumbprint == visitor.key.key.thumbprint()
        assert proof["signature"].count(".") == 2

    def test_a_challenge_needs_the_csrf_header(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        with pages(rt, mailbox) as visitor:
            onboarded(visitor, "dev2@example.jp")
            answer = visitor.client.post(
                "/app/device/challenge",
                data={"action": "transfer", "device_id": str(visitor.device_id)},
            )
        assert answer.status_code == 403

    def test_without_javascript_no_key_is_registered(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        with pages(rt, mailbox) as visitor:
            visitor.sign_up("nojs@example.jp")
            visitor.get("/app/phone?lang=en")
            page = visitor.post("/app/phone", {"phone": "090-3333-4444"})
            fields = form_of(page, code="123456", device_jwk="")
            page = visitor.post("/app/phone/confirm", fields)
        assert page.status_code == 400
        assert "did not create a device key" in error_shown(page)
        with rt.db.session() as session:
            assert session.scalar(select(func.count()).select_from(Device)) == 0


class TestTransfer:
    def test_a_double_submit_moves_money_once(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        recipient = customer(rt, mailbox, device=False)
        with pages(rt, mailbox) as visitor:
            onboarded(visitor, "sender@example.jp")
            credit(rt, "sender@example.jp", 10_000)
            form = visitor.get("/app/transfer?lang=en")
            fields = form_of(form, to_wallet_id=recipient.wallet.id, amount="2,500", note="lunch")
            first = visitor.post("/app/transfer", {**fields, **visitor.sign("transfer")})
            again = visitor.post("/app/transfer", {**fields, **visitor.sign("transfer")}, csrf=None)
        assert first.status_code == 201 and again.status_code == 201, again.text
        assert "Sent ¥2,500" in first.text
        assert balance_of(rt, "sender@example.jp") == 7_500
        with rt.db.session() as session:
            assert session.scalar(select(func.count()).select_from(Transfer)) == 1

    def test_without_a_proof_the_step_up_is_offered_and_nothing_moves(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        recipient = customer(rt, mailbox, device=False)
        with pages(rt, mailbox) as visitor:
            onboarded(visitor, "nokey@example.jp", "090-5555-6666")
            credit(rt, "nokey@example.jp", 10_000)
            form = visitor.get("/app/transfer?lang=en")
            fields = form_of(form, to_wallet_id=recipient.wallet.id, amount="1000")
            refused = visitor.post("/app/transfer", fields)
            assert refused.status_code == 403
            assert "needs proof that this is you" in error_shown(refused)
            assert 'name="purpose" value="transfer"' in refused.text
            assert balance_of(rt, "nokey@example.jp") == 10_000
            sent = visitor.post("/app/step-up", {"purpose": "transfer", "back": "/app/transfer"})
            assert sent.status_code == 202
            challenge = form_of(sent)["challenge_id"]
            confirmed = visitor.post(
                "/app/step-up/confirm",
                {
                    "purpose": "transfer",
                    "back": "/app/transfer",
                    "challenge_id": challenge,
                    "code": last_code(mailbox, "+819055556666"),
                },
            )
            assert confirmed.url.path == "/app/transfer"
            page = visitor.post("/app/transfer", {**fields, "idempotency_key": "app-retry-1"})
        assert page.status_code == 201, error_shown(page)
        assert balance_of(rt, "nokey@example.jp") == 9_000

    def test_bad_input_is_a_clear_4xx(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        with pages(rt, mailbox) as visitor:
            onboarded(visitor, "bad@example.jp", "090-7777-8888")
            form = visitor.get("/app/transfer?lang=en")
            page = visitor.post("/app/transfer", form_of(form, to_wallet_id="nope", amount="-5"))
        assert page.status_code == 400
        assert "Enter the recipient's wallet id" in error_shown(page)


class TestPayAndStatement:
    def test_pay_a_pasted_merchant_qr_and_see_it_in_the_statement(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        with rt.db.unit_of_work() as session:
            shop = wallets.create_merchant(
                session, name="Lawson Otemachi", category=MerchantCategory.CONVENIENCE_STORE
            )
        with pages(rt, mailbox) as visitor:
            onboarded(visitor, "payer@example.jp")
            credit(rt, "payer@example.jp", 5_000)
            till = visitor.get(f"/app/merchants/{shop.id}/qr?lang=en")
            assert till.status_code == 200 and 'src="data:image/svg+xml' in till.text
            payload = till.text.split('id="qr-payload" readonly rows="4" spellcheck="false">')[1]
            payload = payload.split("</textarea>")[0]
            form = visitor.get("/app/pay")
            paid = visitor.post(
                "/app/pay", {**form_of(form, qr=payload, amount="1200"), **visitor.sign("payment")}
            )
            statement = visitor.get("/app/statement?lang=en")
        assert paid.status_code == 201, error_shown(paid)
        assert balance_of(rt, "payer@example.jp") == 3_800
        assert "-¥1,200" in statement.text and "¥3,800" in statement.text
        assert "¥5,000" in statement.text

    def test_a_forged_qr_is_refused_with_the_reason(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        with pages(rt, mailbox) as visitor:
            onboarded(visitor, "forged@example.jp")
            credit(rt, "forged@example.jp", 5_000)
            form = visitor.get("/app/pay?lang=en")
            page = visitor.post("/app/pay", form_of(form, qr="eyJhbGciOi.forged.qr", amount="100"))
        assert page.status_code == 400
        assert "QR code" in error_shown(page)
        assert balance_of(rt, "forged@example.jp") == 5_000

    def test_an_unknown_merchant_has_no_qr(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        with pages(rt, mailbox) as visitor:
            assert visitor.get(f"/app/merchants/{uuid.uuid4()}/qr").status_code == 404
            assert visitor.get("/app/merchants/not-an-id/qr").status_code == 404


class TestLinking:
    def test_the_legacy_form_refusal_shows_the_apis_reason(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        with pages(rt, mailbox) as visitor:
            visitor.sign_up("attacker@example.jp")
            form = visitor.get("/app/banks?lang=en")
            page = visitor.post(
                "/app/banks/legacy",
                form_of(
                    form,
                    bank_code="0125",
                    branch="100",
                    account_type="ordinary",
                    account_number="1234567",
                    holder_name="ﾔﾏﾀﾞ ﾀﾛｳ",
                    pin="4321",
                ),
            )
        assert page.status_code == 403
        shown = error_shown(page)
        assert "verified" in shown or "not accept" in shown, shown

    def test_a_malformed_legacy_form_names_the_fields(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        with pages(rt, mailbox) as visitor:
            visitor.sign_up("typo@example.jp")
            form = visitor.get("/app/banks?lang=en")
            page = visitor.post(
                "/app/banks/legacy",
                form_of(form, bank_code="12", branch="100", account_number="1", pin="12345"),
            )
        assert page.status_code == 422
        assert 'id="f-account_number-error"' in page.text and 'id="f-pin-error"' in page.text

    def test_a_callback_for_no_flow_of_yours_is_refused(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        with pages(rt, mailbox) as visitor:
            visitor.sign_up("cb@example.jp")
            page = visitor.get("/app/bank-callback?state=forged&code=x&iss=https://bank&lang=en")
        assert page.status_code == 400
        assert "belongs to no link you started" in error_shown(page)


class TestEkycWithTheDevelopmentCard:
    def _card_files(self, world: EkycWorld, passphrase: str) -> tuple[str, str]:
        certificate = world.card.certificate.public_bytes(serialization.Encoding.PEM).decode()
        key = world.card.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase.encode()),
        ).decode()
        return certificate, key

    def test_the_page_verifies_with_the_card_and_its_password(
        self, rt: Runtime, mailbox: MemoryMailbox, ekyc_world: EkycWorld
    ) -> None:
        certificate, key = self._card_files(ekyc_world, DEV_CARD_PASSPHRASE)
        with pages(rt, mailbox) as visitor:
            onboarded(visitor, "card@example.jp")
            form = visitor.get("/app/ekyc?lang=en")
            fields = form_of(
                form,
                certificate=certificate,
                card_key=key,
                passphrase=DEV_CARD_PASSPHRASE,
                kana_name=KANA,
            )
            page = visitor.post("/app/ekyc", fields)
        assert page.status_code == 200 and "done=ekyc" in str(page.url), error_shown(page)
        with rt.db.session() as session:
            user = identity.user_by_email(session, "card@example.jp")
            assert user.level == "verified"

    def test_a_wrong_card_password_spends_nothing(
        self, rt: Runtime, mailbox: MemoryMailbox, ekyc_world: EkycWorld
    ) -> None:
        certificate, key = self._card_files(ekyc_world, DEV_CARD_PASSPHRASE)
        with pages(rt, mailbox) as visitor:
            onboarded(visitor, "card2@example.jp")
            form = visitor.get("/app/ekyc?lang=en")
            page = visitor.post(
                "/app/ekyc",
                form_of(
                    form, certificate=certificate, card_key=key, passphrase="wrong", kana_name=KANA
                ),
            )
        assert page.status_code == 400
        assert "card password" in error_shown(page)
        with rt.db.session() as session:
            assert session.scalar(select(func.count()).select_from(EkycVerification)) == 0


def test_wallets_and_users_stay_one_per_sign_in(rt: Runtime, mailbox: MemoryMailbox) -> None:
    with pages(rt, mailbox) as visitor:
        visitor.sign_up("once@example.jp")
        visitor.client.cookies.clear()
        visitor.get("/app/signin")
        visitor.post(
            "/app/signin", {"email": "once@example.jp", "password": "a sturdy passphrase for kouza"}
        )
    with rt.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Wallet)) == 1


class TestOddInput:
    def test_odd_query_strings_and_amounts_are_pages_not_errors(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        with pages(rt, mailbox) as visitor:
            onboarded(visitor, "odd@example.jp", "090-1212-3434")
            assert visitor.get("/app/statement?before=abc").status_code == 200
            assert visitor.get("/app/statement?before=" + "9" * 40).status_code == 200
            assert visitor.get(f"/app/merchants/{uuid.uuid4()}/qr?amount=x").status_code == 404
            form = visitor.get("/app/pay?lang=en")
            page = visitor.post("/app/pay", form_of(form, qr="x", amount="9" * 5000))
        assert page.status_code == 400
        assert "whole number of yen" in error_shown(page)


class TestOnceAndExpiry:
    def test_a_payment_form_sent_twice_pays_once(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        with rt.db.unit_of_work() as session:
            shop = wallets.create_merchant(
                session, name="Sukiya", category=MerchantCategory.RESTAURANT
            )
            payload = wallets.merchant_qr(session, merchant_id=shop.id)
        with pages(rt, mailbox) as visitor:
            onboarded(visitor, "twice@example.jp", "090-4545-6767")
            credit(rt, "twice@example.jp", 9_000)
            form = form_of(visitor.get("/app/pay"), qr=payload, amount="4000")
            first = visitor.post("/app/pay", {**form, **visitor.sign("payment")})
            second = visitor.post("/app/pay", {**form, **visitor.sign("payment")})
        assert first.status_code == second.status_code == 201
        assert balance_of(rt, "twice@example.jp") == 5_000

    def test_the_page_session_ends_with_the_token(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        with pages(rt, mailbox) as visitor:
            visitor.sign_up("expires@example.jp")
            assert visitor.client.get("/app", follow_redirects=False).status_code == 200
            clock.advance(timedelta(seconds=rt.settings.token_ttl_seconds + 1))
            answer = visitor.client.get("/app", follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/app/signin"


class TestAnotherBrowser:
    def test_a_second_browser_is_added_after_an_sms_step_up(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        with pages(rt, mailbox) as first:
            onboarded(first, "two@example.jp", "090-8989-1212")
        with pages(rt, mailbox) as second:
            second.get("/app/signin?lang=en")
            second.post("/app/signin", {"email": "two@example.jp", "password": PASSWORD})
            jwk = json.dumps(second.key.public_jwk)
            second.get("/app/devices")
            refused = second.post("/app/devices", {"device_jwk": jwk, "device_name": "laptop"})
            assert refused.status_code == 403
            assert 'name="purpose" value="device.register"' in refused.text
            sent = second.post(
                "/app/step-up", {"purpose": "device.register", "back": "/app/devices"}
            )
            second.post(
                "/app/step-up/confirm",
                {
                    **form_of(sent),
                    "code": last_code(mailbox, "+819089891212"),
                },
            )
            added = second.post("/app/devices", {"device_jwk": jwk, "device_name": "laptop"})
        assert added.status_code == 200 and "done=device" in str(added.url), error_shown(added)
        with rt.db.session() as session:
            rows = session.scalars(select(Device).order_by(Device.created_at)).all()
        assert [(d.name, d.added_by) for d in rows] == [
            ("test browser", "phone_verification"),
            ("laptop", "sms_otp"),
        ]


def test_pages_carry_the_strict_policy_and_the_link_form_may_go_to_the_bank(
    rt: Runtime, mailbox: MemoryMailbox
) -> None:
    rt.settings.bank_issuer = "https://bank.kouza.test"
    with pages(rt, mailbox) as visitor:
        visitor.sign_up("csp@example.jp")
        home = visitor.get("/app")
        banks = visitor.get("/app/banks")
    policy = home.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "form-action 'self';" in policy
    assert home.headers["cache-control"] == "no-store"
    assert "form-action 'self' https://bank.kouza.test;" in banks.headers["content-security-policy"]
    assert " style=" not in home.text + banks.text and "<script>" not in home.text + banks.text
