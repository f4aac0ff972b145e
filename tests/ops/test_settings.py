"""Run-time settings (kouza.controls.overrides, ADR 0035): validated like the environment,
audited, effective for the very next request of this process, and over the operator API."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kouza.api.app import create_app
from kouza.controls.errors import (
    InvalidSettingValue,
    ReasonRequired,
    SettingNotChangeable,
    UnknownSetting,
)
from kouza.controls.models import AuditEvent, OperatorRole, SettingOverride
from kouza.controls.overrides import RUNTIME_SETTINGS, overrides
from kouza.controls.service import controls
from kouza.identity.devices import SensitiveAction
from kouza.kit.notify import MemoryMailbox
from kouza.runtime import Runtime
from kouza.wallet.errors import LimitExceeded
from kouza.wallet.service import wallets
from tests.factories import balance_of, customer, signed


def set_(rt: Runtime, key: str, value: Any, reason: str = "incident 42") -> Any:
    with rt.db.unit_of_work() as session:
        return overrides.set(session, key=key, value=value, actor="test:ops", reason=reason)


def stored(rt: Runtime) -> dict[str, Any]:
    with rt.db.unit_of_work() as session:
        return {row.key: row.value for row in session.scalars(select(SettingOverride))}


def audits(rt: Runtime, action: str) -> list[AuditEvent]:
    with rt.db.unit_of_work() as session:
        found = list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))
        session.expunge_all()
        return found


def effective(rt: Runtime, key: str) -> Any:
    with rt.db.unit_of_work() as session:
        return getattr(overrides.settings(session), key)


class TestSet:
    def test_override_wins_over_the_environment_and_is_audited(self, rt: Runtime) -> None:
        assert effective(rt, "limit_per_day_yen") == 500_000
        view = set_(rt, "KOUZA_LIMIT_PER_DAY_YEN", "200000")  # lax like the environment

        assert (view.key, view.environment, view.override, view.effective) == (
            "limit_per_day_yen",
            500_000,
            200_000,
            200_000,
        )
        assert effective(rt, "limit_per_day_yen") == 200_000
        assert rt.settings.limit_per_day_yen == 500_000  # the environment's object is untouched
        assert stored(rt) == {"limit_per_day_yen": 200_000}
        (event,) = audits(rt, "setting.set")
        assert (event.actor, event.subject, event.reason) == (
            "test:ops",
            "limit_per_day_yen",
            "incident 42",
        )
        assert event.details == {"value": 200_000, "previous": None}

    @pytest.mark.parametrize(
        ("key", "value", "message"),
        [
            ("limit_per_day_yen", 0, "greater than 0"),
            ("limit_per_day_yen", "lots", "valid integer"),
            ("legacy_bank_links", "maybe", "'refuse' or 'restricted'"),
            ("accepted_legacy_banks", "0125", "valid list"),
            ("accepted_legacy_banks", ["0125", "12a"], "four digits"),
            ("limit_category_per_day_yen", {"tobacco": "x"}, "valid integer"),
        ],
    )
    def test_bad_value_is_refused_and_nothing_is_stored(
        self, rt: Runtime, key: str, value: Any, message: str
    ) -> None:
        with pytest.raises(InvalidSettingValue) as raised:
            set_(rt, key, value)
        assert message in raised.value.message
        assert stored(rt) == {}
        assert audits(rt, "setting.set") == []

    def test_unknown_and_restart_only_settings_are_refused(self, rt: Runtime) -> None:
        with pytest.raises(UnknownSetting):
            set_(rt, "no_such_setting", 1)
        with pytest.raises(SettingNotChangeable) as raised:
            set_(rt, "token_ttl_seconds", 60)
        assert "KOUZA_TOKEN_TTL_SECONDS" in raised.value.message
        assert stored(rt) == {}

    def test_a_reason_is_required(self, rt: Runtime) -> None:
        with pytest.raises(ReasonRequired):
            set_(rt, "limit_per_day_yen", 1_000, reason=" ")
        assert stored(rt) == {}

    def test_unset_returns_to_the_environment(self, rt: Runtime) -> None:
        set_(rt, "legacy_bank_links", "refuse")
        with rt.db.unit_of_work() as session:
            view = overrides.unset(
                session, key="legacy_bank_links", actor="test:ops", reason="over"
            )
        assert (view.override, view.effective, view.overridden) == (None, "restricted", False)
        assert effective(rt, "legacy_bank_links") == "restricted"
        assert stored(rt) == {}
        (event,) = audits(rt, "setting.unset")
        assert event.details == {"previous": "refuse"}

    def test_accepting_a_legacy_bank_adds_to_the_list(self, rt: Runtime) -> None:
        rt.settings.accepted_legacy_banks = ["0158"]  # from the environment
        with rt.db.unit_of_work() as session:
            overrides.accept_legacy_bank(
                session, bank_code="0125", accepted=True, actor="test:ops", reason="SMS added"
            )
            overrides.accept_legacy_bank(
                session, bank_code="0158", accepted=False, actor="test:ops", reason="no 2FA"
            )
        assert effective(rt, "accepted_legacy_banks") == ["0125"]

    def test_list_names_every_run_time_setting(self, rt: Runtime) -> None:
        set_(rt, "money_out_free_payment_yen", 1_000)
        with rt.db.unit_of_work() as session:
            views = overrides.list(session)
        assert [view.key for view in views] == list(RUNTIME_SETTINGS)
        (changed,) = [view for view in views if view.overridden]
        assert (changed.key, changed.environment, changed.effective, changed.actor) == (
            "money_out_free_payment_yen",
            3_000,
            1_000,
            "test:ops",
        )


class TestCodePathsReadTheEffectiveValue:
    def test_a_lowered_limit_refuses_the_next_transfer_and_nothing_moves(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        alice = customer(rt, mailbox, balance=50_000)
        bob = customer(rt, mailbox)

        def send(amount: int) -> None:
            with rt.db.unit_of_work() as session:
                wallets.transfer(
                    session,
                    user=alice.user,
                    source_wallet_id=alice.wallet.id,
                    destination_wallet_id=bob.wallet.id,
                    amount=amount,
                    signed=signed(rt, alice, SensitiveAction.TRANSFER),
                )

        send(20_000)  # the limit set is built and in use
        set_(rt, "limit_per_transaction_yen", 10_000)
        with pytest.raises(LimitExceeded):
            send(20_000)
        assert (balance_of(rt, alice.wallet), balance_of(rt, bob.wallet)) == (30_000, 20_000)

        with rt.db.unit_of_work() as session:
            overrides.unset(session, key="limit_per_transaction_yen", actor="t", reason="over")
        send(20_000)
        assert balance_of(rt, bob.wallet) == 40_000


def _operator(rt: Runtime, name: str, role: OperatorRole) -> dict[str, str]:
    with rt.db.unit_of_work() as session:
        _, token = controls.create_operator(session, name=name, role=role, actor="test")
    return {"Authorization": f"Bearer {token}"}


class TestEndpoints:
    def test_analysts_read_admins_change(self, rt: Runtime) -> None:
        client = TestClient(create_app(rt))
        analyst = _operator(rt, "ana", OperatorRole.ANALYST)
        admin = _operator(rt, "adm", OperatorRole.ADMIN)
        listed = client.get("/v1/ops/settings", headers=analyst)
        assert listed.status_code == 200
        assert [row["key"] for row in listed.json()] == list(RUNTIME_SETTINGS)

        body = {"value": ["0125"], "reason": "bank added SMS codes"}
        refused = client.put("/v1/ops/settings/accepted_legacy_banks", json=body, headers=analyst)
        assert refused.status_code == 403
        assert stored(rt) == {}

        done = client.put("/v1/ops/settings/accepted_legacy_banks", json=body, headers=admin)
        assert done.status_code == 200, done.text
        assert done.json()["effective"] == ["0125"] and done.json()["actor"] == "operator:adm"
        assert stored(rt) == {"accepted_legacy_banks": ["0125"]}

        gone = client.request(
            "DELETE",
            "/v1/ops/settings/accepted_legacy_banks",
            json={"reason": "bank dropped SMS codes"},
            headers=admin,
        )
        assert gone.status_code == 200 and gone.json()["overridden"] is False
        assert stored(rt) == {}

    @pytest.mark.parametrize(
        ("key", "body", "status", "error"),
        [
            ("limit_per_day_yen", {"value": -1, "reason": "r"}, 400, "invalid_setting_value"),
            ("token_ttl_seconds", {"value": 60, "reason": "r"}, 400, "setting_not_runtime"),
            ("nope", {"value": 1, "reason": "r"}, 404, "unknown_setting"),
            ("limit_per_day_yen", {"value": 1}, 422, "validation_error"),
            ("limit_per_day_yen", {"value": 1.5, "reason": "r"}, 422, "validation_error"),
        ],
    )
    def test_bad_requests_are_problems_and_store_nothing(
        self, rt: Runtime, key: str, body: dict[str, Any], status: int, error: str
    ) -> None:
        client = TestClient(create_app(rt))
        admin = _operator(rt, "adm", OperatorRole.ADMIN)
        answer = client.put(f"/v1/ops/settings/{key}", json=body, headers=admin)
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["error"] == error
        with rt.db.unit_of_work() as session:
            assert session.scalar(select(func.count()).select_from(SettingOverride)) == 0
