"""Top-ups (bank debits) and withdrawals (bank credits) that survive crashes and lost answers.

A movement runs in three steps, never holding a database transaction open across the bank call:

1. **Record** (one unit of work, committed): ownership, wallet and link status, kill switch,
   level gate, device signature, wallet limits (counting movements still in flight), the risk
   decision; then a ledger hold (top-up: ``bank_clearing:<code>`` → wallet, credited but not
   spendable; withdrawal: wallet → clearing, reserved) and a ``bank_movements`` row ``pending``.
2. **Call** the bank with an idempotency key derived from the movement's id, so any retry of
   this movement — by the customer with the same Idempotency-Key, or by reconciliation — can
   never move money twice.
3. **Settle** (a second unit of work): post the hold on success, void it on a definite refusal,
   or mark the movement ``unknown`` when no answer came (the hold stays pending; a retry with
   the same key or ``kouza banks reconcile`` resolves it).

The customer's Idempotency-Key is handled by :mod:`kouza.kit.idempotency` alone, for the HTTP
endpoints and the direct callers (simulator, tests) alike: :meth:`MovementService.move` claims
it (one record in ``idempotency_keys``, one fingerprint: :meth:`MoveRequest.fingerprint`) in
the recording unit of work, the record naming the movement from the start
(``bank_movement:<id>``), and completes it in the settling one (ADR 0028: two wallet
transactions around the bank call; a key that already has a record goes the general way, where
the recording unit of work *attaches* the movement to the claimed record). A
request that fails after its record was committed (a lost answer, a refusal by the bank, a
crash) therefore leaves its key ``open`` rather than released, and the same request retried is
told to *resume* that movement: asked of the bank again under the same bank key if still
unresolved, answered from the movement if settled. Every other key derives from the movement's
id: the ledger hold's ``bank-movement:<id>`` and the bank's ``kouza-mv-<id>``. A retry after
the request finished replays the stored answer; the same key with another request is a 409
(``idempotency_conflict``), and while the first still runs a 409 (``idempotency_in_flight``).

On a link made through the bank's OAuth flow the call carries the link's DPoP-bound access
token (:func:`kouza.linking.oauth.dpop_credentials`); a legacy link uses the client secret.

A top-up the risk engine sends to ``review`` is not refused: it is recorded with a
:class:`~kouza.linking.models.BankMovementReview` and goes to the bank like any other;
when the bank moved the money, settling marks the movement ``posted`` but leaves the hold
pending — credited, not spendable — until an operator releases or rejects it
(:mod:`kouza.linking.reviews`). Withdrawals under review are still refused. A top-up through a
restricted link on probation (ADR 0032) is held the same way, with a ``release_at`` after
which :mod:`kouza.linking.probation` releases it (or sends it back if the link was revoked).

A crash between 2 and 3 leaves a ``pending`` movement and a pending hold: money that the bank
may have moved is never spendable before reconciliation has seen the bank's report.

``KouzaRuntime.after_bank_call``, when set, is called with the movement id right
after a successful bank answer and before settling — the fault-injection point the crash tests
use (a callable that raises simulates the process dying there).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, NoReturn, Protocol, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kouza.controls.models import SwitchScope
from kouza.controls.overrides import overrides
from kouza.controls.switches import switches
from kouza.errors import KouzaError
from kouza.identity.devices import SensitiveAction
from kouza.kit import idempotency
from kouza.kit.idempotency import IdempotentRequest, Replay, Resume, request_hash
from kouza.kit.locking import lock_row
from kouza.kit.money import MAX_AMOUNT_YEN
from kouza.ledger.errors import InvalidAmount
from kouza.linking import policy
from kouza.linking.client import BankTransfer, DPoPCredentials, bank_client_of
from kouza.linking.errors import (
    BankLinkNotActive,
    BankOutcomeUnknown,
    BankRefused,
    BankUnavailable,
    MandateExceeded,
    MovementRefused,
    UnderReview,
    UnknownBankLink,
)
from kouza.linking.links import Caller, on_probation, owned_wallet_locked
from kouza.linking.models import (
    UNRESOLVED,
    BankLink,
    BankLinkStatus,
    BankMovement,
    BankMovementReview,
    MovementDirection,
    MovementStatus,
    ReviewStatus,
)
from kouza.linking.oauth import credentials_of
from kouza.linking.schemas import BankMovementRead
from kouza.risk.events import EventType, RiskEvent
from kouza.runtime import Runtime, runtime_of
from kouza.wallet import banking
from kouza.wallet.enforcement import HeldForReview
from kouza.wallet.models import Wallet

PASSBOOK_TEXT = "ｺｳｻﾞ"
PROBATION = "restricted-link-probation"
"""The ``rules`` entry of a review that is a restricted link's probation hold (ADR 0032)."""
RESOURCE_PREFIX = "bank_movement:"
"""How an idempotency record names the movement its request recorded."""


