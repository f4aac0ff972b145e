"""A request's unit of work commits before its response starts: what the client is told has
happened (a token, a payment) exists in the database for whichever process it asks next."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from kouza.api.app import create_app
from kouza.runtime import Runtime


def test_commit_happens_before_the_response_is_sent(rt: Runtime) -> None:
    order: list[str] = []
    rt.db.after_commit_hooks.append(lambda session: order.append("commit"))
    app = create_app(rt)

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        async def send_and_record(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                order.append("response")
            await send(message)

        await app(scope, receive, send_and_record)

    with TestClient(recording) as client:
        response = client.post(
            "/v1/auth/signup",
            json={"email": "order@example.jp", "password": "correct horse battery staple 9"},
        )
    assert response.status_code == 202, response.text
    assert order[:2] == ["commit", "response"], order
