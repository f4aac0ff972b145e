"""The overview's figures, read with grouped queries over what the services record.

Where each figure comes from:

* link attempts and their refusals — ``risk_events`` of type ``link_attempt`` (outcome ``ok``
  or the refusal reason), per bank;
* top-ups — debit ``bank_movements`` by status (posted, voided = refused, pending/unknown) and
  the ``bank_movement_reviews`` still ``held``;
* risk decisions — ``risk_decisions`` by outcome;
* alerts — cases the risk engine opened (source ``risk`` or ``risk:<rules>``), still open or
  under investigation;
* kill switches that are on, locked wallets.

Time buckets (hours, days, UTC) are computed in the database: ``strftime`` on SQLite,
``to_char`` on PostgreSQL, so a 14-day chart costs one grouped query, not a row per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from kouza.controls.models import Case, CaseStatus, KillSwitch
from kouza.controls.switches import switches
from kouza.linking.models import BankMovement, BankMovementReview, MovementDirection, ReviewStatus
from kouza.risk.events import EventType
from kouza.risk.models import RiskDecisionRecord, RiskEventRecord
from kouza.runtime import runtime_of
from kouza.wallet.models import Wallet, WalletLock, WalletStatus

OK = "ok"


@dataclass(frozen=True)
class Series:
    """Counts over consecutive time buckets, one list per series name."""

    buckets: list[str]
    values: dict[str, list[int]]


@dataclass
class Overview:
    """Everything the overview shows, for the last 24 hours unless said otherwise."""

    now: datetime
    link_attempts: list[tuple[str, str, int]] = field(default_factory=list)
    """(bank, outcome, count); outcome ``ok`` or the refusal reason."""
    topups: dict[str, int] = field(default_factory=dict)
    """posted / held / refused / pending → count."""
    topup_amounts: dict[str, int] = field(default_factory=dict)
    """The same, in yen."""
    decisions: dict[str, int] = field(default_factory=dict)
    alerts: list[Case] = field(default_factory=list)
    switches: Sequence[KillSwitch] = ()
    locked: list[tuple[Wallet, WalletLock | None]] = field(default_factory=list)
    hourly: dict[str, Series] = field(default_factory=dict)
    daily: dict[str, Series] = field(default_factory=dict)

    @property
    def link_total(self) -> int:
        return sum(count for _, _, count in self.link_attempts)

    @property
    def link_refused(self) -> int:
        return sum(count for _, outcome, count in self.link_attempts if outcome != OK)

    def refusals_by_reason(self) -> dict[str, int]:
        reasons: dict[str, int] = {}
        for _, outcome, count in self.link_attempts:
            if outcome != OK:
                reasons[outcome] = reasons.get(outcome, 0) + count
        return dict(sorted(reasons.items(), key=lambda item: -item[1]))

    def refusals_by_bank(self) -> dict[str, int]:
        banks: dict[str, int] = {}
        for bank, outcome, count in self.link_attempts:
            if outcome != OK:
                banks[bank or "—"] = banks.get(bank or "—", 0) + count
        return dict(sorted(banks.items(), key=lambda item: -item[1]))


def _bucket(session: Session, column: Any, unit: str) -> ColumnElement[str]:
    """``column`` truncated to the hour or day, as text (UTC)."""
    if session.get_bind().dialect.name == "postgresql":
        pattern = "YYYY-MM-DD HH24" if unit == "hour" else "YYYY-MM-DD"
        return func.to_char(func.timezone("UTC", column), pattern)
    return func.strftime("%Y-%m-%d %H" if unit == "hour" else "%Y-%m-%d", column)


def _labels(now: datetime, unit: str, count: int) -> list[str]:
    step = timedelta(hours=1) if unit == "hour" else timedelta(days=1)
    fmt = "%Y-%m-%d %H" if unit == "hour" else "%Y-%m-%d"
    return [(now - step * (count - 1 - index)).strftime(fmt) for index in range(count)]


def _series(
    session: Session,
    column: Any,
    group: Any,
    *where: Any,
    unit: str,
    count: int,
    names: dict[str, str],
) -> Series:
    """Counts per bucket of ``column`` and per ``names[group value]`` (others: ``other``)."""
    now = runtime_of(session).now()
    labels = _labels(now, unit, count)
    since = now - (timedelta(hours=count) if unit == "hour" else timedelta(days=count))
    bucket = _bucket(session, column, unit)
    rows = session.execute(
        select(bucket, group, func.count()).where(column > since, *where).group_by(bucket, group)
    ).all()
    values = {name: [0] * count for name in dict.fromkeys(names.values())}
    index = {label: position for position, label in enumerate(labels)}
    for label, key, number in rows:
        name = names.get(str(key), names.get("*", str(key)))
        if label in index:
            values.setdefault(name, [0] * count)[index[label]] += int(number)
    return Series(labels if unit == "day" else [label[-2:] + ":00" for label in labels], values)


def overview(session: Session) -> Overview:
    """The figures of the overview page."""
    now = runtime_of(session).now()
    since = now - timedelta(hours=24)
    result = Overview(now=now)
    result.link_attempts = [
        (str(bank), str(outcome), int(count))
        for bank, outcome, count in session.execute(
            select(RiskEventRecord.bank, RiskEventRecord.outcome, func.count())
            .where(RiskEventRecord.type == EventType.LINK_ATTEMPT.value, RiskEventRecord.at > since)
            .group_by(RiskEventRecord.bank, RiskEventRecord.outcome)
            .order_by(RiskEventRecord.bank, func.count().desc())
        ).all()
    ]
    _topups(session, result, since)
    result.decisions = {
        str(outcome): int(count)
        for outcome, count in session.execute(
            select(RiskDecisionRecord.outcome, func.count())
            .where(RiskDecisionRecord.created_at > since)
            .group_by(RiskDecisionRecord.outcome)
        ).all()
    }
    result.alerts = list(
        session.scalars(
            select(Case)
            .where(
                or_(Case.source == "risk", Case.source.like("risk:%")),
                Case.status.in_([CaseStatus.OPEN.value, CaseStatus.INVESTIGATING.value]),
            )
            .order_by(Case.created_at.desc())
            .limit(20)
        )
    )
    result.switches = switches.active(session)
    result.locked = _locked(session)
    _charts(session, result)
    return result


def _topups(session: Session, result: Overview, since: datetime) -> None:
    status_names = {"posted": "posted", "voided": "refused", "pending": "pending"}
    rows = session.execute(
        select(BankMovement.status, func.count(), func.coalesce(func.sum(BankMovement.amount), 0))
        .where(
            BankMovement.direction == MovementDirection.DEBIT.value,
            BankMovement.created_at > since,
        )
        .group_by(BankMovement.status)
    ).all()
    counts = {"posted": 0, "held": 0, "refused": 0, "pending": 0}
    amounts = dict.fromkeys(counts, 0)
    for status, count, amount in rows:
        name = status_names.get(str(status), "pending")
        counts[name] += int(count)
        amounts[name] += int(amount)
    held, held_amount = session.execute(
        select(func.count(), func.coalesce(func.sum(BankMovement.amount), 0))
        .select_from(BankMovementReview)
        .join(BankMovement, BankMovement.id == BankMovementReview.movement_id)
        .where(BankMovementReview.status == ReviewStatus.HELD.value)
    ).one()
    counts["held"], amounts["held"] = int(held), int(held_amount)
    result.topups, result.topup_amounts = counts, amounts


def _locked(session: Session) -> list[tuple[Wallet, WalletLock | None]]:
    wallets = session.scalars(
        select(Wallet).where(Wallet.status == WalletStatus.LOCKED.value).limit(50)
    ).all()
    locks = {
        lock.wallet_id: lock
        for lock in session.scalars(
            select(WalletLock).where(
                WalletLock.wallet_id.in_([wallet.id for wallet in wallets]),
                WalletLock.unlocked_at.is_(None),
            )
        )
    }
    return [(wallet, locks.get(wallet.id)) for wallet in wallets]


def _charts(session: Session, result: Overview) -> None:
    link_names = {OK: "linked", "*": "refused"}
    decision_names = {outcome: outcome for outcome in ("allow", "step_up", "review", "block")}
    decision_names["lock"] = "lock"
    for unit, count, target in (("hour", 24, result.hourly), ("day", 14, result.daily)):
        target["links"] = _series(
            session,
            RiskEventRecord.at,
            RiskEventRecord.outcome,
            RiskEventRecord.type == EventType.LINK_ATTEMPT.value,
            unit=unit,
            count=count,
            names=link_names,
        )
        target["topups"] = _series(
            session,
            BankMovement.created_at,
            BankMovement.status,
            BankMovement.direction == MovementDirection.DEBIT.value,
            unit=unit,
            count=count,
            names={"posted": "posted", "voided": "refused", "*": "pending"},
        )
        target["decisions"] = _series(
            session,
            RiskDecisionRecord.created_at,
            RiskDecisionRecord.outcome,
            unit=unit,
            count=count,
            names=decision_names,
        )
