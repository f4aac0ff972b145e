"""The bank's own pages: internet banking (login, one-time password, account choice, consent)
and the holder portal, on the shared page kit (ADR 0037; ADR 0040 for the portal).

Bank pages are **Japanese first with English alongside**, on the same page, whatever the
browser asks for: a holder who opens a security notice must understand it at once, and a bank
writes to its customers in Japanese. The document is ``lang="ja"``; every English part is
marked ``lang="en"``. Templates take texts from ``messages.yaml`` (``ja`` and ``en`` for every
id) with ``ja(id)``, ``en(id)`` and the macro ``bi(id)`` (both).

Pages keep the kit's strict Content-Security-Policy (scripts and styles from the bank's own
origin, no inline script or style, no framing) and ``no-store``; the kit's stylesheet is served
by the bank app (:func:`mount_bank_static`) with the bank's own stylesheet and its one script
(``notice.js``: copies a notice reference from the URL fragment into the form).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from kouza.kit.pages import Pages, mount_static, page_headers
from kouza.kit.pages.i18n import Catalog

HERE = Path(__file__).parent
CATALOG = Catalog.load(HERE / "messages.yaml")
STATIC_PREFIX = "/static/bank"
JST = timezone(timedelta(hours=9), "JST")


def jst(moment: datetime | None) -> str:
    """A moment as a Japanese bank prints it: Japan time, to the minute."""
    return moment.astimezone(JST).strftime("%Y-%m-%d %H:%M") if moment else ""


def bank_static(path: str) -> str:
    """URL of one of the bank pages' own assets."""
    return f"{STATIC_PREFIX}/{path}"


class BankPages:
    """The bank's templates, rendered bilingual (Japanese, then English)."""

    def __init__(self) -> None:
        self.pages = Pages(
            HERE / "templates", catalog=CATALOG, globals_={"bank_static": bank_static}
        )
        self.pages.env.filters["jst"] = jst

    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any] | None = None,
        *,
        status_code: int = 200,
        form_targets: Iterable[str] = (),
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        """``template`` for ``request``; ``form_targets``: other origins a form's answer may
        redirect to (the consent form redirects to the operator)."""
        japanese = CATALOG.translator("ja")
        html = self.pages.env.get_template(template).render(
            request=request,
            lang="ja",
            t=japanese,
            ja=japanese,
            en=CATALOG.translator("en"),
            **dict(context or {}),
        )
        return HTMLResponse(
            html,
            status_code=status_code,
            headers={**page_headers(form_targets=form_targets), **(headers or {})},
        )


bank_pages = BankPages()
"""The bank pages' renderer (one Jinja2 environment per process)."""


def mount_bank_static(app: FastAPI) -> None:
    """Serve the kit's assets and the bank pages' own on ``app``."""
    mount_static(app)
    app.mount(STATIC_PREFIX, StaticFiles(directory=HERE / "static"), name="bank-static")
