"""How a kouza server process is observed: one middleware per app, one set-up per process.

:func:`observe` (called by :func:`kouza.kit.web.create_api` for both systems) puts
:class:`ObservedRequests` in front of the app — the request id in and out, a metrics sample
and one access log line per request — serves ``/metrics`` and, when tracing is on, a server
span per request. :func:`configure_process` is what a server command runs once before it
serves: logs (:mod:`kouza.kit.logs`) and traces (:mod:`kouza.kit.tracing`) as the settings
say. Metrics need no process set-up beyond ``PROMETHEUS_MULTIPROC_DIR`` when several
processes serve (:mod:`kouza.kit.metrics`).
"""

from __future__ import annotations

from time import perf_counter

from fastapi import FastAPI
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kouza.kit import tracing
from kouza.kit.logs import (
    REQUEST_ID_HEADER,
    accept_request_id,
    bind_request_id,
    configure_logging,
    get_logger,
)
from kouza.kit.metrics import CONTENT_TYPE, UNMATCHED_ROUTE, Metrics
from kouza.kit.settings import BaseServiceSettings

METRICS_PATH = "/metrics"
_REQUEST_ID_KEY = REQUEST_ID_HEADER.lower().encode("latin-1")
_access = get_logger("kouza.access")


def route_of(scope: Scope) -> str:
    """The template of the route that served ``scope`` (``/v1/wallets/{wallet_id}``), never
    the raw path: ids in a label or a log line would be unbounded, and some are personal."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


def _offered_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == _REQUEST_ID_KEY:
            return bytes(value).decode("latin-1")
    return None


class ObservedRequests:
    """ASGI middleware: take the caller's ``X-Request-ID`` if well formed (else make one),
    bind it to every log line of the request and echo it in the answer; then count the
    request by method, route template and status, and log one access line."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics | None, access_log: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = accept_request_id(_offered_id(scope))
        bind_request_id(request_id)
        echoed = (_REQUEST_ID_KEY, request_id.encode("latin-1"))
        status = 500  # an exception that escapes is answered 500 by Starlette's outer layer
        started = perf_counter()

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", ()), echoed]}
            await send(message)

        try:
            await self.app(scope, receive, answer)
        finally:
            self._record(scope, status, perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = route_of(scope)
        method = str(scope.get("method", ""))
        if self.metrics is not None:
            self.metrics.observe_request(method, route, status, seconds)
        if self.access_log:
            client = scope.get("client")
            _access.info(
                "request",
                method=method,
                route=route,
                status=status,
                duration_ms=round(seconds * 1000, 2),
                client=client[0] if client else None,
            )


def observe(app: FastAPI, *, metrics: Metrics | None, access_log: bool = True) -> None:
    """Observe ``app``: request ids, per-route metrics served at ``/metrics`` (unless
    ``metrics`` is None), access lines, and server spans when this process traces."""
    if metrics is not None:
        _serve_metrics(app, metrics)
    app.add_middleware(ObservedRequests, metrics=metrics, access_log=access_log)
    tracing.instrument_app(app)


def _serve_metrics(app: FastAPI, metrics: Metrics) -> None:
    def scrape() -> Response:
        # a plain def: FastAPI runs it on a worker thread, as the gauges read the database
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    app.add_api_route(METRICS_PATH, scrape, methods=["GET"], include_in_schema=False)


def configure_process(settings: BaseServiceSettings) -> None:
    """Before serving: this process's logs and traces as ``settings`` say."""
    configure_logging(log_format=settings.log_format, level=settings.log_level)
    tracing.configure_tracing(
        exporter=settings.otel_exporter,
        endpoint=settings.otel_endpoint,
        service_name=settings.SERVICE_NAME,
    )
