"""FastAPI plumbing shared by every domain's endpoints (no business words).

The runtime lives on ``app.state.runtime``. :data:`SessionDep` gives an endpoint the unit of
work of its request: committed after the endpoint returns, rolled back if it raises.
:func:`run_idempotent` is the unit of work for writes that carry an ``Idempotency-Key`` (the
claim, replay and conflict decisions are :mod:`kouza.kit.idempotency`'s).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from http import HTTPStatus
from typing import Any, Protocol, TypeVar, runtime_checkable
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import solve_dependencies
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kouza.errors import KouzaError
from kouza.kit import idempotency, text
from kouza.kit.logs import REQUEST_ID_HEADER, current_request_id
from kouza.kit.metrics import Metrics
from kouza.kit.observability import observe, route_of
from kouza.kit.openapi import PROBLEM_JSON, document_problems
from kouza.kit.runtime import BaseRuntime

M = TypeVar("M", bound=BaseModel)


DOCS_ASSETS = "/docs-assets"
"""Where Swagger UI's and ReDoc's JavaScript and CSS are served from (package fastapi-offline)."""
_log = logging.getLogger(__name__)
TEXT_PATTERNS = (text.SINGLE_LINE_PATTERN, text.MULTI_LINE_PATTERN)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "content_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}


def problem_type(code: str) -> str:
    """The RFC 9457 ``type`` URI of kouza error ``code`` (a URN: stable, never fetched)."""
    return f"urn:kouza:problem:{code}"


def problem_body(
    status: int,
    code: str,
    detail: str,
    *,
    details: dict[str, Any] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An RFC 9457 problem with kouza's extensions (``error``, ``message``, ``details``,
    ``errors``); ``error`` and ``message`` repeat the code and the detail for older clients."""
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "error": code,
        "message": detail,
    }
    if details:
        body["details"] = details
    if errors is not None:
        body["errors"] = errors
    return body


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    details: dict[str, Any] | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A problem details response (``application/problem+json``)."""
    return JSONResponse(
        problem_body(status, code, detail, details=details, errors=errors),
        status_code=status,
        headers=dict(headers or {}) or None,
        media_type=PROBLEM_JSON,
    )


_UNDECODABLE = {"field": "body", "problem": "not UTF-8 JSON"}
MAX_BIGINT = 2**63 - 1
"""The largest id a caller may send (a signed 64-bit column; larger overflowed into a 500)."""


def _describe(error: Any) -> dict[str, Any]:
    location = ".".join(str(part) for part in error.get("loc", ()))
    pattern = (error.get("ctx") or {}).get("pattern")
    if error.get("type") == "string_pattern_mismatch" and pattern in TEXT_PATTERNS:
        return {"field": location, "problem": text.PROBLEM}
    return {"field": location, "problem": error.get("msg", "invalid")}


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def describe_validation(request: Request, exc: RequestValidationError) -> list[dict[str, Any]]:
    """Every problem of a request that failed validation, as ``{field, problem}``."""
    problems = [_describe(error) for error in exc.errors()]
    content_type = request.headers.get("content-type", "")
    body_problem = any(p["field"] == "body" or p["field"].startswith("body.") for p in problems)
    if body_problem and content_type and not _is_json(content_type):
        problems.insert(
            0,
            {"field": "body", "problem": f"send the body as application/json, not {content_type}"},
        )
    return problems


async def _authenticate_first(request: Request, exc: RequestValidationError) -> None:
    """Authentication before the body: FastAPI decodes a JSON body before it runs any
    dependency, so an undecodable body would answer 422 to a caller who is not even
    authenticated. When that happens, run the route's authentication dependencies (those built
    on a security scheme) now; a missing or bad credential raises its 401 instead."""
    if not any(error.get("type") == "json_invalid" for error in exc.errors()):
        return  # every other validation error is found after the dependencies ran
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    guards = [dep for dep in route.dependant.dependencies if _uses_security(dep)]
    if not guards:
        return
    dependant = Dependant(path=route.path_format, dependencies=guards)
    async with AsyncExitStack() as stack:
        solved = await solve_dependencies(
            request=request,
            dependant=dependant,
            body=None,
            async_exit_stack=stack,
            embed_body_fields=False,
        )
    for value in solved.values.values():
        if isinstance(value, DeferredAuthentication):
            await run_in_threadpool(value.authenticate_now, request)


@runtime_checkable
class DeferredAuthentication(Protocol):
    """A security dependency whose credential is checked later, inside the request's own unit
    of work (``kouza.identity.dependencies.TokenCaller``); an undecodable body has it checked
    at once, so a bad credential still answers 401 before the 422."""

    def authenticate_now(self, request: Request) -> None: ...


def _uses_security(dependant: Dependant) -> bool:
    return isinstance(dependant.call, SecurityBase) or any(
        _uses_security(sub) for sub in dependant.dependencies
    )


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    """A request that failed validation: 422 with every problem — unless the caller is not
    authenticated, which is said first (401)."""
    assert isinstance(exc, RequestValidationError)
    try:
        await _authenticate_first(request, exc)
    except KouzaError as refusal:
        handlers = request.app.exception_handlers
        handler = next(handlers[kind] for kind in type(refusal).__mro__ if kind in handlers)
        answer: Response = await handler(request, refusal)
        return answer
    problems = describe_validation(request, exc)
    message = "; ".join(f"{p['field']}: {p['problem']}" for p in problems) or "invalid request"
    return problem_response(
        422, "validation_error", message, details={"problems": problems}, errors=problems
    )


def kouza_error_handler(
    www_authenticate: str,
) -> Callable[[Request, Exception], Awaitable[Response]]:
    """A handler rendering any KouzaError as a problem response with its status (401s get the
    ``WWW-Authenticate`` challenge)."""

    async def handle(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, KouzaError)
        headers = {"WWW-Authenticate": www_authenticate} if exc.status_code == 401 else {}
        retry_after = exc.details.get("retry_after")
        if exc.status_code == 429 and isinstance(retry_after, int):
            headers["Retry-After"] = str(retry_after)
        return problem_response(
            exc.status_code,
            exc.code,
            exc.message,
            details=exc.shown_details or None,
            headers=headers or None,
        )

    return handle


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """Every method a route of ``request``'s path answers (the ``Allow`` of a 405).

    Starlette's 405 names only the methods of the first route whose path matched, so a path
    served by two routes (``GET`` and ``POST /v1/wallets``) answered ``Allow: POST``."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    )


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (unknown route 404, 405 with ``Allow``, 413 body too large,
    400 unparsable form) as problem responses."""
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    headers = exc.headers
    if status == 405 and (allow := allowed_methods(request)):
        headers = {**(headers or {}), "Allow": allow}
    code = _HTTP_CODES.get(status, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
    if status == 404 and detail == "Not Found":
        detail = "no such resource"
    if status == 400 and detail == "There was an error parsing the body":
        # FastAPI's answer to a JSON body that is not UTF-8: like any undecodable body, a 422
        return problem_response(
            422,
            "validation_error",
            "body: not UTF-8 JSON",
            details={"problems": [_UNDECODABLE]},
            errors=[_UNDECODABLE],
        )
    return problem_response(status, code, detail, headers=headers)


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    """A bug: 500 as a problem with no detail of the failure (it is logged, not returned,
    under the request id the answer carries)."""
    _log.error(
        "unhandled error on %s %s",
        request.method,
        route_of(request.scope),
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    request_id = current_request_id()
    return problem_response(
        500,
        "internal_error",
        "internal error; it has been logged",
        headers={REQUEST_ID_HEADER: request_id} if request_id else None,
    )


def install_error_handlers(app: FastAPI, *, www_authenticate: str) -> None:
    """Render every error of ``app`` as ``application/problem+json``."""
    app.add_exception_handler(KouzaError, kouza_error_handler(www_authenticate))
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)


def client_ip(request: Request) -> str:
    """The caller's IP address (the socket peer; a proxy setup would read X-Forwarded-For)."""
    return request.client.host if request.client else "0.0.0.0"


