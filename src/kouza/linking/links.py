"""Linking a bank account through a bank's legacy form, under kouza's policy.

Order of checks (each refusal is recorded as one ``link_attempt`` risk event with its reason):
kill switches → well-formed details → the caller's active wallet → level gate → device
signature → holder name → room for another account and the account not linked elsewhere →
the bank's profile accepted (or, for a bank with only the legacy form, a *restricted* link:
ADR 0032) → risk decision → the bank's form. Only then is the link stored.

The identity sent to the bank is, by default (``link_name_match``), the one the user's eKYC read
from their card: the kanji name and birth date, which the bank compares with the account
holder's record, plus the declared kana reading the form asks for (a second check at the bank,
never enough alone). A wallet can therefore only link an account held in its owner's own name:
a leaked PIN is useless to an attacker whose card names someone else, whatever reading they
declared (ADR 0023). With ``link_name_match`` off (the 2020 wallets the simulator replays) the
typed kana and birth date are sent instead, and no kanji name. The account number is
used for the bank call and the fingerprint and then dropped; the PIN only for the bank call.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kouza.config import Settings
from kouza.controls.models import SwitchScope
from kouza.controls.overrides import overrides
from kouza.controls.switches import switches
from kouza.errors import KouzaError
from kouza.identity.devices import SensitiveAction
from kouza.identity.models import User, VerifiedIdentity
from kouza.identity.names import NameNormalizationError, normalize_zengin_name
from kouza.kit import zengin
from kouza.kit.db import add_unique
from kouza.linking import policy
from kouza.linking.client import LegacyLinkRequest, bank_client_of
from kouza.linking.errors import (
    AccountAlreadyLinked,
    InvalidBankDetails,
    LegacyBankNotAccepted,
    TooManyBankLinks,
    VerifiedNameRequired,
)
from kouza.linking.models import BankLink, BankLinkStatus
from kouza.risk.events import EventType, RiskEvent, account_fingerprint
from kouza.runtime import runtime_of
from kouza.wallet import banking
from kouza.wallet.models import Wallet

LEGACY_PROFILES = frozenset({"legacy_pin", "legacy_pin_dob"})
ACCOUNT_TYPES = frozenset({"ordinary", "checking", "savings"})
_FORMATS = {
    "bank_code": re.compile(r"[0-9]{4}"),
    "branch": re.compile(r"[0-9]{3}"),
    "account_number": re.compile(r"[0-9]{7}"),
    "pin": re.compile(r"[0-9]{4}"),
}


@dataclass(frozen=True)
class LegacyLinkInput:
    """What the user typed on kouza's link page (the PIN and number are never stored)."""

    bank_code: str
    branch: str
    account_type: str
    account_number: str = field(repr=False)
    pin: str = field(repr=False)
    birth_date: date | None = None
    """Typed birth date; sent only when ``link_name_match`` is off (the card's is sent else)."""
    holder_name: str | None = None
    """Typed holder name; used only when ``link_name_match`` is off (the 2020 behaviour)."""

    def validate(self) -> None:
        for name, pattern in _FORMATS.items():
            if not pattern.fullmatch(getattr(self, name)):
                raise InvalidBankDetails(f"{name} has the wrong format", field=name)
        zengin.branch(self.bank_code, self.branch)  # real codes only (422 otherwise)
        if self.account_type not in ACCOUNT_TYPES:
            raise InvalidBankDetails(
                "account_type must be ordinary, checking or savings", field="account_type"
            )


@dataclass(frozen=True)
class Caller:
    """Who asks, from where."""

    user: User
    wallet_id: uuid.UUID
    ip: str
    device_id: uuid.UUID | None = None
    proof: policy.DeviceProof | None = None


def owned_wallet_locked(session: Session, caller: Caller) -> Wallet:
    """The caller's wallet, row-locked, if active; "not found" for anyone else's."""
    return banking.lock_for_bank(session, user_id=caller.user.id, wallet_id=caller.wallet_id)


def fingerprint_of(session: Session, form: LegacyLinkInput) -> str:
    """The keyed fingerprint of the account named on the form."""
    return account_fingerprint(
        runtime_of(session).secret,
        bank=form.bank_code,
        branch=form.branch,
        number=form.account_number,
    )


@dataclass(frozen=True)
class SentHolder:
    """The holder identity put on the bank's form."""

    kana: str
    name: str | None
    """The kanji name from the card (None only when ``link_name_match`` is off)."""
    birth_date: date | None


