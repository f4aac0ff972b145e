"""The bank's FastAPI application, startable alone (``kouza bank serve``) or mounted in-process.

Errors render as the wallet API renders them — RFC 9457 problems (``application/problem+json``)
with kouza's ``error`` code, never a trace — except on the OAuth endpoints
(``/v1/banks/{code}/oauth/…``), which answer as OAuth does (RFC 6749 §5.2, RFC 9126 §2.3):
``{"error", "error_description"}`` as ``application/json``, 400 (401 for ``invalid_client``),
with their headers (``DPoP-Nonce``, ``WWW-Authenticate: DPoP``). There a request that fails
validation, or any other refusal, is an ``invalid_request``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

import kouza
from kouza.bank.endpoints import counter, router, wellknown
from kouza.bank.oauth.errors import InvalidRequest, OAuthError
from kouza.bank.oauth_endpoints import oauth_router
from kouza.bank.pages import mount_bank_static
from kouza.bank.portal.endpoints import portal_router
from kouza.bank.runtime import BankRuntime
from kouza.errors import KouzaError
from kouza.kit.tracing import instrument_engine
from kouza.kit.web import (
    create_api,
    describe_validation,
    http_error_handler,
    kouza_error_handler,
    validation_error_handler,
)

WWW_AUTHENTICATE = 'Basic realm="bank", Bearer'
OAUTH_PATHS = ("/v1/banks/{bank_code}/oauth/",)

Handler = Callable[[Request, Exception], Awaitable[Response]]


def oauth_response(error: OAuthError) -> JSONResponse:
    """``error`` as OAuth answers it (never cached)."""
    headers = {"Cache-Control": "no-store", **error.headers}
    return JSONResponse(error.to_dict(), status_code=error.status_code, headers=headers)


def _on_oauth_route(request: Request) -> bool:
    route = request.scope.get("route")
    path = getattr(route, "path_format", request.url.path)
    return any(path.startswith(prefix) for prefix in OAUTH_PATHS) or "/oauth/" in path


async def _oauth_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OAuthError)
    return oauth_response(exc)


def _oauth_on_oauth_routes(handler: Handler) -> Handler:
    """``handler`` elsewhere; on an OAuth route, the refusal as OAuth's ``invalid_request``."""

    async def handle(request: Request, exc: Exception) -> Response:
        if not _on_oauth_route(request):
            return await handler(request, exc)
        if isinstance(exc, RequestValidationError):
            problems = describe_validation(request, exc)
            detail = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
        elif isinstance(exc, KouzaError):
            detail = exc.message
        else:
            assert isinstance(exc, StarletteHTTPException)
            detail = str(exc.detail)
        if isinstance(exc, StarletteHTTPException) and exc.status_code in (405, 413):
            # not OAuth errors: the method is not served here / the body is over the limit
            return await handler(request, exc)
        return oauth_response(InvalidRequest(detail or "invalid request"))

    return handle


def create_bank_app(runtime: BankRuntime) -> FastAPI:
    """The bank API bound to ``runtime`` (its database must already be migrated)."""
    app = create_api(
        title="kouza bank API",
        version=kouza.__version__,
        description="A simulated bank (any number of bank codes): account linking for wallet "
        "operators, instant debits and credits under mandates, holder and branch-counter "
        "functions, signed webhooks. Amounts are integer yen. Errors are RFC 9457 problems "
        "(`application/problem+json`), except on the OAuth endpoints, which answer OAuth's "
        "`{error, error_description}`.",
        max_body_size=runtime.settings.max_request_body_bytes,
        www_authenticate=WWW_AUTHENTICATE,
        metrics=runtime.metrics if runtime.settings.metrics else None,
        access_log=runtime.settings.access_log,
    )
    app.state.bank_runtime = runtime
    instrument_engine(runtime.db.engine)  # built before tracing was set up (kouza bank serve)
    app.add_exception_handler(
        KouzaError, _oauth_on_oauth_routes(kouza_error_handler(WWW_AUTHENTICATE))
    )
    app.add_exception_handler(OAuthError, _oauth_error)
    app.add_exception_handler(
        RequestValidationError, _oauth_on_oauth_routes(validation_error_handler)
    )
    app.add_exception_handler(StarletteHTTPException, _oauth_on_oauth_routes(http_error_handler))
    app.include_router(wellknown)
    app.include_router(router)
    app.include_router(counter)
    app.include_router(oauth_router)
    app.include_router(portal_router)
    mount_bank_static(app)

    @app.get("/health", tags=["meta"])
    def health() -> dict[str, str]:
        """Liveness: the process answers and its database is reachable."""
        with runtime.db.session() as session:
            session.connection()
        return {"status": "ok", "database": runtime.db.dialect}

    return app