def run_idempotent(
    runtime: BaseRuntime[Any],
    *,
    scope: str | Callable[[Session], str],
    key: str,
    request_payload: Any,
    model: type[M],
    operation: Callable[[Session], M],
    status_code: int = 201,
) -> M:
    """Run ``operation`` once per (scope, key); replay its result on a retry of the same request.

    One transaction (:func:`kouza.kit.idempotency.run_in_one`): ``scope`` — or, given a callable,
    what it answers in that transaction (the endpoint authenticating its caller there, rather
    than in a transaction of its own) — the key's record, the operation and its stored answer
    commit together. The operation never attaches anything, so a failure leaves no key behind
    and there is never anything to resume."""
    scope_of = scope if callable(scope) else (lambda _session: scope)
    outcome = idempotency.run_in_one(
        runtime,
        key=key,
        fingerprint=idempotency.request_hash(request_payload),
        scope_of=scope_of,
        operation=operation,
        answer=lambda result: result.model_dump(mode="json"),
        status_code=status_code,
    )
    if isinstance(outcome, idempotency.Replay):
        return model.model_validate(outcome.body)
    return outcome


class ContentTooLarge(StarletteHTTPException):
    """The request body is over the limit (rendered by :func:`http_error_handler`)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class BodySizeLimit:
    """ASGI middleware: refuse a request body over ``limit`` bytes with a 413 problem.

    A declared ``Content-Length`` over the limit is refused before anything is read; otherwise
    the bytes are counted as they stream in (chunked bodies too), and the read that crosses the
    limit raises :class:`ContentTooLarge` — so no more than ``limit`` bytes are ever buffered.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            error = ContentTooLarge(self.limit)
            await problem_response(413, "content_too_large", str(error.detail))(
                scope, receive, send
            )
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise ContentTooLarge(self.limit)
            return message

        await self.app(scope, counted, send)


