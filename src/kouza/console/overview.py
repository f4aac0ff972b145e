"""The overview page, and its fragment that HTMX reloads every 10 seconds."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from kouza.console.figures import overview
from kouza.console.web import Anyone, Staff, catalog, redirect, render, router
from kouza.controls.models import OperatorRole
from kouza.kit.pages.charts import bars, stacked_columns
from kouza.kit.pages.i18n import choose_language
from kouza.runtime import Runtime, RuntimeDep


def _context(request: Request, runtime: Runtime) -> dict[str, Any]:
    with runtime.db.unit_of_work() as session:
        figures = overview(session)
    t = catalog.translator(choose_language(request, catalog.languages))
    charts = {
        f"{span}_{what}": stacked_columns(
            t(f"overview.chart.{span}.{what}"),
            series.buckets,
            {t(f"series.{name}"): values for name, values in series.values.items()},
        )
        for span, group in (("hourly", figures.hourly), ("daily", figures.daily))
        for what, series in group.items()
    }
    charts["refusal_reasons"] = bars(t("overview.refusals_by_reason"), figures.refusals_by_reason())
    charts["refusal_banks"] = bars(t("overview.refusals_by_bank"), figures.refusals_by_bank())
    return {"figures": figures, "charts": charts}


@router.get("/", response_model=None)
def overview_page(request: Request, signed_in: Anyone, runtime: RuntimeDep) -> Response:
    """What is happening now (the call centre's staff land on their own page)."""
    if signed_in.operator.role == OperatorRole.CALL_CENTRE.value:
        return redirect("/console/call-centre")
    page: HTMLResponse = render(
        request,
        runtime,
        "console/overview.html",
        _context(request, runtime),
        signed_in=signed_in,
        nav="overview",
    )
    return page


@router.get("/overview/live", response_class=HTMLResponse)
def overview_live(request: Request, signed_in: Staff, runtime: RuntimeDep) -> HTMLResponse:
    """The overview's figures alone (HTMX swaps them in place)."""
    return render(
        request,
        runtime,
        "console/overview_live.html",
        _context(request, runtime),
        signed_in=signed_in,
    )
