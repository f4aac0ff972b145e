"""``kouza serve --workers N``: several server processes sharing the database, the risk
feature store and their metrics, each built by ``kouza.api.app:serve_app`` — a real subprocess
on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, select

from kouza.assembly import build_runtime
from kouza.config import Settings
from kouza.controls.models import OperatorRole
from kouza.controls.service import controls
from kouza.kit.metrics import sample_value
from kouza.kit.migrate import upgrade
from kouza.risk.events import EventType, RiskEvent
from kouza.risk.models import RiskDecisionRecord
from tests.risk.stores import redis_client, unique_prefix


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_two_workers_share_the_risk_windows(tmp_path: Path) -> None:
    client = redis_client()
    prefix = unique_prefix()
    redis_url = os.environ["KOUZA_TEST_REDIS_URL"]
    environment = os.environ | {
        "KOUZA_DATABASE_URL": f"sqlite:///{tmp_path}/serve.db",
        "KOUZA_VAR_DIR": str(tmp_path),
        "KOUZA_SECRET_KEY": "s" * 32,
        "KOUZA_RISK_FEATURE_STORE": redis_url,
        "KOUZA_RISK_FEATURE_PREFIX": prefix,
        "TMPDIR": str(tmp_path / "tmp"),  # where the serve command makes its metrics directory
    }
    (tmp_path / "tmp").mkdir()
    runtime = build_runtime(
        Settings(var_dir=tmp_path, secret_key="s" * 32),
        database_url=environment["KOUZA_DATABASE_URL"],
    )
    upgrade(runtime.db.engine)
    with runtime.db.unit_of_work() as session:
        _, token = controls.create_operator(
            session, name="svc", role=OperatorRole.ANALYST, actor="t"
        )
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "kouza",
        "serve",
        "--workers",
        "2",
        "--port",
        str(port),
        "--no-access-log",
    ]
    server = subprocess.Popen(
        command,
        env=environment,
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stdout.read().decode()  # type: ignore[union-attr]
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "kouza serve did not start within 60 s"
            time.sleep(0.2)
        at = datetime(2026, 3, 1, 12, tzinfo=UTC)
        outcomes = []
        # six wallets on six devices link six accounts from one /24: the 5th distinct account
        # seen from the network before an attempt blocks it ("many-accounts-from-network")
        for i in range(6):
            event = RiskEvent(
                type=EventType.LINK_ATTEMPT,
                at=at + timedelta(seconds=i),
                wallet=f"w-{i}",
                device=f"d-{i}",
                ip=f"198.51.100.{i + 1}",
                bank="0001",
                account=f"acct-{i}",
                holder_name="ﾔﾏﾀﾞ ﾀﾛｳ",
            )
            # a new connection per request, so the kernel spreads them over both workers
            response = httpx.post(
                f"{base}/v1/ops/risk/assess",
                json=event.to_json(),
                headers={"Authorization": f"Bearer {token}", "Connection": "close"},
                timeout=10,
            )
            assert response.status_code == 200, response.text
            outcomes.append(response.json()["outcome"])
        assert "block" not in outcomes[:5] and outcomes[5] == "block", outcomes
        assert any(client.scan_iter(f"{prefix}*"))  # the windows live in Redis, not a worker
        with runtime.db.session() as session:
            assert session.scalar(select(func.count()).select_from(RiskDecisionRecord)) == 6
        _metrics_add_up_every_worker(base, tmp_path / "tmp", outcomes)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        runtime.db.dispose()
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
    assert not list((tmp_path / "tmp").glob("kouza-metrics-*"))  # removed when it stopped


def _metrics_add_up_every_worker(base: str, tmp: Path, outcomes: list[str]) -> None:
    """Whichever worker answers /metrics, it reports every worker's requests."""
    (directory,) = tmp.glob("kouza-metrics-*")
    health = {"method": "GET", "route": "/health", "status": "200"}
    before = httpx.get(f"{base}/metrics", timeout=10).text
    sent = int(sample_value(before, "kouza_http_requests_total", health) or 0)  # start-up polls
    while len(list(directory.glob("counter_*.db"))) < 2 or sent < 12:
        assert sent < 400, "the kernel never gave the second worker a request"
        answer = httpx.get(f"{base}/health", headers={"Connection": "close"}, timeout=10)
        assert answer.status_code == 200
        sent += 1
    assess = {"method": "POST", "route": "/v1/ops/risk/assess", "status": "200"}
    for _ in range(6):
        text = httpx.get(f"{base}/metrics", headers={"Connection": "close"}, timeout=10).text
        assert sample_value(text, "kouza_http_requests_total", health) == sent
        assert sample_value(text, "kouza_http_requests_total", assess) == 6
        for outcome in set(outcomes):
            labels = {"event": "link_attempt", "outcome": outcome}
            counted = sample_value(text, "kouza_risk_decisions_total", labels)
            assert counted == outcomes.count(outcome), (outcome, counted, outcomes)
