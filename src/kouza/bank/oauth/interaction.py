"""The holder's side of the authorization endpoint: login, OTP, account choice, consent.

The browser carries a session cookie (random, stored as an HMAC) and every form a per-session
CSRF token (random, stored as an HMAC, compared in constant time): a form posted from another
site, or without the session's token, changes nothing. Stages move strictly forward
(:class:`~kouza.bank.models.InteractionStage`); a session lives
:data:`INTERACTION_LIFETIME`.

Login is internet-banking login: branch and account number identify the customer, then the
internet-banking password (argon2id) **and** a TOTP code from the customer's OTP device
(pyotp, the runtime clock's time, one step either side, each time step accepted once). The
password form always leads to the OTP form, and a failure answers the same whatever was wrong
(unknown account, no internet banking, wrong password, wrong OTP, locked): nothing tells which.
Unknown logins still cost one argon2 verification. Each failure on a known customer counts;
the third locks internet-banking login (as PINs lock, DESIGN.md), and a locked login refuses
even right credentials.

After login the bank compares the identity the wallet pushed (PAR) with its own customer
record (:func:`kouza.bank.kana.compare_holder`): the kanji name read from the customer's
card, normalised, and the birth date, exactly; the declared kana reading, when sent, must match
too but never decides alone. A mismatch ends the session without a link; the browser is told
why, and the account holder gets a security notice at the contact on file with a "not me"
reference (:func:`kouza.bank.notices.warn_holder`, ADR 0022).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.bank.core import core
from kouza.bank.kana import compare_holder
from kouza.bank.keys import decrypt_totp_seed
from kouza.bank.models import (
    Account,
    Bank,
    Customer,
    InteractionStage,
    InternetBankingLogin,
    OAuthInteraction,
    OAuthPushedRequest,
    OtpDevice,
)
from kouza.bank.notices import IDENTITY_CHECK_FAILED, warn_holder
from kouza.bank.oauth.pushed import AuthorizationParameters, parameters_of
from kouza.bank.runtime import bank_runtime_of
from kouza.errors import Conflict
from kouza.kit.db import add_unique
from kouza.kit.locking import lock_row
from kouza.kit.security import constant_time_equal, keyed_hash, random_token, verify_password

INTERACTION_LIFETIME = timedelta(minutes=10)


class LoginOutcome(StrEnum):
    """What the OTP form's submission led to."""

    FAILED = "failed"
    """Some credential was wrong or the login is locked (the holder is not told which)."""
    IDENTITY_MISMATCH = "identity_mismatch"
    """Logged in, but the wallet's identity is not this holder's: no link."""
    CHOOSE_ACCOUNT = "choose_account"
    """Logged in; the holder has several accounts to choose from."""
    CONSENT = "consent"
    """Logged in with one account: on to the consent page."""


@dataclass(frozen=True)
class Started:
    """A new holder session: the cookie and CSRF values to hand to the browser."""

    interaction: OAuthInteraction
    session_token: str
    csrf_token: str


class SessionInvalid(Exception):
    """The cookie, the CSRF token or the stage does not fit (rendered as an error page)."""


def _digest(session: Session, value: str, purpose: str) -> str:
    return keyed_hash(bank_runtime_of(session).secret, value, purpose=purpose)


