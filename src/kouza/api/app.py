"""The wallet operator's FastAPI application.

:func:`create_app` wires the domain routers to a :class:`~kouza.kit.runtime.Runtime` and renders
every :class:`~kouza.errors.KouzaError` — and every request that fails validation — as a JSON
body ``{"error", "message", "details"}`` with a 4xx status, never a trace.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

import kouza
from kouza.banks.linking.endpoints import router as bank_linking_router
from kouza.errors import KouzaError
from kouza.identity.endpoints import router as identity_router
from kouza.kit.runtime import Runtime
from kouza.kit.web import kouza_error_handler, validation_error_handler
from kouza.ops.endpoints import router as ops_router
from kouza.risk.endpoints import router as risk_router
from kouza.wallet.endpoints import router as wallet_router


def create_app(runtime: Runtime) -> FastAPI:
    """The wallet API bound to ``runtime`` (its database must already be migrated)."""
    app = FastAPI(
        title="kouza wallet API",
        version=kouza.__version__,
        description="E-money wallet that tops up from bank accounts, hardened against the "
        "2020 Docomo Kouza fraud. Amounts are integer yen.",
    )
    app.state.runtime = runtime
    app.add_exception_handler(KouzaError, kouza_error_handler("Bearer"))
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.include_router(identity_router)
    app.include_router(wallet_router)
    app.include_router(ops_router)
    app.include_router(risk_router)
    app.include_router(bank_linking_router)

    @app.get("/health", tags=["meta"])
    def health() -> dict[str, str]:
        """Liveness: the process answers and its database is reachable."""
        with runtime.db.session() as session:
            session.connection()
        return {"status": "ok", "database": runtime.db.dialect}

    return app
