"""The regulator report: what happened in a period, by bank, and what the operator did.

Facts only, from kouza's own records (the bank never shares its tables):

* **by bank** — unauthorised top-ups (posted bank debits into wallets whose case is confirmed
  fraud, made in the period): count, yen, victims (distinct accounts, by keyed fingerprint);
  compensation paid in the period to that bank's accounts (refunds and costs);
* **timeline** — first unauthorised top-up, first detection (first case on such a wallet),
  locks, kill-switch changes and compensation payments, in time order;
* **measures** — switches turned on or off (who, why), wallets locked, cases opened, confirmed
  and cleared, re-verification campaigns, bank notices sent, enquiries taken, compensation
  (refunded, costs, clawed back, net cost).

The period is ``[from 00:00, to 24:00)`` Japan time (JST, ``Asia/Tokyo``; both dates included):
Japanese regulators count days as the country lives them, so a top-up at 23:30 UTC belongs to
the next day. Times in the report are shown in JST too; the database keeps UTC. The same
:class:`RegulatorReport` renders as Markdown and as JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kouza.controls.models import AuditEvent, Case, CaseNote, CaseStatus
from kouza.identity.models import ReverificationCampaign
from kouza.kit import zengin
from kouza.kit.outbox import OutboxMessage
from kouza.linking.models import BankLink, BankLockNotice, BankMovement, MovementDirection
from kouza.ops.errors import InvalidOpsInput
from kouza.ops.models import Compensation, CompensationPayment, Enquiry, PaymentPurpose
from kouza.wallet.models import WalletLock

POSTED = "posted"
JST = ZoneInfo("Asia/Tokyo")
"""The time zone of the report's days and times."""


@dataclass
class BankFigures:
    """One bank's line of the report."""

    bank_code: str
    bank_name: str = ""
    """The bank's name in the Zengin list."""
    unauthorised_topups: int = 0
    unauthorised_amount: int = 0
    victims: int = 0
    compensated_amount: int = 0
    compensated_victims: int = 0


@dataclass
class RegulatorReport:
    """The report's content (rendered by :func:`to_markdown` and :func:`to_json`)."""

    period_from: date
    period_to: date
    generated_at: datetime
    operator: str
    by_bank: list[BankFigures] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    measures: dict[str, Any] = field(default_factory=dict)


def _bounds(period_from: date, period_to: date) -> tuple[datetime, datetime]:
    if period_to < period_from:
        raise InvalidOpsInput("--to is before --from")
    if (period_to - period_from).days > 3660:
        raise InvalidOpsInput("a report covers at most ten years")
    return (
        datetime.combine(period_from, time(0), JST).astimezone(UTC),
        datetime.combine(period_to + timedelta(days=1), time(0), JST).astimezone(UTC),
    )


def build(
    session: Session, *, period_from: date, period_to: date, now: datetime, operator: str
) -> RegulatorReport:
    """The report for ``[period_from, period_to]``."""
    since, until = _bounds(period_from, period_to)
    report = RegulatorReport(period_from, period_to, now, operator)
    confirmed = select(Case.wallet_id).where(Case.status == CaseStatus.CONFIRMED_FRAUD.value)
    topups = session.execute(
        select(BankMovement, BankLink.account_fingerprint)
        .join(BankLink, BankLink.id == BankMovement.link_id)
        .where(
            BankMovement.wallet_id.in_(confirmed),
            BankMovement.status == POSTED,
            BankMovement.direction == MovementDirection.DEBIT.value,
            BankMovement.created_at >= since,
            BankMovement.created_at < until,
        )
        .order_by(BankMovement.created_at)
    ).all()
    banks: dict[str, BankFigures] = {}
    victims: dict[str, set[str]] = {}
    for movement, fingerprint in topups:
        figures = banks.setdefault(movement.bank_code, BankFigures(movement.bank_code))
        figures.unauthorised_topups += 1
        figures.unauthorised_amount += movement.amount
        victims.setdefault(movement.bank_code, set()).add(fingerprint)
    paid = session.execute(
        select(CompensationPayment, BankLink.account_fingerprint)
        .join(BankLink, BankLink.id == CompensationPayment.link_id)
        .where(
            CompensationPayment.status == POSTED,
            CompensationPayment.resolved_at >= since,
            CompensationPayment.resolved_at < until,
        )
        .order_by(CompensationPayment.resolved_at)
    ).all()
    compensated: dict[str, set[str]] = {}
    for payment, fingerprint in paid:
        figures = banks.setdefault(payment.bank_code, BankFigures(payment.bank_code))
        figures.compensated_amount += payment.amount
        compensated.setdefault(payment.bank_code, set()).add(fingerprint)
    for code, figures in banks.items():
        figures.victims = len(victims.get(code, ()))
        figures.compensated_victims = len(compensated.get(code, ()))
    for figures in banks.values():
        figures.bank_name = zengin.bank_name(figures.bank_code)
    report.by_bank = sorted(banks.values(), key=lambda figures: figures.bank_code)
    report.totals = {
        "unauthorised_topups": sum(f.unauthorised_topups for f in report.by_bank),
        "unauthorised_amount": sum(f.unauthorised_amount for f in report.by_bank),
        "victims": len({fp for _, fp in topups}),
        "compensated_amount": sum(f.compensated_amount for f in report.by_bank),
        "banks": sum(1 for f in report.by_bank if f.unauthorised_topups),
    }
    report.timeline = _timeline(session, topups, paid, since, until)
    report.measures = _measures(session, paid, since, until)
    return report


