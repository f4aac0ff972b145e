"""The victim hears of it (ADR 0022): security notices with a "not me" path.

* OAuth: a failed identity check after a correct internet-banking login and OTP (a phishing
  relay) tells the holder at once; quoting the notice's reference locks internet banking.
* Legacy form: a right PIN with a wrong name or birth date tells the holder at once; wrong
  PINs do at the second failure within 24 hours; one notice per account per day. Quoting the
  reference locks the account's PIN, so even the right PIN no longer links.

Notices go through the bank's own channel to the contact on file, carry no secret and no
identity the wallet sent, and show up in the counter's holder view.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kouza.bank.core import core
from kouza.bank.errors import LinkRefused
from kouza.bank.legacy_form import legacy_linking
from kouza.bank.models import Alert, AttemptOutcome, LinkAttempt
from kouza.bank.runtime import BankRuntime
from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox
from tests.bank import test_oauth
from tests.bank.conftest import STAFF_TOKEN
from tests.bank.helpers import Holder, make_bank, make_client, make_holder
from tests.bank.test_oauth import IbHolder, Wallet, link_count, log_in, start

api = test_oauth.api
client_key = test_oauth.client_key
wallet = test_oauth.wallet
holder = test_oauth.holder

REFERENCE = re.compile(r"reference (NM-[A-Z0-9]{10})")
STAFF = {"Authorization": f"Bearer {STAFF_TOKEN}"}


def notices_to(mailbox: MemoryMailbox, recipient: str) -> list[str]:
    return [m.subject + "\n" + m.body for m in mailbox.messages if m.recipient == recipient]


def reference_in(text: str) -> str:
    """The notice's "not me" reference, which its link to the bank's notice page carries too."""
    found = REFERENCE.search(text)
    assert found, text
    assert re.search(rf"https?://\S+/banks/\d{{4}}/notice#{found.group(1)}", text), text
    return found.group(1)


def alerts(rt: BankRuntime) -> list[str]:
    with rt.db.session() as session:
        return list(session.scalars(select(Alert.kind).order_by(Alert.id)).all())


def holder_view(api: TestClient, bank_code: str, number: str) -> list[dict[str, Any]]:
    response = api.get(
        f"/v1/counter/banks/{bank_code}/branches/100/accounts/{number}/security-notices",
        headers=STAFF,
    )
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


class TestAFailedIdentityCheckAfterLoginAndOtp:
    def test_the_holder_is_told_at_once_without_secrets(
        self,
        bank_rt: BankRuntime,
        wallet: Wallet,
        holder: IbHolder,
        mailbox: MemoryMailbox,
        api: TestClient,
    ) -> None:
        page = log_in(
            wallet,
            start(wallet, holder_name_kana="ヤマダ タロウ", holder_birth_date="1971-01-02"),
            holder,
        )

        assert page.status_code == 403 and link_count(bank_rt) == 0
        [notice] = notices_to(mailbox, holder.email)
        assert "change your internet-banking password" in notice
        assert "ドコモ口座" in notice  # the operator whose wallet it was
        for secret in (holder.password, "ﾔﾏﾀﾞ", "ヤマダ", "1971", holder.number):
            assert secret not in notice
        reference = reference_in(notice)
        assert alerts(bank_rt) == ["oauth_identity_mismatch"]
        [row] = holder_view(api, "0129", holder.number)
        assert (
            row["kind"],
            row["notice_reference"],
            row["operator_name"],
            row["reported_not_me"],
        ) == ("oauth_identity_mismatch", reference, "ドコモ口座", False)

    def test_not_me_locks_internet_banking(
        self,
        bank_rt: BankRuntime,
        wallet: Wallet,
        holder: IbHolder,
        mailbox: MemoryMailbox,
        api: TestClient,
        clock: ManualClock,
    ) -> None:
        log_in(wallet, start(wallet, holder_name_kana="ヤマダ タロウ"), holder)
        reference = reference_in(notices_to(mailbox, holder.email)[0])

        answer = api.post(
            "/v1/counter/not-me", json={"reference": reference.lower()}, headers=STAFF
        )
        clock.advance(seconds=31)  # a fresh OTP step
        again = log_in(wallet, start(wallet), holder)  # the relay comes back, right identity

        assert answer.status_code == 200, answer.text
        assert answer.json()["reported_not_me"] is True
        assert "Login failed" in again.text and link_count(bank_rt) == 0
        assert alerts(bank_rt) == ["oauth_identity_mismatch", "holder_confirmed_compromise"]
        assert holder_view(api, "0129", holder.number)[0]["reported_not_me"] is True

    def test_a_matching_identity_sends_no_security_notice(
        self,
        wallet: Wallet,
        holder: IbHolder,
        mailbox: MemoryMailbox,
    ) -> None:
        page = log_in(wallet, start(wallet), holder)

        assert "consent" in page.text.lower()
        assert notices_to(mailbox, holder.email) == []


class TestFailedLegacyAttempts:
    @pytest.fixture
    def victim(self, bank_rt: BankRuntime) -> Holder:
        make_bank(bank_rt)
        make_client(bank_rt)
        return make_holder(bank_rt)

    def attempt(self, rt: BankRuntime, victim: Holder, **changes: object) -> None:
        with pytest.raises(LinkRefused), rt.db.unit_of_work() as session:
            legacy_linking.link(
                session,
                client=core.client(session, "kouza-wallet"),
                bank_code="0125",
                form=victim.form(**changes),
                source="ip:x",
            )

    def test_one_wrong_pin_is_not_reported_the_second_is_once(
        self,
        bank_rt: BankRuntime,
        victim: Holder,
        mailbox: MemoryMailbox,
        clock: ManualClock,
    ) -> None:
        self.attempt(bank_rt, victim, pin="0000")
        assert notices_to(mailbox, victim.email) == []

        clock.advance(seconds=600)
        self.attempt(bank_rt, victim, pin="1111")
        self.attempt(bank_rt, victim, pin="2222")  # the third locks the PIN: no second notice

        [notice] = notices_to(mailbox, victim.email)
        assert "***567" in notice and "1234567" not in notice
        assert "0000" not in notice and "1111" not in notice and victim.pin not in notice
        assert alerts(bank_rt) == ["legacy_failed_attempts"]

    def test_failures_a_day_apart_are_not_repeated(
        self,
        bank_rt: BankRuntime,
        victim: Holder,
        mailbox: MemoryMailbox,
        clock: ManualClock,
    ) -> None:
        self.attempt(bank_rt, victim, pin="0000")
        clock.advance(hours=25)
        self.attempt(bank_rt, victim, pin="1111")

        assert notices_to(mailbox, victim.email) == []

    def test_a_right_pin_with_a_wrong_name_is_reported_at_once(
        self,
        bank_rt: BankRuntime,
        victim: Holder,
        mailbox: MemoryMailbox,
    ) -> None:
        self.attempt(bank_rt, victim, holder_kana="ｽｽﾞｷ ｲﾁﾛｳ")

        [notice] = notices_to(mailbox, victim.email)
        assert "ｽｽﾞｷ" not in notice
        assert alerts(bank_rt) == ["legacy_failed_attempts"]

    def test_not_me_locks_the_pin(
        self, bank_rt: BankRuntime, victim: Holder, mailbox: MemoryMailbox, api: TestClient
    ) -> None:
        self.attempt(bank_rt, victim, holder_kana="ｽｽﾞｷ ｲﾁﾛｳ")
        reference = reference_in(notices_to(mailbox, victim.email)[0])

        answer = api.post("/v1/counter/not-me", json={"reference": reference}, headers=STAFF)
        self.attempt(bank_rt, victim)  # even the right details no longer link

        assert answer.status_code == 200, answer.text
        assert answer.json()["kind"] == "legacy_failed_attempts"
        with bank_rt.db.session() as session:
            last = session.scalars(
                select(LinkAttempt.outcome).order_by(LinkAttempt.id.desc())
            ).first()
        assert last == AttemptOutcome.ACCOUNT_LOCKED.value
        [row] = holder_view(api, "0125", victim.number)
        assert row["reported_not_me"] is True

    def test_an_unknown_reference_is_a_404(self, api: TestClient, victim: Holder) -> None:
        answer = api.post("/v1/counter/not-me", json={"reference": "NM-0000000000"}, headers=STAFF)

        assert answer.status_code == 404
