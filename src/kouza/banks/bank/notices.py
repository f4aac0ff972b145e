"""Holder notices: the bank writes to its customer at the contact it has on file.

The channel is the bank's configuration (e-mail, SMS or a letter to the postal address); the
contact is the bank's own record, never anything the operator supplied, so someone who linked
an account in another person's name cannot divert the warning.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from kouza.banks.bank.models import Account, Bank, Customer, NoticeChannel
from kouza.banks.bank.outbox import enqueue_notice


def contact_on_file(customer: Customer, channel: NoticeChannel) -> str:
    """The customer's address for ``channel``."""
    return {
        NoticeChannel.EMAIL: customer.email,
        NoticeChannel.SMS: customer.phone,
        NoticeChannel.POST: customer.address,
    }[channel]


def notify_holder(session: Session, bank: Bank, account: Account, *, subject: str,
                  body: str) -> None:
    """Queue a notice to the holder of ``account`` on the bank's channel."""
    customer = session.get_one(Customer, account.customer_id)
    channel = NoticeChannel(bank.notice_channel)
    enqueue_notice(session, channel=channel.value, destination=contact_on_file(customer, channel),
                   subject=f"[{bank.name}] {subject}", body=body)
