"""Operator API for run-time settings (``/v1/ops/settings``, ADR 0035).

Analysts read; admins change, with a reason, and every change is audited. A value is validated
with the type and constraints of its ``Settings`` field before anything is stored. Servers apply
a change within ``RELOAD_SECONDS`` (at once in the process that made it).
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from kouza.controls.dependencies import CurrentAdmin, CurrentOperator
from kouza.controls.errors import (
    InvalidOperatorToken,
    InvalidSettingValue,
    ReasonRequired,
    RoleRequired,
    SettingNotChangeable,
    UnknownSetting,
)
from kouza.controls.models import Operator
from kouza.controls.overrides import SettingView, overrides
from kouza.kit.openapi import error_responses
from kouza.ops.schemas import ReasonCreate, SettingChange, SettingRead
from kouza.runtime import SessionDep

router = APIRouter(prefix="/v1/ops/settings", tags=["operator"])
AUTH = (InvalidOperatorToken, RoleRequired)


def _actor(operator: Operator) -> str:
    return f"operator:{operator.name}"


def _read(view: SettingView) -> SettingRead:
    return SettingRead(**asdict(view), overridden=view.overridden)


@router.get("", response_model=list[SettingRead], responses=error_responses(*AUTH))
def list_settings(operator: CurrentOperator, session: SessionDep) -> list[SettingRead]:
    """Every run-time setting: the environment's value, the override (who, why, when) and the
    effective value. The other settings need a restart (docs/settings.md)."""
    return [_read(view) for view in overrides.list(session)]


@router.put(
    "/{key}",
    response_model=SettingRead,
    responses=error_responses(
        *AUTH, UnknownSetting, SettingNotChangeable, InvalidSettingValue, ReasonRequired
    ),
)
def set_setting(
    key: str, body: SettingChange, operator: CurrentAdmin, session: SessionDep
) -> SettingRead:
    """Override a run-time setting (``accepted_legacy_banks`` or ``KOUZA_ACCEPTED_LEGACY_BANKS``);
    a bad value is refused and nothing is stored."""
    view = overrides.set(
        session, key=key, value=body.value, actor=_actor(operator), reason=body.reason
    )
    return _read(view)


@router.delete(
    "/{key}",
    response_model=SettingRead,
    responses=error_responses(*AUTH, UnknownSetting, SettingNotChangeable, ReasonRequired),
)
def unset_setting(
    key: str, body: ReasonCreate, operator: CurrentAdmin, session: SessionDep
) -> SettingRead:
    """Remove an override (body: the reason): the environment's value applies again."""
    return _read(overrides.unset(session, key=key, actor=_actor(operator), reason=body.reason))
