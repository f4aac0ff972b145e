"""Holder notices: the bank writes to its customer at the contact it has on file.

The channel is the bank's configuration (e-mail, SMS or a letter to the postal address); the
contact is the bank's own record, never anything the operator supplied, so someone who linked
an account in another person's name cannot divert the warning.

**Security notices** (:func:`warn_holder`, ADR 0022) tell a holder that someone else holds
their credentials: a failed identity check after a correct internet-banking login and OTP (a
phishing relay), or repeated failed legacy-form attempts on their account. Each one records an
:class:`~kouza.bank.models.Alert` for the fraud team carrying the "not me" reference
printed on the notice; quoting it (:meth:`kouza.bank.holder.Holder.not_me`) locks the
credential the notice is about until the holder renews it at the branch. A notice names the
operator and what was refused, never a credential, the identity the wallet sent, or the
account number beyond its last three digits.
"""

from __future__ import annotations

import secrets
import string
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from kouza.bank.models import (
    Account,
    Alert,
    Bank,
    Customer,
    Link,
    NoticeChannel,
    OperatorClient,
)
from kouza.bank.outbox import enqueue_notice
from kouza.bank.runtime import bank_runtime_of
from kouza.errors import Conflict
from kouza.kit.db import add_unique

_REFERENCE_ALPHABET = string.ascii_uppercase + string.digits


NOTICE_PATH = "/banks/{bank_code}/notice"
"""Where a holder opens a notice at the bank (``kouza.bank.portal``); the reference follows
``#`` in the link, so it never reaches a server's logs."""


def notice_link(session: Session, bank_code: str, reference: str) -> str:
    """The link printed in a notice: the bank's public address, the notice page, the reference."""
    issuer = bank_runtime_of(session).settings.issuer.rstrip("/")
    return f"{issuer}{NOTICE_PATH.format(bank_code=bank_code)}#{reference}"


def open_notice_line(session: Session, bank_code: str, reference: str) -> str:
    """The last line of every notice with a "not me" reference."""
    url = notice_link(session, bank_code, reference)
    return f"\nお知らせの確認・お申し出 / Open this notice at the bank: {url}"


def notice_reference() -> str:
    """A fresh "not me" reference (``NM-`` and ten letters or digits)."""
    return "NM-" + "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(10))


def contact_on_file(customer: Customer, channel: NoticeChannel) -> str:
    """The customer's address for ``channel``."""
    return {
        NoticeChannel.EMAIL: customer.email,
        NoticeChannel.SMS: customer.phone,
        NoticeChannel.POST: customer.address,
    }[channel]


def notify_holder(
    session: Session, bank: Bank, account: Account, *, subject: str, body: str
) -> None:
    """Queue a notice to the holder of ``account`` on the bank's channel."""
    notify_customer(
        session, bank, session.get_one(Customer, account.customer_id), subject=subject, body=body
    )


def notify_customer(
    session: Session, bank: Bank, customer: Customer, *, subject: str, body: str
) -> None:
    """Queue a notice to ``customer`` on the bank's channel, at the contact on file."""
    channel = NoticeChannel(bank.notice_channel)
    enqueue_notice(
        session,
        channel=channel.value,
        destination=contact_on_file(customer, channel),
        subject=f"[{bank.name}] {subject}",
        body=body,
    )


def probation_note(link: Link, *, at: datetime) -> str:
    """What a restricted link's link and debit notices add while it is on probation (ADR 0032
    of the wallet): the top-ups are held, and "not me" in that time brings the money back.
    Empty for other links and after the probation."""
    if link.probation_until is None or link.hold_hours is None or at >= link.probation_until:
        return ""
    until = link.probation_until.date().isoformat()
    hours = link.hold_hours
    return (
        f"\n{until} までのチャージは {hours} 時間保留され、その間に「心当たりがない」と"
        "お申し出いただければ、保留中のお金はこの口座に戻ります。\n"
        f"Until {until}, each top-up is held by the wallet for {hours} hours before it can be "
        'spent: say "not me" within that time and the held money comes back to this account.'
    )


IDENTITY_CHECK_FAILED = "oauth_identity_mismatch"
"""Alert kind: login + OTP right, the wallet's identity not the holder's (holder warned)."""
LEGACY_ATTEMPTS_FAILED = "legacy_failed_attempts"
"""Alert kind: repeated failed legacy-form attempts on one account (holder warned)."""


def warn_holder(
    session: Session,
    bank: Bank,
    customer: Customer,
    *,
    kind: str,
    client: OperatorClient,
    account: Account | None,
    details: dict[str, Any],
) -> Alert:
    """Record the alert and tell the holder at once, with a "not me" reference."""
    alert = Alert(
        bank_id=bank.id,
        kind=kind,
        subject=f"customer:{customer.id}",
        customer_id=customer.id,
        account_id=account.id if account else None,
        client_pk=client.id,
        created_at=bank_runtime_of(session).now(),
        notice_reference=notice_reference(),
        details=details,
    )
    add_unique(session, alert, Conflict("a notice reference collided; try again"))
    subject, body = _security_notice(kind, client, account, alert.notice_reference or "")
    body += open_notice_line(session, bank.code, alert.notice_reference or "")
    notify_customer(session, bank, customer, subject=subject, body=body)
    return alert


def _security_notice(
    kind: str, client: OperatorClient, account: Account | None, reference: str
) -> tuple[str, str]:
    last3 = f" ***{account.number[-3:]}" if account is not None else ""
    if kind == IDENTITY_CHECK_FAILED:
        return (
            "不正な口座連携の試みのお知らせ (someone used your internet-banking login)",
            (
                f"お客さまのインターネットバンキングのログインとワンタイムパスワードを使って、"
                f"{client.name} の他人名義のウォレットへの口座連携が試みられたため、"
                "お断りしました。\n"
                f"Someone logged in to your internet banking with your password and a one-time "
                f"password and tried to link your account to a {client.name} wallet held in "
                "another person's name. The bank refused the link; no money moved.\n"
                "If this was not you, your password and codes are in someone else's hands (a "
                "phishing site or call): change your internet-banking password now, and contact "
                f"the bank quoting reference {reference} (not me): internet-banking login is "
                "locked until you renew your password. Never give anyone your password or "
                "one-time codes."
            ),
        )
    return (
        "口座振替登録の失敗のお知らせ (failed wallet link attempts)",
        (
            f"お客さまの口座{last3} について、{client.name} のウォレットへの口座振替登録が"
            f"正しくない暗証番号などで繰り返し試みられ、お断りしました。\n"
            f"Someone tried several times to link your account{last3} to a {client.name} wallet "
            "with wrong details (PIN, name or birth date). The bank refused; no money moved.\n"
            f"If this was not you, contact the bank quoting reference {reference} (not me): the "
            "account's registration PIN is locked until you renew it at the branch; if you use "
            "internet banking, change its password too. Never tell anyone your PIN."
        ),
    )
