"""Errors of the bank system (see the tree in ``kouza.errors``).

The legacy form answers every credential failure with one error, :class:`LinkRefused`, so the
caller cannot tell an unknown account from a wrong name, PIN or birth date or a locked account.
"""

from __future__ import annotations

from kouza.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
)


class InvalidClient(Unauthorized):
    code = "invalid_client"


class InvalidStaffToken(Unauthorized):
    code = "invalid_staff_token"


class UnknownBank(NotFound):
    code = "unknown_bank"


class UnknownBranch(NotFound):
    code = "unknown_branch"


class UnknownAccount(NotFound):
    code = "unknown_account"


class UnknownLink(NotFound):
    code = "unknown_link"


class UnknownTransfer(NotFound):
    code = "unknown_transfer"


class UnknownClient(NotFound):
    code = "unknown_client"


class InvalidBankData(BadRequest):
    code = "invalid_bank_data"


class InvalidAmount(BadRequest):
    code = "invalid_amount"


class LinkRefused(Unprocessable):
    """Every credential failure of the legacy form, whatever its true reason."""

    code = "link_refused"


class LegacyFormNotOffered(Forbidden):
    code = "legacy_form_not_offered"


class SourceBlocked(TooManyRequests):
    code = "source_blocked"


class AlreadyLinked(Conflict):
    code = "already_linked"


class AlreadyReversed(Conflict):
    code = "already_reversed"


class BankExists(Conflict):
    code = "bank_exists"


class ClientExists(Conflict):
    code = "client_exists"


class AccountExists(Conflict):
    code = "account_exists"


class LinkNotActive(Unprocessable):
    code = "link_not_active"


class MandateExceeded(Unprocessable):
    code = "mandate_exceeded"


class InsufficientBalance(Unprocessable):
    code = "insufficient_balance"
