"""Alerts and cases: the queue, the case page, and the actions taken from it.

Safe-direction actions (lock a wallet, turn a switch on, move or assign a case) run at once
through the same services as the operator API; dangerous ones (unlock, switch off,
compensation) become approval requests (:mod:`kouza.console.approvals`). Every action needs a
reason; a refusal re-renders the case page with its message and status, changing nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from kouza.console.approvals import approvals
from kouza.console.auth import SignedIn, actor_of
from kouza.console.casefile import case_file
from kouza.console.errors import InvalidConsoleInput
from kouza.console.graph import draw
from kouza.console.models import ApprovalAction
from kouza.console.web import CheckedForm, Staff, catalog, error_text, redirect, render, router
from kouza.controls.cases import cases
from kouza.controls.errors import InvalidCaseTransition, UnknownCase
from kouza.controls.models import CaseStatus, SwitchScope
from kouza.controls.service import controls
from kouza.controls.switches import switches
from kouza.errors import KouzaError
from kouza.kit.pages.i18n import choose_language
from kouza.linking import notices
from kouza.ops.errors import WalletNotLocked
from kouza.runtime import Runtime, RuntimeDep
from kouza.wallet.locks import locks

DONE = frozenset({"assigned", "moved", "locked", "switch_on", "requested", "unassigned"})


def _case_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise UnknownCase("no such case", case_id=text[:40]) from None


@router.get("/cases", response_class=HTMLResponse)
def queue(
    request: Request,
    signed_in: Staff,
    runtime: RuntimeDep,
    state: str = "",
    assignee: str = "",
) -> HTMLResponse:
    """The queue of cases, filtered by state and assignee."""
    status = CaseStatus(state) if state in {s.value for s in CaseStatus} else None
    chosen = signed_in.operator.name if assignee == "me" else ("" if assignee == "none" else None)
    with runtime.db.unit_of_work() as session:
        rows = cases.list(session, status=status, assigned_to=chosen, limit=200)
    return render(
        request,
        runtime,
        "console/cases.html",
        {
            "cases": rows,
            "state": state,
            "assignee": assignee,
            "states": [s.value for s in CaseStatus],
        },
        signed_in=signed_in,
        nav="cases",
    )


def _case_page(
    request: Request,
    runtime: Runtime,
    signed_in: SignedIn,
    case_id: uuid.UUID,
    *,
    message: str = "",
    status_code: int = 200,
    form_error: str = "",
) -> HTMLResponse:
    t = catalog.translator(choose_language(request, catalog.languages))
    try:
        with runtime.db.unit_of_work() as session:
            found = case_file(session, case_id)
            pending = [
                *approvals.of_subject(session, str(found.wallet.id)),
                *approvals.of_subject(session, str(case_id)),
            ]
    except UnknownCase:
        return _unknown(request, runtime, signed_in)
    shared = sum(len(s) for s in found.graph.neighbours.values())
    picture = draw(
        found.graph,
        title=t("graph.title"),
        description=t(
            "graph.description",
            entities=len(found.graph.entities),
            wallets=len(found.graph.neighbours),
            links=shared,
        ),
    )
    done = request.query_params.get("done", "")
    return render(
        request,
        runtime,
        "console/case.html",
        {
            "f": found,
            "graph_svg": picture,
            "approvals": pending,
            "message": message,
            "form_error": form_error,
            "done": done if done in DONE else "",
            "scopes": [s.value for s in SwitchScope],
            "next_states": [
                s.value for s in CaseStatus if s.value not in (found.case.status, "open")
            ],
        },
        signed_in=signed_in,
        nav="cases",
        status_code=status_code,
    )


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(
    request: Request, case_id: str, signed_in: Staff, runtime: RuntimeDep
) -> HTMLResponse:
    """One case: facts, timeline, decisions with their reasons, the entity graph, actions."""
    try:
        wanted = _case_id(case_id)
    except UnknownCase:
        return _unknown(request, runtime, signed_in)
    return _case_page(request, runtime, signed_in, wanted)


def _unknown(request: Request, runtime: Runtime, signed_in: SignedIn) -> HTMLResponse:
    return render(
        request,
        runtime,
        "console/refused.html",
        {"what": "unknown_case"},
        signed_in=signed_in,
        status_code=404,
    )


def _act(
    request: Request,
    runtime: Runtime,
    signed_in: SignedIn,
    case_id: str,
    form: dict[str, str],
    action: Callable[[Session, uuid.UUID, str], str],
    *,
    needs_reason: bool = True,
) -> Response:
    """Run ``action`` (which returns what was done) in one unit of work, or re-render the case
    page with the refusal."""
    try:
        wanted = _case_id(case_id)
    except UnknownCase:
        return _unknown(request, runtime, signed_in)
    reason = form.get("reason", "").strip()[:500]
    if needs_reason and not reason:
        t = catalog.translator(choose_language(request, catalog.languages))
        return _case_page(
            request,
            runtime,
            signed_in,
            wanted,
            message=t("error.reason_required"),
            status_code=400,
            form_error=form.get("form", ""),
        )
    try:
        with runtime.db.unit_of_work() as session:
            done = action(session, wanted, reason)
    except KouzaError as refused:
        return _case_page(
            request,
            runtime,
            signed_in,
            wanted,
            message=error_text(request, refused),
            status_code=refused.status_code,
        )
    return redirect(f"/console/cases/{wanted}?done={done}")


@router.post("/cases/{case_id}/assign", response_model=None)
def assign(
    request: Request, case_id: str, signed_in: Staff, runtime: RuntimeDep, form: CheckedForm
) -> Response:
    """Take the case (or give it back to the queue)."""
    mine = form.get("to", "me") == "me"

    def action(session: Session, wanted: uuid.UUID, _: str) -> str:
        cases.assign(
            session,
            case_id=wanted,
            assignee=signed_in.operator.name if mine else None,
            actor=actor_of(signed_in.operator),
        )
        return "assigned" if mine else "unassigned"

    return _act(request, runtime, signed_in, case_id, form, action, needs_reason=False)


@router.post("/cases/{case_id}/status", response_model=None)
def move(
    request: Request, case_id: str, signed_in: Staff, runtime: RuntimeDep, form: CheckedForm
) -> Response:
    """Investigate, confirm fraud or clear, with a note."""

    def action(session: Session, wanted: uuid.UUID, reason: str) -> str:
        try:
            to = CaseStatus(form.get("to", ""))
        except ValueError:
            raise InvalidCaseTransition("choose the case's new state") from None
        cases.move(session, case_id=wanted, to=to, actor=actor_of(signed_in.operator), note=reason)
        return "moved"

    return _act(request, runtime, signed_in, case_id, form, action)


@router.post("/cases/{case_id}/lock", response_model=None)
def lock(
    request: Request, case_id: str, signed_in: Staff, runtime: RuntimeDep, form: CheckedForm
) -> Response:
    """Freeze the case's wallet at once; its banks are notified (signed notices)."""

    def action(session: Session, wanted: uuid.UUID, reason: str) -> str:
        case = cases.get(session, wanted)
        locks.lock(
            session, wallet_id=case.wallet_id, actor=actor_of(signed_in.operator), reason=reason
        )
        return "locked"

    return _act(request, runtime, signed_in, case_id, form, action)


