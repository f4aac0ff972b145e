"""The call-centre page: look-up by bank account (fingerprint only), the answer and its script
in Japanese and English, logging the call; refusals re-render the form, nothing stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kouza.console.answers import Answer, LinkAnswer, Situation
from kouza.controls.cases import cases
from kouza.controls.models import AuditEvent, CaseStatus, OperatorRole
from kouza.ops.callcentre import AccountLookup, LinkView
from kouza.ops.compensation import compensations
from kouza.ops.models import Enquiry
from kouza.wallet.locks import locks
from tests.console.support import Staff, csrf_of, make_staff, sign_in
from tests.linking.conftest import World
from tests.ops.support import Attack, attack, register_operator_keys

AT = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def attacked(world: World) -> Attack:
    register_operator_keys(world)
    return attack(world)


def _signed_in(world: World, name: str, role: OperatorRole) -> tuple[TestClient, Staff]:
    staff = make_staff(world.rt, name, role)
    client = world.wallet
    client.headers["Accept-Language"] = "en"
    assert sign_in(client, world.rt, staff).status_code == 303  # type: ignore[attr-defined]
    return client, staff


def _account(world: World, number: str | None = None) -> dict[str, str]:
    return {
        "bank_code": world.victim.bank_code,
        "branch": world.victim.branch_code,
        "account_number": number or world.victim.number,
    }


def _post(client: TestClient, url: str, data: dict[str, str]) -> object:
    page = client.get("/console/call-centre")
    assert page.status_code == 200
    return client.post(url, data={"csrf_token": csrf_of(page.text), **data})


def _audits(world: World) -> list[AuditEvent]:
    with world.rt.db.unit_of_work() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


class TestLookup:
    def test_a_call_centre_operator_lands_here_and_sees_nothing_else(self, world: World) -> None:
        client, _ = _signed_in(world, "cc", OperatorRole.CALL_CENTRE)
        home = client.get("/console/", follow_redirects=False)
        assert (home.status_code, home.headers["location"]) == (303, "/console/call-centre")
        page = client.get("/console/call-centre")
        assert page.status_code == 200
        assert 'href="/console/cases"' not in page.text
        for url in ("/console/cases", "/console/approvals", "/console/rules", "/console/reports"):
            assert client.get(url).status_code == 403, url

    def test_linked_and_moved_with_the_script_and_the_spend(
        self, world: World, attacked: Attack
    ) -> None:
        client, _ = _signed_in(world, "cc", OperatorRole.CALL_CENTRE)
        answer = _post(client, "/console/call-centre/lookup", _account(world))
        assert answer.status_code == 200  # type: ignore[attr-defined]
        text = answer.text  # type: ignore[attr-defined]
        assert "Linked, money moved (under investigation)" in text
        assert str(attacked.linked.person.wallet.id) in text
        assert "¥300,000" in text and "¥100,000" in text and "家電量販店 秋葉原" in text
        # the script, in both languages, with the caller's own figures only
        assert "¥300000 in total was taken" not in text
        assert "and ¥300,000 in total was taken from it by top-ups" in text
        assert "合計 300,000 円が引き出されています" in text
        assert attacked.linked.person.user.email not in text
        # audited by fingerprint; the number is nowhere in the audit trail
        lookups = [a for a in _audits(world) if a.action == "callcentre.lookup"]
        assert len(lookups) == 1 and lookups[0].actor == "console:cc"
        assert world.victim.number not in json.dumps(
            [[a.subject, a.details, a.reason] for a in _audits(world)], default=str
        )

    def test_not_linked(self, world: World) -> None:
        client, _ = _signed_in(world, "ana", OperatorRole.ANALYST)
        answer = _post(client, "/console/call-centre/lookup", _account(world, "7777777"))
        text = answer.text  # type: ignore[attr-defined]
        assert answer.status_code == 200  # type: ignore[attr-defined]
        assert "Not linked" in text and "has never been linked to a wallet with us" in text
        assert "一度も連携されていません" in text

    @pytest.mark.parametrize(
        ("field", "value", "status", "message"),
        [
            ("account_number", "12345", 400, "An account number is 7 digits."),
            ("bank_code", "5", 400, "A bank code is 4 digits."),
            ("bank_code", "0999", 422, "This bank code is not in the Zengin list."),
            ("branch", "999", 422, "This bank has no branch with that number."),
        ],
    )
    def test_bad_input_is_tied_to_its_field_and_nothing_is_audited(
        self, world: World, field: str, value: str, status: int, message: str
    ) -> None:
        client, _ = _signed_in(world, "cc", OperatorRole.CALL_CENTRE)
        before = len(_audits(world))
        answer = _post(client, "/console/call-centre/lookup", _account(world) | {field: value})
        text = answer.text  # type: ignore[attr-defined]
        assert answer.status_code == status  # type: ignore[attr-defined]
        assert f'<p class="error" id="f-{field}-error">{message}</p>' in text
        assert 'aria-invalid="true"' in text
        assert len(_audits(world)) == before

    def test_without_the_csrf_token_nothing_is_looked_up(self, world: World) -> None:
        client, _ = _signed_in(world, "cc", OperatorRole.CALL_CENTRE)
        before = len(_audits(world))
        answer = client.post("/console/call-centre/lookup", data=_account(world))
        assert answer.status_code == 403
        assert len(_audits(world)) == before

    def test_signed_out_is_sent_to_sign_in(self, world: World) -> None:
        answer = world.wallet.get("/console/call-centre", follow_redirects=False)
        assert (answer.status_code, answer.headers["location"]) == (303, "/console/login")


class TestSituations:
    def test_compensated_and_being_compensated(self, world: World, attacked: Attack) -> None:
        wallet_id = attacked.linked.person.wallet.id
        with world.rt.db.unit_of_work() as session:
            locks.lock(session, wallet_id=wallet_id, actor="test", reason="fraud")
            case = cases.open(
                session, wallet_id=wallet_id, source="test", summary="victim", actor="test"
            )
            cases.move(session, case_id=case.id, to=CaseStatus.CONFIRMED_FRAUD, actor="t", note="n")
        client, _ = _signed_in(world, "cc", OperatorRole.CALL_CENTRE)
        before = _post(client, "/console/call-centre/lookup", _account(world))
        assert "Linked, money moved (under investigation)" in before.text  # type: ignore[attr-defined]

        compensations.compensate(world.rt, case_id=case.id, actor="test", reason="confirmed")
        after = _post(client, "/console/call-centre/lookup", _account(world))

        text = after.text  # type: ignore[attr-defined]
        assert "Money moved, compensated" in text
        assert "has been paid back in full (¥300,000)" in text
        assert "全額（300,000 円）を返金済みです" in text

    def test_situation_order(self) -> None:
        def view(topped_up: int) -> LinkView:
            link = LinkView("l", "w", "active", AT, "0125", "567", "active", "", AT, None)
            link.topped_up = topped_up
            return link

        lookup = AccountLookup("0125", True)
        assert Answer(AccountLookup("0125", False)).situation is Situation.NOT_LINKED
        assert Answer(lookup, [LinkAnswer(view(0))]).situation is Situation.LINKED_NOT_MOVED
        assert Answer(lookup, [LinkAnswer(view(10))]).situation is Situation.MOVED
        running = LinkAnswer(view(10), refunded=4, compensation="running")
        assert Answer(lookup, [running]).situation is Situation.BEING_COMPENSATED
        paid = LinkAnswer(view(10), refunded=10, compensation="completed")
        assert Answer(lookup, [paid]).situation is Situation.COMPENSATED


class TestEnquiry:
    def test_logged_with_a_case_and_never_the_number(self, world: World, attacked: Attack) -> None:
        client, _ = _signed_in(world, "cc", OperatorRole.CALL_CENTRE)
        answer = _post(
            client,
            "/console/call-centre/enquiry",
            _account(world)
            | {"caller_name": "山田 太郎", "notes": "debits I never made", "open_case": "yes"},
        )
        text = answer.text  # type: ignore[attr-defined]
        assert answer.status_code == 200, text  # type: ignore[attr-defined]
        with world.rt.db.unit_of_work() as session:
            enquiry = session.scalars(select(Enquiry)).one()
            stored = json.dumps(
                {c.name: str(getattr(enquiry, c.name)) for c in Enquiry.__table__.columns}
            )
            assert enquiry.case_id is not None
            assert enquiry.wallet_id == attacked.linked.person.wallet.id
            assert enquiry.actor == "console:cc"
        assert world.victim.number not in stored
        assert f"The call is logged (reference {str(enquiry.id)[:8]})" in text
        assert f"Your reference is {str(enquiry.id)[:8]}" in text

    def test_without_a_name_or_reason_nothing_is_stored(
        self, world: World, attacked: Attack
    ) -> None:
        client, _ = _signed_in(world, "cc", OperatorRole.CALL_CENTRE)
        answer = _post(
            client, "/console/call-centre/enquiry", _account(world) | {"caller_name": " "}
        )
        text = answer.text  # type: ignore[attr-defined]
        assert answer.status_code == 400  # type: ignore[attr-defined]
        assert "Enter the caller&#39;s name." in text and "Enter what the caller said." in text
        with world.rt.db.unit_of_work() as session:
            assert session.scalar(select(func.count()).select_from(Enquiry)) == 0
