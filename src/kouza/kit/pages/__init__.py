"""Server-rendered pages shared by every screen kouza serves: the operator console (``/console``),
the customer wallet (``/app``) and the bank's own pages (internet banking, the holder portal).

Every screen is Jinja2 templates rendered on the server, with HTMX for partial updates; the CSS,
the scripts and HTMX itself are files of this package served under :data:`STATIC_PREFIX`, so the
pages work offline and load nothing from a CDN (ADR 0037). What this module gives a screen:

* :class:`Pages` — a Jinja2 environment over the screen's own templates and this package's
  ``templates/kit`` (the base layout, form macros), with ``static()`` for asset URLs and the
  translation function ``t()`` of :mod:`kouza.kit.pages.i18n`;
* :func:`mount_static` — the asset route on an app (once per app, shared by its screens);
* :data:`PAGE_HEADERS` / :func:`page_headers` — a strict Content-Security-Policy (scripts and
  styles from this origin only, no inline script, no framing) and ``no-store``;
* CSRF tokens bound to a session (:func:`csrf_token`, :func:`csrf_valid`): an HMAC of the session
  key, carried in every form and in HTMX's ``X-CSRF-Token`` header (``hx-headers`` on ``<body>``);
* :class:`Flash`-free messages: a page re-renders with its message instead of redirecting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

from kouza.kit.money import format_yen
from kouza.kit.pages.i18n import Catalog, choose_language
from kouza.kit.security import constant_time_equal, keyed_hash

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
KIT_TEMPLATES = HERE / "templates"
STATIC_PREFIX = "/static/kit"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

PAGE_HEADERS: dict[str, str] = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def page_headers(*, form_targets: Iterable[str] = ()) -> dict[str, str]:
    """:data:`PAGE_HEADERS`, with other origins a form may post or redirect to (CSP
    ``form-action`` also governs the redirects that follow a form: the wallet's "link my bank"
    form answers with a redirect to the bank's authorisation page)."""
    targets = " ".join(form_targets)
    if not targets:
        return dict(PAGE_HEADERS)
    headers = dict(PAGE_HEADERS)
    headers["Content-Security-Policy"] = headers["Content-Security-Policy"].replace(
        "form-action 'self'", f"form-action 'self' {targets}"
    )
    return headers


def mount_static(app: FastAPI) -> None:
    """Serve this package's assets at :data:`STATIC_PREFIX` (idempotent per app)."""
    if any(getattr(route, "path", None) == STATIC_PREFIX for route in app.routes):
        return
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="kit-static")


def csrf_token(secret: bytes, session_key: str) -> str:
    """The CSRF token of one session: an HMAC of its key (nothing to store)."""
    return keyed_hash(secret, session_key, purpose="csrf")


def csrf_valid(secret: bytes, session_key: str, token: str | None) -> bool:
    """Whether ``token`` is the CSRF token of the session ``session_key``."""
    if not token or not session_key:
        return False
    return constant_time_equal(token, csrf_token(secret, session_key))


JST = timezone(timedelta(hours=9), "JST")


def japan_time(moment: datetime | None) -> str:
    """``2026-12-04 18:55 JST``: what a customer in Japan reads (stored times are UTC; a naive
    one, as SQLite gives back, is taken as UTC)."""
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(JST).strftime("%Y-%m-%d %H:%M JST")


def yen(amount: int) -> str:
    """``¥12,345`` (negative amounts with a minus sign)."""
    return format_yen(int(amount))


class Pages:
    """The templates of one screen (its own directory first, then the kit's)."""

    def __init__(
        self,
        template_dir: Path,
        *,
        catalog: Catalog | None = None,
        globals_: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.catalog = catalog or Catalog({})
        self.headers = dict(headers or PAGE_HEADERS)
        self.env = Environment(
            loader=ChoiceLoader([FileSystemLoader(template_dir), FileSystemLoader(KIT_TEMPLATES)]),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(static=static_url, yen=yen, **dict(globals_ or {}))
        self.env.filters["yen"] = yen
        self.env.filters["japan_time"] = japan_time

    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any] | None = None,
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        """``template`` rendered for ``request`` in the language it asked for."""
        language = choose_language(request, self.catalog.languages)
        translate: Callable[..., str] = self.catalog.translator(language)
        html = self.env.get_template(template).render(
            request=request, lang=language, t=translate, **dict(context or {})
        )
        return HTMLResponse(
            html, status_code=status_code, headers={**self.headers, **(headers or {})}
        )


def static_url(path: str) -> str:
    """URL of one of the kit's assets."""
    return f"{STATIC_PREFIX}/{path}"