class Interactions:
    """The holder's login and consent session."""

    def start(self, session: Session, bank: Bank, pushed: OAuthPushedRequest) -> Started:
        """Open a holder session for a pushed request just consumed."""
        now = bank_runtime_of(session).now()
        token, csrf = random_token(), random_token()
        interaction = OAuthInteraction(
            bank_id=bank.id,
            pushed_request_id=pushed.id,
            created_at=now,
            session_hash=_digest(session, token, "oauth-session"),
            csrf_hash=_digest(session, csrf, "oauth-csrf"),
            stage=InteractionStage.LOGIN.value,
            expires_at=now + INTERACTION_LIFETIME,
        )
        session.add(interaction)
        session.flush()
        return Started(interaction, token, csrf)

    def resume(
        self,
        session: Session,
        bank: Bank,
        *,
        session_token: str | None,
        csrf_token: str,
        stage: InteractionStage,
    ) -> OAuthInteraction:
        """The session behind the cookie, if the CSRF token and the stage match."""
        if not session_token:
            raise SessionInvalid("no bank session; start again from the wallet")
        found = session.scalar(
            select(OAuthInteraction.id).where(
                OAuthInteraction.session_hash == _digest(session, session_token, "oauth-session"),
                OAuthInteraction.bank_id == bank.id,
            )
        )
        interaction = lock_row(session, OAuthInteraction, found) if found else None
        if interaction is None or interaction.expires_at <= bank_runtime_of(session).now():
            raise SessionInvalid("this bank session has expired; start again from the wallet")
        if not constant_time_equal(
            interaction.csrf_hash, _digest(session, csrf_token, "oauth-csrf")
        ):
            raise SessionInvalid("the form is not from this session (CSRF)")
        if interaction.stage != stage.value:
            raise SessionInvalid("this step is not expected now; start again from the wallet")
        return interaction

    def parameters(
        self, session: Session, interaction: OAuthInteraction
    ) -> AuthorizationParameters:
        """The pushed request this session serves."""
        return parameters_of(
            session, session.get_one(OAuthPushedRequest, interaction.pushed_request_id)
        )

    def submit_login(
        self,
        session: Session,
        interaction: OAuthInteraction,
        bank: Bank,
        *,
        branch_code: str,
        account_number: str,
        password: str,
    ) -> None:
        """Remember who tried to log in and whether the password matched; always go to OTP."""
        customer, matched = self.check_password(
            session,
            bank,
            branch_code=branch_code,
            account_number=account_number,
            password=password,
        )
        interaction.customer_id = customer.id if customer else None
        interaction.password_matched = matched
        interaction.stage = InteractionStage.OTP.value

    def check_password(
        self,
        session: Session,
        bank: Bank,
        *,
        branch_code: str,
        account_number: str,
        password: str,
    ) -> tuple[Customer | None, bool]:
        """The customer a login names (if any) and whether the internet-banking password is
        theirs; an unknown login costs one argon2 verification all the same."""
        account = (
            core.find_account(session, bank, branch_code=branch_code, number=account_number)
            if branch_code.isdigit() and account_number.isdigit()
            else None
        )
        customer = session.get(Customer, account.customer_id) if account else None
        stored = customer.internet_banking_password_hash if customer else None
        runtime = bank_runtime_of(session)
        matched = verify_password(stored or runtime.dummy_pin_hash(), password)
        return customer, matched and stored is not None

    def submit_otp(
        self, session: Session, interaction: OAuthInteraction, code: str
    ) -> LoginOutcome:
        """Finish the login with the OTP; then compare identities and pick the next stage."""
        customer = (
            session.get(Customer, interaction.customer_id) if interaction.customer_id else None
        )
        if customer is None or not self.second_factor(
            session, customer, password_matched=interaction.password_matched, code=code
        ):
            interaction.customer_id, interaction.password_matched = None, False
            interaction.stage = InteractionStage.LOGIN.value
            return LoginOutcome.FAILED
        parameters = self.parameters(session, interaction)
        if (
            compare_holder(
                customer,
                name=parameters.holder_name,
                kana=parameters.holder_name_kana,
                birth_date=parameters.birth_date,
                birth_date_required=True,
            )
            is not None
        ):
            interaction.stage = InteractionStage.DONE.value
            # a correct login + OTP under someone else's identity: the holder's credentials
            # are in other hands (a phishing relay), so the holder hears of it at once
            warn_holder(
                session,
                session.get_one(Bank, interaction.bank_id),
                customer,
                kind=IDENTITY_CHECK_FAILED,
                account=None,
                client=core.client(session, parameters.client_id),
                details={"client_id": parameters.client_id},
            )
            return LoginOutcome.IDENTITY_MISMATCH
        accounts = self.accounts(session, customer)
        if len(accounts) == 1:
            interaction.account_id = accounts[0].id
            interaction.stage = InteractionStage.CONSENT.value
            return LoginOutcome.CONSENT
        interaction.stage = InteractionStage.ACCOUNT.value
        return LoginOutcome.CHOOSE_ACCOUNT

    def second_factor(
        self, session: Session, customer: Customer, *, password_matched: bool, code: str
    ) -> bool:
        """Whether the login succeeds: not locked, the password matched and ``code`` is a fresh
        TOTP code of the customer's device. A failure counts; enough of them lock the login."""
        login = self._login_state(session, customer)
        if login.locked_at is not None:
            return False
        step = self._otp_step(session, customer, code)
        if password_matched and step is not None and step > login.last_otp_step:
            login.failures, login.last_otp_step = 0, step
            return True
        login.failures += 1
        if login.failures >= bank_runtime_of(session).settings.pin_max_failures:
            login.locked_at = bank_runtime_of(session).now()
        return False

    def _login_state(self, session: Session, customer: Customer) -> InternetBankingLogin:
        login = lock_row(session, InternetBankingLogin, customer.id)
        if login is None:  # first login: insert, or lose the race and lock the winner's row
            with contextlib.suppress(Conflict):
                add_unique(
                    session,
                    InternetBankingLogin(customer_id=customer.id, failures=0, last_otp_step=0),
                    Conflict("a concurrent first login created the row"),
                )
            login = lock_row(session, InternetBankingLogin, customer.id)
        assert login is not None
        return login

    def _otp_step(self, session: Session, customer: Customer, code: str) -> int | None:
        runtime = bank_runtime_of(session)
        bank = session.get_one(Bank, customer.bank_id)
        devices = session.scalars(
            select(OtpDevice).where(OtpDevice.customer_id == customer.id)
        ).all()
        for device in devices:
            totp = pyotp.TOTP(
                decrypt_totp_seed(
                    runtime.secret, bank_code=bank.code, token=device.secret_encrypted
                )
            )
            now_step = totp.timecode(runtime.now())
            for step in (now_step - 1, now_step, now_step + 1):
                if constant_time_equal(totp.generate_otp(step), code.strip()):
                    return step
        return None

    def lock_login(self, session: Session, customer: Customer) -> None:
        """Lock the customer's internet-banking login (until the branch renews the password)."""
        self._login_state(session, customer).locked_at = bank_runtime_of(session).now()

    def accounts(self, session: Session, customer: Customer) -> Sequence[Account]:
        """The customer's accounts, in a stable order."""
        return session.scalars(
            select(Account).where(Account.customer_id == customer.id).order_by(Account.id)
        ).all()

    def choose_account(
        self, session: Session, interaction: OAuthInteraction, account_id: str
    ) -> bool:
        """Pick one of the logged-in customer's accounts; False if it is not theirs."""
        customer = session.get_one(Customer, interaction.customer_id)
        chosen = [a for a in self.accounts(session, customer) if str(a.id) == account_id]
        if not chosen:
            return False
        interaction.account_id = chosen[0].id
        interaction.stage = InteractionStage.CONSENT.value
        return True


interactions = Interactions()
"""The holder session service singleton."""
