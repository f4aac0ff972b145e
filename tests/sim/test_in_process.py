"""The simulator's in-process transport works whoever owns the calling thread's event loop."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
from fastapi import FastAPI

from kouza.sim.world import InProcess


def app() -> FastAPI:
    api = FastAPI()

    @api.get("/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    return api


def test_requests_from_a_plain_thread_and_from_inside_a_running_loop() -> None:
    transport = InProcess(app())
    client = httpx.Client(transport=transport, base_url="http://sim")
    assert client.get("/ping").json() == {"pong": "yes"}

    async def inside_a_loop() -> dict[str, str]:
        # a notebook's or Playwright's loop owns this thread: the simulator must still run
        answer: dict[str, str] = client.get("/ping").json()
        return answer

    # on a thread of its own: the test process may itself be inside a loop (Playwright's)
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(asyncio.run, inside_a_loop()).result() == {"pong": "yes"}
    transport.shutdown()
