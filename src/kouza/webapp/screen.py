"""What every customer page shares: the templates, the visitor (cookies, CSRF), rendering.

**Session.** Signing in calls the identity service's ``login``, exactly as ``POST
/v1/auth/login`` does, and the bearer token it returns is kept only in an HttpOnly cookie
(``SameSite=Lax``; ``Secure`` and the ``__Host-`` prefix when the request came over https). Each
request authenticates that token through ``identity.authenticate``, so a page session expires,
is revoked by sign-out, by a password change or by a "not me" report exactly like an API token
(ADR 0039). Lax, not Strict: the bank's redirect back to ``/app/bank-callback`` is a top-level
navigation from another site and must arrive signed in.

**CSRF.** Every form carries ``csrf_token`` (and HTMX / ``fetch`` send ``X-CSRF-Token``): the
kit's HMAC of the session key — the token's cookie when signed in, else an anonymous random
cookie minted on the first page — so the sign-in and sign-up forms are protected too.

**Errors.** A refused action re-renders its page with the service's message (the
:class:`~kouza.errors.KouzaError`'s ``message``, in the status the API would answer) and never
shows which risk rules fired (only a reference, as the API's customers see, ADR 0020).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kouza.assembly import KouzaRuntime
from kouza.errors import BadRequest, KouzaError
from kouza.identity.errors import InvalidToken
from kouza.identity.models import User
from kouza.identity.service import identity
from kouza.kit.pages import CSRF_HEADER, Pages, csrf_token, csrf_valid
from kouza.kit.pages.i18n import LANGUAGE_COOKIE, Catalog, choose_language
from kouza.kit.security import random_token
from kouza.runtime import get_runtime

HERE = Path(__file__).parent
STATIC_PREFIX = "/app/static"
CATALOG = Catalog.load(HERE / "catalog.yaml")
SESSION_COOKIE = "kouza_app_session"
ANONYMOUS_COOKIE = "kouza_app_visitor"
LINK_DEVICE_COOKIE = "kouza_app_link_device"
"""The device that started an OAuth link (not a secret: the flow is bound to it)."""


def app_static(path: str) -> str:
    """URL of one of this screen's own assets."""
    return f"{STATIC_PREFIX}/{path}"


PAGES = Pages(HERE / "templates", catalog=CATALOG, globals_={"app_static": app_static})


def cookie_name(request: Request, name: str) -> str:
    """``__Host-<name>`` over https (Secure, Path=/, no Domain), ``<name>`` over plain http."""
    return f"__Host-{name}" if request.url.scheme == "https" else name


