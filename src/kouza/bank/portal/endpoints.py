"""The holder portal's routes (pages, outside the OpenAPI schema).

* ``GET  /banks/{code}/portal`` — home when signed in, else the sign-in form;
* ``POST /banks/{code}/portal/login`` then ``…/otp`` — internet-banking sign-in;
* ``GET  /banks/{code}/portal/{links,notices,history}``;
* ``POST /banks/{code}/portal/links/{link_id}/{revoke,suspend,resume}``;
* ``POST /banks/{code}/portal/notices/not-me``; ``POST /banks/{code}/portal/sign-out``;
* ``GET|POST /banks/{code}/notice`` and ``POST /banks/{code}/notice/not-me`` — a notice opened
  with its reference alone (no sign-in: "not me" only revokes and locks; ADR 0040).

Every POST checks a CSRF token (the signed-in session's, or the pre-session cookie's); a
refusal re-renders the page with its message and a 4xx status and changes nothing. Errors of
the bank's services are shown as messages with their status, never as a trace.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from kouza.bank.core import core
from kouza.bank.dependencies import BankRuntimeDep
from kouza.bank.errors import UnknownLink
from kouza.bank.models import Bank, Customer, PortalSession
from kouza.bank.notices import NOTICE_PATH
from kouza.bank.pages import bank_pages, bank_static
from kouza.bank.portal.service import NotMeOutcome, NotMeResult, parse_link_id, portal
from kouza.bank.portal.sessions import (
    portal_sessions,
    pre_session_csrf,
    pre_session_csrf_valid,
    session_csrf,
)
from kouza.bank.runtime import BankRuntime
from kouza.bank.schemas import BankCodePath
from kouza.errors import KouzaError
from kouza.kit.pages import page_headers
from kouza.kit.security import constant_time_equal, random_token

portal_router = APIRouter(include_in_schema=False)
PORTAL = "/banks/{bank_code}/portal"
NOTICE = NOTICE_PATH
SERVICE = "portal.name"
REFERENCE = re.compile(r"^NM-[A-Z0-9]{10}$")
PRE_COOKIE = "kouza_portal_pre"
PRE_LIFETIME_SECONDS = 3600
LINK_ACTIONS = {
    "revoke": "links.revoked_done",
    "suspend": "links.suspended_done",
    "resume": "links.resumed_done",
}


async def page_form(request: Request) -> dict[str, str]:
    """A form's text fields (the first value of each, at most 200 characters)."""
    form = await request.form()
    fields: dict[str, str] = {}
    for name, value in form.multi_items():
        if isinstance(value, str) and name not in fields:
            fields[name] = value[:200]
    return fields


PageForm = Annotated[dict[str, str], Depends(page_form)]


def _https(request: Request) -> bool:
    return request.url.scheme == "https"


def _cookie(request: Request, name: str) -> str:
    """``__Host-`` cookies over https (this origin only, path ``/``, ``Secure``)."""
    return f"__Host-{name}" if _https(request) else name


def _set_cookie(response: Response, request: Request, name: str, value: str, **extra: Any) -> None:
    response.set_cookie(
        name, value, httponly=True, samesite="lax", secure=_https(request), path="/", **extra
    )


def _message(key: str = "", kind: str = "ok", detail: str = "", **fields: Any) -> dict[str, Any]:
    return {
        "message": key,
        "message_kind": kind,
        "message_detail": detail,
        "message_fields": fields,
    }


def _error_message(error: KouzaError) -> dict[str, Any]:
    if isinstance(error, UnknownLink):
        return _message("links.unknown", "error")
    return _message("error.body", "error", error.message)


