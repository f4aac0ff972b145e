"""The wallet operator's FastAPI application.

:func:`create_app` wires the domain routers to a :class:`~kouza.runtime.Runtime` and renders
every :class:`~kouza.errors.KouzaError` — and every request that fails validation, an unknown
route, a body over the size limit — as an RFC 9457 problem (``application/problem+json``) with
kouza's ``error`` code, never a trace (see ``kouza.kit.web``). It is observed as
``docs/observability.md`` describes: a request id on every answer and log line, Prometheus
metrics at ``/metrics`` (requests per route, the fraud desk's counters and gauges), and traces
when the process has an exporter (:func:`serve_app` sets logs and traces up from settings).
"""

from __future__ import annotations

import gc

from fastapi import FastAPI

import kouza
from kouza.assembly import build_runtime
from kouza.config import get_settings
from kouza.console.app import install as install_console
from kouza.identity.endpoints import router as identity_router
from kouza.kit.observability import configure_process
from kouza.kit.tracing import instrument_engine
from kouza.kit.web import create_api
from kouza.linking.endpoints import router as bank_linking_router
from kouza.ops.endpoints import router as ops_router
from kouza.ops.settings_endpoints import router as ops_settings_router
from kouza.ops.watch import watch
from kouza.risk.endpoints import router as risk_router
from kouza.runtime import Runtime
from kouza.wallet.endpoints import router as wallet_router
from kouza.wallet.endpoints import takeover_router
from kouza.webapp.routes import install as install_customer_pages


def create_app(runtime: Runtime) -> FastAPI:
    """The wallet API bound to ``runtime`` (its database must already be migrated)."""
    settings = runtime.settings
    app = create_api(
        title="kouza wallet API",
        version=kouza.__version__,
        description="E-money wallet that tops up from bank accounts, hardened against the "
        "2020 Docomo Kouza fraud. Amounts are integer yen. Every error is an RFC 9457 problem "
        "(`application/problem+json`) whose `error` member is kouza's error code.",
        max_body_size=settings.max_request_body_bytes,
        www_authenticate="Bearer",
        metrics=runtime.metrics if settings.metrics else None,
        access_log=settings.access_log,
    )
    if settings.metrics:
        watch(runtime)
    instrument_engine(runtime.db.engine)  # built before tracing was set up (kouza serve)
    app.state.runtime = runtime
    # Risk first: FastAPI tries routes in the order they were included, and /v1/ops/risk/assess
    # is called for every sensitive action — behind the other routers it was matched against
    # 57 routes per request, about a tenth of the CPU the whole request costs in-process.
    app.include_router(risk_router)
    app.include_router(identity_router)
    app.include_router(takeover_router)
    app.include_router(wallet_router)
    app.include_router(ops_router)
    app.include_router(ops_settings_router)
    app.include_router(bank_linking_router)
    install_console(app)
    install_customer_pages(app)

    @app.get("/health", tags=["meta"])
    def health() -> dict[str, str]:
        """Liveness: the process answers and its database is reachable."""
        with runtime.db.session() as session:
            session.connection()
        return {"status": "ok", "database": runtime.db.dialect}

    return app


def serve_app() -> FastAPI:
    """The API of one server process, configured from ``KOUZA_*`` — the uvicorn factory behind
    ``kouza serve --workers N`` (each worker calls it; the parent has applied the migrations
    and, when several serve, set ``PROMETHEUS_MULTIPROC_DIR`` for their metrics)."""
    settings = get_settings()
    configure_process(settings)
    app = create_app(build_runtime(settings))
    settle_heap()
    return app


def settle_heap() -> None:
    """Once a server process has built its app: everything alive then lives as long as the
    process, so move it out of the garbage collector's sight (``gc.freeze``). A full collection
    over the ~200,000 objects of a started app took 50–150 ms here, and each one stalls every
    request in flight; after the freeze a full collection walks only what came later."""
    gc.collect()
    gc.freeze()