def holder_for(session: Session, user: User, form: LegacyLinkInput) -> SentHolder:
    """The card's name and birth date with the declared kana; typed ones if policy allows."""
    if runtime_of(session).settings.link_name_match:
        verified = session.get(VerifiedIdentity, user.id)
        if verified is None:  # a revoked one is refused by the level gate (levels.py)
            raise VerifiedNameRequired("linking needs your eKYC-verified name; verify first")
        return SentHolder(verified.kana_name, verified.name, verified.birth_date)
    if not form.holder_name:
        raise InvalidBankDetails("holder_name is required", field="holder_name")
    return SentHolder(form.holder_name, None, form.birth_date)


def _normalised(name: str) -> str:
    try:
        return normalize_zengin_name(name)
    except NameNormalizationError:
        return ""


def require_room(session: Session, wallet: Wallet) -> None:
    """Refuse unless the wallet may link one more account (``link_max_accounts_per_wallet``)."""
    settings = runtime_of(session).settings
    live = session.scalar(
        select(func.count())
        .select_from(BankLink)
        .where(BankLink.wallet_id == wallet.id, BankLink.status != BankLinkStatus.REVOKED.value)
    )
    if int(live or 0) >= settings.link_max_accounts_per_wallet:
        raise TooManyBankLinks(
            f"a wallet can link at most {settings.link_max_accounts_per_wallet} accounts",
            maximum=settings.link_max_accounts_per_wallet,
        )


def restricted_links_offered(settings: Settings) -> bool:
    """Whether banks with only the legacy form get restricted links (ADR 0032): asked for by
    ``legacy_bank_links``, and only when the bank compares the card's name and birth date."""
    return (
        settings.legacy_bank_links == "restricted"
        and settings.link_name_match
        and settings.link_min_level == "verified"
    )


def on_probation(link: BankLink, settings: Settings, now: datetime) -> bool:
    """Whether a top-up through ``link`` now is held (a restricted link's first days)."""
    probation = timedelta(days=settings.restricted_link_probation_days)
    return link.restricted and now < link.created_at + probation


LEGACY_METHOD = "legacy"
"""The ``method`` label of links made through a bank's legacy form."""


