"""Structured logs: one JSON object per line on stderr, with the request id, and no secret.

:func:`configure_logging` routes everything that logs — kouza's own ``structlog`` loggers and
every standard-library logger (uvicorn, httpx, SQLAlchemy, …) — through one handler whose
processors add the time, level, logger name and the bound context (``request_id``), mask
secrets, and render JSON (``KOUZA_LOG_FORMAT=json``, the default of the servers) or an
aligned, human line (``console``). It is called by the server commands only: every other
``kouza`` command prints for a person on stdout and leaves logging alone.

Secrets are masked twice (:func:`redact_secrets`): the value of any key that names one
(``password``, ``pin``, ``otp``, ``token``, ``authorization``, ``client_assertion``, …) is
replaced, and inside every string credentials are cut out wherever they show their shape —
``Bearer``/``DPoP``/``Basic`` credentials, compact JWTs, and ``name=value`` pairs whose name is
a secret's. The code never logs a body or a header on purpose; this is the net under it.

The request id (:data:`REQUEST_ID_HEADER`) of the request being served lives in a context
variable (:func:`bind_request_id`): every line logged while serving it carries it, and the
wallet's HTTP client to the bank forwards it (:func:`forward_request_id`), so the bank's lines
for that call carry the same id.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import uuid
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any, Literal, TextIO

import httpx
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from kouza.kit.tracing import add_trace_context

LogFormat = Literal["json", "console"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

REQUEST_ID_HEADER = "X-Request-ID"
_WELL_FORMED_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_request_id: ContextVar[str | None] = ContextVar("kouza_request_id", default=None)

REDACTED = "[redacted]"
_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "pin",
        "otp",
        "totp",
        "secret",
        "token",
        "authorization",
        "cookie",
        "assertion",
        "credential",
        "credentials",
        "dpop",
        "seed",
        "verifier",
        "signature",
        "apikey",
        "private",
    }
)
"""A key with any of these words (split on ``_``/``-``) holds a secret."""
_SECRET_KEYS = frozenset({"code", "state", "api_key", "set_cookie", "sms_code", "email_code"})
"""Whole keys that hold a secret although their words alone are harmless (``bank_code`` is not
one, an OAuth ``code`` is)."""
_SECRET_NAME = (
    r"(?:[A-Za-z]+[_-])*(?:password|passwd|pin|otp|totp|secret|token|assertion|verifier)"
    r"(?:[_-][A-Za-z]+)*|code|state"
)
_PATTERNS = (
    (re.compile(r"(?i)\b(Bearer|DPoP|Basic)(\s+)[^\s,;\"']+"), rf"\1\2{REDACTED}"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){2,4}"), REDACTED),
    (re.compile(rf"(?i)\b({_SECRET_NAME})=[^&\s\"',;]+"), rf"\1={REDACTED}"),
    (re.compile(rf"(?i)\"({_SECRET_NAME})\"(\s*:\s*)\"[^\"]*\""), rf'"\1"\2"{REDACTED}"'),
)
_DROPPED = ("color_message", "message", "_from_structlog", "_record")
"""Copies of the event (uvicorn's coloured one, the formatter's) and structlog's internals."""


