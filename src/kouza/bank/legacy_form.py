"""The 2020 legacy linking form (Web口振受付), per-account PIN lockout, and source monitoring.

The operator submits, on behalf of its user: branch, account type, number, kana holder name, PIN
(and birth date on ``legacy_pin_dob`` banks), an opaque wallet reference and, optionally, the end
user's source (IP address or device id it saw). There is no second factor: that is the weakness
the simulator reproduces. An operator that proofed its user's identity also sends the kanji name
and birth date read from the user's card (``holder_name`` + ``birth_date``); the bank then
compares both with the holder's record whatever its profile (:func:`kana.compare_holder`), so a
leaked PIN is useless to someone whose card names another person. Without ``holder_name`` the
form is the 2020 one: the typed kana (and birth date on ``legacy_pin_dob``) is all it compares.

What the form reveals (as the real forms did: 「登録できませんでした」): an unknown account, a
wrong type, a wrong name, a wrong PIN, a wrong birth date and a locked account all get the same
:class:`LinkRefused` (422, same code and message, no details). The argon2 verification runs for
unknown accounts too (against a dummy hash of the same cost), so timing does not separate them.
The bank keeps the true reason in ``link_attempts``. Distinct answers exist only for facts that
are public or follow correct credentials: an unknown bank code (404), an ``oauth`` bank (403, the
form is not offered), a blocked source (429), an account already linked to this operator (409,
only after every credential check passed).

Lockout: each wrong PIN increments the account's counter, committed although the request is
refused (``keep_changes``); the third locks the account, and a locked account refuses even the
right PIN. A success resets the counter.

Monitoring (banks with ``monitor_failed_links``): after each failure, if one source has made at
least ``monitor_max_failures`` failed attempts across at least ``monitor_min_accounts`` distinct
account numbers within ``monitor_window_seconds``, the source is blocked for
``monitor_block_seconds`` and an alert is recorded. That catches the reverse brute force of the
incident (one PIN tried across many account numbers, none reaching its own lockout). The source
is the operator-supplied end-user source when given, else the caller's IP address.

Holder warning (ADR 0022): failed attempts on an existing account are also the holder's
business. A right PIN with a wrong name or birth date warns the holder at once (the PIN is in
someone else's hands); otherwise the second failure within 24 hours does. At most one notice
per account per 24 hours, through :func:`kouza.bank.notices.warn_holder` with a "not me"
reference that locks the account's PIN.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NoReturn

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from kouza.bank.core import ACCOUNT_NUMBER, BRANCH_CODE, PIN, core, require_format
from kouza.bank.errors import (
    AlreadyLinked,
    InvalidBankData,
    LegacyFormNotOffered,
    LinkRefused,
    SourceBlocked,
)
from kouza.bank.kana import compare_holder, to_zengin_kana
from kouza.bank.models import (
    Account,
    AccountType,
    Alert,
    AttemptOutcome,
    AuthProfile,
    Bank,
    Branch,
    Customer,
    Link,
    LinkAttempt,
    OperatorClient,
    SourceBlock,
)
from kouza.bank.notices import (
    LEGACY_ATTEMPTS_FAILED,
    notify_holder,
    open_notice_line,
    probation_note,
    warn_holder,
)
from kouza.bank.runtime import bank_runtime_of
from kouza.kit.db import add_unique
from kouza.kit.security import verify_password

REFUSED = "the registration could not be completed (登録できませんでした)"
LEGACY_PROFILES = (AuthProfile.LEGACY_PIN, AuthProfile.LEGACY_PIN_DOB)
_REFERENCE_ALPHABET = string.ascii_uppercase + string.digits
HOLDER_WARNING_WINDOW = timedelta(hours=24)
HOLDER_WARNING_FAILURES = 2
"""Failed attempts on one account within the window that make the bank warn its holder."""
HOLDER_WARNING_OUTCOMES = (
    AttemptOutcome.WRONG_PIN,
    AttemptOutcome.NAME_MISMATCH,
    AttemptOutcome.BIRTH_DATE_MISMATCH,
    AttemptOutcome.ACCOUNT_LOCKED,
)


@dataclass(frozen=True)
class LegacyLinkForm:
    """What the operator submits on the legacy form."""

    branch_code: str
    account_type: AccountType
    account_number: str
    holder_kana: str
    pin: str
    wallet_reference: str
    birth_date: date | None = None
    holder_name: str | None = None
    """The kanji name the operator verified from its user's card (then ``birth_date`` is the
    card's too, and both are compared at every profile)."""
    max_per_debit: int | None = None
    max_30_days: int | None = None
    probation_days: int | None = None
    """A restricted link (ADR 0032 of the wallet): for this many days the operator holds each
    top-up for ``hold_hours`` before it is spendable; the holder's notices say so."""
    hold_hours: int | None = None

    @property
    def account_key(self) -> str:
        return f"{self.branch_code}-{self.account_type.value}-{self.account_number}"


