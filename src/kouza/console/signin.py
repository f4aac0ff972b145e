"""Sign-in and sign-out pages."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from kouza.console.auth import SignedIn, console_auth
from kouza.console.errors import InvalidSignIn, SignInThrottled
from kouza.console.web import (
    PRE_SESSION_COOKIE,
    Anyone,
    BadCsrf,
    CheckedForm,
    clear_session_cookie,
    client_ip,
    error_text,
    redirect,
    render,
    router,
    set_session_cookie,
)
from kouza.controls.models import OperatorRole
from kouza.kit.pages import CSRF_FIELD, csrf_token, csrf_valid
from kouza.kit.security import random_token
from kouza.runtime import RuntimeDep


def _pre_session(request: Request) -> str:
    return request.cookies.get(PRE_SESSION_COOKIE, "")


def _login_page(
    request: Request,
    runtime: RuntimeDep,
    *,
    message: str = "",
    name: str = "",
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    pre = _pre_session(request) or random_token()
    response = render(
        request,
        runtime,
        "console/login.html",
        {"message": message, "name": name, "login_csrf": csrf_token(runtime.secret, pre)},
        status_code=status_code,
    )
    response.set_cookie(
        PRE_SESSION_COOKIE,
        pre,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/console",
    )
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    """The sign-in form: operator name, password, the authenticator's code."""
    return _login_page(request, runtime)


@router.post("/login", response_model=None)
async def login(request: Request, runtime: RuntimeDep) -> Response:
    """Check the password and the TOTP code; on success, a session cookie and the console."""
    form = await request.form()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    if not csrf_valid(runtime.secret, _pre_session(request), fields.get(CSRF_FIELD)):
        raise BadCsrf()
    name = fields.get("name", "")[:100]
    try:
        with runtime.db.unit_of_work() as session:
            signed_in = console_auth.sign_in(
                session,
                name=name,
                password=fields.get("password", "")[:1000],
                code=fields.get("code", "")[:20],
                ip=client_ip(request),
            )
    except SignInThrottled as refused:
        return _login_page(
            request,
            runtime,
            message=error_text(request, refused),
            name=name,
            status_code=429,
            headers={"Retry-After": str(refused.details.get("retry_after", 60))},
        )
    except InvalidSignIn as refused:
        return _login_page(
            request, runtime, message=error_text(request, refused), name=name, status_code=401
        )
    response = redirect(signed_in_home(signed_in))
    set_session_cookie(response, request, signed_in.session_id)
    response.delete_cookie(PRE_SESSION_COOKIE, path="/console")
    return response


@router.post("/logout", response_model=None)
def logout(
    request: Request,
    signed_in: Anyone,
    runtime: RuntimeDep,
    _: CheckedForm,
) -> Response:
    """End the session (its row is deleted) and forget the cookie."""
    with runtime.db.unit_of_work() as session:
        console_auth.sign_out(session, signed_in)
    response = redirect("/console/login")
    clear_session_cookie(response, request)
    return response


def signed_in_home(signed_in: SignedIn) -> str:
    """Where an operator lands: the call centre for its staff, the overview for the others."""
    if signed_in.operator.role == OperatorRole.CALL_CENTRE.value:
        return "/console/call-centre"
    return "/console/"
