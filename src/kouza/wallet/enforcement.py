"""Acting on a risk decision, the same way everywhere.

============  ==============================================================================
``allow``     go ahead
``step_up``   go ahead if the action was signed by an *established* device of the user (the
              cheapest sufficient factor: nothing more to type, ADR 0033), or if the user
              passed an SMS step-up for this action in the last five minutes (it is used up);
              otherwise refuse with ``step_up_required`` so the app can ask for one and retry
``review``    refuse for now and open a case for a person (a held payment helps no merchant;
              money *into* a wallet is held instead by the caller, see linking)
``block``     refuse
``lock``      refuse, freeze the wallet (balance kept) and open a case
============  ==============================================================================

The refusals keep their side effects (lock, case, spent step-up) even though the request fails:
they are raised with ``keep_changes=True``. This is the one enforcement path: bank linking
(:mod:`kouza.linking.policy`) calls it too, answering ``review`` itself beforehand: a link
is refused, a top-up is credited as held funds until an operator decides (ADR 0013). A lock
here notifies the banks of the wallet's linked accounts (:mod:`kouza.wallet.locks`).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.orm import Session

from kouza.controls.cases import cases
from kouza.errors import Forbidden, Unprocessable
from kouza.identity.models import User
from kouza.identity.service import identity
from kouza.risk.engine import Decision
from kouza.risk.rules import Outcome
from kouza.wallet.locks import locks

STEP_UP_WINDOW = timedelta(minutes=5)


class RiskRefused(Forbidden):
    """The risk engine refused this action. The customer sees a reference (the stored decision's
    id), never the rules that fired: operators look them up by the reference."""

    code = "risk_refused"
    public_details = frozenset({"reference"})


class HeldForReview(Unprocessable):
    """The action waits for a person to look at it (rules hidden, as for RiskRefused)."""

    code = "held_for_review"
    public_details = frozenset({"reference"})


def enforce(
    session: Session,
    decision: Decision,
    *,
    user: User,
    wallet_id: uuid.UUID,
    purpose: str,
    case_source: str | None = None,
    step_up_within: timedelta | None = STEP_UP_WINDOW,
    signed_by: uuid.UUID | None = None,
) -> None:
    """Let the action go ahead, or refuse it as the decision says (see the table above).

    ``case_source`` names the cases opened (default ``risk:<rule ids>``); ``step_up_within``
    None means the configured ``step_up_validity_seconds``; ``signed_by`` is the device whose
    signature this very action carried, if any.
    """
    outcome = decision.outcome
    rules = [rule.id for rule in decision.enforced]
    if outcome is Outcome.ALLOW:
        return
    if outcome is Outcome.STEP_UP:
        if signed_by is not None and identity.device_established(session, user, signed_by):
            return
        identity.spend_step_up(session, user, purpose, within=step_up_within)
        return
    if outcome is Outcome.REVIEW:
        _open_case(session, wallet_id, decision, rules, case_source)
        raise HeldForReview(
            "this needs a review by our staff; we will contact you",
            keep_changes=True,
            rules=rules,
            reference=decision.record_id,
        )
    if outcome is Outcome.LOCK:
        _lock(session, wallet_id, decision, rules, case_source)
    raise RiskRefused(
        "this action was refused for your protection",
        keep_changes=True,
        rules=rules,
        reference=decision.record_id,
    )


def _open_case(
    session: Session, wallet_id: uuid.UUID, decision: Decision, rules: list[str], source: str | None
) -> None:
    cases.open(
        session,
        wallet_id=wallet_id,
        source=source or "risk:" + ",".join(rules)[:110],
        summary=f"{decision.event.type.value} → {decision.outcome.value}",
        actor="risk-engine",
        details={"score": decision.score, "rules": rules}
        | ({"model": decision.model.to_json()} if decision.model is not None else {})
        | ({"candidate": decision.candidate.to_json()} if decision.candidate is not None else {}),
    )


def _lock(
    session: Session, wallet_id: uuid.UUID, decision: Decision, rules: list[str], source: str | None
) -> None:
    locks.lock(
        session,
        wallet_id=wallet_id,
        actor="risk-engine",
        reason="risk rules: " + (", ".join(rules) or "score"),
    )
    _open_case(session, wallet_id, decision, rules, source)
