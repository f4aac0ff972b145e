"""What a candidate rule set did in shadow on live traffic, against what the live rules did.

Every decision taken while a candidate ran beside the live rules carries the candidate's verdict
(``risk_decisions.candidate``). :func:`shadow_report` reads those decisions over a period and
counts, honestly and simply:

* the confusion between the live outcome and the candidate's (a table of counts);
* the events the candidate would have stepped up, held for review, blocked or locked where the
  live rules allowed them — its extra friction — and the events the live rules flagged that the
  candidate would have allowed;
* for wallets **confirmed as fraud** by the time of the report — a case closed as
  ``confirmed_fraud`` (:class:`~kouza.controls.models.CaseStatus`), or a lock placed by a person
  (not by the risk engine itself, whose locks are its own decisions) and not lifted — how many of
  those wallets, and of their events in the period, each rule set flagged (``step_up`` or more)
  and stopped (``review`` or more).

It lives in ``kouza.ops`` because "confirmed" is read from cases (controls) and wallet locks
(wallet), which the risk package sits below.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.controls.models import Case, CaseStatus
from kouza.risk.models import RiskDecisionRecord, RiskEventRecord
from kouza.risk.rules import Outcome
from kouza.wallet.models import WalletLock

RISK_ENGINE_ACTOR = "risk-engine"
"""The actor of the locks the risk engine places itself (``kouza.wallet.enforcement``)."""
OUTCOMES = [outcome.value for outcome in sorted(Outcome, key=lambda o: o.severity)]


def confirmed_wallets(session: Session) -> set[str]:
    """Wallets (as the risk events name them) confirmed as fraud: a ``confirmed_fraud`` case,
    or a lock by a person still in force."""
    by_case = session.scalars(
        select(Case.wallet_id).where(Case.status == CaseStatus.CONFIRMED_FRAUD.value)
    )
    by_lock = session.scalars(
        select(WalletLock.wallet_id).where(
            WalletLock.unlocked_at.is_(None), WalletLock.actor != RISK_ENGINE_ACTOR
        )
    )
    return {str(wallet) for wallet in [*by_case, *by_lock]}


def _flags(outcome: str) -> bool:
    return Outcome(outcome).severity >= Outcome.STEP_UP.severity


def _stops(outcome: str) -> bool:
    return Outcome(outcome).severity >= Outcome.REVIEW.severity


def shadow_report(
    session: Session, *, since: datetime, until: datetime | None = None
) -> dict[str, Any]:
    """Live against candidate over the decisions of events at or after ``since`` (and before
    ``until``) that carry a candidate's verdict (see the module docstring)."""
    statement = (
        select(RiskDecisionRecord.outcome, RiskDecisionRecord.candidate, RiskEventRecord.wallet)
        .join(RiskEventRecord, RiskEventRecord.id == RiskDecisionRecord.event_id)
        .where(RiskDecisionRecord.candidate.is_not(None), RiskEventRecord.at >= since)
        .order_by(RiskEventRecord.at, RiskEventRecord.id)
    )
    if until is not None:
        statement = statement.where(RiskEventRecord.at < until)
    confirmed = confirmed_wallets(session)
    confusion = {live: dict.fromkeys(OUTCOMES, 0) for live in OUTCOMES}
    stricter = dict.fromkeys(OUTCOMES[1:], 0)
    looser = dict.fromkeys(OUTCOMES[1:], 0)
    versions: dict[str, int] = defaultdict(int)
    fraud_events = {"events": 0, "live_flagged": 0, "candidate_flagged": 0}
    fraud_events |= {"live_stopped": 0, "candidate_stopped": 0}
    seen: set[str] = set()
    wallets: dict[str, set[str]] = defaultdict(set)
    decisions = 0
    for live, candidate, wallet in session.execute(statement.execution_options(yield_per=10_000)):
        if not isinstance(candidate, dict):  # a JSON null stored by an older writer
            continue
        decisions += 1
        shadow = str(candidate["outcome"])
        versions[str(candidate.get("version", ""))] += 1
        confusion[live][shadow] += 1
        if live == Outcome.ALLOW.value and shadow != Outcome.ALLOW.value:
            stricter[shadow] += 1
        if shadow == Outcome.ALLOW.value and live != Outcome.ALLOW.value:
            looser[live] += 1
        if wallet in confirmed:
            seen.add(wallet)
            fraud_events["events"] += 1
            for who, outcome in (("live", live), ("candidate", shadow)):
                if _flags(outcome):
                    fraud_events[f"{who}_flagged"] += 1
                    wallets[f"{who}_flagged"].add(wallet)
                if _stops(outcome):
                    fraud_events[f"{who}_stopped"] += 1
                    wallets[f"{who}_stopped"].add(wallet)
    return {
        "since": since.isoformat(),
        "until": until.isoformat() if until is not None else None,
        "decisions": decisions,
        "candidate_versions": dict(versions),
        "confusion": confusion,
        "candidate_flagged_live_allowed": stricter,
        "live_flagged_candidate_allowed": looser,
        "confirmed_fraud": {
            "wallets": len(seen),
            **{
                f"wallets_{key}": len(wallets[key])
                for key in (
                    "live_flagged",
                    "candidate_flagged",
                    "live_stopped",
                    "candidate_stopped",
                )
            },
            "wallets_flagged_by_candidate_only": len(
                wallets["candidate_flagged"] - wallets["live_flagged"]
            ),
            "wallets_flagged_by_live_only": len(
                wallets["live_flagged"] - wallets["candidate_flagged"]
            ),
            **fraud_events,
        },
    }