@router.post("/cases/{case_id}/notify-banks", response_model=None)
def notify_banks(
    request: Request, case_id: str, signed_in: Staff, runtime: RuntimeDep, form: CheckedForm
) -> Response:
    """Tell the banks of a locked wallet's links (again): a notice is queued for every link the
    lock has not told yet (a link made after the lock, say), and notices that failed to leave
    are sent again after the commit. Each bank deduplicates on the notice's id."""

    def action(session: Session, wanted: uuid.UUID, reason: str) -> str:
        case = cases.get(session, wanted)
        lock = locks.open_lock(session, case.wallet_id)
        if lock is None:
            raise WalletNotLocked("only a locked wallet's banks are notified: lock it first")
        queued = notices.notify_lock(session, lock)
        controls.audit(
            session,
            actor=actor_of(signed_in.operator),
            action="bank.notify",
            subject=f"wallet:{case.wallet_id}",
            reason=reason,
            details={"case": str(case.id), "notices": [str(n.id) for n in queued]},
        )
        return "notified"

    answer = _act(request, runtime, signed_in, case_id, form, action)
    if answer.status_code < 400:
        notices.deliver_pending(runtime)  # retries what an earlier delivery could not send
    return answer


def _request(
    signed_in: SignedIn, approval: ApprovalAction, params: Callable[[Any], dict[str, Any]]
) -> Callable[[Session, uuid.UUID, str], str]:
    def action(session: Session, wanted: uuid.UUID, reason: str) -> str:
        case = cases.get(session, wanted)
        values = params(case)
        approvals.request(
            session,
            action=approval,
            params=values,
            subject=values.get("subject", str(case.id)),
            reason=reason,
            operator=signed_in.operator,
        )
        return "requested"

    return action


