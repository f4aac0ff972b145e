"""Every table of the wallet operator, imported so that Alembic and tests see the full schema."""

from kouza.identity.models import AccessToken, EmailVerification, User
from kouza.kit.db import Base
from kouza.kit.idempotency import IdempotencyRecord
from kouza.kit.outbox import OutboxMessage
from kouza.ledger.models import Hold, JournalEntry, LedgerAccount, Posting
from kouza.ops.models import AuditEvent, Operator
from kouza.wallet.models import Merchant, Payment, Refund, TopUp, Transfer, Wallet

__all__ = [
    "AccessToken",
    "AuditEvent",
    "Base",
    "EmailVerification",
    "Hold",
    "IdempotencyRecord",
    "JournalEntry",
    "LedgerAccount",
    "Merchant",
    "Operator",
    "OutboxMessage",
    "Payment",
    "Posting",
    "Refund",
    "TopUp",
    "Transfer",
    "User",
    "Wallet",
]
