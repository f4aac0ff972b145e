"""Idempotency keys (kouza.kit.idempotency), directly and under concurrent HTTP retries."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kouza.api.app import create_app
from kouza.errors import BadRequest, IdempotencyConflict, IdempotencyInFlight
from kouza.identity.devices import SensitiveAction
from kouza.identity.service import identity
from kouza.kit import idempotency
from kouza.kit.clock import ManualClock
from kouza.kit.idempotency import IdempotencyRecord, IdempotentRequest, Replay, Resume
from kouza.kit.notify import MemoryMailbox
from kouza.kit.web import run_idempotent
from kouza.ledger.models import EntryKind, JournalEntry
from kouza.ledger.service import ledger
from kouza.runtime import Runtime
from kouza.wallet.models import Payment
from kouza.wallet.service import wallets
from tests.factories import PASSWORD, balance_of, customer, merchant, signed_body

LEASE = timedelta(seconds=60)


class Replayed(BaseModel):
    value: int


SCOPE = "user:test"


def claim(
    rt: Runtime, fingerprint: str, *, key: str = "key-1", scope: str = SCOPE
) -> Replay | None:
    return idempotency.claim(
        rt.db, scope=scope, key=key, fingerprint=fingerprint, now=rt.now(), lease=LEASE
    )


def complete(rt: Runtime, body: Any, *, key: str = "key-1", status: int = 201) -> None:
    with rt.db.unit_of_work() as session:
        idempotency.complete(session, scope=SCOPE, key=key, status_code=status, body=body)


def records(rt: Runtime) -> list[tuple[str, str, str, str, int | None]]:
    with rt.db.session() as session:
        return [
            (r.scope, r.key, r.request_hash, r.status, r.response_status)
            for r in session.scalars(select(IdempotencyRecord).order_by(IdempotencyRecord.id))
        ]


HASH_A = idempotency.request_hash(["pay", "wallet-1", {"amount": 100}])
HASH_B = idempotency.request_hash(["pay", "wallet-1", {"amount": 200}])


class TestRequestHash:
    def test_is_canonical(self) -> None:
        assert idempotency.request_hash({"a": 1, "b": [1, 2]}) == idempotency.request_hash(
            {"b": [1, 2], "a": 1}
        )
        assert idempotency.request_hash({"a": 1}) != idempotency.request_hash({"a": "1"})
        assert len(HASH_A) == 64 and HASH_A != HASH_B


class TestValidateKey:
    @pytest.mark.parametrize("key", ["", "k" * 256, "clé", "tab\there", "new\nline"])
    def test_refuses(self, key: str) -> None:
        with pytest.raises(BadRequest):
            idempotency.validate_key(key)

    @pytest.mark.parametrize("key", ["a", "k" * 255, "order-42/retry 1", "~!@#$%^&*()"])
    def test_accepts(self, key: str) -> None:
        assert idempotency.validate_key(key) == key


class TestClaim:
    def test_first_claim_runs(self, rt: Runtime, clock: ManualClock) -> None:
        assert claim(rt, HASH_A) is None
        assert records(rt) == [(SCOPE, "key-1", HASH_A, "in_flight", None)]
        with rt.db.session() as session:
            record = session.scalars(select(IdempotencyRecord)).one()
        assert record.locked_until == clock.now() + LEASE

    def test_same_request_after_completion_replays(self, rt: Runtime) -> None:
        claim(rt, HASH_A)
        complete(rt, {"id": "p-1", "amount": 100})
        assert claim(rt, HASH_A) == Replay(201, {"id": "p-1", "amount": 100})
        assert claim(rt, HASH_A) == Replay(201, {"id": "p-1", "amount": 100})
        assert records(rt) == [(SCOPE, "key-1", HASH_A, "completed", 201)]

    def test_other_request_after_completion_conflicts(self, rt: Runtime) -> None:
        claim(rt, HASH_A)
        complete(rt, {"id": "p-1"})
        with pytest.raises(IdempotencyConflict) as caught:
            claim(rt, HASH_B)
        assert (caught.value.status_code, caught.value.code) == (409, "idempotency_conflict")
        assert caught.value.details == {"key": "key-1"}
        assert records(rt) == [(SCOPE, "key-1", HASH_A, "completed", 201)]

    def test_same_request_while_in_flight(self, rt: Runtime) -> None:
        claim(rt, HASH_A)
        with pytest.raises(IdempotencyInFlight) as caught:
            claim(rt, HASH_A)
        assert (caught.value.status_code, caught.value.code) == (409, "idempotency_in_flight")

    def test_other_request_while_in_flight_conflicts(self, rt: Runtime) -> None:
        claim(rt, HASH_A)
        with pytest.raises(IdempotencyConflict):
            claim(rt, HASH_B)

    def test_expired_lease_is_taken_over(self, rt: Runtime, clock: ManualClock) -> None:
        claim(rt, HASH_A)
        clock.advance(LEASE)
        with pytest.raises(IdempotencyInFlight):  # the lease runs until its last instant
            claim(rt, HASH_A)
        clock.advance(seconds=1)
        assert claim(rt, HASH_A) is None  # the crashed first attempt is taken over
        with rt.db.session() as session:
            record = session.scalars(select(IdempotencyRecord)).one()
        assert record.locked_until == clock.now() + LEASE
        with pytest.raises(IdempotencyInFlight):  # and the new lease protects the retry
            claim(rt, HASH_A)

    def test_release_lets_a_corrected_retry_run(self, rt: Runtime) -> None:
        claim(rt, HASH_A)
        idempotency.release(rt.db, scope=SCOPE, key="key-1")
        assert records(rt) == []
        assert claim(rt, HASH_B) is None
        assert records(rt) == [(SCOPE, "key-1", HASH_B, "in_flight", None)]

    def test_release_does_not_forget_a_completed_result(self, rt: Runtime) -> None:
        claim(rt, HASH_A)
        complete(rt, {"id": "p-1"})
        idempotency.release(rt.db, scope=SCOPE, key="key-1")
        assert claim(rt, HASH_A) == Replay(201, {"id": "p-1"})

    def test_keys_are_per_scope(self, rt: Runtime) -> None:
        assert claim(rt, HASH_A) is None
        assert claim(rt, HASH_B, scope="user:other") is None
        assert len(records(rt)) == 2

    def test_completion_rolls_back_with_the_business_write(self, rt: Runtime) -> None:
        claim(rt, HASH_A)
        with pytest.raises(RuntimeError), rt.db.unit_of_work() as session:
            idempotency.complete(
                session, scope=SCOPE, key="key-1", status_code=201, body={"id": "p-1"}
            )
            raise RuntimeError("the business write failed after complete()")
        assert records(rt) == [(SCOPE, "key-1", HASH_A, "in_flight", None)]
        with pytest.raises(IdempotencyInFlight):
            claim(rt, HASH_A)


class TestConcurrentRetries:
    def test_eight_identical_payments_pay_once(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        if rt.db.dialect != "postgresql":
            pytest.skip("concurrency is proven on PostgreSQL (SQLite serialises writers)")
        alice = customer(rt, mailbox, balance=10_000)
        shop = merchant(rt)
        with rt.db.unit_of_work() as session:
            qr = wallets.merchant_qr(session, merchant_id=shop.id, amount=3_200)
            token = identity.login(session, email=alice.email, password=PASSWORD)
        proof = signed_body(rt, alice, SensitiveAction.PAY)  # spent once; replays need none
        app = create_app(rt)
        barrier = threading.Barrier(8)
        responses: list[Any] = [None] * 8

        def retry(index: int) -> None:
            with TestClient(app) as client:
                barrier.wait()
                try:
                    responses[index] = client.post(
                        f"/v1/wallets/{alice.wallet.id}/payments",
                        json={"qr": qr} | proof,
                        headers={
                            "Authorization": f"Bearer {token}",
                            "Idempotency-Key": "checkout-7",
                        },
                    )
                except Exception as exc:  # reported below
                    responses[index] = exc

        threads = [threading.Thread(target=retry, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert all(isinstance(r, httpx.Response) for r in responses), responses
        created = [r for r in responses if r.status_code == 201]
        in_flight = [r for r in responses if r.status_code == 409]
        assert len(created) + len(in_flight) == 8, [r.text for r in responses]
        assert created, "at least the first request succeeds"
        assert len({r.text for r in created}) == 1  # replays are the very same response
        assert {r.json()["error"] for r in in_flight} <= {"idempotency_in_flight"}
        with rt.db.session() as session:
            assert session.scalar(select(func.count()).select_from(Payment)) == 1
            assert (
                session.scalar(
                    select(func.count())
                    .select_from(JournalEntry)
                    .where(JournalEntry.kind == EntryKind.PAYMENT.value)
                )
                == 1
            )
            assert ledger.verify(session).ok
        assert balance_of(rt, alice.wallet) == 6_800
        assert records(rt)[0][3] == "completed"


class TestReleasedWhileResolving:
    def test_a_claim_released_between_insert_and_read_is_claimed_again(
        self, rt: Runtime, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The interleaving behind the 500s: our insert collides with a claim, whose request
        then fails and releases it before we read it (``NoResultFound`` on the old code)."""
        claim(rt, HASH_A)
        original = idempotency._resolve_existing

        def released_first(session: Any, **kwargs: Any) -> Any:
            idempotency.release(rt.db, scope=SCOPE, key="key-1")
            return original(session, **kwargs)

        monkeypatch.setattr(idempotency, "_resolve_existing", released_first)
        assert claim(rt, HASH_A) is None
        assert records(rt) == [(SCOPE, "key-1", HASH_A, "in_flight", None)]

    def test_a_key_released_on_every_attempt_answers_in_flight(
        self, rt: Runtime, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        original = idempotency._resolve_existing
        claim(rt, HASH_A)
        calls: list[int] = []

        def always_gone(session: Any, **kwargs: Any) -> Any:
            calls.append(1)
            idempotency.release(rt.db, scope=SCOPE, key="key-1")
            result = original(session, **kwargs)
            claim(rt, HASH_A)  # another request claims before our next insert
            return result

        monkeypatch.setattr(idempotency, "_resolve_existing", always_gone)
        with pytest.raises(IdempotencyInFlight):
            claim(rt, HASH_A)
        assert len(calls) == 3


class TestRunIdempotentReleasesOnAnyFailure:
    def test_an_unexpected_exception_releases_the_key(self, rt: Runtime) -> None:
        def explode(_session: Any) -> Any:
            raise RuntimeError("a bug, not a refusal")

        with pytest.raises(RuntimeError):
            run_idempotent(
                rt,
                scope=SCOPE,
                key="key-1",
                request_payload=["x"],
                model=Replayed,
                operation=explode,
            )
        assert records(rt) == []  # on the old code: stuck "in_flight" until the lease ran out
        result = run_idempotent(
            rt,
            scope=SCOPE,
            key="key-1",
            request_payload=["x"],
            model=Replayed,
            operation=lambda _s: Replayed(value=7),
        )
        assert result == Replayed(value=7)


class TestConcurrentFailingRetries:
    def test_ten_retries_of_a_failing_transfer_never_500(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        alice = customer(rt, mailbox, balance=10_000)
        with rt.db.unit_of_work() as session:
            token = identity.login(session, email=alice.email, password=PASSWORD)
        app = create_app(rt)
        barrier = threading.Barrier(10)
        responses: list[Any] = [None] * 10
        body = {"to_wallet_id": "00000000-0000-4000-8000-000000000001", "amount": 100}

        def retry(index: int) -> None:
            with TestClient(app, raise_server_exceptions=False) as client:
                barrier.wait()
                try:
                    responses[index] = client.post(
                        f"/v1/wallets/{alice.wallet.id}/transfers",
                        json=body,
                        headers={
                            "Authorization": f"Bearer {token}",
                            "Idempotency-Key": "send-unknown",
                        },
                    )
                except Exception as exc:  # reported below
                    responses[index] = exc

        threads = [threading.Thread(target=retry, args=(i,)) for i in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert all(isinstance(r, httpx.Response) for r in responses), responses
        outcomes = {(r.status_code, r.json()["error"]) for r in responses}
        assert outcomes <= {(404, "unknown_wallet"), (409, "idempotency_in_flight")}, outcomes
        assert (404, "unknown_wallet") in outcomes
        assert records(rt) == []  # no key left stuck in flight
        assert balance_of(rt, alice.wallet) == 10_000


def attach(rt: Runtime, resource: str, *, key: str = "key-1") -> None:
    with rt.db.unit_of_work() as session:
        idempotency.attach(session, scope=SCOPE, key=key, resource=resource)


def resources(rt: Runtime) -> list[tuple[str, str | None]]:
    with rt.db.session() as session:
        return [
            (r.status, r.resource)
            for r in session.scalars(select(IdempotencyRecord).order_by(IdempotencyRecord.id))
        ]


class TestResume:
    """A request that attached what it made is resumed by its retry, never run twice."""

    def test_a_failure_after_attaching_leaves_the_key_open(self, rt: Runtime) -> None:
        claim(rt, HASH_A)
        attach(rt, "thing:1")
        idempotency.release(rt.db, scope=SCOPE, key="key-1")
        assert resources(rt) == [("open", "thing:1")]
        assert claim(rt, HASH_A) == Resume("thing:1")
        assert resources(rt) == [("in_flight", "thing:1")]

    def test_a_failure_before_attaching_still_forgets_the_key(self, rt: Runtime) -> None:
        claim(rt, HASH_A)
        with pytest.raises(RuntimeError), rt.db.unit_of_work() as session:
            idempotency.attach(session, scope=SCOPE, key="key-1", resource="thing:1")
            raise RuntimeError("the record failed after attaching: nothing was committed")
        assert resources(rt) == [("in_flight", None)]
        idempotency.release(rt.db, scope=SCOPE, key="key-1")
        assert records(rt) == []
        assert claim(rt, HASH_B) is None

    def test_another_request_on_an_open_key_conflicts(self, rt: Runtime) -> None:
        claim(rt, HASH_A)
        attach(rt, "thing:1")
        idempotency.release(rt.db, scope=SCOPE, key="key-1")
        with pytest.raises(IdempotencyConflict):
            claim(rt, HASH_B)
        assert resources(rt) == [("open", "thing:1")]

    def test_only_one_retry_resumes(self, rt: Runtime) -> None:
        claim(rt, HASH_A)
        attach(rt, "thing:1")
        idempotency.release(rt.db, scope=SCOPE, key="key-1")
        assert claim(rt, HASH_A) == Resume("thing:1")
        with pytest.raises(IdempotencyInFlight):
            claim(rt, HASH_A)

    def test_a_crashed_attempt_that_attached_is_resumed_after_its_lease(
        self, rt: Runtime, clock: ManualClock
    ) -> None:
        claim(rt, HASH_A)
        attach(rt, "thing:1")  # and the process dies: no release
        with pytest.raises(IdempotencyInFlight):
            claim(rt, HASH_A)
        clock.advance(LEASE + timedelta(seconds=1))
        assert claim(rt, HASH_A) == Resume("thing:1")

    def test_a_second_attach_is_refused_and_rolled_back(self, rt: Runtime) -> None:
        """Two attempts that both hold the key (the first outlived its lease) cannot both
        record something: the second one's unit of work fails and makes nothing."""
        claim(rt, HASH_A)
        attach(rt, "thing:1")
        with pytest.raises(IdempotencyInFlight):
            attach(rt, "thing:2")
        assert resources(rt) == [("in_flight", "thing:1")]

    def test_a_completed_request_replays_with_what_it_made(self, rt: Runtime) -> None:
        claim(rt, HASH_A)
        attach(rt, "thing:1")
        complete(rt, {"id": "thing-1"})
        idempotency.release(rt.db, scope=SCOPE, key="key-1")
        assert claim(rt, HASH_A) == Replay(201, {"id": "thing-1"}, "thing:1")
        assert resources(rt) == [("completed", "thing:1")]

    def test_an_open_record_must_name_what_it_resumes(
        self, rt: Runtime, clock: ManualClock
    ) -> None:
        with pytest.raises(IntegrityError), rt.db.unit_of_work() as session:
            session.add(
                IdempotencyRecord(
                    scope=SCOPE,
                    key="key-1",
                    request_hash=HASH_A,
                    status="open",
                    created_at=clock.now(),
                    locked_until=clock.now(),
                )
            )
        assert records(rt) == []


class TestRun:
    REQUEST = IdempotentRequest(scope=SCOPE, key="key-1", fingerprint=HASH_A)

    def test_a_retry_resumes_what_the_failed_attempt_attached(self, rt: Runtime) -> None:
        seen: list[Resume | None] = []

        def lost(_session: Session, resumed: Resume | None) -> Replayed:
            seen.append(resumed)
            attach(rt, "thing:1")
            raise RuntimeError("the other system's answer was lost")

        def resumed(_session: Session, resumed: Resume | None) -> Replayed:
            seen.append(resumed)
            return Replayed(value=1)

        def never(_session: Session, _resumed: Resume | None) -> Replayed:
            raise AssertionError("a finished request is replayed, not run")

        def run(operation: Any) -> Any:
            return idempotency.run(
                rt, self.REQUEST, operation=operation, answer=lambda r: r.model_dump()
            )

        with pytest.raises(RuntimeError):
            run(lost)
        assert resources(rt) == [("open", "thing:1")]
        assert run(resumed) == Replayed(value=1)
        assert seen == [None, Resume("thing:1")]
        assert run(never) == Replay(201, {"value": 1}, "thing:1")

    def test_a_bad_key_is_refused_before_anything(self, rt: Runtime) -> None:
        with pytest.raises(BadRequest):
            idempotency.run(
                rt,
                IdempotentRequest(scope=SCOPE, key="tab\there", fingerprint=HASH_A),
                operation=lambda _session, _resumed: Replayed(value=1),
                answer=lambda r: r.model_dump(),
            )
        assert records(rt) == []


def transactions(rt: Runtime) -> list[int]:
    """A counter of the transactions begun on ``rt``'s engine from now on."""
    begun = [0]

    def count(_connection: Any) -> None:
        begun[0] += 1

    event.listen(rt.db.engine, "begin", count)
    return begun


class TestRunInOne:
    """A one-step request's key, work and answer in one transaction (ADR 0028)."""

    def run(self, rt: Runtime, operation: Any, *, key: str = "key-1") -> Any:
        return idempotency.run_in_one(
            rt,
            key=key,
            fingerprint=HASH_A,
            scope_of=lambda _session: SCOPE,
            operation=operation,
            answer=lambda value: {"value": value},
        )

    def test_key_work_and_answer_commit_in_one_transaction(self, rt: Runtime) -> None:
        begun = transactions(rt)
        assert self.run(rt, lambda _session: 7) == 7
        assert begun[0] == 1
        assert records(rt) == [(SCOPE, "key-1", HASH_A, "completed", 201)]

    def test_a_retry_replays_without_running_again(self, rt: Runtime) -> None:
        ran: list[int] = []

        def once(value: int) -> Any:
            def operation(_session: Session) -> int:
                ran.append(value)
                return value

            return operation

        self.run(rt, once(7))
        replay = self.run(rt, once(8))
        assert replay == Replay(201, {"value": 7}) and ran == [7]

    def test_a_refusal_forgets_the_key(self, rt: Runtime) -> None:
        def refuse(_session: Session) -> int:
            raise BadRequest("no")

        with pytest.raises(BadRequest):
            self.run(rt, refuse)
        assert records(rt) == []
        assert self.run(rt, lambda _session: 7) == 7  # a corrected retry runs

    def test_a_refusal_that_keeps_its_changes_still_forgets_the_key(self, rt: Runtime) -> None:
        def lock_then_refuse(session: Session) -> int:
            # what the refusal keeps (here: another key's record) commits; the key does not
            now = rt.now()
            session.add(
                IdempotencyRecord(
                    scope=SCOPE,
                    key="kept",
                    request_hash=HASH_B,
                    status="in_flight",
                    created_at=now,
                    locked_until=now + LEASE,
                )
            )
            raise BadRequest("refused, keeping a change", keep_changes=True)

        with pytest.raises(BadRequest):
            self.run(rt, lock_then_refuse)
        assert records(rt) == [(SCOPE, "kept", HASH_B, "in_flight", None)]
