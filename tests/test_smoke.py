from kouza.ledger.service import ledger
from kouza.runtime import Runtime
from tests.factories import balance_of, customer


def test_customer_with_balance(rt: Runtime, mailbox) -> None:  # type: ignore[no-untyped-def]
    alice = customer(rt, mailbox, balance=5000)
    assert balance_of(rt, alice.wallet) == 5000
    with rt.db.unit_of_work() as session:
        assert ledger.verify(session).ok