class RefuseUnsafeText:
    """ASGI middleware: a path or query string with a control character or a bidi override
    is a 422 before routing — the check :data:`kouza.kit.text.Text` makes on bodies, for the
    strings no schema covers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = _unsafe_location(scope)
            if problem is not None:
                field, character = problem
                detail = f"{field}: {text.PROBLEM} ({character})"
                await problem_response(
                    422,
                    "validation_error",
                    detail,
                    details={"problems": [{"field": field, "problem": text.PROBLEM}]},
                    errors=[{"field": field, "problem": text.PROBLEM}],
                )(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _unsafe_location(scope: Scope) -> tuple[str, str] | None:
    found = text.unsafe_character(scope.get("path", ""))
    if found is not None:
        return "path", found
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        found = text.unsafe_character(name) or text.unsafe_character(value)
        if found is not None:
            return f"query.{text.printable(name)}", found
    return None


def create_api(
    *,
    title: str,
    version: str,
    description: str,
    max_body_size: int,
    www_authenticate: str,
    metrics: Metrics | None = None,
    access_log: bool = True,
) -> FastAPI:
    """A FastAPI app with kouza's conventions: problem-details errors documented on every
    operation, request bodies capped at ``max_body_size`` bytes (413 before the excess is
    read), Swagger UI / ReDoc served from the app's own assets (no CDN), and observed
    (:func:`kouza.kit.observability.observe`: request ids, ``metrics`` at ``/metrics``, access
    lines, traces) — outermost, so that refusals before routing are counted too."""
    app = FastAPIOffline(
        title=title, version=version, description=description, static_url=DOCS_ASSETS
    )
    app.add_middleware(BodySizeLimit, limit=max_body_size)
    app.add_middleware(RefuseUnsafeText)
    install_error_handlers(app, www_authenticate=www_authenticate)
    document_problems(app)
    observe(app, metrics=metrics, access_log=access_log)
    return app
