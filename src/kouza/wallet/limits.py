"""Limits as policy objects.

A limit is an object with a name and a ``check`` that refuses a movement with
:class:`~kouza.wallet.errors.LimitExceeded`; a :class:`LimitSet` is the list in force. The wallet
service checks the set while it holds the wallet's row lock, so two concurrent payments cannot
both squeeze under the same cap.

Windows are **rolling** (the last 24 hours, the last 30 days), not calendar periods: in 2020 a
"¥300,000 per calendar month" cap let attackers charge ¥300,000 on the 31st and another ¥300,000
on the 1st. :class:`CalendarMonthLimit` exists only so that the simulator can replay that
weakness; kouza's defaults never use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, cast
from weakref import WeakKeyDictionary
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kouza.config import Settings
from kouza.controls.overrides import overrides
from kouza.kit.money import format_yen
from kouza.ledger import repository as ledger_repository
from kouza.runtime import Runtime, runtime_of
from kouza.wallet.errors import LimitExceeded
from kouza.wallet.models import MovementKind, Payment, Wallet

JST = ZoneInfo("Asia/Tokyo")
OUTGOING = (MovementKind.PAYMENT, MovementKind.TRANSFER, MovementKind.WITHDRAWAL)


@dataclass(frozen=True)
class Movement:
    """A movement about to happen, as the limits see it."""

    kind: MovementKind
    wallet_id: object
    ledger_account_id: int
    amount: int
    now: datetime
    category: str | None = None


class LimitPolicy(Protocol):
    """One limit."""

    @property
    def name(self) -> str: ...

    def check(self, session: Session, movement: Movement) -> None: ...


def _refuse(policy: LimitPolicy, movement: Movement, used: int, cap: int) -> LimitExceeded:
    remaining = max(cap - used, 0)
    return LimitExceeded(
        f"{policy.name}: {format_yen(movement.amount)} would exceed the limit of "
        f"{format_yen(cap)} ({format_yen(remaining)} left)",
        limit=policy.name,
        cap=cap,
        used=used,
        remaining=remaining,
    )


def _used(
    session: Session, movement: Movement, kinds: Iterable[MovementKind], since: datetime
) -> int:
    """Yen moved through ``kinds`` since ``since`` (out of the wallet, or into it for top-ups)."""
    kinds = list(kinds)
    inbound = [k.value for k in kinds if k is MovementKind.TOPUP]
    outbound = [k.value for k in kinds if k is not MovementKind.TOPUP]
    used = 0
    if inbound:
        used += ledger_repository.inflow_since(
            session, movement.ledger_account_id, since=since, kinds=inbound
        )
    if outbound:
        used += ledger_repository.outflow_since(
            session, movement.ledger_account_id, since=since, kinds=outbound
        )
    return used


@dataclass(frozen=True)
class PerTransactionLimit:
    """At most ``cap`` yen in one movement of ``kinds``."""

    cap: int
    kinds: tuple[MovementKind, ...] = OUTGOING
    name: str = "per-transaction limit"

    def check(self, session: Session, movement: Movement) -> None:
        if movement.kind in self.kinds and movement.amount > self.cap:
            raise _refuse(self, movement, 0, self.cap)


@dataclass(frozen=True)
class Type2TransferCeiling(PerTransactionLimit):
    """The Payment Services Act ceiling of a Type-2 funds-transfer operator: ¥1,000,000."""

    cap: int = 1_000_000
    name: str = "Type-2 funds-transfer ceiling"


@dataclass(frozen=True)
class RollingWindowLimit:
    """At most ``cap`` yen through ``kinds`` in any window of length ``window``."""

    cap: int
    window: timedelta
    kinds: tuple[MovementKind, ...] = OUTGOING
    name: str = "rolling limit"

    def check(self, session: Session, movement: Movement) -> None:
        if movement.kind not in self.kinds:
            return
        used = _used(session, movement, self.kinds, movement.now - self.window)
        if used + movement.amount > self.cap:
            raise _refuse(self, movement, used, self.cap)


@dataclass(frozen=True)
class CalendarMonthLimit:
    """At most ``cap`` yen per calendar month in Japan time — the 2020 weakness, for replay."""

    cap: int
    kinds: tuple[MovementKind, ...] = (MovementKind.TOPUP,)
    name: str = "calendar-month limit"

    def check(self, session: Session, movement: Movement) -> None:
        if movement.kind not in self.kinds:
            return
        local = movement.now.astimezone(JST)
        month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        used = _used(session, movement, self.kinds, month_start)
        if used + movement.amount > self.cap:
            raise _refuse(self, movement, used, self.cap)


@dataclass(frozen=True)
class CategoryWindowLimit:
    """At most ``cap`` yen of payments at merchants of ``category`` in a rolling ``window``."""

    category: str
    cap: int
    window: timedelta = timedelta(days=1)
    name: str = "merchant-category limit"

    def check(self, session: Session, movement: Movement) -> None:
        if movement.kind is not MovementKind.PAYMENT or movement.category != self.category:
            return
        used = session.scalar(
            select(func.coalesce(func.sum(Payment.amount - Payment.refunded_amount), 0)).where(
                Payment.wallet_id == movement.wallet_id,
                Payment.category == self.category,
                Payment.created_at >= movement.now - self.window,
            )
        )
        if int(used or 0) + movement.amount > self.cap:
            raise _refuse(self, movement, int(used or 0), self.cap)


@dataclass(frozen=True)
class MaxBalanceLimit:
    """A wallet may hold at most ``cap`` yen (checked on top-ups and incoming transfers;
    a refund returns the customer's own money and is not refused)."""

    cap: int
    name: str = "maximum wallet balance"

    def check(self, session: Session, movement: Movement) -> None:
        if movement.kind not in (MovementKind.TOPUP, MovementKind.INCOMING_TRANSFER):
            return
        account = ledger_repository.account_by_id(session, movement.ledger_account_id)
        balance = account.balance if account else 0
        if balance + movement.amount > self.cap:
            raise _refuse(self, movement, balance, self.cap)


@dataclass
class LimitSet:
    """The limits in force; checked in order, the first refusal wins."""

    policies: Sequence[LimitPolicy] = field(default_factory=list)

    def check(self, session: Session, movement: Movement) -> None:
        for policy in self.policies:
            policy.check(session, movement)

    @classmethod
    def from_settings(cls, settings: Settings) -> LimitSet:
        """kouza's defaults: rolling windows, category caps, the Type-2 ceiling."""
        policies: list[LimitPolicy] = [
            Type2TransferCeiling(cap=settings.limit_type2_ceiling_yen),
            PerTransactionLimit(
                cap=settings.limit_per_transaction_yen, kinds=(*OUTGOING, MovementKind.TOPUP)
            ),
            RollingWindowLimit(
                cap=settings.limit_per_day_yen,
                window=timedelta(days=1),
                name="24-hour spending limit",
            ),
            RollingWindowLimit(
                cap=settings.limit_rolling_30d_yen,
                window=timedelta(days=30),
                name="30-day spending limit",
            ),
            RollingWindowLimit(
                cap=settings.limit_rolling_30d_yen,
                window=timedelta(days=30),
                kinds=(MovementKind.TOPUP,),
                name="30-day top-up limit",
            ),
            MaxBalanceLimit(cap=settings.max_wallet_balance_yen),
        ]
        policies += [
            CategoryWindowLimit(category=category, cap=cap, name=f"{category} 24-hour limit")
            for category, cap in sorted(settings.limit_category_per_day_yen.items())
        ]
        return cls(policies)


class LimitsPort(Protocol):
    """Where the runtime keeps an injected limit set (``kouza.assembly.KouzaRuntime``)."""

    limits: LimitSet | None
    """None: the set is built from the effective settings (:func:`limits_of`); a set put here
    (the simulator's profiles, tests) is used as it is."""


_built: WeakKeyDictionary[Runtime, tuple[Settings, LimitSet]] = WeakKeyDictionary()


def limits_of(session: Session) -> LimitSet:
    """The limit set in force: an injected one, else built from the effective settings — the
    environment's with an operator's run-time overrides (:mod:`kouza.controls.overrides`) —
    and rebuilt only when those change."""
    runtime = runtime_of(session)
    injected = cast(LimitsPort, runtime).limits
    if injected is not None:
        return injected
    settings = overrides.settings(session)  # the same object until an override changes
    built = _built.get(runtime)
    if built is None or built[0] is not settings:
        built = (settings, LimitSet.from_settings(settings))
        _built[runtime] = built
    return built[1]


def check_limits(
    session: Session,
    wallet: Wallet,
    kind: MovementKind,
    amount: int,
    *,
    category: str | None = None,
) -> None:
    """Refuse (LimitExceeded) if ``amount`` more of ``kind`` would break a limit of ``wallet``:
    the one check every movement of customer money passes, payments and transfers
    (:mod:`kouza.wallet.service`) and bank top-ups and withdrawals (:mod:`kouza.wallet.banking`,
    which adds the movements still in flight to ``amount``)."""
    runtime = runtime_of(session)
    movement = Movement(
        kind=kind,
        wallet_id=wallet.id,
        ledger_account_id=wallet.ledger_account_id,
        amount=amount,
        now=runtime.now(),
        category=category,
    )
    limits_of(session).check(session, movement)
