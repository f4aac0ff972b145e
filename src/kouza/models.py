"""Every table of the wallet operator, imported so that Alembic and tests see the full schema."""

from kouza.controls.models import AuditEvent, Case, CaseNote, KillSwitch, Operator
from kouza.identity.models import (
    AccessToken,
    Device,
    DeviceChallenge,
    EkycNonce,
    EkycVerification,
    EmailVerification,
    OtpChallenge,
    PhoneNumber,
    RateLimitHit,
    ReverificationCampaign,
    ReverificationRequirement,
    User,
    UserPhone,
    VerifiedIdentity,
)
from kouza.kit.db import Base
from kouza.kit.idempotency import IdempotencyRecord
from kouza.kit.outbox import OutboxMessage
from kouza.ledger.models import Hold, JournalEntry, LedgerAccount, Posting
from kouza.linking.models import BankLink, BankMovement, BankWebhookEvent
from kouza.risk.models import RiskDecisionRecord, RiskEventRecord
from kouza.wallet.models import Merchant, Payment, Refund, TopUp, Transfer, Wallet

__all__ = [
    "AccessToken",
    "AuditEvent",
    "BankLink",
    "BankMovement",
    "BankWebhookEvent",
    "Base",
    "Case",
    "CaseNote",
    "Device",
    "DeviceChallenge",
    "EkycNonce",
    "EkycVerification",
    "EmailVerification",
    "Hold",
    "IdempotencyRecord",
    "JournalEntry",
    "KillSwitch",
    "LedgerAccount",
    "Merchant",
    "Operator",
    "OtpChallenge",
    "OutboxMessage",
    "Payment",
    "PhoneNumber",
    "Posting",
    "RateLimitHit",
    "Refund",
    "ReverificationCampaign",
    "ReverificationRequirement",
    "RiskDecisionRecord",
    "RiskEventRecord",
    "TopUp",
    "Transfer",
    "User",
    "UserPhone",
    "VerifiedIdentity",
    "Wallet",
]
