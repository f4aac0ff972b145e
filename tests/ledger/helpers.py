"""Small helpers for ledger tests."""

from __future__ import annotations

from kouza.ledger.models import AccountKind
from kouza.ledger.service import ledger
from kouza.runtime import Runtime


def accounts(rt: Runtime, *codes: str) -> list[int]:
    """Open customer-wallet accounts with these codes (and the float); return their ids."""
    with rt.db.unit_of_work() as session:
        return [
            ledger.open_account(session, kind=AccountKind.CUSTOMER_WALLET, code=code, name=code).id
            for code in codes
        ]


def float_account(rt: Runtime) -> int:
    with rt.db.unit_of_work() as session:
        return ledger.system_account(session, AccountKind.OPERATOR_FLOAT)


def balances(rt: Runtime, *ids: int) -> list[int]:
    with rt.db.unit_of_work() as session:
        return [ledger.balance(session, account_id).balance for account_id in ids]


def available(rt: Runtime, account_id: int) -> int:
    with rt.db.unit_of_work() as session:
        return ledger.balance(session, account_id).available


def verified(rt: Runtime) -> bool:
    with rt.db.unit_of_work() as session:
        report = ledger.verify(session)
    assert report.problems == []
    return report.ok