class LinkService:
    """Link accounts through the legacy form; list links."""

    def link_legacy(self, session: Session, caller: Caller, form: LegacyLinkInput) -> BankLink:
        """Link a bank account through its legacy form, under kouza's policy."""
        event = self._event(session, caller, form)
        metrics = runtime_of(session).metrics
        bank = metrics.bank(form.bank_code)
        metrics.link_attempts.inc(bank=bank, method=LEGACY_METHOD)
        try:
            link = self._link(session, caller, form, event)
        except KouzaError as refusal:
            # a refused attempt is evidence (claims, compensation): it commits with its event;
            # nothing else is written before a refusal but a spent device challenge or a lock
            policy.record(session, replace(event, outcome=refusal.code), refusal=refusal)
            refusal.keep_changes = True
            metrics.link_refusals.inc(bank=bank, method=LEGACY_METHOD, reason=refusal.code)
            raise
        policy.record(session, event)
        created = replace(event, type=EventType.LINK_CREATED)
        if link.restricted:  # rules and models can tell a restricted link (ADR 0032)
            created = replace(created, attributes=created.attributes | {"restricted": True})
        policy.record(session, created)
        metrics.links_created.inc(bank=bank, method=LEGACY_METHOD)
        return link

    def _event(self, session: Session, caller: Caller, form: LegacyLinkInput) -> RiskEvent:
        runtime = runtime_of(session)
        try:
            form.validate()
            account = fingerprint_of(session, form)
            holder = _normalised(holder_for(session, caller.user, form).kana)
        except KouzaError:
            account, holder = "", ""
        return RiskEvent(
            type=EventType.LINK_ATTEMPT,
            at=runtime.now(),
            wallet=str(caller.wallet_id),
            user=str(caller.user.id),
            device=str(caller.device_id or ""),
            ip=caller.ip,
            email_domain=caller.user.email.rpartition("@")[2],
            bank=form.bank_code[:8],
            account=account,
            holder_name=holder,
        )

    def _link(
        self, session: Session, caller: Caller, form: LegacyLinkInput, event: RiskEvent
    ) -> BankLink:
        switches.require_open(session, SwitchScope.ALL_LINKS)
        switches.require_open(session, SwitchScope.BANK_LINKS, form.bank_code[:8])
        form.validate()
        wallet = owned_wallet_locked(session, caller)
        policy.require_bank_gate(session, caller.user)
        device_id = policy.require_device(
            session,
            caller.user,
            device_id=caller.device_id,
            proof=caller.proof,
            action=SensitiveAction.LINK_BANK,
        )
        holder = holder_for(session, caller.user, form)
        fingerprint = fingerprint_of(session, form)
        self._require_room(session, wallet, fingerprint)
        restricted = self._restricted_or_accepted(session, form.bank_code)
        decision = policy.decide(session, event)
        policy.enforce(
            session,
            decision,
            user=caller.user,
            wallet_id=wallet.id,
            purpose=SensitiveAction.LINK_BANK,
            signed_by=device_id,
        )
        return self._create(session, caller, form, holder, fingerprint, device_id, restricted)

    def _require_room(self, session: Session, wallet: Wallet, fingerprint: str) -> None:
        require_room(session, wallet)
        taken = session.scalar(
            select(func.count())
            .select_from(BankLink)
            .where(
                BankLink.account_fingerprint == fingerprint,
                BankLink.status != BankLinkStatus.REVOKED.value,
            )
        )
        if taken:
            # checked before calling the bank; the partial unique index is the guarantee
            raise AccountAlreadyLinked("this account is already linked to a kouza wallet")

    def _restricted_or_accepted(self, session: Session, bank_code: str) -> bool:
        """Whether the link will be restricted (ADR 0032); LegacyBankNotAccepted if refused.

        A bank with only the legacy form, not accepted by an operator, gets a restricted link
        when the policy offers them and the bank is sent what makes them safe — the card's
        name and birth date (``link_name_match`` with the ``verified`` level); else refused."""
        runtime = runtime_of(session)
        info = bank_client_of(runtime).bank(bank_code)
        settings = overrides.settings(session)  # operators change these at run time
        if info.auth_profile not in LEGACY_PROFILES or bank_code in settings.accepted_legacy_banks:
            return False
        if restricted_links_offered(settings):
            return True
        raise LegacyBankNotAccepted(
            "kouza does not link accounts at this bank: its registration form has no second factor",
            bank_code=bank_code,
        )

    def _create(
        self,
        session: Session,
        caller: Caller,
        form: LegacyLinkInput,
        holder: SentHolder,
        fingerprint: str,
        device_id: uuid.UUID | None,
        restricted: bool,
    ) -> BankLink:
        runtime = runtime_of(session)
        settings = overrides.settings(session)  # the mandate caps change at run time
        per_debit, per_30_days = (
            settings.link_mandate_max_per_debit_yen,
            settings.link_mandate_max_30_days_yen,
        )
        if restricted:
            per_debit = min(per_debit, settings.restricted_link_max_per_debit_yen)
            per_30_days = max(min(per_30_days, settings.restricted_link_max_30_days_yen), per_debit)
        request = LegacyLinkRequest(
            branch=form.branch,
            account_type=form.account_type,
            account_number=form.account_number,
            holder_kana=holder.kana,
            holder_name=holder.name,
            pin=form.pin,
            birth_date=holder.birth_date,
            wallet_reference=str(caller.wallet_id),
            end_user_source=f"ip:{caller.ip}"[:150],
            max_per_debit=per_debit,
            max_30_days=per_30_days,
            probation_days=settings.restricted_link_probation_days if restricted else None,
            hold_hours=settings.restricted_link_hold_hours if restricted else None,
        )
        mandate = bank_client_of(runtime).legacy_link(form.bank_code, request)
        link = BankLink(
            wallet_id=caller.wallet_id,
            bank_code=form.bank_code,
            branch=form.branch,
            account_type=form.account_type,
            account_fingerprint=fingerprint,
            account_last3=form.account_number[-3:],
            bank_link_id=mandate.id,
            max_per_debit=mandate.max_per_debit,
            max_30_days=mandate.max_30_days,
            mandate_expires_at=mandate.expires_at,
            status=BankLinkStatus.ACTIVE.value,
            device_id=device_id,
            ip=caller.ip[:64],
            created_at=runtime.now(),
            restricted=restricted,
        )
        add_unique(
            session, link, AccountAlreadyLinked("this account is already linked to a kouza wallet")
        )
        return link

    def links_of(self, session: Session, wallet_id: uuid.UUID) -> list[BankLink]:
        """Every link of a wallet, newest first (operator view; no ownership check)."""
        return list(
            session.scalars(
                select(BankLink)
                .where(BankLink.wallet_id == wallet_id)
                .order_by(BankLink.created_at.desc())
            )
        )

    def get_link(
        self, session: Session, *, wallet_id: uuid.UUID, link_id: uuid.UUID
    ) -> BankLink | None:
        link = session.get(BankLink, link_id)
        return link if link is not None and link.wallet_id == wallet_id else None


link_service = LinkService()
"""The link service singleton."""