def _timeline(
    session: Session, topups: Sequence[Any], paid: Sequence[Any], since: datetime, until: datetime
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    if topups:
        first = topups[0][0]
        events.append(
            _event(
                first.created_at,
                "first unauthorised top-up",
                f"bank {first.bank_code}, ¥{first.amount:,}",
            )
        )
    detected = session.scalar(
        select(func.min(Case.created_at)).where(
            Case.status == CaseStatus.CONFIRMED_FRAUD.value,
            Case.created_at >= since,
            Case.created_at < until,
        )
    )
    if detected is not None:
        events.append(
            _event(detected, "first detection", "first case on a confirmed-fraud wallet opened")
        )
    for lock in session.scalars(
        select(WalletLock).where(WalletLock.locked_at >= since, WalletLock.locked_at < until)
    ):
        events.append(
            _event(
                lock.locked_at,
                "wallet locked",
                f"wallet {lock.wallet_id} by {lock.actor}: {lock.reason}",
            )
        )
    for audit in _audits(session, ("switch.on", "switch.off"), since, until):
        events.append(
            _event(
                audit.created_at,
                audit.action.replace(".", " "),
                f"{audit.subject} by {audit.actor}: {audit.reason}",
            )
        )
    for note in session.scalars(
        select(CaseNote).where(
            CaseNote.action == CaseStatus.CONFIRMED_FRAUD.value,
            CaseNote.created_at >= since,
            CaseNote.created_at < until,
        )
    ):
        events.append(
            _event(note.created_at, "fraud confirmed", f"case {note.case_id} by {note.actor}")
        )
    for payment, _fingerprint in paid:
        assert payment.resolved_at is not None
        events.append(
            _event(
                payment.resolved_at,
                f"compensation {payment.purpose} paid",
                f"bank {payment.bank_code}, ¥{payment.amount:,}",
            )
        )
    return sorted(events, key=lambda event: (event["at"], event["event"]))


def _measures(
    session: Session, paid: Sequence[Any], since: datetime, until: datetime
) -> dict[str, Any]:
    def count(model: Any, column: Any, *where: Any) -> int:
        return int(
            session.scalar(
                select(func.count())
                .select_from(model)
                .where(column >= since, column < until, *where)
            )
            or 0
        )

    switches = [
        {
            "at": _jst(audit.created_at).isoformat(),
            "change": audit.action,
            "switch": audit.subject,
            "by": audit.actor,
            "reason": audit.reason,
        }
        for audit in _audits(session, ("switch.on", "switch.off"), since, until)
    ]
    campaigns = [
        {
            "at": _jst(campaign.started_at).isoformat(),
            "name": campaign.name,
            "reason": campaign.reason,
            "by": campaign.started_by,
        }
        for campaign in session.scalars(
            select(ReverificationCampaign)
            .where(
                ReverificationCampaign.started_at >= since,
                ReverificationCampaign.started_at < until,
            )
            .order_by(ReverificationCampaign.started_at)
        )
    ]
    clawed = int(
        session.scalar(
            select(func.coalesce(func.sum(Compensation.clawed_back), 0)).where(
                Compensation.created_at >= since, Compensation.created_at < until
            )
        )
        or 0
    )
    refunded = sum(p.amount for p, _ in paid if p.purpose == PaymentPurpose.REFUND.value)
    costs = sum(p.amount for p, _ in paid if p.purpose == PaymentPurpose.COST.value)
    notices = count(BankLockNotice, BankLockNotice.created_at)
    delivered = int(
        session.scalar(
            select(func.count())
            .select_from(BankLockNotice)
            .join(OutboxMessage, OutboxMessage.id == BankLockNotice.outbox_message_id)
            .where(
                BankLockNotice.created_at >= since,
                BankLockNotice.created_at < until,
                OutboxMessage.delivered_at.is_not(None),
            )
        )
        or 0
    )
    return {
        "switch_changes": switches,
        "wallets_locked": count(WalletLock, WalletLock.locked_at),
        "cases_opened": count(Case, Case.created_at),
        "cases_confirmed": count(
            CaseNote, CaseNote.created_at, CaseNote.action == CaseStatus.CONFIRMED_FRAUD.value
        ),
        "cases_cleared": count(
            CaseNote, CaseNote.created_at, CaseNote.action == CaseStatus.CLEARED.value
        ),
        "reverification_campaigns": campaigns,
        "bank_notices_sent": notices,
        "bank_notices_delivered": delivered,
        "enquiries": count(Enquiry, Enquiry.created_at),
        "compensation": {
            "refunded": refunded,
            "costs_paid": costs,
            "clawed_back": clawed,
            "net_cost": refunded + costs - clawed,
            "completed_cases": count(Compensation, Compensation.completed_at),
        },
    }


def _audits(
    session: Session, actions: tuple[str, ...], since: datetime, until: datetime
) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.action.in_(actions),
                AuditEvent.created_at >= since,
                AuditEvent.created_at < until,
            )
            .order_by(AuditEvent.id)
        )
    )