class LegacyLinking:
    """The legacy linking form and its defences (lockout, monitoring)."""

    def link(
        self,
        session: Session,
        *,
        client: OperatorClient,
        bank_code: str,
        form: LegacyLinkForm,
        source: str,
    ) -> Link:
        """Link an account through the legacy form; one indistinguishable refusal on failure."""
        bank = core.bank(session, bank_code)
        if AuthProfile(bank.auth_profile) not in LEGACY_PROFILES:
            raise LegacyFormNotOffered("this bank links accounts only through its OAuth flow")
        _validate(form)
        now = bank_runtime_of(session).now()
        bank_runtime_of(session).metrics.legacy_link_attempts.inc(bank=bank.code)
        if self._blocked(session, bank, source, now):
            self._record(session, bank, client, form, source, None, AttemptOutcome.SOURCE_BLOCKED)
            raise SourceBlocked(
                "too many failed registrations from this source; try later", keep_changes=True
            )
        found = self._find_locked(session, bank, form)
        outcome = self._check(session, bank, found, form)
        account = found[0] if found is not None else None
        if outcome is not AttemptOutcome.LINKED:
            self._refuse(session, bank, client, form, source, account, outcome)
        assert account is not None
        link = self._create_link(session, bank, client, account, form, source)
        account.pin_failures = 0
        self._record(session, bank, client, form, source, account, AttemptOutcome.LINKED)
        return link

    def _find_locked(
        self, session: Session, bank: Bank, form: LegacyLinkForm
    ) -> tuple[Account, Customer] | None:
        # one statement whether or not the account exists (no timing difference from here)
        row = session.execute(
            select(Account, Customer)
            .join(Branch, Account.branch_id == Branch.id)
            .join(Customer, Account.customer_id == Customer.id)
            .where(
                Branch.bank_id == bank.id,
                Branch.code == form.branch_code,
                Account.number == form.account_number,
            )
            .with_for_update(of=Account)
        ).one_or_none()
        if row is None or row[0].account_type != form.account_type.value:
            return None
        return row[0], row[1]

    def _check(
        self,
        session: Session,
        bank: Bank,
        found: tuple[Account, Customer] | None,
        form: LegacyLinkForm,
    ) -> AttemptOutcome:
        runtime = bank_runtime_of(session)
        # always one argon2 verification, so an unknown account costs what a known one does
        pin_hash = found[0].pin_hash if found is not None else runtime.dummy_pin_hash()
        pin_matches = verify_password(pin_hash, form.pin)
        if found is None:
            return AttemptOutcome.UNKNOWN_ACCOUNT
        account, holder = found
        if account.pin_locked_at is not None:
            return AttemptOutcome.ACCOUNT_LOCKED
        if not pin_matches:
            return AttemptOutcome.WRONG_PIN
        mismatch = compare_holder(
            holder,
            name=form.holder_name,
            kana=form.holder_kana,
            birth_date=form.birth_date,
            birth_date_required=bank.auth_profile == AuthProfile.LEGACY_PIN_DOB,
        )
        return mismatch or AttemptOutcome.LINKED

    def _refuse(
        self,
        session: Session,
        bank: Bank,
        client: OperatorClient,
        form: LegacyLinkForm,
        source: str,
        account: Account | None,
        outcome: AttemptOutcome,
    ) -> NoReturn:
        now = bank_runtime_of(session).now()
        if outcome is AttemptOutcome.WRONG_PIN and account is not None:
            account.pin_failures += 1
            if account.pin_failures >= bank_runtime_of(session).settings.pin_max_failures:
                account.pin_locked_at = now
        self._record(session, bank, client, form, source, account, outcome)
        if account is not None:
            self._warn_holder(session, bank, client, account, outcome, now)
        if bank.monitor_failed_links:
            self._monitor(session, bank, source, now)
        raise LinkRefused(REFUSED, keep_changes=True)

    def _warn_holder(
        self,
        session: Session,
        bank: Bank,
        client: OperatorClient,
        account: Account,
        outcome: AttemptOutcome,
        now: datetime,
    ) -> None:
        """Tell the holder of failed attempts on their account (ADR 0022): at once when the
        PIN was right (someone holds it), else at the second failure within a day; at most
        one notice per account per day."""
        since = now - HOLDER_WARNING_WINDOW
        failures = session.scalar(
            select(func.count()).where(
                LinkAttempt.account_id == account.id,
                LinkAttempt.created_at >= since,
                LinkAttempt.outcome.in_([o.value for o in HOLDER_WARNING_OUTCOMES]),
            )
        )
        right_pin = outcome in (AttemptOutcome.NAME_MISMATCH, AttemptOutcome.BIRTH_DATE_MISMATCH)
        if not right_pin and (failures or 0) < HOLDER_WARNING_FAILURES:
            return
        warned = session.scalar(
            select(func.count())
            .select_from(Alert)
            .where(
                Alert.account_id == account.id,
                Alert.kind == LEGACY_ATTEMPTS_FAILED,
                Alert.created_at >= since,
            )
        )
        if warned:
            return
        warn_holder(
            session,
            bank,
            session.get_one(Customer, account.customer_id),
            kind=LEGACY_ATTEMPTS_FAILED,
            client=client,
            account=account,
            details={"failures": int(failures or 0), "last_outcome": outcome.value},
        )

    def _create_link(
        self,
        session: Session,
        bank: Bank,
        client: OperatorClient,
        account: Account,
        form: LegacyLinkForm,
        source: str,
    ) -> Link:
        now = bank_runtime_of(session).now()
        per_debit = min(
            form.max_per_debit or bank.mandate_max_per_debit, bank.mandate_max_per_debit
        )
        per_30_days = max(
            min(form.max_30_days or bank.mandate_max_30_days, bank.mandate_max_30_days), per_debit
        )
        try:
            return create_link(
                session,
                bank=bank,
                client=client,
                account=account,
                wallet_reference=form.wallet_reference,
                max_per_debit=per_debit,
                max_30_days=per_30_days,
                expires_at=now + timedelta(days=bank.mandate_days),
                probation_until=(
                    now + timedelta(days=form.probation_days) if form.probation_days else None
                ),
                hold_hours=form.hold_hours if form.probation_days else None,
            )
        except AlreadyLinked:
            self._record(
                session, bank, client, form, source, account, AttemptOutcome.ALREADY_LINKED
            )
            raise

    def _record(
        self,
        session: Session,
        bank: Bank,
        client: OperatorClient,
        form: LegacyLinkForm,
        source: str,
        account: Account | None,
        outcome: AttemptOutcome,
    ) -> None:
        if outcome is not AttemptOutcome.LINKED:
            metrics = bank_runtime_of(session).metrics
            metrics.legacy_link_refusals.inc(bank=bank.code, reason=outcome.value)
        session.add(
            LinkAttempt(
                bank_id=bank.id,
                client_pk=client.id,
                source=source[:200],
                account_key=form.account_key,
                account_id=account.id if account else None,
                outcome=outcome.value,
                created_at=bank_runtime_of(session).now(),
            )
        )
        session.flush()

    def _blocked(self, session: Session, bank: Bank, source: str, now: datetime) -> bool:
        return (
            session.scalar(
                select(func.count())
                .select_from(SourceBlock)
                .where(
                    SourceBlock.bank_id == bank.id,
                    SourceBlock.source == source[:200],
                    SourceBlock.blocked_until > now,
                )
            )
            != 0
        )

    def _monitor(self, session: Session, bank: Bank, source: str, now: datetime) -> None:
        failures, accounts = self.failures_from(session, bank, source=source, now=now)
        if failures < bank.monitor_max_failures or accounts < bank.monitor_min_accounts:
            return
        session.add(
            SourceBlock(
                bank_id=bank.id,
                source=source[:200],
                blocked_at=now,
                blocked_until=now + timedelta(seconds=bank.monitor_block_seconds),
            )
        )
        session.add(
            Alert(
                bank_id=bank.id,
                kind="reverse_brute_force",
                subject=source[:200],
                created_at=now,
                details={
                    "failures": failures,
                    "distinct_accounts": accounts,
                    "window_seconds": bank.monitor_window_seconds,
                },
            )
        )
        session.flush()

    def failures_from(
        self, session: Session, bank: Bank, *, source: str, now: datetime
    ) -> tuple[int, int]:
        """Failed attempts from ``source`` in the bank's window, and how many accounts they hit."""
        since = now - timedelta(seconds=bank.monitor_window_seconds)
        ignored = (
            AttemptOutcome.LINKED.value,
            AttemptOutcome.SOURCE_BLOCKED.value,
            AttemptOutcome.ALREADY_LINKED.value,
        )
        row = session.execute(
            select(func.count(), func.count(distinct(LinkAttempt.account_key))).where(
                LinkAttempt.bank_id == bank.id,
                LinkAttempt.source == source[:200],
                LinkAttempt.created_at >= since,
                LinkAttempt.outcome.not_in(ignored),
            )
        ).one()
        return int(row[0]), int(row[1])


