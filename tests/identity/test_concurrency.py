"""Racing requests cannot exceed the SMS limits, the resend throttle or the attempt counters.

Run with threads on PostgreSQL (SQLite serialises writers, so the race does not exist there):
each thread is one unit of work on its own connection, all released at once by a barrier.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest

from kouza.errors import KouzaError
from kouza.identity.devices import SensitiveAction
from kouza.identity.models import ContactChange, OtpChallenge, User
from kouza.identity.service import identity
from kouza.kit.notify import MemoryMailbox
from kouza.runtime import Runtime
from tests.factories import verified_user
from tests.identity.support import configure, count, phone_user, sms_code, wrong

THREADS = 8


@pytest.fixture(autouse=True)
def postgres_only(rt: Runtime) -> None:
    if rt.db.dialect != "postgresql":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")


def race(actions: list[Callable[[], object]]) -> Counter[str]:
    """Run the actions at once; count outcomes ('ok' or the error code)."""
    barrier = threading.Barrier(len(actions))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def run(action: Callable[[], object]) -> None:
        barrier.wait()
        try:
            action()
            outcome = "ok"
        except KouzaError as error:
            outcome = error.code
        with lock:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=run, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def send(rt: Runtime, user: User, phone: str, ip: str) -> Callable[[], object]:
    def action() -> object:
        with rt.db.unit_of_work() as session:
            return identity.start_phone_verification(session, user, phone=phone, ip=ip)

    return action


def test_sends_to_one_number_stop_at_its_limit(
    rt: Runtime, mailbox: MemoryMailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(rt, monkeypatch, "sms_limit_per_phone_per_hour", 3)
    users = [verified_user(rt, mailbox) for _ in range(THREADS)]
    outcomes = race([send(rt, user, "090-1234-5678", "") for user in users])
    assert outcomes == Counter({"ok": 3, "rate_limited": THREADS - 3})
    assert count(rt, OtpChallenge) == 3


def test_sends_from_one_ip_stop_at_its_limit(
    rt: Runtime, mailbox: MemoryMailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(rt, monkeypatch, "sms_limit_per_ip_per_hour", 2)
    users = [verified_user(rt, mailbox) for _ in range(THREADS)]
    outcomes = race(
        [send(rt, user, f"090-1111-22{i:02d}", "198.51.100.7") for i, user in enumerate(users)]
    )
    assert outcomes == Counter({"ok": 2, "rate_limited": THREADS - 2})
    assert count(rt, OtpChallenge) == 2


def test_one_user_gets_one_code_per_resend_interval(rt: Runtime, mailbox: MemoryMailbox) -> None:
    someone = phone_user(rt, mailbox)

    def step_up() -> object:
        with rt.db.unit_of_work() as session:
            return identity.start_step_up(session, someone.user, "withdraw")

    outcomes = race([step_up] * THREADS)
    assert outcomes == Counter({"ok": 1, "too_many_attempts": THREADS - 1})
    assert count(rt, OtpChallenge, OtpChallenge.step_up_for == "withdraw") == 1


def test_parallel_wrong_guesses_at_a_phone_change_are_all_counted(
    rt: Runtime, mailbox: MemoryMailbox
) -> None:
    someone = phone_user(rt, mailbox)
    with rt.db.unit_of_work() as session:
        nonce = identity.issue_device_challenge(
            session, someone.user, someone.device.id, SensitiveAction.CHANGE_PHONE.value
        )
    signature = someone.key.sign_challenge(
        nonce=nonce, action="phone.change", device_id=someone.device.id, user_id=someone.user.id
    )
    with rt.db.unit_of_work() as session:
        change = identity.start_phone_change(
            session,
            someone.user,
            phone="080-9876-5432",
            device_id=someone.device.id,
            nonce=nonce,
            signature=signature,
        )
    guess = wrong(sms_code(mailbox, "+818098765432"))

    def confirm() -> object:
        with rt.db.unit_of_work() as session:
            return identity.confirm_phone_change(session, someone.user, change.id, guess)

    outcomes = race([confirm] * THREADS)
    assert outcomes == Counter({"invalid_code": 5, "too_many_attempts": THREADS - 5})
    with rt.db.session() as session:
        row = session.get(ContactChange, change.id)
        assert row is not None and row.otp_challenge_id is not None
        challenge = session.get(OtpChallenge, row.otp_challenge_id)
        assert challenge is not None and challenge.attempts == 5