def resource_of(movement_id: uuid.UUID) -> str:
    """The idempotency record's reference to a movement."""
    return f"{RESOURCE_PREFIX}{movement_id}"


def movement_of(resource: str) -> uuid.UUID:
    """The movement an idempotency record's reference names."""
    if not resource.startswith(RESOURCE_PREFIX):
        raise ValueError(f"not a bank movement: {resource!r}")
    return uuid.UUID(resource.removeprefix(RESOURCE_PREFIX))


class AfterBankCallPort(Protocol):
    """The crash tests' fault-injection point on the runtime (``KouzaRuntime``)."""

    after_bank_call: Callable[[uuid.UUID], Any] | None


@dataclass(frozen=True)
class MoveRequest:
    """A customer's top-up or withdrawal request."""

    caller: Caller
    direction: MovementDirection
    link_id: uuid.UUID
    amount: int
    idempotency_key: str

    @property
    def scope(self) -> str:
        """The customer's key space (the HTTP endpoints' ``user:<id>`` too)."""
        return f"user:{self.caller.user.id}"

    def fingerprint(self) -> str:
        """The request's one fingerprint: the hash of what it asks (``BankMovementCreate``)
        under its wallet, so a key names one request whichever way it came in. The device's
        challenge and signature count as absent, as for payments and transfers: a proof is
        single-use, so a retry of the same request carries a fresh one. (The body keeps their
        members, empty, so the keys stored before — and those migration 0015 moved — match.)"""
        body = {
            "device_id": str(self.caller.device_id) if self.caller.device_id else None,
            "nonce": None,
            "signature": None,
            "link_id": str(self.link_id),
            "amount": self.amount,
        }
        kind = "topup" if self.direction is MovementDirection.DEBIT else "withdrawal"
        return request_hash([kind, str(self.caller.wallet_id), body])

    def keyed(self) -> IdempotentRequest:
        """This request as :mod:`kouza.kit.idempotency` claims it."""
        return IdempotentRequest(
            scope=self.scope, key=self.idempotency_key, fingerprint=self.fingerprint()
        )

    @property
    def action(self) -> SensitiveAction:
        debit = self.direction is MovementDirection.DEBIT
        return SensitiveAction.CHARGE if debit else SensitiveAction.WITHDRAW

    @property
    def event_type(self) -> EventType:
        debit = self.direction is MovementDirection.DEBIT
        return EventType.TOPUP if debit else EventType.WITHDRAWAL


@dataclass(frozen=True)
class Snapshot:
    """What the bank call needs, read out of the recording unit of work."""

    movement_id: uuid.UUID
    status: str
    direction: MovementDirection
    amount: int
    bank_key: str
    bank_link_id: uuid.UUID
    failure: str
    event: RiskEvent
    link_id: uuid.UUID
    credentials: DPoPCredentials | None
    """The OAuth link's DPoP-bound token (None for a legacy link), read with the movement."""


def check_amount(amount: object) -> int:
    """``amount`` as whole yen in range, or InvalidAmount."""
    if type(amount) is not int or not 0 < amount <= MAX_AMOUNT_YEN:
        raise InvalidAmount(
            f"amount must be whole yen between ¥1 and ¥{MAX_AMOUNT_YEN:,}", amount=repr(amount)[:40]
        )
    return amount


