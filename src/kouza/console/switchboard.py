"""Kill switches without a case (``/console/switches``): the 2020 global stop was pulled before
anyone had a case open. Every switch that is on, with a request to turn it off (maker-checker,
like the case page's); turning one on runs at once. Both need a reason and are audited."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from kouza.console.approvals import approvals
from kouza.console.auth import SignedIn, actor_of
from kouza.console.errors import InvalidConsoleInput
from kouza.console.models import ApprovalAction
from kouza.console.web import CheckedForm, Staff, catalog, error_text, redirect, render, router
from kouza.controls.models import SwitchScope
from kouza.controls.switches import switches
from kouza.errors import KouzaError
from kouza.kit.pages.i18n import choose_language
from kouza.runtime import Runtime, RuntimeDep


def _page(
    request: Request,
    runtime: Runtime,
    signed_in: SignedIn,
    *,
    message: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    with runtime.db.unit_of_work() as session:
        active = list(switches.active(session))
        pending = [
            a for a in approvals.pending(session) if a.action == ApprovalAction.SWITCH_OFF.value
        ]
    return render(
        request,
        runtime,
        "console/switches.html",
        {
            "active": active,
            "pending": {a.subject for a in pending},
            "scopes": [s.value for s in SwitchScope],
            "message": message,
            "done": request.query_params.get("done", ""),
        },
        signed_in=signed_in,
        nav="overview",
        status_code=status_code,
    )


@router.get("/switches", response_class=HTMLResponse)
def switchboard(request: Request, signed_in: Staff, runtime: RuntimeDep) -> HTMLResponse:
    """The switches that are on, and the forms to turn one on or ask to turn one off."""
    return _page(request, runtime, signed_in)


@router.post("/switches", response_model=None)
def change(request: Request, signed_in: Staff, runtime: RuntimeDep, form: CheckedForm) -> Response:
    """On at once; off only through another admin's approval."""
    t = catalog.translator(choose_language(request, catalog.languages))
    reason = form.get("reason", "").strip()[:500]
    if not reason:
        return _page(
            request, runtime, signed_in, message=t("error.reason_required"), status_code=400
        )
    try:
        try:
            scope = SwitchScope(form.get("scope", ""))
        except ValueError:
            raise InvalidConsoleInput("choose what the switch stops") from None
        target = "" if scope is SwitchScope.ALL_LINKS else form.get("target", "").strip()[:64]
        if scope is not SwitchScope.ALL_LINKS and not target:
            raise InvalidConsoleInput("this switch needs a bank code or a merchant id")
        with runtime.db.unit_of_work() as session:
            if form.get("active", "on") == "on":
                switches.set(
                    session,
                    scope=scope,
                    target=target,
                    active=True,
                    actor=actor_of(signed_in.operator),
                    reason=reason,
                )
                done = "switch_on"
            else:
                if not switches.is_active(session, scope, target):
                    raise InvalidConsoleInput("this switch is not on")
                approvals.request(
                    session,
                    action=ApprovalAction.SWITCH_OFF,
                    params={"scope": scope.value, "target": target},
                    subject=f"{scope.value}:{target}",
                    reason=reason,
                    operator=signed_in.operator,
                )
                done = "requested"
    except KouzaError as refused:
        return _page(
            request,
            runtime,
            signed_in,
            message=error_text(request, refused),
            status_code=refused.status_code,
        )
    return redirect(f"/console/switches?done={done}")