def set_cookie(
    response: Response, request: Request, name: str, value: str, *, max_age: int | None
) -> None:
    response.set_cookie(
        cookie_name(request, name),
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def delete_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(
        cookie_name(request, name),
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


@dataclass
class Visitor:
    """Whoever opened a page: signed in (``user``) or not, with their CSRF key."""

    request: Request
    runtime: KouzaRuntime
    token: str | None
    anonymous: str
    user: User | None
    new_anonymous: bool = False
    cookies_to_set: dict[str, tuple[str, int | None]] = field(default_factory=dict)

    @property
    def session_key(self) -> str:
        return f"token:{self.token}" if self.token else f"visitor:{self.anonymous}"

    @property
    def csrf(self) -> str:
        return csrf_token(self.runtime.secret, self.session_key)

    def csrf_ok(self, form_value: str) -> bool:
        """The form's ``csrf_token`` (or the ``X-CSRF-Token`` header) matches this session."""
        sent = form_value or self.request.headers.get(CSRF_HEADER, "")
        return csrf_valid(self.runtime.secret, self.session_key, sent)

    @property
    def language(self) -> str:
        return choose_language(self.request, CATALOG.languages)

    def t(self, key: str, **fields: Any) -> str:
        return CATALOG.text(key, self.language, **fields)

    @property
    def signed_in(self) -> User:
        assert self.user is not None, "page requires a signed-in visitor"
        return self.user


def get_visitor(request: Request) -> Visitor:
    runtime = get_runtime(request)
    assert isinstance(runtime, KouzaRuntime)
    token = request.cookies.get(cookie_name(request, SESSION_COOKIE)) or None
    user = None
    if token:
        try:
            with runtime.db.unit_of_work() as session:
                user = identity.authenticate(session, token)
                session.expunge(user)
        except InvalidToken:
            token = None
    anonymous = request.cookies.get(cookie_name(request, ANONYMOUS_COOKIE), "")
    visitor = Visitor(request, runtime, token, anonymous or random_token(), user)
    visitor.new_anonymous = not anonymous
    return visitor


VisitorDep = Annotated[Visitor, Depends(get_visitor)]


def render(
    visitor: Visitor,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """``template`` with what every page needs: the visitor, CSRF, the device list for the
    browser's key store, and the cookies this visit must set."""
    request = visitor.request
    base: dict[str, Any] = {
        "csrf": visitor.csrf,
        "visitor": visitor,
        "user": visitor.user,
        "devices": [],
        "message": None,
        "message_kind": "info",
        "error": None,
        "errors": {},
    }
    if visitor.user is not None:
        with visitor.runtime.db.unit_of_work() as session:
            base["devices"] = [
                {"id": str(device.id), "thumbprint": device.thumbprint}
                for device in identity.devices_of(session, visitor.user)
            ]
    response = PAGES.render(
        request, template, {**base, **dict(context or {})}, status_code=status_code, headers=headers
    )
    finish(visitor, response)
    return response


def finish(visitor: Visitor, response: Response) -> Response:
    """Set the cookies this visit owes (the anonymous CSRF key, the language, others)."""
    request = visitor.request
    if visitor.new_anonymous and visitor.token is None:
        set_cookie(response, request, ANONYMOUS_COOKIE, visitor.anonymous, max_age=None)
    language = request.query_params.get("lang")
    if language in CATALOG.languages:
        response.set_cookie(LANGUAGE_COOKIE, language, path="/", samesite="lax", httponly=True)
    for name, (value, max_age) in visitor.cookies_to_set.items():
        set_cookie(response, request, name, value, max_age=max_age)
    return response


def redirect(visitor: Visitor, path: str) -> Response:
    """303 to one of our own pages (never to a URL a form named)."""
    return finish(visitor, RedirectResponse(path, status_code=303))


def to_sign_in(visitor: Visitor) -> Response:
    return redirect(visitor, "/app/signin")


def forbidden_csrf(visitor: Visitor, template: str, context: Mapping[str, Any]) -> Response:
    """A form without this session's CSRF token: 403, nothing done."""
    error = BadRequest(visitor.t("error.csrf"))
    return render(
        visitor,
        template,
        {**dict(context), "error": describe(visitor, error)},
        status_code=403,
    )


def refused(
    visitor: Visitor, template: str, error: KouzaError, context: Mapping[str, Any] | None = None
) -> Response:
    """The page again with the service's refusal (its status; 401 sends to sign-in)."""
    if isinstance(error, InvalidToken):
        return to_sign_in(visitor)
    return render(
        visitor,
        template,
        {**dict(context or {}), "error": describe(visitor, error)},
        status_code=error.status_code,
    )


@dataclass(frozen=True)
class Refusal:
    """A refusal as a page shows it: a lead in the page's language, the service's message, and
    (for a step-up) the purpose the SMS code would be for."""

    code: str
    lead: str
    message: str
    step_up_purpose: str | None = None
    reference: str | None = None


def describe(visitor: Visitor, error: KouzaError) -> Refusal:
    key = f"error.{error.code}"
    lead = visitor.t(key) if key in CATALOG.messages else visitor.t("error.generic")
    details = error.shown_details
    purpose = details.get("purpose")
    methods = details.get("methods")
    sms_possible = error.code == "step_up_required" and (
        not isinstance(methods, list) or "sms_otp" in methods
    )
    reference = details.get("reference")
    return Refusal(
        code=error.code,
        lead=lead,
        message=error.message,
        step_up_purpose=str(purpose) if purpose and sms_possible else None,
        reference=str(reference) if reference else None,
    )


def parse_yen(text: str) -> int | None:
    """A positive whole yen amount typed in a form (``1,000``, ``１０００`` and ``¥1000`` too)."""
    cleaned = text.strip().translate(_FULL_WIDTH).replace(",", "").replace("¥", "")
    cleaned = cleaned.replace("円", "").strip()
    if not cleaned.isascii() or not cleaned.isdigit() or len(cleaned) > 12:
        return None
    amount = int(cleaned)
    return amount if 0 < amount <= 10_000_000_000 else None


_FULL_WIDTH = str.maketrans("０１２３４５６７８９，￥", "0123456789,¥")


def parse_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        return None
