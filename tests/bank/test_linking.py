"""The legacy linking form: success, indistinguishable refusals, PIN lockout, bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kouza.bank import legacy_form as linking
from kouza.bank.app import create_bank_app
from kouza.bank.models import (
    Account,
    AuthProfile,
    BankOutboxMessage,
    Link,
    LinkAttempt,
    NoticeChannel,
)
from kouza.bank.runtime import BankRuntime
from kouza.kit import security
from kouza.kit.notify import MemoryMailbox
from tests.bank.helpers import Holder, make_bank, make_client, make_holder
from tests.problems import problem


@pytest.fixture
def api(bank_rt: BankRuntime) -> Iterator[TestClient]:
    with TestClient(create_bank_app(bank_rt)) as client:
        yield client


@pytest.fixture
def auth(bank_rt: BankRuntime) -> tuple[str, str]:
    return make_client(bank_rt)


def form_body(holder: Holder, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "branch_code": holder.branch_code,
        "account_type": "ordinary",
        "account_number": holder.number,
        "holder_kana": holder.name_kana,
        "pin": holder.pin,
        "birth_date": holder.birth_date.isoformat(),
        "wallet_reference": "wallet-1",
        "end_user_source": "ip:203.0.113.7",
    }
    return body | changes


def post_link(
    api: TestClient, auth: tuple[str, str], holder: Holder, bank_code: str = "0125", **changes: Any
) -> Any:
    return api.post(
        f"/v1/banks/{bank_code}/legacy-links", auth=auth, json=form_body(holder, **changes)
    )


def outcomes(rt: BankRuntime) -> list[str]:
    with rt.db.session() as session:
        return list(session.scalars(select(LinkAttempt.outcome).order_by(LinkAttempt.id)))


def link_count(rt: BankRuntime) -> int:
    with rt.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Link)) or 0)


class TestLegacyLink:
    def test_links_with_account_name_and_pin_and_notifies_the_holder(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        auth: tuple[str, str],
        mailbox: MemoryMailbox,
    ) -> None:
        make_bank(bank_rt)
        holder = make_holder(bank_rt)

        response = post_link(api, auth, holder, holder_kana="やまだ　たろう")

        assert response.status_code == 201, response.text
        link = response.json()
        assert link["status"] == "active"
        assert (link["max_per_debit"], link["max_30_days"]) == (300_000, 300_000)
        assert link["wallet_reference"] == "wallet-1"
        notice = mailbox.last_to(holder.email)
        with bank_rt.db.session() as session:
            reference = session.scalars(select(Link.notice_reference)).one()
        assert reference in notice.body and "not me" in notice.body
        issuer = bank_rt.settings.issuer
        assert f"{issuer}/banks/{holder.bank_code}/notice#{reference}" in notice.body
        assert "ドコモ口座" in notice.body
        assert holder.pin not in notice.body
        assert outcomes(bank_rt) == ["linked"]
        with bank_rt.db.session() as session:  # delivered, and its content erased
            row = session.scalars(select(BankOutboxMessage)).one()
            assert row.delivered_at is not None and row.payload is None

    @pytest.mark.parametrize(
        ("channel", "contact"),
        [
            (NoticeChannel.SMS, "+81227111111"),
            (NoticeChannel.POST, "宮城県仙台市青葉区中央3-3-20"),
        ],
    )
    def test_the_notice_goes_to_the_contact_on_file_for_the_banks_channel(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        auth: tuple[str, str],
        mailbox: MemoryMailbox,
        channel: NoticeChannel,
        contact: str,
    ) -> None:
        make_bank(bank_rt, notice_channel=channel)
        holder = make_holder(bank_rt)

        assert post_link(api, auth, holder).status_code == 201

        [message] = mailbox.messages
        assert (message.channel, message.recipient) == (channel.value, contact)
        assert message.subject.startswith("[七十七銀行]")

    def test_every_refusal_looks_the_same_while_the_bank_keeps_the_reason(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        auth: tuple[str, str],
    ) -> None:
        make_bank(bank_rt)
        holder = make_holder(bank_rt)
        make_holder(bank_rt, number="7654321", pin="1111", email="locked@example.jp")
        for _ in range(3):
            post_link(api, auth, holder, account_number="7654321", pin="2222")

        answers = {
            "unknown account": post_link(api, auth, holder, account_number="9999999"),
            "wrong type": post_link(api, auth, holder, account_type="checking"),
            "wrong name": post_link(api, auth, holder, holder_kana="ｽｽﾞｷ ﾊﾅｺ"),
            "wrong pin": post_link(api, auth, holder, pin="0000"),
            "locked": post_link(api, auth, holder, account_number="7654321", pin="1111"),
        }

        seen = {(r.status_code, r.text, r.headers.get("content-length")) for r in answers.values()}
        assert len(seen) == 1
        status, text, _ = seen.pop()
        assert status == 422
        assert json.loads(text) == problem(
            422, "link_refused", "the registration could not be completed (登録できませんでした)"
        )
        assert outcomes(bank_rt)[3:] == [
            "unknown_account",
            "unknown_account",
            "name_mismatch",
            "wrong_pin",
            "account_locked",
        ]
        assert link_count(bank_rt) == 0

    def test_unknown_accounts_cost_one_argon2_verification_like_known_ones(
        self,
        bank_rt: BankRuntime,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        make_bank(bank_rt)
        holder = make_holder(bank_rt)
        calls: list[str] = []
        real = security.verify_password

        def counting(password_hash: str, password: str) -> bool:
            calls.append(password_hash[:9])
            return real(password_hash, password)

        monkeypatch.setattr(linking, "verify_password", counting)
        client_id, secret = make_client(bank_rt)
        with TestClient(create_bank_app(bank_rt)) as api:
            post_link(api, (client_id, secret), holder, account_number="9999999")
            post_link(api, (client_id, secret), holder, pin="0000")

        assert calls == ["$argon2id", "$argon2id"]

    def test_birth_date_bank_refuses_a_wrong_date_the_same_way(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        auth: tuple[str, str],
    ) -> None:
        make_bank(bank_rt, "0152", profile=AuthProfile.LEGACY_PIN_DOB)
        holder = make_holder(bank_rt, bank_code="0152")

        wrong = post_link(api, auth, holder, "0152", birth_date="1960-04-02")
        right = post_link(api, auth, holder, "0152")

        assert wrong.json()["error"] == "link_refused" and wrong.status_code == 422
        assert right.status_code == 201
        assert outcomes(bank_rt) == ["birth_date_mismatch", "linked"]

    def test_a_verified_name_is_compared_even_at_a_kana_only_bank(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        auth: tuple[str, str],
    ) -> None:
        make_bank(bank_rt)
        holder = make_holder(bank_rt)  # 山田 太郎, ﾔﾏﾀﾞ ﾀﾛｳ

        other_card = post_link(api, auth, holder, holder_name="鈴木 次郎")
        other_birth = post_link(api, auth, holder, holder_name="山田 太郎", birth_date="1961-04-01")
        own_card = post_link(api, auth, holder, holder_name="山田\u3000太郎")

        assert other_card.status_code == other_birth.status_code == 422
        assert other_card.json() == other_birth.json()  # the same indistinguishable refusal
        assert own_card.status_code == 201
        assert outcomes(bank_rt) == ["name_mismatch", "birth_date_mismatch", "linked"]

    def test_a_verified_name_without_its_birth_date_is_bad_input(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        auth: tuple[str, str],
    ) -> None:
        make_bank(bank_rt)
        holder = make_holder(bank_rt)

        response = post_link(api, auth, holder, holder_name="山田 太郎", birth_date=None)

        assert response.status_code == 400 and "birth_date" in response.text
        assert outcomes(bank_rt) == [] and link_count(bank_rt) == 0

    def test_oauth_bank_does_not_offer_the_form(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        auth: tuple[str, str],
    ) -> None:
        make_bank(bank_rt, "0001", profile=AuthProfile.OAUTH)
        holder = make_holder(bank_rt, bank_code="0001")

        response = post_link(api, auth, holder, "0001")

        assert response.status_code == 403
        assert response.json()["error"] == "legacy_form_not_offered"
        assert outcomes(bank_rt) == [] and link_count(bank_rt) == 0

    def test_one_wallet_per_account_and_operator(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        auth: tuple[str, str],
    ) -> None:
        make_bank(bank_rt)
        holder = make_holder(bank_rt)
        assert post_link(api, auth, holder).status_code == 201

        second = post_link(api, auth, holder, wallet_reference="wallet-2")

        assert second.status_code == 409 and second.json()["error"] == "already_linked"
        assert outcomes(bank_rt) == ["linked", "already_linked"]
        assert link_count(bank_rt) == 1


class TestPinLockout:
    def test_third_wrong_pin_locks_and_the_right_pin_is_then_refused(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        auth: tuple[str, str],
    ) -> None:
        make_bank(bank_rt)
        holder = make_holder(bank_rt)

        wrong = [
            post_link(api, auth, holder, pin=pin).status_code for pin in ("0000", "1111", "2222")
        ]
        fourth = post_link(api, auth, holder)

        assert wrong == [422, 422, 422]
        assert fourth.status_code == 422 and fourth.json()["error"] == "link_refused"
        assert outcomes(bank_rt) == ["wrong_pin"] * 3 + ["account_locked"]
        with bank_rt.db.session() as session:
            account = session.scalars(select(Account)).one()
            assert account.pin_failures == 3 and account.pin_locked_at is not None
        assert link_count(bank_rt) == 0

    def test_a_success_resets_the_counter(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        auth: tuple[str, str],
    ) -> None:
        make_bank(bank_rt)
        holder = make_holder(bank_rt)
        post_link(api, auth, holder, pin="0000")
        post_link(api, auth, holder, pin="1111")

        assert post_link(api, auth, holder).status_code == 201

        with bank_rt.db.session() as session:
            assert session.scalars(select(Account.pin_failures)).one() == 0


class TestBadInput:
    MALFORMED: tuple[dict[str, Any], ...] = (
        {"account_number": "123456"},
        {"account_number": "12345678"},
        {"account_number": "12345a7"},
        {"pin": "12a4"},
        {"pin": "12345"},
        {"pin": ""},
        {"branch_code": "10"},
        {"account_type": "futsu"},
        {"holder_kana": "山田太郎"},
        {"wallet_reference": ""},
        {"max_per_debit": 0},
        {"max_per_debit": -5},
    )

    def test_malformed_forms_get_a_clear_4xx_and_change_nothing(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        auth: tuple[str, str],
    ) -> None:
        make_bank(bank_rt)
        holder = make_holder(bank_rt)

        for changes in self.MALFORMED:
            response = post_link(api, auth, holder, **changes)

            assert response.status_code in (400, 422), changes
            assert response.json()["error"] in ("validation_error", "invalid_bank_data"), changes
            assert response.json()["message"], changes
        assert outcomes(bank_rt) == [] and link_count(bank_rt) == 0

    def test_unknown_or_malformed_bank_code(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        auth: tuple[str, str],
    ) -> None:
        make_bank(bank_rt)
        holder = make_holder(bank_rt)

        answers = {code: post_link(api, auth, holder, code) for code in ("9998", "12", "abcd")}

        assert {code: (r.status_code, r.json()["error"]) for code, r in answers.items()} == {
            "9998": (404, "unknown_bank"),
            "12": (400, "invalid_bank_data"),
            "abcd": (400, "invalid_bank_data"),
        }
        assert outcomes(bank_rt) == []

    def test_no_or_wrong_client_credentials(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        auth: tuple[str, str],
    ) -> None:
        make_bank(bank_rt)
        holder = make_holder(bank_rt)

        missing = api.post("/v1/banks/0125/legacy-links", json=form_body(holder))
        wrong = post_link(api, (auth[0], "bcs_wrong"), holder)
        other_id = post_link(api, ("someone-else", auth[1]), holder)
        bearer = api.post(
            "/v1/banks/0125/legacy-links",
            json=form_body(holder),
            headers={"Authorization": f"Bearer {auth[1]}"},
        )

        assert [r.status_code for r in (missing, wrong, other_id)] == [401, 401, 401]
        assert missing.json()["error"] == "invalid_client"
        assert bearer.status_code == 201
