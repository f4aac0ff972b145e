"""The approvals page: requests waiting for a second operator, and the recent decisions."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from kouza.console.approvals import approvals
from kouza.console.web import Admin, CheckedForm, Staff, error_text, redirect, render, router
from kouza.errors import KouzaError
from kouza.runtime import Runtime, RuntimeDep


def _page(
    request: Request,
    runtime: Runtime,
    signed_in: Staff,
    *,
    message: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    with runtime.db.unit_of_work() as session:
        pending, recent = approvals.pending(session), approvals.recent(session)
    done = request.query_params.get("done", "")
    return render(
        request,
        runtime,
        "console/approvals.html",
        {
            "pending": pending,
            "recent": recent,
            "message": message,
            "done": done if done in {"executed", "failed", "rejected"} else "",
        },
        signed_in=signed_in,
        nav="approvals",
        status_code=status_code,
    )


@router.get("/approvals", response_class=HTMLResponse)
def approvals_page(request: Request, signed_in: Staff, runtime: RuntimeDep) -> HTMLResponse:
    """Pending requests (admins approve or reject those of others) and recent decisions."""
    return _page(request, runtime, signed_in)


@router.post("/approvals/{approval_id}/approve", response_model=None)
def approve(
    request: Request, approval_id: int, signed_in: Admin, runtime: RuntimeDep, form: CheckedForm
) -> Response:
    """Approve: the action runs now, as this admin, naming the requester."""
    try:
        done = approvals.approve(
            runtime,
            approval_id=approval_id,
            operator=signed_in.operator,
            note=form.get("note", "")[:500],
        )
    except KouzaError as refused:
        return _page(
            request,
            runtime,
            signed_in,
            message=error_text(request, refused),
            status_code=refused.status_code,
        )
    return redirect(f"/console/approvals?done={done.status}")


@router.post("/approvals/{approval_id}/reject", response_model=None)
def reject(
    request: Request, approval_id: int, signed_in: Admin, runtime: RuntimeDep, form: CheckedForm
) -> Response:
    """Reject: nothing runs."""
    try:
        with runtime.db.unit_of_work() as session:
            approvals.reject(
                session,
                approval_id=approval_id,
                operator=signed_in.operator,
                note=form.get("note", "")[:500],
            )
    except KouzaError as refused:
        return _page(
            request,
            runtime,
            signed_in,
            message=error_text(request, refused),
            status_code=refused.status_code,
        )
    return redirect("/console/approvals?done=rejected")