class MovementService:
    """Record, call, settle: top-ups and withdrawals between linked accounts and wallets."""

    def move(
        self, runtime: Runtime, request: MoveRequest | Callable[[Session], MoveRequest]
    ) -> BankMovementRead:
        """Run a top-up or withdrawal once per (customer, Idempotency-Key); return its answer.

        A first request claims its key in the unit of work that records the movement (the
        record names the movement from the start), and completes it in the one that settles —
        two wallet transactions around the bank call. ``request`` may be built in the first of
        them (the HTTP endpoint authenticates its caller there). A key that already has a
        record goes through :func:`kouza.kit.idempotency.run`: a retry of a finished request
        gets the stored answer, a retry of one that recorded its movement and then failed (a
        lost bank answer, a refusal, a crash) resumes that movement under the same bank key.
        """
        if isinstance(request, MoveRequest):
            idempotency.validate_key(request.idempotency_key)
            given = request
            recorded = self._claim_and_record(runtime, lambda _session: given)
        else:
            recorded = self._claim_and_record(runtime, request)
        if isinstance(recorded, MoveRequest):  # the key has a record already
            outcome = idempotency.run(
                runtime,
                recorded.keyed(),
                operation=lambda _session, resumed: self._run(runtime, recorded, resumed),
                answer=lambda read: read.model_dump(mode="json"),
            )
            if isinstance(outcome, Replay):
                return BankMovementRead.model_validate(outcome.body)
            return outcome
        keyed, snapshot = recorded
        try:
            return self._call_and_settle(runtime, snapshot, completes=keyed)
        except BaseException:
            # the movement was recorded: the key stays open for the same request to resume it
            idempotency.release(runtime.db, scope=keyed.scope, key=keyed.key)
            raise

    def _claim_and_record(
        self, runtime: Runtime, build: Callable[[Session], MoveRequest]
    ) -> tuple[IdempotentRequest, Snapshot] | MoveRequest:
        """One unit of work: the request, its key's record (naming the movement) and the
        movement with its hold; or the request alone if its key has a record already."""
        lease = timedelta(seconds=runtime.settings.idempotency_lease_seconds)
        movement_id = uuid.uuid4()
        request: MoveRequest | None = None
        try:
            with runtime.db.unit_of_work() as session:
                request = build(session)
                keyed = request.keyed()
                with idempotency.claimed(
                    session,
                    keyed,
                    now=runtime.now(),
                    lease=lease,
                    resource=resource_of(movement_id),
                ):
                    # held for the whole unit of work: the session's identity map is weak, and
                    # the checks and the snapshot get the link again (a SELECT each, if dropped)
                    link = session.get(BankLink, request.link_id)
                    event = self._event(session, request, link)
                    movement = self._record(session, request, event, movement_id=movement_id)
                    return keyed, self._snapshot(session, movement, event)
        except idempotency.KeyHeld:
            assert request is not None
            return request
        except KouzaError as refusal:
            if request is not None:  # (not an authentication failure)
                self._record_refusal(runtime, request, refusal)
            raise

    def _run(
        self, runtime: Runtime, request: MoveRequest, resumed: Resume | None
    ) -> BankMovementRead:
        try:
            with runtime.db.unit_of_work() as session:
                snapshot = self._resume_or_record(session, request, resumed)
        except KouzaError as refusal:
            self._record_refusal(runtime, request, refusal)
            raise
        if snapshot.status == MovementStatus.POSTED.value:
            return self._answer(runtime, self._load(runtime, snapshot.movement_id))
        if snapshot.status == MovementStatus.VOIDED.value:
            raise MovementRefused(
                snapshot.failure or "the bank refused this movement",
                movement_id=str(snapshot.movement_id),
            )
        return self._call_and_settle(runtime, snapshot)

    def _answer(self, runtime: Runtime, movement: BankMovement) -> BankMovementRead:
        """What the request answers, and what a retry of it replays."""
        with runtime.db.session() as session:
            return _read(session, session.merge(movement, load=False))

    # --- step 1: record -------------------------------------------------------------------

    def _resume_or_record(
        self, session: Session, request: MoveRequest, resumed: Resume | None
    ) -> Snapshot:
        event = self._event(session, request)
        if resumed is not None:
            movement = session.get_one(BankMovement, movement_of(resumed.resource))
            return self._snapshot(session, movement, event)
        movement = self._record(session, request, event)
        return self._snapshot(session, movement, event)

    def _record_refusal(self, runtime: Runtime, request: MoveRequest, refusal: KouzaError) -> None:
        # in its own unit of work: the refused one rolled back (a half-made hold must not stay)
        with runtime.db.unit_of_work() as session:
            event = self._event(session, request)
            policy.record(session, replace(event, outcome=refusal.code), refusal=refusal)
        self._count(runtime, request.direction, event.bank, "refused")

    def _record(
        self,
        session: Session,
        request: MoveRequest,
        event: RiskEvent,
        *,
        movement_id: uuid.UUID | None = None,
    ) -> BankMovement:
        """Check and record a movement; with ``movement_id``, the key's record claimed in this
        unit of work already names it (:func:`kouza.kit.idempotency.claimed`)."""
        caller = request.caller
        amount = check_amount(request.amount)
        wallet = owned_wallet_locked(session, caller)
        link = self._usable_link(session, wallet, request)
        if request.direction is MovementDirection.DEBIT:
            switches.require_open(session, SwitchScope.BANK_CHARGES, link.bank_code)
        policy.require_bank_gate(session, caller.user)
        device_id = policy.require_device(
            session,
            caller.user,
            device_id=caller.device_id,
            proof=caller.proof,
            action=request.action,
        )
        self._check_limits(session, wallet, link, request.direction, amount)
        decision = policy.decide(session, event)
        try:
            policy.enforce(
                session,
                decision,
                user=caller.user,
                wallet_id=wallet.id,
                purpose=request.action,
                signed_by=device_id,
            )
        except (UnderReview, HeldForReview) as review:
            if request.direction is not MovementDirection.DEBIT:
                raise  # money leaving the wallet waits for nobody: refused
            movement = self._hold_and_insert(
                session, request, wallet, link, device_id, movement_id=movement_id
            )
            session.add(
                BankMovementReview(
                    movement_id=movement.id,
                    wallet_id=wallet.id,
                    status=ReviewStatus.HELD.value,
                    rules=[str(rule) for rule in review.details.get("rules", [])],
                    created_at=runtime_of(session).now(),
                )
            )
            session.flush()
            return movement
        movement = self._hold_and_insert(
            session, request, wallet, link, device_id, movement_id=movement_id
        )
        now = runtime_of(session).now()
        settings = overrides.settings(session)
        if request.direction is MovementDirection.DEBIT and on_probation(link, settings, now):
            # a restricted link's first top-ups: debited now, spendable later unless the holder
            # says "not me" meanwhile (ADR 0032); released by kouza.linking.probation
            session.add(
                BankMovementReview(
                    movement_id=movement.id,
                    wallet_id=wallet.id,
                    status=ReviewStatus.HELD.value,
                    rules=[PROBATION],
                    created_at=now,
                    release_at=now + timedelta(hours=settings.restricted_link_hold_hours),
                )
            )
            session.flush()
        return movement

    def _usable_link(self, session: Session, wallet: Wallet, request: MoveRequest) -> BankLink:
        link = session.get(BankLink, request.link_id)
        if link is None or link.wallet_id != wallet.id:
            raise UnknownBankLink("no such bank link on this wallet", link_id=str(request.link_id))
        allowed = {BankLinkStatus.ACTIVE.value}
        if request.direction is MovementDirection.CREDIT:
            allowed.add(BankLinkStatus.SUSPENDED.value)  # the bank still accepts credits
        if link.status not in allowed:
            raise BankLinkNotActive(f"this bank link is {link.status}", status=link.status)
        if request.direction is MovementDirection.DEBIT and request.amount > link.max_per_debit:
            raise MandateExceeded(
                "above the mandate's per-debit maximum", max_per_debit=link.max_per_debit
            )
        return link

    def _check_limits(
        self,
        session: Session,
        wallet: Wallet,
        link: BankLink,
        direction: MovementDirection,
        amount: int,
    ) -> None:
        in_flight = session.scalar(
            select(func.coalesce(func.sum(BankMovement.amount), 0)).where(
                BankMovement.wallet_id == wallet.id,
                BankMovement.direction == direction.value,
                BankMovement.status.in_(UNRESOLVED),
            )
        )
        banking.check_bank_limits(
            session,
            wallet,
            incoming=direction is MovementDirection.DEBIT,
            amount=amount,
            in_flight=int(in_flight or 0),
        )

    def _hold_and_insert(
        self,
        session: Session,
        request: MoveRequest,
        wallet: Wallet,
        link: BankLink,
        device_id: uuid.UUID | None,
        *,
        movement_id: uuid.UUID | None,
    ) -> BankMovement:
        runtime = runtime_of(session)
        named = movement_id is not None
        movement_id = movement_id or uuid.uuid4()
        debit = request.direction is MovementDirection.DEBIT
        hold = banking.hold(
            session,
            wallet=wallet,
            incoming=debit,
            bank_code=link.bank_code,
            amount=request.amount,
            movement_id=movement_id,
            description=f"{'top-up from' if debit else 'withdrawal to'} bank {link.bank_code} "
            f"account ***{link.account_last3}",
            reference={"bank_movement": str(movement_id), "bank_link": str(link.id)},
        )
        movement = BankMovement(
            id=movement_id,
            wallet_id=wallet.id,
            link_id=link.id,
            bank_code=link.bank_code,
            direction=request.direction.value,
            amount=request.amount,
            bank_key=f"kouza-mv-{movement_id}",
            hold_id=hold.id,
            status=MovementStatus.PENDING.value,
            device_id=device_id,
            created_at=runtime.now(),
        )
        session.add(movement)
        session.flush()
        if not named:
            # committed with the movement: from now on a failed request leaves its key open,
            # and the same request retried resumes this movement instead of recording another
            idempotency.attach(
                session,
                scope=request.scope,
                key=request.idempotency_key,
                resource=resource_of(movement_id),
            )
        return movement

    def _event(
        self, session: Session, request: MoveRequest, link: BankLink | None = None
    ) -> RiskEvent:
        caller = request.caller
        link = link or session.get(BankLink, request.link_id)
        amount = request.amount if type(request.amount) is int else 0
        return RiskEvent(
            type=request.event_type,
            at=runtime_of(session).now(),
            wallet=str(caller.wallet_id),
            user=str(caller.user.id),
            device=str(caller.device_id or ""),
            ip=caller.ip,
            email_domain=caller.user.email.rpartition("@")[2],
            bank=link.bank_code if link else "",
            account=link.account_fingerprint if link else "",
            amount=amount,
            attributes={"restricted": True} if link is not None and link.restricted else {},
        )

    def _snapshot(self, session: Session, movement: BankMovement, event: RiskEvent) -> Snapshot:
        link = session.get_one(BankLink, movement.link_id)
        return Snapshot(
            movement.id,
            movement.status,
            MovementDirection(movement.direction),
            movement.amount,
            movement.bank_key,
            link.bank_link_id,
            movement.failure,
            event,
            link.id,
            credentials_of(session, link.id),
        )

    # --- steps 2 and 3: call and settle -----------------------------------------------------

    def _call_and_settle(
        self, runtime: Runtime, snapshot: Snapshot, *, completes: IdempotentRequest | None = None
    ) -> BankMovementRead:
        """Call the bank and settle; the answer, stored with the settlement as the key's
        completed answer when ``completes`` names the key (the first attempt's own claim)."""
        client = bank_client_of(runtime)
        call = client.debit if snapshot.direction is MovementDirection.DEBIT else client.credit
        try:
            transfer = call(
                snapshot.bank_link_id,
                amount=snapshot.amount,
                idempotency_key=snapshot.bank_key,
                description=PASSBOOK_TEXT,
                credentials=snapshot.credentials,
            )
        except BankRefused as refusal:
            self._refused(runtime, snapshot, refusal)
        except BankUnavailable:
            self._lost(runtime, snapshot)
        hook = cast(AfterBankCallPort, runtime).after_bank_call
        if hook is not None:
            hook(snapshot.movement_id)
        with runtime.db.unit_of_work() as session:
            movement = settle(session, snapshot.movement_id, transfer=transfer)
            policy.record(session, snapshot.event)
            read = _read(session, movement)
            if completes is not None:
                idempotency.complete(
                    session,
                    scope=completes.scope,
                    key=completes.key,
                    status_code=201,
                    body=read.model_dump(mode="json"),
                )
        held = read.review == ReviewStatus.HELD.value
        self._count(runtime, snapshot.direction, snapshot.event.bank, "held" if held else "posted")
        return read

    def _count(
        self, runtime: Runtime, direction: MovementDirection, bank_code: str, outcome: str
    ) -> None:
        metrics = runtime.metrics
        family = metrics.topups if direction is MovementDirection.DEBIT else metrics.withdrawals
        family.inc(bank=metrics.bank(bank_code), outcome=outcome)

    def _refused(self, runtime: Runtime, snapshot: Snapshot, refusal: BankRefused) -> NoReturn:
        code = str(refusal.details.get("bank_error") or refusal.code)
        with runtime.db.unit_of_work() as session:
            settle(
                session, snapshot.movement_id, transfer=None, failure=f"{code}: {refusal.message}"
            )
            policy.record(session, replace(snapshot.event, outcome=code))
        self._count(runtime, snapshot.direction, snapshot.event.bank, "refused")
        raise MovementRefused(
            refusal.message, bank_error=code, movement_id=str(snapshot.movement_id)
        )

    def _lost(self, runtime: Runtime, snapshot: Snapshot) -> NoReturn:
        with runtime.db.unit_of_work() as session:
            movement = lock_row(session, BankMovement, snapshot.movement_id)
            if movement is not None and movement.status == MovementStatus.PENDING.value:
                movement.status = MovementStatus.UNKNOWN.value
            policy.record(session, replace(snapshot.event, outcome="bank_no_answer"))
        self._count(runtime, snapshot.direction, snapshot.event.bank, "unknown")
        raise BankOutcomeUnknown(
            "the bank did not answer; the money is held until it does: retry with the same "
            "Idempotency-Key, or reconciliation will settle it",
            movement_id=str(snapshot.movement_id),
        )

    def _load(self, runtime: Runtime, movement_id: uuid.UUID) -> BankMovement:
        with runtime.db.unit_of_work() as session:
            return session.get_one(BankMovement, movement_id)