def create_link(
    session: Session,
    *,
    bank: Bank,
    client: OperatorClient,
    account: Account,
    wallet_reference: str,
    max_per_debit: int,
    max_30_days: int,
    expires_at: datetime,
    probation_until: datetime | None = None,
    hold_hours: int | None = None,
) -> Link:
    """Link ``account`` to ``client`` with a mandate and notify the holder (every profile).

    One live link per (account, operator): a second one is :class:`AlreadyLinked` (409). A
    restricted link's notice also says that its first top-ups are held (``probation_until``,
    ``hold_hours``) and that "not me" sends them back.
    """
    link = Link(
        bank_id=bank.id,
        account_id=account.id,
        client_pk=client.id,
        wallet_reference=wallet_reference,
        max_per_debit=max_per_debit,
        max_30_days=max_30_days,
        expires_at=expires_at,
        notice_reference=_notice_reference(),
        created_at=bank_runtime_of(session).now(),
        probation_until=probation_until,
        hold_hours=hold_hours,
    )
    add_unique(
        session,
        link,
        AlreadyLinked(
            "this account is already linked to a wallet of this operator", keep_changes=True
        ),
    )
    notify_holder(
        session,
        bank,
        account,
        subject="口座振替の登録 (new wallet link)",
        body=_link_notice(client, link)
        + open_notice_line(session, bank.code, link.notice_reference),
    )
    return link