_SUSPECT = re.compile(r"[=\"]|eyJ|(?i:bearer|dpop|basic)")
"""What every string :data:`_PATTERNS` can match contains: most values (a route, an address, a
request id) contain none of it and are passed by one search instead of four substitutions."""


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether a field named ``key`` holds a secret (see the module docstring)."""
    name = key.lower().replace("-", "_")
    return name in _SECRET_KEYS or not _SECRET_WORDS.isdisjoint(name.split("_"))


def mask(text: str) -> str:
    """``text`` with every credential that shows its shape cut out."""
    if _SUSPECT.search(text) is None:
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, Mapping):
        return {
            key: REDACTED if is_secret_key(str(key)) else _redacted(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_redacted(item) for item in value]
    return value


def redact_secrets(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """structlog processor: no secret value leaves in a log line (see the module docstring)."""
    for key in list(event):
        if key in _DROPPED:
            continue
        event[key] = REDACTED if is_secret_key(key) else _redacted(event[key])
    return event


def _drop_internals(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    for key in _DROPPED:
        event.pop(key, None)
    return event


_SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    add_trace_context,
]
_handler: logging.Handler | None = None


def _route_structlog_through_logging() -> None:
    """structlog's loggers hand their lines to the standard library's logging (done at import:
    unconfigured, structlog would print every line on stdout, where the CLI talks to people;
    this way a line goes nowhere until :func:`configure_logging` installs the handler)."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def configure_logging(
    *, log_format: LogFormat = "json", level: LogLevel = "INFO", stream: TextIO | None = None
) -> None:
    """Send every log line of this process, masked, as ``log_format`` to ``stream``
    (stderr); calling it again replaces the previous configuration."""
    global _handler
    # what our lines never show, the standard library need not collect for every record (the
    # logging HOWTO's "Optimization": no caller frame walk, no thread or process names)
    _collected.setdefault("flags", _collection_flags())
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    output = stream if stream is not None else sys.stderr
    renderer: Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    handler = logging.StreamHandler(output)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*_SHARED, structlog.stdlib.ExtraAdder()],
            processors=[
                _drop_internals,
                structlog.processors.format_exc_info,
                redact_secrets,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    root.setLevel(level)
    _handler = handler
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)  # uvicorn's own handlers would print them unmasked
        logger.handlers.clear()
        logger.propagate = True
    # SQLAlchemy logs every statement at INFO and every row at DEBUG: statements (parameters
    # hidden, kouza.kit.db) only when DEBUG is asked for, rows never — a row can hold what
    # must not leave the database; SQL is in the traces
    sql = logging.INFO if level == "DEBUG" else logging.WARNING
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    logging.getLogger("sqlalchemy.engine").setLevel(sql)


_collected: dict[str, tuple[Any, bool, bool, bool]] = {}


def _collection_flags() -> tuple[Any, bool, bool, bool]:
    return (
        logging._srcfile,
        logging.logThreads,
        logging.logProcesses,
        logging.logMultiprocessing,
    )


def reset_logging() -> None:
    """Undo :func:`configure_logging` (tests)."""
    global _handler
    if "flags" in _collected:
        (
            logging._srcfile,
            logging.logThreads,
            logging.logProcesses,
            logging.logMultiprocessing,
        ) = _collected.pop("flags")
    if _handler is not None:
        logging.getLogger().removeHandler(_handler)
        _handler = None
    logging.getLogger().setLevel(logging.WARNING)
    for name in ("sqlalchemy", "sqlalchemy.engine"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structured logger named ``name`` (a module's ``__name__``)."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


def accept_request_id(offered: str | None) -> str:
    """The caller's request id if it is well formed (1–64 letters, digits, ``._:-``), else a
    new one: an id is copied into every log line, so it must not be able to forge one."""
    if offered and _WELL_FORMED_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


def bind_request_id(request_id: str) -> None:
    """Make ``request_id`` the id of everything logged from now on in this context (a
    request's task; threads it starts copy it)."""
    _request_id.set(request_id)
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)


def current_request_id() -> str | None:
    """The id of the request being served, if any."""
    return _request_id.get()


def forward_request_id(request: httpx.Request) -> None:
    """httpx request hook: an outgoing call made while serving a request carries its id."""
    request_id = _request_id.get()
    if request_id is not None and REQUEST_ID_HEADER not in request.headers:
        request.headers[REQUEST_ID_HEADER] = request_id


def carry_request_id(client: httpx.Client) -> httpx.Client:
    """``client`` with :func:`forward_request_id` among its request hooks (once)."""
    hooks: MutableMapping[str, list[Any]] = client.event_hooks
    if forward_request_id not in hooks["request"]:
        client.event_hooks = {**hooks, "request": [*hooks["request"], forward_request_id]}
    return client


_route_structlog_through_logging()