@router.post("/cases/{case_id}/unlock", response_model=None)
def unlock(
    request: Request, case_id: str, signed_in: Staff, runtime: RuntimeDep, form: CheckedForm
) -> Response:
    """Ask for the wallet to be unlocked (a second operator approves)."""
    action = _request(
        signed_in,
        ApprovalAction.UNLOCK_WALLET,
        lambda case: {"wallet_id": str(case.wallet_id), "subject": str(case.wallet_id)},
    )
    return _act(request, runtime, signed_in, case_id, form, action)


@router.post("/cases/{case_id}/compensation", response_model=None)
def compensation(
    request: Request, case_id: str, signed_in: Staff, runtime: RuntimeDep, form: CheckedForm
) -> Response:
    """Ask for the victims to be refunded (a second operator approves)."""

    def params(case: Any) -> dict[str, Any]:
        if case.status != CaseStatus.CONFIRMED_FRAUD.value:
            raise InvalidConsoleInput("compensation needs the case confirmed as fraud first")
        return {"case_id": str(case.id), "subject": str(case.id)}

    action = _request(signed_in, ApprovalAction.COMPENSATE, params)
    return _act(request, runtime, signed_in, case_id, form, action)


@router.post("/cases/{case_id}/switch", response_model=None)
def switch(
    request: Request, case_id: str, signed_in: Staff, runtime: RuntimeDep, form: CheckedForm
) -> Response:
    """A kill switch: on at once; off only through an approval."""
    turn_on = form.get("active", "on") == "on"

    def action(session: Session, wanted: uuid.UUID, reason: str) -> str:
        try:
            scope = SwitchScope(form.get("scope", ""))
        except ValueError:
            raise InvalidConsoleInput("choose what the switch stops") from None
        target = form.get("target", "").strip()[:64]
        if scope is not SwitchScope.ALL_LINKS and not target:
            raise InvalidConsoleInput("this switch needs a bank code or a merchant id")
        if turn_on:
            switches.set(
                session,
                scope=scope,
                target=target,
                active=True,
                actor=actor_of(signed_in.operator),
                reason=reason,
            )
            return "switch_on"
        subject = f"{scope.value}:{'' if scope is SwitchScope.ALL_LINKS else target}"
        approvals.request(
            session,
            action=ApprovalAction.SWITCH_OFF,
            params={"scope": scope.value, "target": target},
            subject=subject,
            reason=reason,
            operator=signed_in.operator,
        )
        return "requested"

    return _act(request, runtime, signed_in, case_id, form, action)
