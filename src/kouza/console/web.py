"""What every console page shares: templates and messages, the session cookie, the role and CSRF
checks, and rendering a refused action as the page with its message (never a trace).

Each request opens its own units of work (``runtime.db.unit_of_work()``), not the API's
``SessionDep``: a refused action must come back as the page with a message and a 4xx status,
which a dependency that raises through FastAPI's problem handler could not do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kouza.console.auth import SignedIn, console_auth
from kouza.console.errors import ConsoleSessionExpired
from kouza.controls.models import OperatorRole
from kouza.errors import KouzaError
from kouza.kit.pages import CSRF_FIELD, CSRF_HEADER, Pages, csrf_token, csrf_valid
from kouza.kit.pages.i18n import LANGUAGE_COOKIE, Catalog, choose_language
from kouza.runtime import Runtime, RuntimeDep

HERE = Path(__file__).parent
STATIC_PREFIX = "/console/static"
SESSION_COOKIE = "kouza_console"
SECURE_SESSION_COOKIE = "__Host-kouza_console"
PRE_SESSION_COOKIE = "kouza_console_pre"
"""A random value set by the sign-in page, so its form carries a CSRF token before any session."""

catalog = Catalog.load(HERE / "messages.yaml")
pages = Pages(HERE / "templates", catalog=catalog, globals_={"console_static": STATIC_PREFIX})
router = APIRouter(prefix="/console", include_in_schema=False)


class SignInNeeded(Exception):
    """No valid session: the browser is sent to the sign-in page."""


class RoleMissing(Exception):
    """Signed in, but the page is not for this role."""

    def __init__(self, signed_in: SignedIn) -> None:
        super().__init__("role missing")
        self.signed_in = signed_in


class BadCsrf(Exception):
    """A POST without this session's CSRF token."""


@dataclass(frozen=True)
class NavItem:
    key: str
    href: str
    roles: tuple[OperatorRole, ...]


STAFF = (OperatorRole.ANALYST, OperatorRole.ADMIN)
EVERYONE = (*STAFF, OperatorRole.CALL_CENTRE)
NAV = (
    NavItem("overview", "/console/", STAFF),
    NavItem("cases", "/console/cases", STAFF),
    NavItem("approvals", "/console/approvals", STAFF),
    NavItem("callcentre", "/console/call-centre", EVERYONE),
    NavItem("rules", "/console/rules", STAFF),
    NavItem("reports", "/console/reports", STAFF),
)


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def cookie_name(request: Request) -> str:
    """``__Host-`` prefixed (Secure, no Domain, Path=/) when served over https."""
    return SECURE_SESSION_COOKIE if is_https(request) else SESSION_COOKIE


def set_session_cookie(response: Response, request: Request, session_id: str) -> None:
    response.set_cookie(
        cookie_name(request),
        session_id,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
        path="/",
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        cookie_name(request), path="/", secure=is_https(request), httponly=True, samesite="strict"
    )


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _signed_in(request: Request, runtime: RuntimeDep) -> SignedIn:
    session_id = request.cookies.get(cookie_name(request), "")
    try:
        with runtime.db.unit_of_work() as session:
            return console_auth.current(session, session_id)
    except ConsoleSessionExpired:
        raise SignInNeeded() from None


def _role(*roles: OperatorRole) -> Any:
    def check(signed_in: Annotated[SignedIn, Depends(_signed_in)]) -> SignedIn:
        if OperatorRole(signed_in.operator.role) not in roles:
            raise RoleMissing(signed_in)
        return signed_in

    return check


Anyone = Annotated[SignedIn, Depends(_role(*EVERYONE))]
"""Any signed-in operator (the call-centre page)."""
Staff = Annotated[SignedIn, Depends(_role(*STAFF))]
"""Analysts and admins (everything but the call-centre-only view)."""
Admin = Annotated[SignedIn, Depends(_role(OperatorRole.ADMIN))]
"""Admins (approving dangerous actions)."""


async def _checked_form(
    request: Request, signed_in: Annotated[SignedIn, Depends(_signed_in)], runtime: RuntimeDep
) -> dict[str, str]:
    """The POSTed form as text fields, once its CSRF token is this session's."""
    form = await request.form()
    token = str(form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or "")
    if not csrf_valid(runtime.secret, signed_in.session_id, token):
        raise BadCsrf()
    return {key: value for key, value in form.items() if isinstance(value, str)}


CheckedForm = Annotated[dict[str, str], Depends(_checked_form)]
"""A POST's form fields, its CSRF token checked (form field or ``X-CSRF-Token`` header)."""


def is_admin(signed_in: SignedIn) -> bool:
    return signed_in.operator.role == OperatorRole.ADMIN.value


def render(
    request: Request,
    runtime: Runtime,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    signed_in: SignedIn | None = None,
    nav: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    """A console page: the layout's context (who, nav, CSRF) plus the page's own."""
    base: dict[str, Any] = {"nav_current": nav, "who": None, "nav": [], "csrf": ""}
    if signed_in is not None:
        role = OperatorRole(signed_in.operator.role)
        base.update(
            who=signed_in.operator,
            nav=[item for item in NAV if role in item.roles],
            csrf=csrf_token(runtime.secret, signed_in.session_id),
            admin=is_admin(signed_in),
        )
    response = pages.render(
        request, template, {**base, **dict(context or {})}, status_code=status_code
    )
    chosen = request.query_params.get("lang")
    if chosen in catalog.languages:
        response.set_cookie(LANGUAGE_COOKIE, chosen, samesite="lax", path="/", httponly=True)
    return response


def error_text(request: Request, error: KouzaError) -> str:
    """A domain refusal as the page shows it: the translated text of its code when the
    catalog has one, else the service's own message."""
    key = f"error.{error.code}"
    if key in catalog.messages:
        from_catalog: str = catalog.text(key, _language(request), **_fields(error))
        return from_catalog
    return error.message


def _language(request: Request) -> str:
    return choose_language(request, catalog.languages)


def _fields(error: KouzaError) -> dict[str, Any]:
    return {key: value for key, value in error.details.items() if isinstance(value, str | int)}


def redirect(url: str) -> RedirectResponse:
    """After a successful POST: see the result (303, so a reload does not post again)."""
    return RedirectResponse(url, status_code=303)


def sign_in_needed(request: Request) -> Response:
    if request.headers.get("HX-Request"):
        return Response(status_code=401, headers={"HX-Redirect": "/console/login"})
    return RedirectResponse("/console/login", status_code=303)
