"""Errors of bank linking and bank money movement (see the tree in ``kouza.errors``).

Refusals decided by the wallet are its own errors; a definite refusal by the bank is relayed as
:class:`BankRefused` (or the specific subclass for the legacy form), carrying the bank's error
code. :class:`BankUnavailable` means no answer (timeout, connection error, 5xx):
for a top-up or withdrawal that is :class:`BankOutcomeUnknown`, which a retry with the same
Idempotency-Key or ``kouza banks reconcile`` resolves.
"""

from __future__ import annotations

from kouza.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unprocessable,
)


class InvalidBankDetails(BadRequest):
    code = "invalid_bank_details"


class UnknownBankLink(NotFound):
    code = "unknown_bank_link"


class UnknownBank(NotFound):
    code = "unknown_bank"


class BankLinkNotActive(Unprocessable):
    code = "bank_link_not_active"


class MandateExceeded(Unprocessable):
    code = "mandate_exceeded"


class LegacyBankNotAccepted(Forbidden):
    code = "legacy_bank_not_accepted"


class LegacyFormNotOffered(Forbidden):
    code = "legacy_form_not_offered"


class DeviceSignatureRequired(Forbidden):
    code = "device_signature_required"


class VerifiedNameRequired(Forbidden):
    code = "verified_name_required"


class TooManyBankLinks(Unprocessable):
    code = "too_many_bank_links"


class AccountAlreadyLinked(Conflict):
    code = "account_already_linked"


class RiskRefused(Forbidden):
    code = "risk_refused"
    public_details = frozenset({"reference"})
    """Customers get the risk decision's id; the rules that fired are for operators."""


class UnderReview(Unprocessable):
    code = "under_review"
    public_details = frozenset({"reference"})


class BankRefused(Unprocessable):
    code = "bank_refused"


class BankLinkRefused(BankRefused):
    code = "bank_link_refused"


class MovementRefused(Unprocessable):
    code = "bank_movement_refused"


class BankUnavailable(ServiceUnavailable):
    code = "bank_unavailable"


class BankOutcomeUnknown(ServiceUnavailable):
    code = "bank_outcome_unknown"


class OAuthNotOffered(Forbidden):
    """The bank does not link accounts through the OAuth flow (its profile is another)."""

    code = "oauth_not_offered"


class OAuthStateInvalid(BadRequest):
    """The callback's ``state`` is unknown, used, expired, or not this wallet's, user's and
    device's flow."""

    code = "oauth_state_invalid"


class OAuthIssuerMismatch(BadRequest):
    """The authorization response's ``iss`` is not the bank the flow was started with
    (RFC 9207: a mix-up attack, or a response for another flow)."""

    code = "oauth_issuer_mismatch"


class OAuthMaterialUnavailable(ServiceUnavailable):
    """The client key or sealed OAuth material cannot be used (configuration problem)."""

    code = "bank_oauth_unavailable"


class ReviewNotFound(NotFound):
    code = "unknown_bank_review"


class ReviewNotPending(Conflict):
    """The held movement was already released or rejected, or the bank never moved it."""

    code = "bank_review_not_pending"


class ReviewNotReady(Conflict):
    """The bank's answer for the held movement is not known yet (reconcile first)."""

    code = "bank_review_not_ready"
