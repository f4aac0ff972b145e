"""Every string of the call-centre, rules and reports pages exists in Japanese and English: no
page shows a raw message id in either language."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from kouza.console.web import catalog
from kouza.controls.models import OperatorRole
from kouza.risk.versions import rule_versions
from kouza.runtime import Runtime
from tests.console.support import csrf_of, make_staff, sign_in
from tests.console.test_rules import CANDIDATE, LIVE

RAW_ID = re.compile(
    r"(?<![\w/.-])(callcentre|rules|reports|script|error|approval)\.[a-z_]+[.a-z_0-9]*"
)


@pytest.mark.parametrize("language", ["ja", "en"])
def test_no_raw_message_ids(client: TestClient, rt: Runtime, language: str) -> None:
    assert catalog.incomplete() == []
    with rt.db.unit_of_work() as session:
        rule_versions.publish(session, LIVE, source="t", actor="t", reason="t")
        rule_versions.set_candidate(session, CANDIDATE, source="t", actor="t", reason="t")
    client.headers["Accept-Language"] = language
    sign_in(client, rt, make_staff(rt, "bunta", OperatorRole.ADMIN))
    csrf = csrf_of(client.get("/console/rules").text)
    account = {"bank_code": "0005", "branch": "001", "account_number": "1234567"}
    pages = [
        client.get("/console/call-centre"),
        client.post("/console/call-centre/lookup", data={"csrf_token": csrf, **account}),
        client.post(
            "/console/call-centre/lookup",
            data={"csrf_token": csrf, **account, "branch": "999"},
        ),
        client.get("/console/rules"),
        client.get("/console/rules/diff?a=live&b=candidate"),
        client.post(
            "/console/rules/backtest",
            data={"csrf_token": csrf, "tested": "candidate", "period": "7d"},
        ),
        client.get("/console/reports"),
        client.get("/console/reports/regulator?from=2026-11-01&to=2026-11-02"),
        client.get("/console/reports/regulator?from=2026-11-03&to=2026-11-02"),
    ]
    for page in pages:
        assert page.status_code in (200, 400, 422), page.request.url
        assert f'<html lang="{language}"' in page.text
        found = RAW_ID.findall(page.text)
        assert not found, (page.request.url, found)
