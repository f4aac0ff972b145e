"""Prometheus metrics of one system: HTTP requests per route, the system's own counters, and
gauges read at scrape time — the only module that imports ``prometheus_client``.

Each runtime owns a :class:`Metrics` (the wallet's ``kouza.runtime.WalletMetrics``, the bank's
``kouza.bank.runtime.BankMetrics``) with its own registry, so the simulator's isolated kouza
instances, or a wallet and a bank in one test process, never count into each other. A domain
counts through a :class:`Count` declared on its system's metrics
(``runtime_of(session).metrics.link_refusals.inc(bank=…, reason=…)``) and never touches
Prometheus.

Several server processes (``kouza serve --workers N``) answer ``/metrics`` in turn, so each
must report the sum over all of them: when ``PROMETHEUS_MULTIPROC_DIR`` is set (the serve
command sets it to a fresh directory before it starts the workers), counters and histograms
write to memory-mapped files there and a scrape adds up every process's files
(``MultiProcessCollector``); gauges read at scrape time (:meth:`Metrics.read_at_scrape`) come
from the database, the same whichever process answers.

Labels are bounded: the HTTP metrics carry the route *template* (``/v1/wallets/{wallet_id}``),
never the raw path, and callers pass only values from closed sets (codes, outcomes, rule ids).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""Where the server processes of one ``kouza serve --workers N`` keep their metric files."""
CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The media type of :meth:`Metrics.exposition` (Prometheus text exposition format)."""
DURATION_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Request duration buckets (seconds): the API's work is milliseconds, a bank call tens."""
UNMATCHED_ROUTE = "unmatched"
"""The route label of a request no route matched (a 404): never its raw path."""

disable_created_metrics()  # type: ignore[no-untyped-call]  # no ``*_created`` series: they would double every family's size

GaugeRows = Iterable[tuple[Sequence[str], float]]
"""What a scrape-time reader returns: one (label values, value) per series."""


class Count:
    """A counter family with fixed label names; :meth:`inc` with one value per label."""

    def __init__(self, counter: Counter, labels: Sequence[str]) -> None:
        self._counter = counter
        self.labels = tuple(labels)

    def inc(self, amount: float = 1, **labels: str) -> None:
        """Add ``amount`` to the series of ``labels`` (every label name, nothing else)."""
        if labels:
            self._counter.labels(**labels).inc(amount)
        else:
            self._counter.inc(amount)

    def value(self, **labels: str) -> float:
        """This process's current value of one series (0 if never counted) — for tests."""
        for metric in self._counter.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.labels == labels:
                    return float(sample.value)
        return 0.0


@dataclass
class _ScrapeGauge:
    name: str
    documentation: str
    labels: tuple[str, ...]
    read: Callable[[], GaugeRows]


class _ScrapeGauges(Collector):
    """Gauges computed when scraped (one database read per scrape, whichever process)."""

    def __init__(self) -> None:
        self.gauges: dict[str, _ScrapeGauge] = {}

    def collect(self) -> Iterator[Metric]:
        for gauge in self.gauges.values():
            family = GaugeMetricFamily(gauge.name, gauge.documentation, labels=gauge.labels)
            for values, value in gauge.read():
                family.add_metric(list(values), value)
            yield family

    def describe(self) -> Iterator[Metric]:
        return iter(())  # the families are named only when read


class Metrics:
    """A system's metrics: its registry, the HTTP request metrics, and what it declares."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._scrape_time = _ScrapeGauges()
        self.registry.register(self._scrape_time)
        route = ("method", "route", "status")
        self.requests = Counter(
            "kouza_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            route,
            registry=self.registry,
        )
        self.errors = Counter(
            "kouza_http_request_errors",
            "HTTP requests answered with a server error (5xx), by method, route and status.",
            route,
            registry=self.registry,
        )
        self.duration = Histogram(
            "kouza_http_request_duration_seconds",
            "Time from the request's arrival to the end of its response, by method and route.",
            ("method", "route"),
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Count:
        """Declare a counter ``<name>_total`` in this system's registry."""
        return Count(Counter(name, documentation, labels, registry=self.registry), labels)

    def read_at_scrape(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str],
        read: Callable[[], GaugeRows],
    ) -> None:
        """A gauge family computed by ``read`` at each scrape (declaring it again replaces it)."""
        self._scrape_time.gauges[name] = _ScrapeGauge(name, documentation, tuple(labels), read)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered HTTP request."""
        code = str(status)
        self.requests.labels(method, route, code).inc()
        if status >= 500:
            self.errors.labels(method, route, code).inc()
        self.duration.labels(method, route).observe(seconds)

    def exposition(self) -> bytes:
        """The text a scrape gets: every process's counters when several serve (see the
        module docstring), plus the gauges read now."""
        directory = os.environ.get(MULTIPROCESS_ENV, "")
        if not directory:
            return generate_latest(self.registry)
        registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        registry.register(self._scrape_time)
        return generate_latest(registry)


def sample_value(text: str, name: str, labels: Mapping[str, str] | None = None) -> float | None:
    """The value of one sample in an exposition ``text`` (None if absent) — for tests and
    tools that read ``/metrics``."""
    wanted = dict(labels or {})
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == wanted:
                return float(sample.value)
    return None


@contextmanager
def shared_between_processes() -> Iterator[str]:
    """Around serving with several processes: each process's counters go to files in one
    directory that every scrape adds up (``PROMETHEUS_MULTIPROC_DIR``) — a fresh temporary
    directory, removed afterwards, unless the operator set one (kept: it is theirs). The
    worker processes must start inside this block (they read the variable at import)."""
    existing = os.environ.get(MULTIPROCESS_ENV, "")
    if existing:
        yield existing
        return
    directory = tempfile.mkdtemp(prefix="kouza-metrics-")
    os.environ[MULTIPROCESS_ENV] = directory
    try:
        yield directory
    finally:
        os.environ.pop(MULTIPROCESS_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)
