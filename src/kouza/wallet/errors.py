"""Errors of the wallet domain (see the tree in ``kouza.errors``)."""

from __future__ import annotations

from kouza.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from kouza.identity.errors import ProofIncomplete as ProofIncomplete


class UnknownWallet(NotFound):
    code = "unknown_wallet"


class UnknownMerchant(NotFound):
    code = "unknown_merchant"


class UnknownPayment(NotFound):
    code = "unknown_payment"


class WalletExists(Conflict):
    code = "wallet_exists"


class WalletNotActive(Forbidden):
    code = "wallet_not_active"


class MerchantNotActive(Unprocessable):
    code = "merchant_not_active"


class InvalidQr(BadRequest):
    code = "invalid_qr"


class QrAlreadyPaid(Conflict):
    code = "qr_already_paid"


class AmountMismatch(BadRequest):
    code = "amount_mismatch"


class SelfTransfer(BadRequest):
    code = "self_transfer"


class RefundTooLarge(Unprocessable):
    code = "refund_too_large"


class LimitExceeded(Unprocessable):
    code = "limit_exceeded"
