"""Concurrent requests cannot overdraw a mandate, double a debit, or skip the PIN lockout.

On PostgreSQL the link, account and lockout counter are row-locked; on SQLite every write
transaction is ``BEGIN IMMEDIATE``. Both run here; PostgreSQL is the one that proves it.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from kouza.bank.core import core
from kouza.bank.legacy_form import legacy_linking
from kouza.bank.models import Account, Movement, TransferKind
from kouza.bank.runtime import BankRuntime
from kouza.bank.transfers import TransferRequest, transfers
from kouza.errors import KouzaError
from tests.bank.helpers import make_bank, make_client, make_holder

THREADS = 8


def _linked(rt: BankRuntime) -> tuple[str, uuid.UUID]:
    make_bank(rt)
    holder = make_holder(rt, balance=1_000_000)
    client_id, _ = make_client(rt, webhook_url=None)
    with rt.db.unit_of_work() as session:
        link = legacy_linking.link(
            session,
            client=core.client(session, client_id),
            bank_code="0125",
            form=holder.form(),
            source="s",
        )
        return client_id, link.id


def _debit(rt: BankRuntime, client_id: str, link_id: uuid.UUID, key: str) -> str:
    request = TransferRequest(
        kind=TransferKind.DEBIT, link_id=link_id, amount=100_000, idempotency_key=key
    )
    try:
        with rt.db.unit_of_work() as session:
            result = transfers.execute(
                session, client=core.client(session, client_id), request=request
            )
            return "replayed" if result.replayed else "debited"
    except KouzaError as exc:
        return exc.code


def test_parallel_debits_never_exceed_the_rolling_mandate(bank_rt: BankRuntime) -> None:
    client_id, link_id = _linked(bank_rt)

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(
            pool.map(lambda i: _debit(bank_rt, client_id, link_id, f"k{i}"), range(THREADS))
        )

    assert sorted(results) == ["debited"] * 3 + ["mandate_exceeded"] * (THREADS - 3)
    with bank_rt.db.session() as session:
        assert session.scalars(select(Account.balance)).one() == 700_000


def test_parallel_retries_of_one_key_debit_once(bank_rt: BankRuntime) -> None:
    client_id, link_id = _linked(bank_rt)

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(
            pool.map(lambda _: _debit(bank_rt, client_id, link_id, "same"), range(THREADS))
        )

    assert results.count("debited") == 1
    assert set(results) <= {"debited", "replayed", "idempotency_in_flight"}
    with bank_rt.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Movement)) == 1
        assert session.scalars(select(Account.balance)).one() == 900_000


def test_parallel_wrong_pins_lock_after_exactly_three(bank_rt: BankRuntime) -> None:
    make_bank(bank_rt)
    holder = make_holder(bank_rt)
    client_id, _ = make_client(bank_rt, webhook_url=None)

    def attempt(index: int) -> str:
        try:
            with bank_rt.db.unit_of_work() as session:
                legacy_linking.link(
                    session,
                    client=core.client(session, client_id),
                    bank_code="0125",
                    form=holder.form(pin=f"{index:04d}"),
                    source=f"s{index}",
                )
                return "linked"
        except KouzaError as exc:
            return exc.code

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(attempt, range(THREADS)))

    assert results == ["link_refused"] * THREADS
    with bank_rt.db.session() as session:
        account = session.scalars(select(Account)).one()
        assert account.pin_failures == 3 and account.pin_locked_at is not None
