"""Errors of the operations domain (see the tree in ``kouza.errors``)."""

from __future__ import annotations

from kouza.errors import BadRequest, Conflict, NotFound


class CaseNotConfirmed(Conflict):
    code = "case_not_confirmed"


class WalletNotLocked(Conflict):
    code = "wallet_not_locked"


class MovementsUnresolved(Conflict):
    code = "bank_movements_unresolved"


class UnknownVictimAccount(NotFound):
    code = "unknown_victim_account"


class InvalidOpsInput(BadRequest):
    code = "invalid_ops_input"
