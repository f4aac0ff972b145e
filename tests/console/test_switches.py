"""Kill switches from the console without a case: on at once, off only with a second admin."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kouza.console.approvals import approvals
from kouza.console.errors import SelfApproval
from kouza.console.models import Approval, ApprovalStatus
from kouza.controls.models import AuditEvent, Operator, OperatorRole, SwitchScope
from kouza.controls.switches import switches
from kouza.runtime import Runtime
from tests.console.support import csrf_of, make_staff, sign_in


def post(client: TestClient, data: dict[str, str]) -> object:
    page = client.get("/console/switches")
    return client.post(
        "/console/switches",
        data={"csrf_token": csrf_of(page.text), **data},
        follow_redirects=False,
    )


def is_on(rt: Runtime, scope: SwitchScope, target: str = "") -> bool:
    with rt.db.unit_of_work() as session:
        return switches.is_active(session, scope, target)


def test_on_at_once_off_after_another_admin_approves(client: TestClient, rt: Runtime) -> None:
    analyst = make_staff(rt, "aiko")
    make_staff(rt, "bunta", OperatorRole.ADMIN)
    sign_in(client, rt, analyst)
    page = client.get("/console/switches")
    assert page.status_code == 200 and "Kill switches" in page.text

    assert post(client, {"scope": "bank_links", "target": "", "reason": "x"}).status_code == 400
    assert post(client, {"scope": "bank_links", "target": "0125", "reason": ""}).status_code == 400
    assert post(client, {"scope": "nonsense", "reason": "x"}).status_code == 400
    assert not is_on(rt, SwitchScope.BANK_LINKS, "0125")

    on = post(client, {"scope": "bank_links", "target": "0125", "reason": "burst at 0125"})
    assert on.status_code == 303 and is_on(rt, SwitchScope.BANK_LINKS, "0125")
    listed = client.get("/console/switches?lang=en").text
    assert "burst at 0125" in listed and "Request switch-off" in listed

    off = post(
        client, {"scope": "bank_links", "target": "0125", "active": "off", "reason": "fixed"}
    )
    assert off.status_code == 303 and "done=requested" in off.headers["location"]
    assert is_on(rt, SwitchScope.BANK_LINKS, "0125")  # still on: it waits for approval
    assert "Waiting for approval" in client.get("/console/switches?lang=en").text
    never_on = post(client, {"scope": "all_links", "active": "off", "reason": "x"})
    assert never_on.status_code == 400

    with rt.db.unit_of_work() as session:
        approval = session.scalars(select(Approval)).one()
        maker = session.scalars(select(Operator).where(Operator.name == "aiko")).one()
        checker = session.scalars(select(Operator).where(Operator.name == "bunta")).one()
    with pytest.raises(SelfApproval):
        approvals.approve(rt, approval_id=approval.id, operator=maker)
    done = approvals.approve(rt, approval_id=approval.id, operator=checker)
    assert done.status == ApprovalStatus.EXECUTED.value
    assert not is_on(rt, SwitchScope.BANK_LINKS, "0125")
    with rt.db.unit_of_work() as session:
        changes = session.execute(
            select(AuditEvent.action, AuditEvent.actor, AuditEvent.reason)
            .where(AuditEvent.action.like("switch.%"))
            .order_by(AuditEvent.id)
        ).all()
    assert tuple(changes[0]) == ("switch.on", "console:aiko", "burst at 0125")
    assert changes[-1][0] == "switch.off"