def _validate(form: LegacyLinkForm) -> None:
    require_format(form.branch_code, BRANCH_CODE, "branch_code")
    require_format(form.account_number, ACCOUNT_NUMBER, "account_number")
    require_format(form.pin, PIN, "pin")
    to_zengin_kana(form.holder_kana)
    if form.holder_name is not None and form.birth_date is None:
        raise InvalidBankData("a verified holder_name comes with the card's birth_date")
    if not 0 < len(form.wallet_reference) <= 200:
        raise InvalidBankData("wallet_reference must be 1-200 characters")
    for limit in (form.max_per_debit, form.max_30_days):
        if limit is not None and limit <= 0:
            raise InvalidBankData("mandate limits must be positive yen amounts")
    if (form.probation_days is None) != (form.hold_hours is None):
        raise InvalidBankData("probation_days and hold_hours come together")
    for period in (form.probation_days, form.hold_hours):
        if period is not None and period <= 0:
            raise InvalidBankData("probation_days and hold_hours must be positive")


def _notice_reference() -> str:
    return "NM-" + "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(10))


def _link_notice(client: OperatorClient, link: Link) -> str:
    text = (
        f"お客様の口座が {client.name} のウォレットに口座振替登録されました。\n"
        f"Your account was linked to a wallet of {client.name} "
        f"(debits up to ¥{link.max_per_debit:,} each, ¥{link.max_30_days:,} per 30 days).\n"
        f"If this was not you, contact the bank quoting reference {link.notice_reference} "
        "(not me): the link will be revoked at once."
    )
    return text + probation_note(link, at=link.created_at)


legacy_linking = LegacyLinking()
"""The legacy linking service singleton."""
