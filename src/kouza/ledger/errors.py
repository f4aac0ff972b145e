"""Errors of the ledger (see the tree in ``kouza.errors``)."""

from __future__ import annotations

from kouza.errors import BadRequest, Conflict, NotFound, Unprocessable


class InvalidEntry(BadRequest):
    """A journal entry that is not a valid double entry."""

    code = "invalid_entry"


class UnbalancedEntry(InvalidEntry):
    code = "unbalanced_entry"


class InvalidAmount(BadRequest):
    code = "invalid_amount"


class UnknownAccount(NotFound):
    code = "unknown_account"


class UnknownEntry(NotFound):
    code = "unknown_entry"


class UnknownHold(NotFound):
    code = "unknown_hold"


class InsufficientFunds(Unprocessable):
    code = "insufficient_funds"


class HoldNotPending(Conflict):
    code = "hold_not_pending"


class HoldExpired(Conflict):
    code = "hold_expired"


class AlreadyReversed(Conflict):
    code = "already_reversed"