def _hours(held: timedelta) -> int:
    """A hold's length in whole hours (what the customer is told; the setting may have changed
    since the hold was placed)."""
    return round(held.total_seconds() / 3600)


def _read(session: Session, movement: BankMovement) -> BankMovementRead:
    """A movement as the request answers it (and a retry replays it), with its review: a
    top-up held for a restricted link's probation says when it becomes spendable."""
    review = session.get(BankMovementReview, movement.id)  # settle() loaded it already
    read = BankMovementRead.model_validate(movement)
    if review is None:
        return read
    update: dict[str, object] = {"review": review.status}
    held = review.status == ReviewStatus.HELD.value
    if review.release_at is not None:
        update["hold"] = "probation"
        if held and movement.status == MovementStatus.POSTED.value:
            update["available_at"] = review.release_at
            update["message"] = (
                "Your bank account was debited. Top-ups through a newly linked account at this "
                "bank are held for "
                f"{_hours(review.release_at - review.created_at)} hours: the money "
                f"becomes spendable at {review.release_at.isoformat()}."
            )
    else:
        update["hold"] = "review"
    return read.model_copy(update=update)


def settle(
    session: Session, movement_id: uuid.UUID, *, transfer: BankTransfer | None, failure: str = ""
) -> BankMovement:
    """Post the hold (``transfer`` given) or void it; a resolved movement is left alone.

    A movement held for review is marked ``posted`` when the bank moved the money, but its hold
    stays pending until an operator decides; if the bank never moved it, the review is
    cancelled with the hold voided.
    """
    movement = lock_row(session, BankMovement, movement_id)
    assert movement is not None, "a movement is settled only after it was recorded"
    if movement.status not in UNRESOLVED:
        return movement
    now = runtime_of(session).now()
    review = session.get(BankMovementReview, movement.id)
    held = review is not None and review.status == ReviewStatus.HELD.value
    if transfer is not None:
        if not held:
            banking.settle(session, movement.hold_id, moved=True)
        movement.status = MovementStatus.POSTED.value
        movement.bank_transfer_id = transfer.id
    else:
        banking.settle(session, movement.hold_id, moved=False)
        movement.status = MovementStatus.VOIDED.value
        movement.failure = failure[:300]
        if review is not None and held:
            review.status = ReviewStatus.CANCELLED.value
            review.decided_at = now
    movement.resolved_at = now
    session.flush()
    return movement


movements = MovementService()
"""The movement service singleton."""