class Visit:
    """One request to the portal: its bank, its cookies, its session, its pages."""

    def __init__(self, request: Request, runtime: BankRuntime, session: Session, bank_code: str):
        self.request, self.runtime, self.session = request, runtime, session
        self.bank: Bank = core.bank(session, bank_code)
        self.session_cookie = _cookie(request, f"kouza_portal_{self.bank.code}")
        self.pre_cookie = _cookie(request, PRE_COOKIE)
        self.pre_token = request.cookies.get(self.pre_cookie, "")
        self.new_pre = ""
        self.portal: PortalSession | None = None

    @property
    def token(self) -> str | None:
        return self.request.cookies.get(self.session_cookie)

    def signed_in(self) -> Customer | None:
        """The signed-in customer, if the session cookie is a live session's."""
        self.portal = portal_sessions.current(self.session, self.bank, self.token)
        return portal.customer(self.session, self.portal) if self.portal else None

    def session_csrf_valid(self, fields: dict[str, str]) -> bool:
        token = self.token
        return bool(token) and constant_time_equal(
            fields.get("csrf_token", ""), session_csrf(self.session, token or "")
        )

    def pre_csrf(self) -> str:
        if not self.pre_token:
            self.new_pre = self.pre_token = random_token()
        return pre_session_csrf(self.runtime.secret, self.pre_token)

    def pre_csrf_valid(self, fields: dict[str, str]) -> bool:
        return pre_session_csrf_valid(self.runtime.secret, self.pre_token, fields.get("csrf_token"))

    def render(
        self, template: str, title_key: str, *, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        base = f"/banks/{self.bank.code}"
        values: dict[str, Any] = {
            "bank_name": self.bank.name,
            "bank_code": self.bank.code,
            "service": SERVICE,
            "title_key": title_key,
            "portal_base": base + "/portal",
            "notice_base": base + "/notice",
            "signed_in": self.portal is not None,
            "csrf": session_csrf(self.session, self.token or "") if self.portal else "",
            "current": "",
            **_message(),
            **context,
        }
        response = bank_pages.render(self.request, template, values, status_code=status_code)
        if self.new_pre:
            _set_cookie(
                response, self.request, self.pre_cookie, self.new_pre, max_age=PRE_LIFETIME_SECONDS
            )
        return response

    # --- pages ---------------------------------------------------------------------------

    def login(self, *, status_code: int = 200, **message: Any) -> HTMLResponse:
        self.portal = None
        return self.render(
            "bank/login.html",
            "login.title",
            status_code=status_code,
            action=f"/banks/{self.bank.code}/portal/login",
            csrf=self.pre_csrf(),
            operator="",
            intro="login.portal_intro",
            show_steps=False,
            with_account=False,
            **message,
        )

    def home(self, customer: Customer) -> HTMLResponse:
        links = portal.links(self.session, customer)
        notices = portal.notices(self.session, customer)
        return self.render(
            "bank/portal_home.html",
            "portal.nav.home",
            current="home",
            customer=customer,
            accounts=portal.accounts(self.session, customer),
            active_links=sum(1 for row in links if row.link.status == "active"),
            notice_count=len(notices),
        )

    def links(self, customer: Customer, *, status_code: int = 200, **message: Any) -> HTMLResponse:
        return self.render(
            "bank/portal_links.html",
            "links.title",
            status_code=status_code,
            current="links",
            links=portal.links(self.session, customer),
            **message,
        )

    def notices(
        self, customer: Customer, *, status_code: int = 200, **message: Any
    ) -> HTMLResponse:
        return self.render(
            "bank/portal_notices.html",
            "notices.title",
            status_code=status_code,
            current="notices",
            notices=portal.notices(self.session, customer),
            **message,
        )

    def history(self, customer: Customer, operator: str) -> HTMLResponse:
        rows, totals = portal.history(self.session, customer, operator=operator)
        return self.render(
            "bank/portal_history.html",
            "history.title",
            current="history",
            rows=rows,
            totals=totals,
            operators=portal.operators(self.session, customer),
            operator=operator,
        )

    def lookup(self, *, value: str = "", error: str = "", status_code: int = 200) -> HTMLResponse:
        return self.render(
            "bank/notice_lookup.html",
            "lookup.title",
            status_code=status_code,
            csrf=self.pre_csrf(),
            value=value,
            error=error,
            script=bank_static("notice.js"),
        )

    def done(self, result: NotMeResult, *, signed_out: bool = False) -> HTMLResponse:
        return self.render(
            "bank/notice_done.html",
            "done.title",
            notice=result.notice,
            outcome=result.outcome.value,
            signed_out=signed_out,
        )


def _visit(
    request: Request,
    runtime: BankRuntime,
    bank_code: str,
    page: Callable[[Visit], Response],
    on_error: Callable[[Visit, KouzaError], Response] | None = None,
) -> Response:
    """``page`` in one unit of work; a refusal of the bank's services rolls it back and is
    shown by ``on_error`` (in a fresh unit of work), or on a message page."""
    try:
        with runtime.db.unit_of_work() as session:
            return page(Visit(request, runtime, session, bank_code))
    except KouzaError as error:
        try:
            with runtime.db.unit_of_work() as session:
                visit = Visit(request, runtime, session, bank_code)
                if on_error is not None:
                    return on_error(visit, error)
                return visit.render(
                    "bank/message.html",
                    "error.title",
                    status_code=error.status_code,
                    body_key="error.body",
                    detail=error.message,
                    kind="error",
                    return_url=None,
                )
        except KouzaError as unknown_bank:
            return bank_pages.render(
                request,
                "bank/message.html",
                {
                    "bank_name": "—",
                    "bank_code": bank_code,
                    "service": SERVICE,
                    "title_key": "error.title",
                    "body_key": "error.body",
                    "detail": unknown_bank.message,
                    "kind": "error",
                    "return_url": None,
                },
                status_code=unknown_bank.status_code,
            )


def _signed_in(
    page: Callable[[Visit, Customer], Response],
) -> Callable[[Visit], Response]:
    """``page`` for a signed-in holder; otherwise the sign-in form (401)."""

    def run(visit: Visit) -> Response:
        customer = visit.signed_in()
        if customer is None:
            status_code = 401 if visit.token else 200
            message = _message("portal.expired", "error") if visit.token else {}
            response = visit.login(status_code=status_code, **message)
            if visit.token:
                response.delete_cookie(visit.session_cookie, path="/")
            return response
        return page(visit, customer)

    return run


def _checked(
    fields: dict[str, str],
    page: Callable[[Visit, Customer], Response],
    refused: Callable[[Visit, Customer], Response],
) -> Callable[[Visit], Response]:
    """A signed-in POST: ``page`` if the form carries the session's CSRF token; else
    ``refused`` with the CSRF message (403), nothing changed."""

    def run(visit: Visit, customer: Customer) -> Response:
        if not visit.session_csrf_valid(fields):
            return refused(visit, customer)
        return page(visit, customer)

    return _signed_in(run)


# --- sign-in ------------------------------------------------------------------------------


@portal_router.get(PORTAL, response_class=HTMLResponse)
def home(bank_code: BankCodePath, request: Request, runtime: BankRuntimeDep) -> Response:
    """The holder's home (accounts, counts) or the sign-in form."""
    return _visit(request, runtime, bank_code, _signed_in(lambda visit, who: visit.home(who)))


@portal_router.post(PORTAL + "/login", response_class=HTMLResponse)
def login(
    bank_code: BankCodePath, fields: PageForm, request: Request, runtime: BankRuntimeDep
) -> Response:
    """Branch, account number and password: always on to the one-time password."""

    def page(visit: Visit) -> Response:
        if not visit.pre_csrf_valid(fields):
            return visit.login(status_code=403, **_message("portal.csrf", "error"))
        opened = portal_sessions.start(
            visit.session,
            visit.bank,
            branch_code=fields.get("branch_code", "")[:3],
            account_number=fields.get("account_number", "")[:7],
            password=fields.get("password", ""),
        )
        response = visit.render(
            "bank/otp.html",
            "otp.title",
            action=f"/banks/{visit.bank.code}/portal/otp",
            csrf=session_csrf(visit.session, opened.token),
            show_steps=False,
            with_account=False,
        )
        _set_cookie(response, request, visit.session_cookie, opened.token)
        return response

    return _visit(request, runtime, bank_code, page)


@portal_router.post(PORTAL + "/otp", response_class=HTMLResponse)
def otp(
    bank_code: BankCodePath, fields: PageForm, request: Request, runtime: BankRuntimeDep
) -> Response:
    """The one-time password: signed in (a new session cookie), or back to the sign-in form."""

    def page(visit: Visit) -> Response:
        if not visit.session_csrf_valid(fields):
            return visit.login(status_code=403, **_message("portal.csrf", "error"))
        opened = portal_sessions.complete(
            visit.session, visit.bank, visit.token, fields.get("otp", "")[:10]
        )
        if opened is None:
            failed = visit.login(status_code=400, **_message("login.failed", "error"))
            failed.delete_cookie(visit.session_cookie, path="/")
            return failed
        response = RedirectResponse(
            f"/banks/{visit.bank.code}/portal",
            status_code=status.HTTP_303_SEE_OTHER,
            headers=page_headers(),
        )
        _set_cookie(response, request, visit.session_cookie, opened.token)
        return response

    return _visit(request, runtime, bank_code, page)


@portal_router.post(PORTAL + "/sign-out", response_class=HTMLResponse)
def sign_out(
    bank_code: BankCodePath, fields: PageForm, request: Request, runtime: BankRuntimeDep
) -> Response:
    """End the session (its cookie is worthless from now on)."""

    def page(visit: Visit, customer: Customer) -> Response:
        assert visit.portal is not None
        portal_sessions.end(visit.session, visit.portal)
        response = visit.login(**_message("portal.signed_out", "ok"))
        response.delete_cookie(visit.session_cookie, path="/")
        return response

    def refused(visit: Visit, customer: Customer) -> Response:
        return visit.home(customer)  # a forged sign-out changes nothing

    return _visit(request, runtime, bank_code, _checked(fields, page, refused))


# --- signed-in pages -------------------------------------------------------------------------


@portal_router.get(PORTAL + "/links", response_class=HTMLResponse)
def links(bank_code: BankCodePath, request: Request, runtime: BankRuntimeDep) -> Response:
    """Which services are linked to my accounts."""
    return _visit(request, runtime, bank_code, _signed_in(lambda visit, who: visit.links(who)))


@portal_router.post(PORTAL + "/links/{link_id}/{action}", response_class=HTMLResponse)
def link_action(
    bank_code: BankCodePath,
    link_id: str,
    action: str,
    fields: PageForm,
    request: Request,
    runtime: BankRuntimeDep,
) -> Response:
    """Revoke a link, or suspend / resume its operator's debits."""
    if action not in LINK_ACTIONS:
        return _visit(request, runtime, bank_code, lambda visit: _not_found(visit))

    def page(visit: Visit, customer: Customer) -> Response:
        wanted = parse_link_id(link_id)
        if action == "revoke":
            row = portal.revoke(visit.session, customer, wanted)
        else:
            row = portal.set_debits(visit.session, customer, wanted, allowed=action == "resume")
        return visit.links(customer, **_message(LINK_ACTIONS[action], operator=row.operator.name))

    def refused(visit: Visit, customer: Customer) -> Response:
        return visit.links(customer, status_code=403, **_message("portal.csrf", "error"))

    def on_error(visit: Visit, error: KouzaError) -> Response:
        customer = visit.signed_in()
        if customer is None:
            return visit.login(status_code=401, **_message("portal.expired", "error"))
        return visit.links(customer, status_code=error.status_code, **_error_message(error))

    return _visit(request, runtime, bank_code, _checked(fields, page, refused), on_error)


def _not_found(visit: Visit) -> Response:
    return visit.render(
        "bank/message.html",
        "error.title",
        status_code=404,
        body_key="error.body",
        detail="no such page",
        kind="error",
        return_url=None,
    )


@portal_router.get(PORTAL + "/notices", response_class=HTMLResponse)
def notices(bank_code: BankCodePath, request: Request, runtime: BankRuntimeDep) -> Response:
    """The notices the bank sent me, each with "not me"."""
    return _visit(request, runtime, bank_code, _signed_in(lambda visit, who: visit.notices(who)))


@portal_router.post(PORTAL + "/notices/not-me", response_class=HTMLResponse)
def portal_not_me(
    bank_code: BankCodePath, fields: PageForm, request: Request, runtime: BankRuntimeDep
) -> Response:
    """ "Not me" on one of my notices."""

    def page(visit: Visit, customer: Customer) -> Response:
        result = portal.not_me(
            visit.session, visit.bank, fields.get("reference", ""), customer=customer
        )
        if result.outcome is not NotMeOutcome.LOGIN_LOCKED:
            return visit.done(result)
        assert visit.portal is not None
        portal_sessions.end(visit.session, visit.portal)  # the login is locked now
        visit.portal = None
        response = visit.done(result, signed_out=True)
        response.delete_cookie(visit.session_cookie, path="/")
        return response

    def refused(visit: Visit, customer: Customer) -> Response:
        return visit.notices(customer, status_code=403, **_message("portal.csrf", "error"))

    def on_error(visit: Visit, error: KouzaError) -> Response:
        customer = visit.signed_in()
        if customer is None:
            return visit.login(status_code=401, **_message("portal.expired", "error"))
        return visit.notices(customer, status_code=error.status_code, **_error_message(error))

    return _visit(request, runtime, bank_code, _checked(fields, page, refused), on_error)


@portal_router.get(PORTAL + "/history", response_class=HTMLResponse)
def history(
    bank_code: BankCodePath, request: Request, runtime: BankRuntimeDep, operator: str = ""
) -> Response:
    """Debits and credits on my accounts, by operator."""
    wanted = operator[:64]
    return _visit(
        request, runtime, bank_code, _signed_in(lambda visit, who: visit.history(who, wanted))
    )


# --- a notice opened with its reference --------------------------------------------------------


@portal_router.get(NOTICE, response_class=HTMLResponse)
def notice_lookup(bank_code: BankCodePath, request: Request, runtime: BankRuntimeDep) -> Response:
    """Type (or, from the notice's link, find filled in) the notice's reference."""
    return _visit(request, runtime, bank_code, lambda visit: visit.lookup())


def _lookup_refused(visit: Visit, reference: str, error: KouzaError) -> Response:
    if isinstance(error, UnknownLink):
        return visit.lookup(value=reference, error="lookup.unknown", status_code=404)
    return visit.render(
        "bank/message.html",
        "error.title",
        status_code=error.status_code,
        body_key="error.body",
        detail=error.message,
        kind="error",
        return_url=None,
    )


def _reference(fields: dict[str, str]) -> str:
    return fields.get("reference", "").strip().upper()


@portal_router.post(NOTICE, response_class=HTMLResponse)
def notice_show(
    bank_code: BankCodePath, fields: PageForm, request: Request, runtime: BankRuntimeDep
) -> Response:
    """What the notice reported, what it is now, and the "not me" button."""
    reference = _reference(fields)

    def page(visit: Visit) -> Response:
        if not visit.pre_csrf_valid(fields):
            return visit.lookup(value=reference, error="portal.csrf", status_code=403)
        if not REFERENCE.match(reference):
            return visit.lookup(value=reference, error="lookup.unknown", status_code=400)
        found = portal.notice(visit.session, visit.bank, reference)
        return visit.render(
            "bank/notice_show.html", "show.title", notice=found, csrf=visit.pre_csrf()
        )

    def on_error(visit: Visit, error: KouzaError) -> Response:
        return _lookup_refused(visit, reference, error)

    return _visit(request, runtime, bank_code, page, on_error)


@portal_router.post(NOTICE + "/not-me", response_class=HTMLResponse)
def notice_not_me(
    bank_code: BankCodePath, fields: PageForm, request: Request, runtime: BankRuntimeDep
) -> Response:
    """ "Not me" with the reference alone: revoke the link, or lock the credential."""
    reference = _reference(fields)

    def page(visit: Visit) -> Response:
        if not visit.pre_csrf_valid(fields):
            return visit.lookup(value=reference, error="portal.csrf", status_code=403)
        if not REFERENCE.match(reference):
            return visit.lookup(value=reference, error="lookup.unknown", status_code=400)
        return visit.done(portal.not_me(visit.session, visit.bank, reference))

    def on_error(visit: Visit, error: KouzaError) -> Response:
        return _lookup_refused(visit, reference, error)

    return _visit(request, runtime, bank_code, page, on_error)
