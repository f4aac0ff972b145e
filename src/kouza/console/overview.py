"""The overview page."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from kouza.console.web import Anyone, redirect, render, router
from kouza.controls.models import OperatorRole
from kouza.runtime import RuntimeDep


@router.get("/", response_model=None)
def overview_page(request: Request, signed_in: Anyone, runtime: RuntimeDep) -> Response:
    """What is happening now (the call centre's staff land on their own page)."""
    if signed_in.operator.role == OperatorRole.CALL_CENTRE.value:
        return redirect("/console/call-centre")
    page: HTMLResponse = render(
        request, runtime, "console/overview.html", {}, signed_in=signed_in, nav="overview"
    )
    return page