def _event(at: datetime, event: str, detail: str) -> dict[str, Any]:
    return {"at": _jst(at), "event": event, "detail": detail}


def _jst(at: datetime) -> datetime:
    return at.astimezone(JST)


def to_json(report: RegulatorReport) -> dict[str, Any]:
    """The report as a JSON-ready dict (ISO dates and times, integer yen)."""
    raw = asdict(report)
    raw["period_from"] = report.period_from.isoformat()
    raw["period_to"] = report.period_to.isoformat()
    raw["generated_at"] = _jst(report.generated_at).isoformat()
    raw["timeline"] = [event | {"at": event["at"].isoformat()} for event in report.timeline]
    return raw


def to_markdown(report: RegulatorReport) -> str:
    """The report as Markdown."""
    t, m = report.totals, report.measures
    lines = [
        f"# Unauthorised top-up report — {report.operator}",
        "",
        f"Period: {report.period_from.isoformat()} to {report.period_to.isoformat()} "
        f"(JST, both included). Generated {_jst(report.generated_at).isoformat()}.",
        "",
        "## Summary",
        "",
        f"- Unauthorised top-ups (confirmed fraud): {t['unauthorised_topups']}, "
        f"¥{t['unauthorised_amount']:,}",
        f"- Victims (distinct bank accounts): {t['victims']} at {t['banks']} bank(s)",
        f"- Compensated in the period: ¥{t['compensated_amount']:,}",
        "",
        "## By bank",
        "",
        "| bank | unauthorised top-ups | amount (¥) | victims | compensated (¥) "
        "| victims compensated |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {f.bank_code} {f.bank_name} | {f.unauthorised_topups} | "
        f"{f.unauthorised_amount:,} | {f.victims} | {f.compensated_amount:,} | "
        f"{f.compensated_victims} |"
        for f in report.by_bank
    ] or ["| — | 0 | 0 | 0 | 0 | 0 |"]
    lines += ["", "## Timeline", "", "| time (JST) | event | detail |", "|---|---|---|"]
    lines += [
        f"| {e['at'].strftime('%Y-%m-%d %H:%M:%S')} | {e['event']} | {_cell(e['detail'])} |"
        for e in report.timeline
    ] or ["| — | none | |"]
    compensation = m["compensation"]
    lines += [
        "",
        "## Measures taken",
        "",
        f"- Kill-switch changes: {len(m['switch_changes'])}",
        *[
            f"  - {s['at']} {s['change']} `{s['switch']}` by {s['by']}: {_cell(s['reason'])}"
            for s in m["switch_changes"]
        ],
        f"- Wallets locked: {m['wallets_locked']}; bank notices sent: "
        f"{m['bank_notices_sent']} (delivered {m['bank_notices_delivered']})",
        f"- Cases opened: {m['cases_opened']}, confirmed fraud: {m['cases_confirmed']}, "
        f"cleared: {m['cases_cleared']}",
        f"- Re-verification campaigns: {len(m['reverification_campaigns'])}",
        *[
            f"  - {c['at']} {_cell(c['name'])}: {_cell(c['reason'])}"
            for c in m["reverification_campaigns"]
        ],
        f"- Call-centre enquiries: {m['enquiries']}",
        f"- Compensation: refunded ¥{compensation['refunded']:,}, victims' costs "
        f"¥{compensation['costs_paid']:,}, clawed back ¥{compensation['clawed_back']:,}, "
        f"net cost ¥{compensation['net_cost']:,}; completed cases "
        f"{compensation['completed_cases']}",
        "",
    ]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
