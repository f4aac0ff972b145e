"""Debits and credits under a mandate: limits, balance, overdraft, idempotency, notices."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError

from kouza.bank.app import create_bank_app
from kouza.bank.core import core
from kouza.bank.holder import holder as holder_service
from kouza.bank.legacy_form import legacy_linking
from kouza.bank.models import Account, Movement, Transfer
from kouza.bank.runtime import BankRuntime
from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox
from tests.bank.helpers import Holder, make_bank, make_client, make_holder
from tests.problems import problem


@pytest.fixture
def api(bank_rt: BankRuntime) -> Iterator[TestClient]:
    with TestClient(create_bank_app(bank_rt)) as client:
        yield client


@pytest.fixture
def setup(bank_rt: BankRuntime) -> tuple[tuple[str, str], Holder, str]:
    make_bank(bank_rt)
    holder = make_holder(bank_rt, balance=500_000, overdraft_limit=200_000)
    auth = make_client(bank_rt)
    with bank_rt.db.unit_of_work() as session:
        link = legacy_linking.link(
            session,
            client=core.client(session, auth[0]),
            bank_code="0125",
            form=holder.form(),
            source="ip:198.51.100.1",
        )
        link_id = str(link.id)
    return auth, holder, link_id


def debit(
    api: TestClient,
    auth: tuple[str, str],
    link_id: str,
    amount: Any,
    key: str | None = None,
    kind: str = "debits",
    **extra: Any,
) -> Any:
    return api.post(
        f"/v1/links/{link_id}/{kind}",
        auth=auth,
        json={"amount": amount, **extra},
        headers={"Idempotency-Key": key or uuid.uuid4().hex},
    )


def balance(rt: BankRuntime) -> int:
    with rt.db.session() as session:
        return session.scalars(select(Account.balance)).one()


def movement_count(rt: BankRuntime) -> int:
    with rt.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Movement)) or 0)


class TestDebit:
    def test_debit_within_the_mandate_moves_money_and_notifies_the_holder(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        setup: Any,
        mailbox: MemoryMailbox,
    ) -> None:
        auth, holder, link_id = setup

        response = debit(api, auth, link_id, 100_000, description="ﾄﾞｺﾓｺｳｻﾞ")

        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["kind"], body["amount"], body["replayed"]) == ("debit", 100_000, False)
        assert "balance_after" not in body  # the operator never learns the balance
        assert balance(bank_rt) == 400_000
        with bank_rt.db.session() as session:
            movement = session.scalars(select(Movement)).one()
            reference = session.scalars(select(Transfer.link_id)).one()
        assert (movement.kind, movement.amount, movement.balance_after) == (
            "debit",
            100_000,
            400_000,
        )
        assert movement.description == "ﾄﾞｺﾓｺｳｻﾞ" and movement.counterparty == "ドコモ口座"
        assert str(reference) == link_id
        notice = mailbox.last_to(holder.email)
        assert "¥100,000" in notice.body and "NM-" in notice.body and "not me" in notice.body

    def test_above_the_per_debit_maximum_is_refused(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        setup: Any,
    ) -> None:
        auth, _, link_id = setup

        response = debit(api, auth, link_id, 300_001)

        assert response.status_code == 422 and response.json()["error"] == "mandate_exceeded"
        assert balance(bank_rt) == 500_000 and movement_count(bank_rt) == 0

    def test_rolling_30_days_not_calendar_month(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        setup: Any,
        clock: ManualClock,
    ) -> None:
        auth, _, link_id = setup
        # the incident's pattern: four debits within a minute, then again the next "month"
        for amount in (100_000, 90_000, 90_000, 20_000):
            assert debit(api, auth, link_id, amount).status_code == 201
        clock.advance(days=2)

        refused = debit(api, auth, link_id, 1)
        clock.advance(days=28, seconds=1)
        allowed = debit(api, auth, link_id, 100_000)

        assert refused.status_code == 422 and refused.json()["error"] == "mandate_exceeded"
        assert refused.json()["details"] == {"max_30_days": 300_000, "used": 300_000}
        assert allowed.status_code == 201
        assert balance(bank_rt) == 100_000

    def test_above_the_balance_is_refused(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        setup: Any,
    ) -> None:
        auth, _, link_id = setup
        with bank_rt.db.unit_of_work() as session:
            session.execute(update(Account).values(balance=150_000))  # the holder spent

        response = debit(api, auth, link_id, 150_001)

        assert response.status_code == 422
        assert response.json()["error"] == "insufficient_balance"
        assert balance(bank_rt) == 150_000 and movement_count(bank_rt) == 0

    def test_overdraft_only_when_the_holder_opted_in(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        setup: Any,
    ) -> None:
        auth, holder, link_id = setup
        with bank_rt.db.unit_of_work() as session:
            session.execute(update(Account).values(balance=50_000))

        excluded = debit(api, auth, link_id, 200_000)
        with bank_rt.db.unit_of_work() as session:
            account = core.account(
                session, bank_code="0125", branch_code="100", number=holder.number
            )
            holder_service.set_overdraft_opt_in(session, account, enabled=True)
        allowed = debit(api, auth, link_id, 200_000)
        beyond = debit(api, auth, link_id, 60_001)

        assert excluded.status_code == 422
        assert excluded.json()["error"] == "insufficient_balance"
        assert allowed.status_code == 201
        assert beyond.status_code == 422 and beyond.json()["error"] == "insufficient_balance"
        assert balance(bank_rt) == -150_000

    def test_an_expired_mandate_debits_nothing(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        setup: Any,
        clock: ManualClock,
    ) -> None:
        auth, _, link_id = setup
        clock.advance(days=365)

        response = debit(api, auth, link_id, 1_000)

        assert response.status_code == 422
        assert response.json() == problem(
            422, "link_not_active", "debits under this link are stopped", status="expired"
        )
        assert balance(bank_rt) == 500_000

    def test_bad_amounts_are_refused_and_nothing_moves(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        setup: Any,
    ) -> None:
        auth, _, link_id = setup

        for amount in (0, -1, 10**13, 1.5, "100", True, None):
            response = debit(api, auth, link_id, amount)

            assert response.status_code == 422, amount
            assert response.json()["error"] == "validation_error", amount
        assert balance(bank_rt) == 500_000 and movement_count(bank_rt) == 0

    def test_unknown_link_and_another_clients_link(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        setup: Any,
    ) -> None:
        auth, _, link_id = setup
        other = make_client(bank_rt, "other-wallet")

        unknown = debit(api, auth, str(uuid.uuid4()), 1_000)
        foreign = debit(api, other, link_id, 1_000)
        malformed = debit(api, auth, "not-a-uuid", 1_000)

        assert [unknown.status_code, foreign.status_code] == [404, 404]
        assert malformed.status_code == 422
        assert balance(bank_rt) == 500_000


class TestIdempotency:
    def test_retries_of_the_same_request_move_money_once(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        setup: Any,
        mailbox: MemoryMailbox,
    ) -> None:
        auth, _, link_id = setup

        answers = [debit(api, auth, link_id, 50_000, key="topup-1") for _ in range(3)]

        assert [a.status_code for a in answers] == [201, 201, 201]
        assert len({a.json()["id"] for a in answers}) == 1
        assert [a.json()["replayed"] for a in answers] == [False, True, True]
        assert balance(bank_rt) == 450_000 and movement_count(bank_rt) == 1
        assert sum("¥50,000" in m.body for m in mailbox.messages) == 1

    def test_same_key_different_request_is_a_conflict(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        setup: Any,
    ) -> None:
        auth, _, link_id = setup
        debit(api, auth, link_id, 50_000, key="topup-1")

        response = debit(api, auth, link_id, 60_000, key="topup-1")

        assert response.status_code == 409
        assert response.json()["error"] == "idempotency_conflict"
        assert balance(bank_rt) == 450_000 and movement_count(bank_rt) == 1

    def test_a_refused_request_does_not_burn_its_key(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        setup: Any,
    ) -> None:
        auth, _, link_id = setup
        assert debit(api, auth, link_id, 400_000, key="k").status_code == 422

        assert debit(api, auth, link_id, 300_000, key="k").status_code == 201

    def test_reconciliation_reads_by_key_id_and_time_range(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        setup: Any,
        clock: ManualClock,
    ) -> None:
        auth, _, link_id = setup
        start = clock.now()
        first = debit(api, auth, link_id, 10_000, key="a").json()
        clock.advance(minutes=1)
        second = debit(api, auth, link_id, 20_000, key="b", kind="credits").json()

        by_key = api.get("/v1/transfers", params={"idempotency_key": "a"}, auth=auth)
        by_id = api.get(f"/v1/transfers/{second['id']}", auth=auth)
        window = api.get(
            "/v1/transfers",
            auth=auth,
            params={"since": start.isoformat(), "until": (start + timedelta(hours=1)).isoformat()},
        )
        missing = api.get("/v1/transfers", params={"idempotency_key": "zzz"}, auth=auth)
        unbounded = api.get("/v1/transfers", auth=auth)

        assert by_key.json()[0]["id"] == first["id"]
        assert by_id.json()["kind"] == "credit" and by_id.json()["amount"] == 20_000
        assert [t["id"] for t in window.json()] == [first["id"], second["id"]]
        assert missing.status_code == 404 and unbounded.status_code == 400
        assert balance(bank_rt) == 510_000


class TestJournal:
    def test_movements_are_immutable(
        self, bank_rt: BankRuntime, api: TestClient, setup: Any
    ) -> None:
        auth, _, link_id = setup
        debit(api, auth, link_id, 1_000)

        with pytest.raises(DBAPIError), bank_rt.db.unit_of_work() as session:
            session.execute(update(Movement).values(amount=1))
        with pytest.raises(DBAPIError), bank_rt.db.unit_of_work() as session:
            session.execute(delete(Movement))

        assert movement_count(bank_rt) == 1

    def test_the_balance_check_holds_in_the_database(
        self, bank_rt: BankRuntime, setup: Any
    ) -> None:
        with pytest.raises(DBAPIError), bank_rt.db.unit_of_work() as session:
            session.execute(update(Account).values(balance=-200_001))

        assert balance(bank_rt) == 500_000
