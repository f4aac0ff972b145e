"""Real servers for the browser: an ASGI app served by uvicorn on a free loopback port, in a
thread of the test process (so a test can also reach the runtimes behind it directly) — the
demo's own server runner (:func:`kouza.demo.systems.serve`)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from kouza.demo.systems import serve as serve_in_thread


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class LiveServer:
    url: str
    server: uvicorn.Server


@contextmanager
def serve(app: Any, *, port: int | None = None) -> Iterator[LiveServer]:
    """``app`` served on ``http://127.0.0.1:<port>`` until the block ends."""
    port = port or free_port()
    with serve_in_thread(app, host="127.0.0.1", port=port) as server:
        yield LiveServer(f"http://127.0.0.1:{port}", server)
