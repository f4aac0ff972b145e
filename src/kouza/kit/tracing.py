"""OpenTelemetry traces across the wallet and the bank, off unless an exporter is configured.

:func:`configure_tracing` gives this process a tracer provider whose spans go to the exporter
the settings name: ``none`` (the default: no provider, nothing instrumented, no cost),
``console`` (each finished span as JSON on stderr) or ``otlp`` (OTLP over HTTP to a collector,
``KOUZA_OTEL_ENDPOINT``). Tracing belongs to the process, like its exporter; everything built
afterwards is instrumented with that provider by the code that builds it:

* each FastAPI app (:func:`instrument_app`, from ``kouza.kit.web.create_api``): a server span
  per request, continuing the caller's trace from its ``traceparent`` header;
* each database engine (:func:`instrument_engine`, from ``BaseRuntime.open_database``): a span
  per statement;
* each outgoing ``httpx`` client (:func:`instrument_http_client`): the wallet's client of the
  bank and the bank's webhook client — a client span per call, and the ``traceparent`` header
  (W3C trace context) that makes the other side's server span a child of it;
* each Redis client (:func:`instrument_redis`): the shared risk feature store.

Objects are instrumented one by one with the process's provider, not by patching the
libraries, so a test can trace into an in-memory exporter (:func:`use_tracer_provider`) and
put everything back afterwards. The SDK, the instrumentations and the OTLP exporter are imported
only when tracing is on: together they add about 7% to every ``kouza`` command's start-up
(``python -X importtime``: 0.71 s beside 10.8 s for ``kouza.cli.main`` on a loaded machine).
"""

from __future__ import annotations

import sys
import weakref
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from fastapi import FastAPI
from sqlalchemy import Engine
from structlog.typing import EventDict, WrappedLogger

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

Exporter = Literal["none", "console", "otlp"]
OTLP_TRACES_PATH = "/v1/traces"
UNTRACED_PATHS = "/metrics,/health"
"""Paths whose requests make no span (scrapes and liveness probes, every few seconds)."""

_provider: TracerProvider | None = None
_traced_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def otlp_endpoint(endpoint: str) -> str | None:
    """The OTLP/HTTP traces URL for ``endpoint``: a collector's base URL gets ``/v1/traces``;
    empty means the exporter's own default (``OTEL_EXPORTER_OTLP_*``, else localhost:4318)."""
    if not endpoint:
        return None
    if urlsplit(endpoint).path in ("", "/"):
        return endpoint.rstrip("/") + OTLP_TRACES_PATH
    return endpoint


def _exporter(kind: Exporter, endpoint: str) -> SpanExporter:
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    if kind == "console":
        return ConsoleSpanExporter(out=sys.stderr)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=otlp_endpoint(endpoint))


def configure_tracing(*, exporter: Exporter, endpoint: str, service_name: str) -> None:
    """Trace this process into ``exporter`` (``none`` turns tracing off)."""
    if exporter == "none":
        use_tracer_provider(None)
        return
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    spans = _exporter(exporter, endpoint)
    # console: each span as it ends (development); OTLP: batched off the request path
    processor = SimpleSpanProcessor(spans) if exporter == "console" else BatchSpanProcessor(spans)
    provider.add_span_processor(processor)
    use_tracer_provider(provider)


def use_tracer_provider(provider: TracerProvider | None) -> None:
    """Trace what is built from now on into ``provider`` (None: stop tracing new objects)."""
    global _provider
    if _provider is not None and _provider is not provider:
        _provider.shutdown()
    _provider = provider


def tracer_provider() -> TracerProvider | None:
    """This process's tracer provider, or None when tracing is off."""
    return _provider


def instrument_app(app: FastAPI) -> None:
    """A server span per request of ``app`` (continuing the caller's trace)."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=_provider,
        meter_provider=_no_metrics(),
        excluded_urls=UNTRACED_PATHS,
    )


def instrument_engine(engine: Engine) -> None:
    """A span per SQL statement on ``engine`` (once per engine)."""
    if _provider is None or engine in _traced_engines:
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.trace import get_tracer

    tracer = get_tracer("opentelemetry.instrumentation.sqlalchemy", tracer_provider=_provider)
    connections = (
        _no_metrics().get_meter("kouza").create_up_down_counter("db.client.connections.usage")
    )
    EngineTracer(tracer, engine, connections)  # type: ignore[no-untyped-call]
    _traced_engines.add(engine)


def instrument_http_client(client: Any) -> None:
    """A client span per call of the ``httpx.Client`` and its ``traceparent`` header."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(
        client, tracer_provider=_provider, meter_provider=_no_metrics()
    )


def instrument_redis(client: Any) -> None:
    """A span per command of the Redis ``client``."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor.instrument_client(client, tracer_provider=_provider)


def _no_metrics() -> Any:
    """OpenTelemetry metrics are off: Prometheus (:mod:`kouza.kit.metrics`) counts."""
    from opentelemetry.metrics import NoOpMeterProvider

    return NoOpMeterProvider()


def add_trace_context(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """structlog processor: a line logged inside a span carries its ``trace_id`` and
    ``span_id`` (hex, as trace back ends show them) when this process traces."""
    if _provider is None:
        return event
    from opentelemetry.trace import get_current_span

    context = get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event
