"""Errors of the operator controls: tokens, roles, reasons, kill switches, cases, run-time
settings."""

from __future__ import annotations

from kouza.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized


class InvalidOperatorToken(Unauthorized):
    code = "invalid_operator_token"


class RoleRequired(Forbidden):
    code = "operator_role_required"


class OperatorExists(Conflict):
    code = "operator_exists"


class ReasonRequired(BadRequest):
    code = "reason_required"


class KillSwitchActive(Forbidden):
    code = "kill_switch_active"


class UnknownCase(NotFound):
    code = "unknown_case"


class InvalidCaseTransition(Conflict):
    code = "invalid_case_transition"


class UnknownSetting(NotFound):
    code = "unknown_setting"


class SettingNotChangeable(BadRequest):
    """A real setting, but only the environment sets it (a restart is needed)."""

    code = "setting_not_runtime"


class InvalidSettingValue(BadRequest):
    code = "invalid_setting_value"
