"""The rules page: the live set and the candidate, earlier versions and their differences, the
candidate's shadow results, a backtest on demand, and publishing with a second admin's approval.

Analysts and admins read and backtest, and request publishing; only an admin sets a candidate
(it is never enforced, so it runs at once, as ``PUT /v1/ops/risk/rules/candidate`` does) and
only another admin approves a publish request (:mod:`kouza.console.approvals`), which then runs
through :meth:`kouza.risk.versions.RuleVersions.publish`, the operator API's own path.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from kouza.console import rulebook
from kouza.console.approvals import approvals
from kouza.console.auth import SignedIn, actor_of
from kouza.console.errors import InvalidConsoleInput, UnknownRuleVersion
from kouza.console.models import ApprovalAction
from kouza.console.web import (
    Admin,
    CheckedForm,
    Staff,
    catalog,
    error_text,
    redirect,
    render,
    router,
)
from kouza.errors import KouzaError
from kouza.kit.pages.i18n import choose_language
from kouza.ops.shadow import OUTCOMES, shadow_report
from kouza.risk.rules import RuleSetError, parse_rule_set
from kouza.risk.versions import digest, rule_versions
from kouza.runtime import Runtime, RuntimeDep

MAX_RULE_TEXT = 200_000
"""The longest rule-set text the page accepts (the shipped one is about 4 kB)."""
DONE = frozenset({"requested", "candidate"})


def _period(value: str) -> str:
    return value if value in rulebook.PERIODS else "7d"


def _context(runtime: Runtime, shadow_period: str) -> dict[str, Any]:
    now = runtime.now()
    with runtime.db.unit_of_work() as session:
        live, candidate = rulebook.current(runtime, session)
        listed = rulebook.versions(runtime, session)
        seen = rule_versions.seen(session)
        shadow = (
            shadow_report(session, since=now - rulebook.PERIODS[shadow_period])
            if candidate is not None
            else None
        )
        pending = [
            a for a in approvals.pending(session) if a.action == ApprovalAction.PUBLISH_RULES.value
        ]
    readable = {v.rules.version for v in listed}
    return {
        "live": live,
        "live_digest": digest(live.text),
        "candidate": candidate,
        "candidate_digest": digest(candidate.text) if candidate else "",
        "versions": listed,
        "unrecorded": [row for row in seen if row[0] not in readable],
        "seen": seen,
        "shadow": shadow,
        "shadow_period": shadow_period,
        "outcomes": OUTCOMES,
        "periods": list(rulebook.PERIODS),
        "pending": pending,
        "max_events": rulebook.MAX_EVENTS,
    }


def _page(
    request: Request,
    runtime: Runtime,
    signed_in: SignedIn,
    *,
    extra: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    shadow_period = _period(request.query_params.get("shadow", "7d"))
    done = request.query_params.get("done", "")
    context = {
        **_context(runtime, shadow_period),
        "done": done if done in DONE else "",
        "message": "",
        "errors": {},
        "form": {},
        "result": None,
        **(extra or {}),
    }
    return render(
        request,
        runtime,
        "console/rules.html",
        context,
        signed_in=signed_in,
        nav="rules",
        status_code=status_code,
    )


@router.get("/rules", response_class=HTMLResponse)
def rules_page(request: Request, signed_in: Staff, runtime: RuntimeDep) -> HTMLResponse:
    """The live set, the candidate and its shadow results, versions, backtest, publishing."""
    return _page(request, runtime, signed_in)


@router.get("/rules/diff", response_class=HTMLResponse)
def rules_diff(
    request: Request, signed_in: Staff, runtime: RuntimeDep, a: str = "", b: str = ""
) -> HTMLResponse:
    """Two versions side by side: rules added, removed, changed; the unified diff."""
    with runtime.db.unit_of_work() as session:
        before = rulebook.find(runtime, session, a[:24])
        after = rulebook.find(runtime, session, b[:24])
    if before is None or after is None:
        t = catalog.translator(choose_language(request, catalog.languages))
        return _page(
            request, runtime, signed_in, extra={"message": t("rules.unknown")}, status_code=404
        )
    return render(
        request,
        runtime,
        "console/rules_diff.html",
        {"before": before, "after": after, "difference": rulebook.compare(before, after)},
        signed_in=signed_in,
        nav="rules",
    )


@router.post("/rules/backtest", response_class=HTMLResponse)
def rules_backtest(
    request: Request, signed_in: Staff, runtime: RuntimeDep, form: CheckedForm
) -> HTMLResponse:
    """Replay recent recorded events through the live set and the tested one (bounded)."""
    t = catalog.translator(choose_language(request, catalog.languages))
    tested_key = form.get("tested", "candidate")[:24]
    period = _period(form.get("period", "24h"))
    pasted = form.get("text", "")
    shown = {"tested": tested_key, "period": period, "text": pasted[:MAX_RULE_TEXT]}
    try:
        with runtime.db.unit_of_work() as session:
            live, _ = rulebook.current(runtime, session)
            if tested_key == "pasted":
                if not pasted.strip() or len(pasted) > MAX_RULE_TEXT:
                    raise RuleSetError(t("rules.paste_needed"))
                tested = parse_rule_set(pasted, source=t("rules.pasted"))
            else:
                version = rulebook.find(runtime, session, tested_key)
                if version is None:
                    raise UnknownRuleVersion(t("rules.unknown"))
                tested = version.rules
            result = rulebook.backtest(
                session, live=live, tested=tested, period=period, now=runtime.now()
            )
    except KouzaError as refused:
        field = "text" if isinstance(refused, RuleSetError) else "tested"
        return _page(
            request,
            runtime,
            signed_in,
            extra={
                "message": t("rules.fix"),
                "errors": {field: error_text(request, refused)},
                "form": shown,
            },
            status_code=refused.status_code,
        )
    return _page(request, runtime, signed_in, extra={"result": result, "form": shown})


@router.post("/rules/publish", response_model=None)
def rules_publish(
    request: Request, signed_in: Staff, runtime: RuntimeDep, form: CheckedForm
) -> Response:
    """Ask for a version (the candidate, or an earlier one) to become live: another admin
    approves it on the approvals page."""
    t = catalog.translator(choose_language(request, catalog.languages))
    key, reason = form.get("version", "candidate")[:24], form.get("reason", "").strip()
    try:
        if not reason:
            raise InvalidConsoleInput(t("error.reason_required"), field="reason")
        with runtime.db.unit_of_work() as session:
            version = rulebook.find(runtime, session, key)
            if version is None or key == "live":
                raise UnknownRuleVersion(t("rules.unknown"))
            approvals.request(
                session,
                action=ApprovalAction.PUBLISH_RULES,
                params={
                    "version": version.rules.version,
                    "digest": version.digest,
                    "from": key,
                    "text": version.rules.text,
                },
                subject=version.rules.version,
                reason=reason[:500],
                operator=signed_in.operator,
            )
    except KouzaError as refused:
        return _page(
            request,
            runtime,
            signed_in,
            extra={
                "message": t("rules.fix"),
                "errors": {"publish": error_text(request, refused)},
            },
            status_code=refused.status_code,
        )
    return redirect("/console/rules?done=requested")


@router.post("/rules/candidate", response_model=None)
def rules_candidate(
    request: Request, signed_in: Admin, runtime: RuntimeDep, form: CheckedForm
) -> Response:
    """Run a pasted rule set as the candidate, in shadow (admins; never enforced)."""
    t = catalog.translator(choose_language(request, catalog.languages))
    text, reason = form.get("candidate_text", ""), form.get("reason", "").strip()
    try:
        if not reason:
            raise InvalidConsoleInput(t("error.reason_required"), field="reason")
        if not text.strip() or len(text) > MAX_RULE_TEXT:
            raise RuleSetError(t("rules.paste_needed"))
        with runtime.db.unit_of_work() as session:
            rule_versions.set_candidate(
                session,
                text,
                source=t("rules.pasted"),
                actor=actor_of(signed_in.operator),
                reason=reason[:500],
            )
    except KouzaError as refused:
        return _page(
            request,
            runtime,
            signed_in,
            extra={
                "message": t("rules.fix"),
                "errors": {"candidate": error_text(request, refused)},
                "form": {"candidate_text": text[:MAX_RULE_TEXT]},
            },
            status_code=refused.status_code,
        )
    return redirect("/console/rules?done=candidate")
