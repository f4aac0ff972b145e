"""Lock → signed notice to the bank → case → confirm → compensation, with exact balances; the
call centre, the spend trace and the regulator report; operator endpoints refuse customers.

The wallet and the bank run in-process and talk only HTTP (tests/linking/conftest.py).
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from joserfc.jwk import ECKey
from sqlalchemy import select
from typer.testing import CliRunner

from kouza.cli import common
from kouza.cli.main import app
from kouza.controls.models import AuditEvent, OperatorRole
from kouza.kit.outbox import OutboxMessage
from kouza.ledger.models import AccountKind
from kouza.ledger.service import ledger
from kouza.linking import notices
from kouza.linking.models import BankLockNotice
from kouza.linking.reconcile import reconciler
from kouza.ops.compensation import compensations
from kouza.ops.models import CompensationPayment, Enquiry
from kouza.risk.service import risk
from kouza.wallet.models import Wallet, WalletLock, WalletStatus
from tests.linking.conftest import LEGACY_BANK, World
from tests.linking.support import bank_balance, bank_transfer_count, ledger_ok, wallet_balance
from tests.ops.support import (
    SPENT,
    Attack,
    attack,
    bank_alerts,
    operator,
    register_operator_keys,
    system_balance,
)

VICTIM_START = 500_000
TAKEN = 300_000
BANK_FEE = 440


def _lock(world: World, admin: dict[str, str], attacked: Attack) -> None:
    answer = world.wallet.post(
        f"/v1/ops/wallets/{attacked.linked.person.wallet.id}/lock",
        json={"reason": "linked right after opening, charged to the cap"},
        headers=admin,
    )
    assert answer.status_code == 200, answer.text


def _notices(world: World) -> list[tuple[BankLockNotice, OutboxMessage]]:
    with world.rt.db.unit_of_work() as session:
        return list(
            session.execute(
                select(BankLockNotice, OutboxMessage).join(
                    OutboxMessage, OutboxMessage.id == BankLockNotice.outbox_message_id
                )
            )
        )


def _holder_mails(world: World, word: str) -> list[str]:
    return [
        m.body
        for m in world.mailbox.messages
        if m.recipient == world.victim.email and word in m.body
    ]


def _confirmed_case(world: World, analyst: dict[str, str], attacked: Attack) -> str:
    wallet_id = str(attacked.linked.person.wallet.id)
    opened = world.wallet.post(
        "/v1/ops/cases",
        json={"wallet_id": wallet_id, "summary": "victim called the bank"},
        headers=analyst,
    )
    assert opened.status_code == 201, opened.text
    case_id = str(opened.json()["id"])
    moved = world.wallet.post(
        f"/v1/ops/cases/{case_id}/status",
        json={"status": "confirmed_fraud", "note": "not the holder"},
        headers=analyst,
    )
    assert moved.status_code == 200, moved.text
    return case_id


@pytest.fixture
def attacked(world: World) -> Attack:
    register_operator_keys(world)
    done = attack(world)
    assert bank_balance(world, world.victim) == VICTIM_START - TAKEN
    assert wallet_balance(world, done.linked.person).balance == TAKEN - SPENT
    return done


class TestLockNotifiesTheBank:
    def test_one_signed_notice_per_link_and_the_holder_is_warned_once(
        self, world: World, attacked: Attack
    ) -> None:
        admin = operator(world, "admin", OperatorRole.ADMIN)

        _lock(world, admin, attacked)
        _lock(world, admin, attacked)  # idempotent: the same lock, no second notice

        sent = _notices(world)
        assert len(sent) == 1
        notice, message = sent[0]
        assert message.delivered_at is not None and message.payload is None
        alerts = bank_alerts(world)
        assert [alert.event_id for alert in alerts] == [str(notice.id)]
        assert alerts[0].details["reason"] == "suspected_fraud"
        warned = _holder_mails(world, "frozen for suspected fraud")
        assert len(warned) == 1
        assert "***567" in warned[0] and "not me" in warned[0]
        assert "0120" not in warned[0]  # the operator's own text never reaches the holder
        with world.rt.db.unit_of_work() as session:
            assert len(session.scalars(select(WalletLock)).all()) == 1

    def test_a_notice_the_bank_did_not_get_is_retried_and_counted_once(
        self, world: World, attacked: Attack
    ) -> None:
        admin = operator(world, "admin", OperatorRole.ADMIN)
        world.transport.drop_request = lambda request: request.url.path == "/v1/operator-notices"

        _lock(world, admin, attacked)

        ((notice, message),) = _notices(world)
        assert message.delivered_at is None and message.attempts == 1
        assert "BankUnavailable" in (message.last_error or "")
        assert bank_alerts(world) == []
        world.transport.drop_request = lambda request: False
        assert notices.deliver_pending(world.rt) == 1
        assert notices.deliver_pending(world.rt) == 0
        # the bank got it; a redelivery of the same event (lost answer) is a replay, not news
        claims = json.loads(_claims(world, notice))
        again = world.rt.bank_client.send_notice(notices.sign_notice(world.rt, claims))
        assert again["replayed"] is True and again["event_id"] == str(notice.id)
        assert len(bank_alerts(world)) == 1
        assert len(_holder_mails(world, "frozen for suspected fraud")) == 1

    def test_a_risk_lock_notifies_through_the_same_path(
        self, world: World, attacked: Attack
    ) -> None:
        risk.load_rules(
            world.rt,
            "version: t\nrules:\n  - id: lock-topups\n"
            "    events: [topup]\n    when: event.amount >= 1\n    outcome: lock\n",
            source="test.yaml",
        )
        from tests.linking.support import charge

        answer = charge(world, attacked.linked, 1_000, "after-the-rule")

        assert answer.status_code == 403 and answer.json()["error"] == "risk_refused"
        # the refusal's unit of work keeps the lock and runs its after-commit hooks: the notice
        # went out at once, nothing is left for the deliverer
        assert len(bank_alerts(world)) == 1
        assert notices.deliver_pending(world.rt) == 0
        with world.rt.db.unit_of_work() as session:
            lock = session.scalars(select(WalletLock)).one()
            assert lock.actor == "risk-engine"

    def test_the_bank_refuses_forged_stale_and_foreign_notices(
        self, world: World, attacked: Attack
    ) -> None:
        admin = operator(world, "admin", OperatorRole.ADMIN)
        world.transport.drop_request = lambda request: request.url.path == "/v1/operator-notices"
        _lock(world, admin, attacked)
        world.transport.drop_request = lambda request: False
        ((notice, _),) = _notices(world)
        claims = json.loads(_claims(world, notice))
        client = world.rt.bank_client

        forged_key = ECKey.generate_key("P-256", auto_kid=True)
        world.rt.bank_client_key, real = (
            forged_key,
            world.rt.bank_client_key,
        )
        forged = notices.sign_notice(world.rt, claims)
        world.rt.bank_client_key = real
        stale = notices.sign_notice(world.rt, claims)
        world.clock.advance(minutes=6)
        other_bank = notices.sign_notice(world.rt, claims | {"aud": "https://other.bank"})

        for token in (forged, stale, other_bank, "not-a-jws"):
            answer = world.bank.post(
                "/v1/operator-notices",
                content=token,
                headers={"Content-Type": "application/jose"},
                auth=(world.rt.settings.bank_client_id, world.rt.settings.bank_client_secret),
            )
            assert answer.status_code == 401, answer.text
            assert answer.json()["error"] == "notice_rejected"
        assert bank_alerts(world) == []
        client.send_notice(notices.sign_notice(world.rt, claims))
        assert len(bank_alerts(world)) == 1


def _claims(world: World, notice: BankLockNotice) -> str:
    """The claims queued for ``notice`` (as the outbox sender reads them before signing)."""
    link = world.rt.bank_client
    assert link is not None
    with world.rt.db.unit_of_work() as session:
        from kouza.linking.models import BankLink

        bank_link = session.get_one(BankLink, notice.link_id)
        return json.dumps(
            {
                "jti": str(notice.id),
                "type": "wallet.locked",
                "iss": world.rt.settings.bank_client_id,
                "aud": world.rt.settings.bank_issuer,
                "bank_code": notice.bank_code,
                "link_id": str(bank_link.bank_link_id),
                "operator_reference": str(notice.wallet_id),
                "reason": "suspected_fraud",
                "locked_at": "",
                "operator_contact": "",
            }
        )


class TestCompensation:
    def test_lock_notice_case_confirm_compensate_end_to_end(
        self, world: World, attacked: Attack
    ) -> None:
        admin = operator(world, "admin", OperatorRole.ADMIN)
        analyst = operator(world, "analyst", OperatorRole.ANALYST)
        wallet_id = attacked.linked.person.wallet.id
        _lock(world, admin, attacked)
        # the holder reads the bank's warning and says "not me" at the counter: link revoked
        with world.bank_rt.db.unit_of_work() as session:
            from kouza.bank.models import Link

            reference = session.scalars(select(Link.notice_reference)).one()
        revoked = world.bank.post(
            "/v1/counter/not-me", json={"reference": reference}, headers=world.staff()
        )
        assert revoked.status_code == 200, revoked.text
        case_id = _confirmed_case(world, analyst, attacked)
        victims = world.wallet.get(f"/v1/ops/cases/{case_id}/victims", headers=analyst).json()
        assert [(v["bank_code"], v["debited"], v["owed"]) for v in victims] == [
            (LEGACY_BANK, TAKEN, TAKEN)
        ]
        cost = world.wallet.post(
            f"/v1/ops/cases/{case_id}/costs",
            json={
                "link_id": victims[0]["link_id"],
                "amount": BANK_FEE,
                "description": "passbook reissue fee",
            },
            headers=admin,
        )
        assert cost.status_code == 201, cost.text
        transfers_before = bank_transfer_count(world)

        answer = world.wallet.post(
            f"/v1/ops/cases/{case_id}/compensation",
            json={"reason": "confirmed unauthorised top-ups"},
            headers=admin,
        )

        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert (
            result["status"],
            result["refunded"],
            result["costs_paid"],
            result["clawed_back"],
            result["net_cost"],
            result["outstanding"],
        ) == ("completed", TAKEN, BANK_FEE, TAKEN - SPENT, SPENT + BANK_FEE, 0)
        assert bank_balance(world, world.victim) == VICTIM_START + BANK_FEE
        assert wallet_balance(world, attacked.linked.person).balance == 0
        assert system_balance(world, AccountKind.COMPENSATION_EXPENSE) == -(SPENT + BANK_FEE)
        assert system_balance(world, AccountKind.FRAUD_SUSPENSE) == 0
        assert system_balance(world, AccountKind.BANK_CLEARING, LEGACY_BANK) == BANK_FEE
        assert bank_transfer_count(world) == transfers_before + 2
        assert ledger_ok(world)
        assert len(_holder_mails(world, "compensation")) == 2

        again = world.wallet.post(
            f"/v1/ops/cases/{case_id}/compensation", json={"reason": "run twice"}, headers=admin
        )
        assert again.status_code == 200 and again.json() == result
        assert bank_balance(world, world.victim) == VICTIM_START + BANK_FEE
        assert bank_transfer_count(world) == transfers_before + 2
        assert system_balance(world, AccountKind.COMPENSATION_EXPENSE) == -(SPENT + BANK_FEE)
        with world.rt.db.unit_of_work() as session:
            wallet = session.get_one(Wallet, wallet_id)
            assert wallet.status == WalletStatus.LOCKED.value
            actions = [a.action for a in session.scalars(select(AuditEvent))]
            assert actions.count("compensation.start") == 1
            assert actions.count("compensation.complete") == 1
        # reconciliation matches the compensation credits instead of calling them unknown
        with world.rt.db.unit_of_work() as session:
            report = reconciler.reconcile(
                session,
                since=world.clock.now() - timedelta(days=2),
                until=world.clock.now() + timedelta(seconds=1),
            )
        assert report.ok, report.differences
        assert report.checked >= 2

    def test_a_crash_after_the_bank_paid_is_finished_by_the_next_run(
        self, world: World, attacked: Attack
    ) -> None:
        admin = operator(world, "admin", OperatorRole.ADMIN)
        _lock(world, admin, attacked)
        case_id = _confirmed_case(world, operator(world, "analyst", OperatorRole.ANALYST), attacked)

        def crash(_payment: uuid.UUID) -> None:
            raise RuntimeError("process died after the bank call")

        world.rt.after_compensation_call = crash
        with pytest.raises(RuntimeError):
            compensations.compensate(
                world.rt, case_id=uuid.UUID(case_id), actor="test", reason="first try"
            )
        assert bank_balance(world, world.victim) == VICTIM_START  # the bank paid…
        with world.rt.db.unit_of_work() as session:
            payment = session.scalars(select(CompensationPayment)).one()
            assert payment.status == "pending"  # …the wallet does not know yet
            held = ledger.balance(
                session, ledger.system_account(session, AccountKind.COMPENSATION_EXPENSE)
            )
            assert (held.balance, held.pending_out) == (0, TAKEN)
        world.rt.after_compensation_call = None

        result = compensations.compensate(
            world.rt, case_id=uuid.UUID(case_id), actor="test", reason="second try"
        )

        assert result.status == "completed" and result.refunded == TAKEN
        assert bank_balance(world, world.victim) == VICTIM_START  # paid once
        assert system_balance(world, AccountKind.COMPENSATION_EXPENSE) == -SPENT
        assert ledger_ok(world)

    def test_a_lost_answer_is_resolved_by_the_same_key(
        self, world: World, attacked: Attack
    ) -> None:
        admin = operator(world, "admin", OperatorRole.ADMIN)
        _lock(world, admin, attacked)
        case_id = uuid.UUID(
            _confirmed_case(world, operator(world, "analyst", OperatorRole.ANALYST), attacked)
        )
        world.transport.lose_response = lambda request: request.url.path.endswith("/refunds")

        first = compensations.compensate(world.rt, case_id=case_id, actor="t", reason="try")

        assert first.status == "running" and first.outstanding == TAKEN
        assert first.payments[0]["status"] == "unknown"
        world.transport.lose_response = lambda request: False
        second = compensations.compensate(world.rt, case_id=case_id, actor="t", reason="retry")
        assert second.status == "completed"
        assert bank_balance(world, world.victim) == VICTIM_START

    def test_refused_before_anything_moves(self, world: World, attacked: Attack) -> None:
        admin = operator(world, "admin", OperatorRole.ADMIN)
        analyst = operator(world, "analyst", OperatorRole.ANALYST)
        wallet_id = str(attacked.linked.person.wallet.id)
        opened = world.wallet.post(
            "/v1/ops/cases", json={"wallet_id": wallet_id, "summary": "suspicious"}, headers=analyst
        ).json()
        path = f"/v1/ops/cases/{opened['id']}/compensation"
        body = {"reason": "too early"}

        not_confirmed = world.wallet.post(path, json=body, headers=admin)
        world.wallet.post(
            f"/v1/ops/cases/{opened['id']}/status",
            json={"status": "confirmed_fraud", "note": "yes"},
            headers=analyst,
        )
        not_locked = world.wallet.post(path, json=body, headers=admin)
        as_analyst = world.wallet.post(path, json=body, headers=analyst)

        assert (not_confirmed.status_code, not_confirmed.json()["error"]) == (
            409,
            "case_not_confirmed",
        )
        assert (not_locked.status_code, not_locked.json()["error"]) == (409, "wallet_not_locked")
        assert as_analyst.status_code == 403
        assert bank_balance(world, world.victim) == VICTIM_START - TAKEN
        assert wallet_balance(world, attacked.linked.person).balance == TAKEN - SPENT


class TestOperatorEndpointsRefuseCustomers:
    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("post", "/v1/ops/cases/{case}/compensation", {"reason": "x"}),
            (
                "post",
                "/v1/ops/accounts/lookup",
                {"bank_code": "0125", "branch": "100", "account_number": "1234567"},
            ),
            ("get", "/v1/ops/reports/regulator?from=2026-03-01&to=2026-03-31", None),
            ("get", "/v1/ops/wallets/{wallet}/spend-trace", None),
            ("post", "/v1/ops/enquiries", {"caller_name": "x", "notes": "y"}),
        ],
    )
    def test_customer_tokens_and_no_token_get_401(
        self, world: World, attacked: Attack, method: str, path: str, body: dict[str, Any] | None
    ) -> None:
        url = path.format(case=uuid.uuid4(), wallet=attacked.linked.person.wallet.id)
        kwargs: dict[str, Any] = {"json": body} if body is not None else {}
        as_customer = getattr(world.wallet, method)(url, headers=attacked.linked.headers, **kwargs)
        anonymous = getattr(world.wallet, method)(url, **kwargs)
        assert (as_customer.status_code, anonymous.status_code) == (401, 401)
        assert as_customer.json()["error"] == "invalid_operator_token"

    def test_analysts_cannot_move_money_or_lock(self, world: World, attacked: Attack) -> None:
        analyst = operator(world, "analyst", OperatorRole.ANALYST)
        wallet = attacked.linked.person.wallet.id
        lock = world.wallet.post(
            f"/v1/ops/wallets/{wallet}/lock", json={"reason": "x"}, headers=analyst
        )
        deliver = world.wallet.post("/v1/ops/bank-notices/deliver", headers=analyst)
        assert (lock.status_code, deliver.status_code) == (403, 403)
        assert _notices(world) == []


class TestCallCentre:
    def test_lookup_by_bank_account_shows_the_wallet_and_what_it_did(
        self, world: World, attacked: Attack
    ) -> None:
        analyst = operator(world, "analyst", OperatorRole.ANALYST)
        account = {
            "bank_code": world.victim.bank_code,
            "branch": world.victim.branch_code,
            "account_number": world.victim.number,
        }

        answer = world.wallet.post("/v1/ops/accounts/lookup", json=account, headers=analyst)
        other = world.wallet.post(
            "/v1/ops/accounts/lookup", json=account | {"account_number": "7777777"}, headers=analyst
        )

        assert answer.status_code == 200, answer.text
        found = answer.json()
        assert found["linked"] is True and len(found["links"]) == 1
        view = found["links"][0]
        assert view["wallet_id"] == str(attacked.linked.person.wallet.id)
        assert (view["status"], view["account_last3"], view["topped_up"], view["spent"]) == (
            "active",
            "567",
            TAKEN,
            SPENT,
        )
        assert [t["amount"] for t in view["topups"]] == [100_000, 90_000, 90_000, 20_000]
        assert [(s["merchant"], s["category"], s["amount"]) for s in view["spend"]] == [
            ("家電量販店 秋葉原", "electronics", SPENT)
        ]
        assert other.json() == {
            "bank_code": "0125",
            "bank_name": "七十七",
            "linked": False,
            "links": [],
        }

    @pytest.mark.parametrize(
        ("bank_code", "branch", "message"),
        [
            ("0999", "100", "'0999' is not a bank code in the Zengin list"),
            ("0125", "999", "'999' is not a branch code of bank 0125 in the Zengin list"),
        ],
    )
    def test_an_unknown_bank_or_branch_code_is_refused(
        self, world: World, attacked: Attack, bank_code: str, branch: str, message: str
    ) -> None:
        analyst = operator(world, "analyst", OperatorRole.ANALYST)
        with world.rt.db.unit_of_work() as session:
            audits_before = session.query(AuditEvent).count()
        answer = world.wallet.post(
            "/v1/ops/accounts/lookup",
            json={"bank_code": bank_code, "branch": branch, "account_number": "1234567"},
            headers=analyst,
        )
        assert (answer.status_code, answer.json()["error"], answer.json()["message"]) == (
            422,
            "unknown_bank_code",
            message,
        )
        with world.rt.db.unit_of_work() as session:
            assert session.query(AuditEvent).count() == audits_before  # nothing recorded

    def test_cli_lookup_refuses_an_unknown_code(
        self, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(common, "_runtime", world.rt)
        out = CliRunner().invoke(
            app, ["ops", "lookup", "--bank", "0999", "--branch", "100"], input="1234567\n"
        )
        assert out.exit_code == 1
        assert "error: '0999' is not a bank code in the Zengin list" in out.output

    def test_an_enquiry_keeps_the_fingerprint_never_the_number(
        self, world: World, attacked: Attack
    ) -> None:
        analyst = operator(world, "analyst", OperatorRole.ANALYST)
        body = {
            "caller_name": "山田 太郎",
            "caller_contact": "+81227111111",
            "notes": "debits labelled ｺｳｻﾞ I never made",
            "open_case": True,
            "account": {
                "bank_code": "0125",
                "branch": "100",
                "account_number": world.victim.number,
            },
        }

        answer = world.wallet.post("/v1/ops/enquiries", json=body, headers=analyst)

        assert answer.status_code == 201, answer.text
        taken = answer.json()
        assert taken["enquiry"]["wallet_id"] == str(attacked.linked.person.wallet.id)
        assert taken["enquiry"]["case_id"] is not None
        assert taken["lookup"]["links"][0]["topped_up"] == TAKEN
        with world.rt.db.unit_of_work() as session:
            enquiry = session.scalars(select(Enquiry)).one()
            stored = json.dumps(
                {c.name: str(getattr(enquiry, c.name)) for c in Enquiry.__table__.columns}
            )
            audits = json.dumps(
                [[a.subject, a.details] for a in session.scalars(select(AuditEvent))], default=str
            )
        assert world.victim.number not in stored and world.victim.number not in audits
        assert enquiry.account_fingerprint and len(enquiry.account_fingerprint) == 32

    def test_spend_trace_as_json_and_csv(self, world: World, attacked: Attack) -> None:
        analyst = operator(world, "analyst", OperatorRole.ANALYST)
        path = f"/v1/ops/wallets/{attacked.linked.person.wallet.id}/spend-trace"

        as_json = world.wallet.get(path, headers=analyst)
        as_csv = world.wallet.get(path + "?format=csv", headers=analyst)

        assert [(line["merchant"], line["amount"]) for line in as_json.json()] == [
            ("家電量販店 秋葉原", SPENT)
        ]
        assert as_csv.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(as_csv.text)))
        assert [(r["merchant"], r["category"], r["amount_yen"]) for r in rows] == [
            ("家電量販店 秋葉原", "electronics", str(SPENT))
        ]
        assert rows[0]["payment_id"] == str(attacked.payment.id)


class TestRegulatorReport:
    def test_counts_amounts_timeline_and_measures(
        self, world: World, attacked: Attack, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        admin = operator(world, "admin", OperatorRole.ADMIN)
        analyst = operator(world, "analyst", OperatorRole.ANALYST)
        switched = world.wallet.put(
            "/v1/ops/switches",
            json={
                "scope": "bank_charges",
                "target": LEGACY_BANK,
                "active": True,
                "reason": "unauthorised top-ups",
            },
            headers=admin,
        )
        assert switched.status_code == 200, switched.text
        _lock(world, admin, attacked)
        case_id = _confirmed_case(world, analyst, attacked)
        world.wallet.post(
            f"/v1/ops/cases/{case_id}/compensation", json={"reason": "pay"}, headers=admin
        )
        url = "/v1/ops/reports/regulator?from=2026-03-01&to=2026-03-01"

        as_json = world.wallet.get(url, headers=analyst)
        as_md = world.wallet.get(url + "&format=md", headers=analyst)
        empty = world.wallet.get(
            "/v1/ops/reports/regulator?from=2026-02-01&to=2026-02-28", headers=analyst
        ).json()
        backwards = world.wallet.get(
            "/v1/ops/reports/regulator?from=2026-03-02&to=2026-03-01", headers=analyst
        )

        assert as_json.status_code == 200, as_json.text
        content = as_json.json()
        assert content["by_bank"] == [
            {
                "bank_code": LEGACY_BANK,
                "bank_name": "七十七",
                "unauthorised_topups": 4,
                "unauthorised_amount": TAKEN,
                "victims": 1,
                "compensated_amount": TAKEN,
                "compensated_victims": 1,
            }
        ]
        assert content["totals"]["victims"] == 1 and content["totals"]["banks"] == 1
        events = [event["event"] for event in content["timeline"]]
        assert events[0] == "first unauthorised top-up"
        assert {
            "switch on",
            "wallet locked",
            "first detection",
            "fraud confirmed",
            "compensation refund paid",
        } <= set(events)
        measures = content["measures"]
        assert [s["switch"] for s in measures["switch_changes"]] == [f"bank_charges:{LEGACY_BANK}"]
        assert (
            measures["wallets_locked"],
            measures["bank_notices_sent"],
            measures["bank_notices_delivered"],
            measures["cases_confirmed"],
        ) == (1, 1, 1, 1)
        assert measures["compensation"] == {
            "refunded": TAKEN,
            "costs_paid": 0,
            "clawed_back": TAKEN - SPENT,
            "net_cost": SPENT,
            "completed_cases": 1,
        }
        markdown = as_md.text
        assert as_md.headers["content-type"].startswith("text/markdown")
        assert f"| {LEGACY_BANK} 七十七 | 4 | 300,000 | 1 | 300,000 | 1 |" in markdown
        assert "## Timeline" in markdown and "## Measures taken" in markdown
        assert "net cost ¥120,000" in markdown
        assert empty["by_bank"] == [] and empty["timeline"] == []
        assert backwards.status_code == 400

        monkeypatch.setattr(common, "_runtime", world.rt)
        out = CliRunner().invoke(
            app, ["ops", "report", "--from", "2026-03-01", "--to", "2026-03-01", "--format", "json"]
        )
        assert out.exit_code == 0, out.output
        assert json.loads(out.output)["by_bank"] == content["by_bank"]
        md = CliRunner().invoke(
            app, ["ops", "report", "--from", "2026-03-01", "--to", "2026-03-01"]
        )
        assert md.exit_code == 0 and f"| {LEGACY_BANK} 七十七 | 4 | 300,000 |" in md.output
        bad = CliRunner().invoke(app, ["ops", "report", "--from", "March", "--to", "2026-03-01"])
        assert bad.exit_code == 1
