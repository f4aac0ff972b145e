"""The reports page: the regulator report (shown, and downloadable as JSON and Markdown) and the
simulator's reports found under the var dir (listed, Markdown rendered, charts shown, files
downloadable; :mod:`kouza.console.simreports` says which files and how paths are checked)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from markupsafe import Markup

from kouza.console import simreports
from kouza.console.auth import SignedIn, actor_of
from kouza.console.web import Staff, catalog, error_text, render, router
from kouza.controls.service import controls
from kouza.errors import KouzaError
from kouza.kit.pages.i18n import choose_language
from kouza.ops import report
from kouza.ops.errors import InvalidOpsInput
from kouza.runtime import Runtime, RuntimeDep

DOWNLOAD_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    ),
}
"""Served report files: never sniffed, never cached, and an HTML one opens sandboxed (the
simulator's page has inline styles and ``data:`` charts, and no script)."""


def _root(runtime: Runtime) -> Any:
    return runtime.settings.var_dir


def _dates(request: Request, runtime: Runtime) -> tuple[str, str]:
    today = runtime.now().date()
    return (
        request.query_params.get("from", (today - timedelta(days=6)).isoformat())[:10],
        request.query_params.get("to", today.isoformat())[:10],
    )


def _page(
    request: Request,
    runtime: Runtime,
    signed_in: SignedIn,
    extra: dict[str, Any],
    *,
    status_code: int = 200,
) -> HTMLResponse:
    period_from, period_to = _dates(request, runtime)
    context = {
        "sim_reports": simreports.find_reports(_root(runtime)),
        "period_from": period_from,
        "period_to": period_to,
        "regulator": None,
        "regulator_html": "",
        "message": "",
        "field": "",
        "shown": None,
        "shown_html": "",
        **extra,
    }
    return render(
        request,
        runtime,
        "console/reports.html",
        context,
        signed_in=signed_in,
        nav="reports",
        status_code=status_code,
    )


@router.get("/reports", response_class=HTMLResponse)
def reports_page(request: Request, signed_in: Staff, runtime: RuntimeDep) -> HTMLResponse:
    """The regulator report's form and the simulator's reports."""
    return _page(request, runtime, signed_in, {})


def _parse(value: str, name: str, t: Any) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidOpsInput(t("reports.bad_date"), field=name) from None


@router.get("/reports/regulator", response_model=None)
def regulator(
    request: Request,
    signed_in: Staff,
    runtime: RuntimeDep,
    output: Annotated[str, Query(alias="format")] = "html",
) -> Response:
    """The regulator report for a period (JST dates): a page, or its JSON or Markdown file."""
    t = catalog.translator(choose_language(request, catalog.languages))
    period_from, period_to = _dates(request, runtime)
    try:
        start, end = _parse(period_from, "from", t), _parse(period_to, "to", t)
        with runtime.db.unit_of_work() as session:
            built = report.build(
                session,
                period_from=start,
                period_to=end,
                now=runtime.now(),
                operator=runtime.settings.operator_name,
            )
            controls.audit(
                session,
                actor=actor_of(signed_in.operator),
                action="report.regulator",
                subject=f"{start}..{end}",
                reason=f"regulator report viewed ({output[:8]})",
            )
    except KouzaError as refused:
        field = str(refused.details.get("field", "to"))
        return _page(
            request,
            runtime,
            signed_in,
            {"message": error_text(request, refused), "field": field},
            status_code=refused.status_code,
        )
    name = f"regulator-report-{start}-{end}"
    if output == "json":
        return JSONResponse(
            report.to_json(built),
            headers={
                **DOWNLOAD_HEADERS,
                "Content-Disposition": f'attachment; filename="{name}.json"',
            },
        )
    text = report.to_markdown(built)
    if output == "md":
        return PlainTextResponse(
            text,
            media_type="text/markdown; charset=utf-8",
            headers={
                **DOWNLOAD_HEADERS,
                "Content-Disposition": f'attachment; filename="{name}.md"',
            },
        )
    return _page(
        request,
        runtime,
        signed_in,
        {"regulator": built, "regulator_html": Markup(simreports.render_markdown(text))},
    )


@router.get("/reports/sim/view", response_class=HTMLResponse)
def sim_view(
    request: Request, signed_in: Staff, runtime: RuntimeDep, path: str = ""
) -> HTMLResponse:
    """A simulator report's Markdown file, rendered (raw HTML escaped)."""
    found = simreports.resolve(_root(runtime), path[:500])
    if found is None or found.suffix.lower() != ".md":
        return _missing(request, runtime, signed_in)
    data = found.read_bytes()[: simreports.MAX_MARKDOWN]
    html = simreports.render_markdown(data.decode("utf-8", errors="replace"))
    return _page(
        request,
        runtime,
        signed_in,
        {"shown": path, "shown_html": Markup(html)},
    )


@router.get("/reports/sim/file", response_model=None)
def sim_file(request: Request, signed_in: Staff, runtime: RuntimeDep, path: str = "") -> Response:
    """One file of a simulator report: a chart inline, anything else as a download."""
    found = simreports.resolve(_root(runtime), path[:500])
    if found is None:
        return _missing(request, runtime, signed_in)
    suffix = found.suffix.lower()
    disposition = "inline" if suffix == ".png" else "attachment"
    return FileResponse(
        found,
        media_type=simreports.SERVED[suffix],
        headers={
            **DOWNLOAD_HEADERS,
            "Content-Disposition": f'{disposition}; filename="{_safe(found.name)}"',
        },
    )


def _missing(request: Request, runtime: Runtime, signed_in: SignedIn) -> HTMLResponse:
    t = catalog.translator(choose_language(request, catalog.languages))
    return _page(
        request, runtime, signed_in, {"message": t("reports.no_such_file")}, status_code=404
    )


def _safe(name: str) -> str:
    """A file name fit for a ``Content-Disposition`` header."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100]


def _attachment(name: str) -> dict[str, str]:
    return {**DOWNLOAD_HEADERS, "Content-Disposition": f'attachment; filename="{_safe(name)}"'}
