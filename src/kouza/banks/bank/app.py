"""The bank's FastAPI application, startable alone (``kouza bank serve``) or mounted in-process.

Errors render as the wallet API renders them: ``{"error", "message", "details"}`` with a 4xx
status, and request validation failures as ``validation_error`` (422), never a trace; OAuth
errors (``kouza.banks.bank.oauth``) as OAuth does, ``{"error", "error_description"}`` with
their headers (``DPoP-Nonce``, ``WWW-Authenticate: DPoP``).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

import kouza
from kouza.banks.bank.endpoints import counter, router, wellknown
from kouza.banks.bank.oauth.endpoints import oauth_router
from kouza.banks.bank.oauth.errors import OAuthError
from kouza.banks.bank.runtime import BankRuntime
from kouza.errors import KouzaError
from kouza.kit.web import kouza_error_handler, validation_error_handler


async def _oauth_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OAuthError)
    headers = {"Cache-Control": "no-store", **exc.headers}
    return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=headers)


def create_bank_app(runtime: BankRuntime) -> FastAPI:
    """The bank API bound to ``runtime`` (its database must already be migrated)."""
    app = FastAPI(
        title="kouza bank API",
        version=kouza.__version__,
        description="A simulated bank (any number of bank codes): account linking for wallet "
        "operators, instant debits and credits under mandates, holder and branch-counter "
        "functions, signed webhooks. Amounts are integer yen.",
    )
    app.state.bank_runtime = runtime
    app.add_exception_handler(KouzaError, kouza_error_handler('Basic realm="bank", Bearer'))
    app.add_exception_handler(OAuthError, _oauth_error)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.include_router(wellknown)
    app.include_router(router)
    app.include_router(counter)
    app.include_router(oauth_router)

    @app.get("/health", tags=["meta"])
    def health() -> dict[str, str]:
        """Liveness: the process answers and its database is reachable."""
        with runtime.db.session() as session:
            session.connection()
        return {"status": "ok", "database": runtime.db.dialect}

    return app
