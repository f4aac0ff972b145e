"""Hypothesis stateful test: random ledger operations keep every invariant.

A model of the expected balances runs beside the real ledger (real database, real migrations).
After every step: each entry sums to zero, no wallet is negative, every balance equals the sum
of its postings and equals the model, and idempotent retries changed nothing.
"""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from kouza.errors import KouzaError
from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox
from kouza.ledger.errors import InsufficientFunds
from kouza.ledger.models import AccountKind, EntryKind, HoldStatus
from kouza.ledger.service import ledger, transfer_spec
from kouza.runtime import Runtime
from tests.conftest import START, make_runtime

WALLETS = 4
amounts = st.integers(min_value=1, max_value=3_000)


class LedgerMachine(RuleBasedStateMachine):
    """Transfers, holds, posts, voids, expiries, reversals and retries against a model."""

    url: str = ""
    tmp: Path = Path()
    template: Path | None = None
    runs = 0

    holds = Bundle("holds")
    entries = Bundle("entries")

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(START)
        self.rt: Runtime = make_runtime(
            self._fresh_database(), self.tmp, self.clock, MemoryMailbox()
        )
        with self.rt.db.unit_of_work() as session:
            self.float = ledger.system_account(session, AccountKind.OPERATOR_FLOAT)
            self.wallets = [
                ledger.open_account(
                    session, kind=AccountKind.CUSTOMER_WALLET, code=f"wallet:{i}", name=f"w{i}"
                ).id
                for i in range(WALLETS)
            ]
        self.expected = {account: 0 for account in [self.float, *self.wallets]}
        self.held: dict[int, int] = {}  # pending hold id -> (amount) for availability
        self.hold_source: dict[int, int] = {}
        self.posted_entries: dict[int, list[tuple[int, int]]] = {}
        self.keys: dict[str, tuple[int, int, int]] = {}

    def _fresh_database(self) -> str:
        """Each example starts from an empty, migrated database."""
        LedgerMachine.runs += 1
        if self.template is None:
            from tests.conftest import _truncate_postgres

            _truncate_postgres(self.url)
            return self.url
        target = self.tmp / f"stateful-{self.runs}.db"
        shutil.copyfile(self.template, target)
        return f"sqlite:///{target}"

    def teardown(self) -> None:
        self.rt.db.dispose()

    def _available(self, account: int) -> int:
        held = sum(a for h, a in self.held.items() if self.hold_source[h] == account)
        return self.expected[account] - held

    def _apply(self, legs: list[tuple[int, int]]) -> None:
        for account, amount in legs:
            self.expected[account] += amount

    @rule(target=entries, wallet=st.integers(0, WALLETS - 1), amount=amounts)
    def top_up(self, wallet: int, amount: int) -> int:
        with self.rt.db.unit_of_work() as session:
            posted = ledger.transfer(
                session,
                kind=EntryKind.TOPUP,
                source=self.float,
                destination=self.wallets[wallet],
                amount=amount,
            )
        legs = [(self.float, -amount), (self.wallets[wallet], amount)]
        self._apply(legs)
        self.posted_entries[posted.id] = legs
        return posted.id

    @rule(
        target=entries,
        source=st.integers(0, WALLETS - 1),
        destination=st.integers(0, WALLETS - 1),
        amount=amounts,
        key=st.none() | st.sampled_from([f"key-{i}" for i in range(6)]),
    )
    def transfer(self, source: int, destination: int, amount: int, key: str | None) -> int:
        if source == destination:
            return -1
        src, dst = self.wallets[source], self.wallets[destination]
        spec = transfer_spec(
            kind=EntryKind.TRANSFER, source=src, destination=dst, amount=amount, idempotency_key=key
        )
        before = dict(self.expected)
        try:
            with self.rt.db.unit_of_work() as session:
                posted = ledger.post_entry(session, spec)
        except InsufficientFunds:
            assert self._available(src) < amount
            return -1
        except KouzaError:  # same key, different request
            assert key is not None and self.keys.get(key) != (src, dst, amount)
            assert self.expected == before
            return -1
        if posted.replayed:
            assert key is not None and self.keys[key] == (src, dst, amount)
            return posted.id
        assert self._available(src) >= amount
        if key is not None:
            self.keys[key] = (src, dst, amount)
        legs = [(src, -amount), (dst, amount)]
        self._apply(legs)
        self.posted_entries[posted.id] = legs
        return posted.id

    @rule(
        target=holds, source=st.integers(0, WALLETS - 1), amount=amounts, minutes=st.integers(1, 30)
    )
    def hold(self, source: int, amount: int, minutes: int) -> int:
        src = self.wallets[source]
        destination = self.wallets[(source + 1) % WALLETS]
        try:
            with self.rt.db.unit_of_work() as session:
                hold = ledger.create_hold(
                    session,
                    kind=EntryKind.PAYMENT,
                    source=src,
                    destination=destination,
                    amount=amount,
                    expires_at=self.clock.now() + timedelta(minutes=minutes),
                )
                hold_id, expires = hold.id, hold.expires_at
        except InsufficientFunds:
            self._forget_expired()
            assert self._available(src) < amount
            return -1
        self._forget_expired()
        self.held[hold_id] = amount
        self.hold_source[hold_id] = src
        self.hold_expiry = getattr(self, "hold_expiry", {})
        self.hold_expiry[hold_id] = expires
        return hold_id

    def _forget_expired(self) -> None:
        """Mirror the service: expired holds no longer reserve funds once released."""
        with self.rt.db.unit_of_work() as session:
            for hold_id in list(self.held):
                if ledger.get_hold(session, hold_id).status != HoldStatus.PENDING.value:
                    del self.held[hold_id]

    @rule(hold_id=holds, fraction=st.floats(0.01, 1.0))
    def post(self, hold_id: int, fraction: float) -> None:
        if hold_id not in self.held:
            return
        amount = max(1, int(self.held[hold_id] * fraction))
        try:
            with self.rt.db.unit_of_work() as session:
                posted = ledger.post_hold(session, hold_id=hold_id, amount=amount)
        except KouzaError:  # expired
            self._forget_expired()
            assert hold_id not in self.held
            return
        del self.held[hold_id]
        self._apply([(leg.account_id, leg.amount) for leg in posted.legs])
        self.posted_entries[posted.id] = [(leg.account_id, leg.amount) for leg in posted.legs]

    @rule(hold_id=holds)
    def void(self, hold_id: int) -> None:
        if hold_id not in self.held:
            return
        try:
            with self.rt.db.unit_of_work() as session:
                ledger.void_hold(session, hold_id=hold_id)
        except KouzaError:
            self._forget_expired()
            return
        del self.held[hold_id]

    @rule(minutes=st.integers(1, 20))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(minutes=minutes)
        with self.rt.db.unit_of_work() as session:
            ledger.expire_holds(session)
        self._forget_expired()

    @rule(entry_id=entries)
    def reverse(self, entry_id: int) -> None:
        legs = self.posted_entries.get(entry_id)
        if legs is None:
            return
        try:
            with self.rt.db.unit_of_work() as session:
                ledger.reverse(session, entry_id=entry_id, description="property test")
        except InsufficientFunds:
            return
        del self.posted_entries[entry_id]
        self._apply([(account, -amount) for account, amount in legs])

    @invariant()
    def ledger_matches_model(self) -> None:
        with self.rt.db.unit_of_work() as session:
            report = ledger.verify(session)
            actual = {a: ledger.balance(session, a).balance for a in self.expected}
        assert report.problems == []
        assert report.ok
        assert actual == self.expected
        assert all(actual[w] >= 0 for w in self.wallets)


def _run(url: str, tmp: Path, examples: int, template: Path | None = None) -> None:
    LedgerMachine.url, LedgerMachine.tmp, LedgerMachine.template = url, tmp, template
    test = LedgerMachine.TestCase
    test.settings = settings(
        max_examples=examples,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    test("runTest").runTest()


def test_ledger_state_machine_sqlite(sqlite_template: Path, tmp_path: Path) -> None:
    examples = int(os.environ.get("KOUZA_STATEFUL_EXAMPLES", "40"))
    _run("", tmp_path, examples, template=sqlite_template)


@pytest.mark.postgres
def test_ledger_state_machine_postgres(postgres_url: str, tmp_path: Path) -> None:
    _run(postgres_url, tmp_path, int(os.environ.get("KOUZA_STATEFUL_EXAMPLES", "15")))
