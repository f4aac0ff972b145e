"""Run a plan against one profile's world: every action through the real services.

The driver only *acts* — signs people up, has them verify what the profile asks, fills in the
bank's linking form, asks for top-ups and pays merchants — and records what the code answered.
It never decides whether an attack works. Losses are read back at the end from the wallet's
ledger (posted top-ups from victims' accounts) and checked against the bank's own balances.
"""

from __future__ import annotations

import dataclasses
import heapq
import html
import json
import random
import re
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TextIO, TypeVar
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import jaconv
import pyotp
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import ECKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kouza.bank.models import Transfer as BankTransfer
from kouza.controls.models import AuditEvent
from kouza.errors import KouzaError
from kouza.identity.devices import SensitiveAction, SignedChallenge
from kouza.identity.ekyc.devca import TestCitizen
from kouza.identity.ekyc.result import EkycMethod, Sex
from kouza.identity.models import User
from kouza.identity.service import identity
from kouza.kit.notify import Message
from kouza.kit.security import password_cost
from kouza.linking.links import Caller, LegacyLinkInput, LinkService
from kouza.linking.models import BankLink, BankMovement, MovementDirection, MovementStatus
from kouza.linking.movements import MovementService, MoveRequest
from kouza.linking.oauth import DeclaredIdentity, OAuthCallback, oauth_links
from kouza.risk.events import RiskEvent
from kouza.risk.service import risk
from kouza.sim.adversary import Adversary
from kouza.sim.agents import Account, Attempt, Device, Dynamic, FollowUp, NotFooled
from kouza.sim.fraudteam import FraudTeam
from kouza.sim.population import Citizen, Honest, Kind, Plan, Planned, ib_password
from kouza.sim.results import STAGES, AttackerResult, ControlChange, ProfileResult
from kouza.sim.scenario import Attacker
from kouza.sim.world import REDIRECT_URI, World
from kouza.wallet.models import Payment, Transfer, Wallet, WalletStatus
from kouza.wallet.service import wallets

JST = ZoneInfo("Asia/Tokyo")
CODE = re.compile(r"\b(\d{6})\b")
PASSWORD = "sim-password-not-a-secret"
"""The simulated people's password (hashed like any other)."""
STRADDLE_WINDOW = timedelta(days=3)
"""An attacker who charged within this long of a month's end comes back on the 1st."""
T = TypeVar("T")
LIMIT_CODES = frozenset({"limit_exceeded", "mandate_exceeded"})
NEW_STRATEGIES = frozenset(
    {"phishing_relay", "account_takeover", "verified_mule_market", "authorised_push"}
)
"""Strategies played by :class:`kouza.sim.adversary.Adversary` (the adaptive attackers)."""


def _uuid_or_none(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


class BankPageRefusal(KouzaError):
    """The bank's login or consent page did not let the person through."""

    code = "bank_page_refused"


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


_RETURN = re.compile(r'href="(' + re.escape(REDIRECT_URI) + r'[^"]*)"')


def _return_link(page: str) -> str | None:
    """The link back to the wallet on a bank's refusal page (HTML-escaped ``&``)."""
    found = _RETURN.search(page)
    return html.unescape(found.group(1)) if found else None


def _csrf(page: str) -> str:
    found = _CSRF.search(page)
    return found.group(1) if found else ""


class SimulationInconsistent(RuntimeError):
    """The wallet's ledger and the bank disagree: a bug in the code under test or the driver."""


class Runner:
    """Drives one world through the plan and measures the outcome.

    Its adversary and fraud team act through it as :class:`~kouza.sim.ports.AdversaryPort` and
    :class:`~kouza.sim.ports.FraudTeamPort` (structurally: mypy checks ``Adversary(self)`` and
    ``FraudTeam(self)``), so those modules need not import this one.
    """

    def __init__(
        self,
        plan: Plan,
        world: World,
        *,
        card_key: rsa.RSAPrivateKey,
        ekyc: Any,
        merchants: list[tuple[uuid.UUID, str, str]],
        controls: list[ControlChange] | None = None,
    ) -> None:
        self.plan = plan
        self.controls = controls or []
        """The attacked world's switches, replayed here (an honest world of the same run)."""
        self.world = world
        self.rt = world.rt
        self.scenario = plan.scenario
        self.profile = world.profile
        self.card_key = card_key
        self.ekyc = ekyc
        self.merchants = merchants
        self.links = LinkService()
        self.movements = MovementService()
        self.rng = random.Random(self.scenario.seed)
        self.result = ProfileResult(profile=self.profile.name, description=self.profile.description)
        self.result.attackers = [
            AttackerResult(name=a.name, strategy=a.strategy) for a in self.scenario.attackers
        ]
        self.honest: dict[int, Account] = {}
        self.joined: list[int] = []
        self.attack_accounts: dict[uuid.UUID, int] = {}
        self.attack_users: dict[uuid.UUID, int] = {}
        """Users of the wallets attackers opened (labels of events that name only a user)."""
        """Attacker wallet id → attacker index."""
        self.source_accounts: dict[tuple[int, int], Account] = {}
        self.victim_links: dict[uuid.UUID, int] = {}
        """Link id → victim citizen index."""
        self.link_attacker: dict[uuid.UUID, int] = {}
        self.per_victim: dict[int, int] = {}
        self.bank_debits: dict[int, int] = {}
        self.dynamic: list[Dynamic] = []
        self.seq = 0
        self.counter = 0
        self.mule_verified: dict[int, Account] = {}
        self.opened_wallet = False
        self.locked_honest: set[uuid.UUID] = set()
        self.oauth_banks = {
            bank.code for bank in self.scenario.banks if bank.profile.value == "oauth"
        }
        self.acting: Attempt | None = None
        """The attack attempt whose action is running now (None: an honest user's)."""
        self.acting_honest: int | None = None
        self.owner_of_wallet: dict[uuid.UUID, int] = {}
        """Honest wallet id → citizen index (whose money it is)."""
        self.taken_payments: list[tuple[uuid.UUID, int, int]] = []
        """(payment id, victim citizen, attacker) of payments an attacker made from a victim's
        own wallet (a takeover)."""
        self.friction_users: dict[str, set[int]] = {}
        self.contacts: dict[str, int] = {}
        for citizen in plan.citizens:
            self.contacts[citizen.email] = citizen.index
            self.contacts["+81" + citizen.phone[1:]] = citizen.index
            self.contacts[citizen.address] = citizen.index
        self.not_me_reports = 0
        self.attacker_ips: dict[str, int] = {}
        """Networks attackers acted from → attacker (labels of the exported events)."""
        self.attacked: set[int] = set()
        """Citizens an attacker went after (their wallet's lock is not a false lock)."""
        world.mailbox.listeners.append(self._on_message)
        self.adversary = Adversary(self)
        self.fraud_team = FraudTeam(self)

    # --- plumbing -------------------------------------------------------------------------

    def call(self, work: Callable[[Session], T]) -> tuple[T | None, KouzaError | None]:
        self.result.operations += 1
        try:
            with self.rt.db.unit_of_work() as session:
                return work(session), None
        except KouzaError as refusal:
            return None, refusal

    def user(self, session: Session, account: Account) -> User:
        return session.get_one(User, account.user_id)

    def _code(self, recipient: str) -> str:
        match = CODE.search(self.world.mailbox.last_to(recipient).body)
        assert match is not None, f"no code sent to {recipient}"
        return match.group(1)

    def schedule(
        self, at: datetime, kind: str, attempt: Attempt | None = None, data: Any = None
    ) -> None:
        self.seq += 1
        heapq.heappush(self.dynamic, Dynamic(at, self.seq, kind, attempt, data))

    def _on_message(self, message: Message) -> None:
        """Every message sent in this world passes here: a bank's notice to a holder is either
        friction for an honest customer who did the thing, or a victim's chance to say so."""
        if not message.subject.startswith("["):
            return  # the wallet's own messages (codes); bank notices carry "[bank name]"
        citizen = self.contacts.get(message.recipient)
        if citizen is None:
            return
        if self.acting is None:
            if self.acting_honest is not None:
                self._friction("holder_notice", self.acting_honest)
            return
        self.fraud_team.notice_to_victim(citizen, message, self.acting)

    def _friction(self, kind: str, person: int) -> None:
        """Count one honest event of ``kind`` and its user."""
        events = self.result.friction_events
        events[kind] = events.get(kind, 0) + 1
        users = self.friction_users.setdefault(kind, set())
        if person not in users:
            users.add(person)
            self.result.friction_users[kind] = len(users)

    # --- onboarding (through the identity services) ----------------------------------------

    def sign_up(self, email: str, ip: str, password: str = PASSWORD) -> Account | KouzaError:
        _, refused = self.call(lambda s: identity.signup(s, email=email, password=password))
        if refused:
            return refused
        code = self._code(email)
        user, refused = self.call(lambda s: identity.verify_email(s, email=email, code=code))
        if refused or user is None:
            return refused or KouzaError("no user")
        user_id = user.id
        wallet, refused = self.call(
            lambda s: wallets.open_wallet(s, user=s.get_one(User, user_id), ip=ip)
        )
        if refused or wallet is None:
            return refused or KouzaError("no wallet")
        return Account(user_id, wallet.id, email, ip, password=password)

    def verify_phone(self, account: Account, phone: str) -> KouzaError | None:
        challenge, refused = self.call(
            lambda s: identity.start_phone_verification(
                s, self.user(s, account), phone=phone, ip=account.ip
            )
        )
        if refused or challenge is None:
            return refused
        e164 = "+81" + phone[1:]
        code = self._code(e164)
        device = Device(ECKey.generate_key("P-256"))
        registered, refused = self.call(
            lambda s: identity.complete_phone_verification(
                s,
                self.user(s, account),
                challenge_id=challenge.id,
                code=code,
                device_jwk=dict(device.key.as_dict(private=False)),
                device_name="phone",
            )
        )
        if refused or registered is None:
            return refused
        device.device_id = registered.id
        account.device, account.phone = device, e164
        return None

    def verify_identity(
        self, account: Account, citizen: TestCitizen, kana: str
    ) -> KouzaError | None:
        card = self.ekyc.ca.issue_card(citizen, now=self.world.clock.now(), key=self.card_key)
        nonce, refused = self.call(
            lambda s: identity.start_ekyc(s, self.user(s, account), EkycMethod.JPKI)
        )
        if refused or nonce is None:
            return refused
        _, refused = self.call(
            lambda s: identity.submit_jpki(
                s,
                self.user(s, account),
                certificate=card.certificate_der,
                signature=card.sign_nonce(nonce),
                nonce=nonce,
                kana_name=kana,
            )
        )
        return refused

    def reach_link_level(
        self,
        account: Account,
        phone: str,
        citizen: TestCitizen | None,
        kana: str,
        *,
        oauth: bool = False,
    ) -> KouzaError | None:
        """Do what the profile asks before linking: a phone (and device key), then eKYC.
        An OAuth link always carries a verified identity to the bank (ADR 0013)."""
        verified = self.profile.link_min_level == "verified" or oauth
        wants_phone = (
            verified
            or self.profile.link_min_level != "email"
            or self.profile.require_device_signature
        )
        if wants_phone and account.device is None:
            refused = self.verify_phone(account, phone)
            if refused:
                return refused
        if verified and citizen is not None:
            return self.verify_identity(account, citizen, kana)
        return None

    def bank_is_oauth(self, bank_code: str) -> bool:
        return self.profile.banks_require_oauth or bank_code in self.oauth_banks

    def link_oauth(
        self, account: Account, citizen: Citizen
    ) -> tuple[uuid.UUID | None, KouzaError | None]:
        """The strong flow as a person does it: the wallet pushes the request, the person logs
        in at the bank with the internet-banking password and the token's code, consents, and
        the app hands the bank's answer back to the wallet."""
        declared = DeclaredIdentity(
            jaconv.h2z(citizen.kana, kana=True, ascii=False, digit=False),
            citizen.birth_date,
            citizen.kanji,
        )
        started, refused = self.call(
            lambda s: oauth_links.start(
                s, self._caller(s, account, SensitiveAction.LINK_BANK), citizen.bank_code, declared
            )
        )
        if refused is not None or started is None:
            return None, refused
        seed = self.world.totp_seeds.get(citizen.index)
        if seed is None:
            return None, BankPageRefusal("this person has no internet banking")
        browser = self.world.browser
        browser.cookies.clear()
        base = f"/v1/banks/{citizen.bank_code}/oauth/authorize"
        page = browser.get(started.authorization_url)
        otp_page = browser.post(
            f"{base}/login",
            data={
                "csrf_token": _csrf(page.text),
                "branch_code": citizen.branch,
                "account_number": citizen.number,
                "password": ib_password(citizen),
            },
        )
        if "one-time password" not in otp_page.text:
            return None, BankPageRefusal("the bank refused the internet-banking login")
        answer = browser.post(
            f"{base}/otp",
            data={
                "csrf_token": _csrf(otp_page.text),
                "otp": pyotp.TOTP(seed).at(self.world.clock.now()),
            },
            follow_redirects=False,
        )
        back = _return_link(answer.text)
        if back is not None:
            # the bank refused (identity mismatch) and offers the way back to the wallet with
            # its error; the app relays it, and the wallet records the refusal
            location = back
        else:
            # the consent page: the person approves
            answer = browser.post(
                f"{base}/consent",
                data={"csrf_token": _csrf(answer.text), "decision": "approve"},
                follow_redirects=False,
            )
            if answer.status_code != 303:
                return None, BankPageRefusal(
                    f"the bank did not authorize the link: {answer.status_code}"
                )
            location = answer.headers["location"]
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        link, refused = self.call(
            lambda s: oauth_links.complete(
                s,
                self._caller(s, account, None),
                OAuthCallback(
                    state=query.get("state", ""),
                    code=query.get("code"),
                    iss=query.get("iss"),
                    error=query.get("error"),
                ),
            )
        )
        return (link.id if link is not None else None), refused

    def _caller(self, session: Session, account: Account, action: SensitiveAction | None) -> Caller:
        user = self.user(session, account)
        proof = None
        has_key = account.device is not None and account.device.device_id is not None
        if action is not None and account.device is not None and has_key:
            proof = account.device.proof(session, user, action)
        return Caller(
            user=user,
            wallet_id=account.wallet_id,
            ip=account.ip,
            device_id=account.device.device_id if account.device else None,
            proof=proof,
        )

    def link_legacy(
        self, account: Account, citizen: Citizen, *, pin: str, holder: str
    ) -> tuple[uuid.UUID | None, KouzaError | None]:
        form = LegacyLinkInput(
            bank_code=citizen.bank_code,
            branch=citizen.branch,
            account_type="ordinary",
            account_number=citizen.number,
            pin=pin,
            birth_date=citizen.birth_date,
            holder_name=holder,
        )
        link, refused = self.call(
            lambda s: self.links.link_legacy(
                s, self._caller(s, account, SensitiveAction.LINK_BANK), form
            )
        )
        return (link.id if link is not None else None), refused

    def top_up(self, account: Account, link_id: uuid.UUID, amount: int) -> KouzaError | None:
        self.counter += 1
        key = f"sim-{self.counter}"
        with self.rt.db.unit_of_work() as session:
            caller = self._caller(session, account, SensitiveAction.CHARGE)
            session.expunge_all()
        self.result.operations += 1
        try:
            read = self.movements.move(
                self.rt, MoveRequest(caller, MovementDirection.DEBIT, link_id, amount, key)
            )
        except KouzaError as refusal:
            return refusal
        if read.hold == "probation" and self.acting is None and self.acting_honest is not None:
            # a restricted link's first top-ups: debited, spendable 48 h later (not a review)
            self._friction("delayed_money", self.acting_honest)
        return None

    def step_up(self, account: Account, purpose: str) -> bool:
        """An honest user answers a step-up with the SMS code; False if they cannot."""
        if not account.phone:
            return False
        challenge, refused = self.call(
            lambda s: identity.start_step_up(s, self.user(s, account), purpose, ip=account.ip)
        )
        if refused or challenge is None:
            return False
        code = self._code(account.phone)
        _, refused = self.call(
            lambda s: identity.complete_step_up(s, self.user(s, account), challenge, code)
        )
        return refused is None

    # --- honest people ---------------------------------------------------------------------

    def _honest_friction(
        self,
        refusal: KouzaError,
        account: Account,
        purpose: str,
        retry: Callable[[], KouzaError | None],
    ) -> None:
        code = refusal.code
        refusals = self.result.honest_refusals
        refusals[code] = refusals.get(code, 0) + 1
        if code == "step_up_required":
            self.result.honest_step_ups += 1
            self._friction("step_up", account.citizen)
            if self.step_up(account, purpose):
                again = retry()
                if again is not None:
                    self._honest_friction_final(again, account, purpose)
            return
        self._honest_friction_final(refusal, account, purpose)

    def _honest_friction_final(self, refusal: KouzaError, account: Account, purpose: str) -> None:
        code = refusal.code
        if code == "held_for_review":
            self.result.honest_reviews += 1
            self._friction("review", account.citizen)
            self._friction("delayed_money", account.citizen)
        elif code == "risk_refused":
            self.result.honest_blocks += 1
            self._friction("block", account.citizen)
        elif code in LIMIT_CODES:
            self._friction("limit_refusal", account.citizen)
        elif purpose == SensitiveAction.LINK_BANK.value:
            pass  # counted once per person by _join
        else:
            self._friction("other_refusal", account.citizen)
        if self._locked(account.wallet_id) and account.wallet_id not in self.locked_honest:
            self.locked_honest.add(account.wallet_id)
            if account.citizen in self.attacked:
                return  # a customer an attacker went after: locking their wallet was right
            self.result.false_locks += 1
            self._friction("false_lock", account.citizen)

    def _locked(self, wallet_id: uuid.UUID) -> bool:
        with self.rt.db.session() as session:
            wallet = session.get_one(Wallet, wallet_id)
            return wallet.status == WalletStatus.LOCKED.value

    def _join(self, person: Honest) -> None:
        citizen = person.citizen
        account = self.sign_up(citizen.email, person.ip)
        if isinstance(account, KouzaError):
            return
        account.citizen = citizen.index
        # the app signs in once from home (the network later logins are compared with) and,
        # where money out needs a proof, registers the phone's key at onboarding
        self.call(
            lambda s: identity.login(
                s, email=citizen.email, password=account.password, ip=person.ip
            )
        )
        if self.profile.money_out_proof:
            self.verify_phone(account, citizen.phone)
        self.result.honest_operations += 1  # the sign-up (and link) is an operation too
        self.honest[person.index] = account
        self.owner_of_wallet[account.wallet_id] = citizen.index
        self.joined.append(person.index)
        if person.opening_balance:
            # an existing customer's balance from before the period (cash at a store terminal)
            self.call(
                lambda s: wallets.credit_from_float(
                    s,
                    wallet_id=account.wallet_id,
                    amount=person.opening_balance,
                    reason="balance before the simulated period",
                )
            )
        if not person.links_bank:
            return
        self.result.honest_link_attempters += 1
        test_citizen = TestCitizen(
            name=citizen.kanji,
            address="東京都千代田区1-1",
            birth_date=citizen.birth_date,
            sex=Sex.FEMALE,
        )
        kana = jaconv.h2z(citizen.kana, kana=True, ascii=False, digit=False)
        oauth = self.bank_is_oauth(citizen.bank_code)
        refused = self.reach_link_level(account, citizen.phone, test_citizen, kana, oauth=oauth)

        def link() -> KouzaError | None:
            link_id, refused = (
                self.link_oauth(account, citizen)
                if oauth
                else self.link_legacy(account, citizen, pin=citizen.pin, holder=citizen.kana)
            )
            account.link_id = link_id
            return refused

        if refused is None:
            refused = link()
        if refused is not None:
            self._honest_friction(refused, account, SensitiveAction.LINK_BANK.value, link)
            if account.link_id is None:
                self.result.honest_link_refusals += 1
                self._friction("link_refusal", citizen.index)

    def _honest_action(self, action: Planned) -> None:
        account = self.honest.get(action.who)
        if account is None:
            return
        self.result.honest_operations += 1
        home = account.ip
        if action.away:
            # travelling: the same person on a hotel's or a mobile network
            account.ip = f"100.{64 + action.who % 64}.{action.seq % 256}.{action.who % 250 + 1}"
        try:
            self._honest_act(action, account)
        finally:
            account.ip = home

    def _honest_act(self, action: Planned, account: Account) -> None:
        if action.kind is Kind.PHONE_CHANGE:
            self._change_phone(action, account)
        elif action.kind is Kind.NEW_DEVICE:
            self._new_device(account)
        elif action.kind is Kind.TOPUP:
            link_id = account.link_id
            if link_id is None:
                # no linked account: cash at a convenience-store terminal (operator float)
                self.call(
                    lambda s: wallets.credit_from_float(
                        s,
                        wallet_id=account.wallet_id,
                        amount=action.amount,
                        reason="cash top-up at a store terminal",
                    )
                )
                return
            refused = self.top_up(account, link_id, action.amount)
            if refused is not None:
                self._honest_friction(
                    refused,
                    account,
                    SensitiveAction.CHARGE.value,
                    lambda: self.top_up(account, link_id, action.amount),
                )
        elif action.kind is Kind.PAY:
            qr = self.merchants[action.target][2]

            def pay() -> KouzaError | None:
                return self._pay(account, qr, action.amount)

            refused = pay()
            if refused is not None and refused.code != "insufficient_funds":
                self._honest_friction(refused, account, "payment", pay)
        elif action.kind is Kind.TRANSFER:
            others = [i for i in self.joined if i != action.who]
            if not others:
                return
            to = self.honest[others[random.Random(action.seq).randrange(len(others))]]

            def send() -> KouzaError | None:
                return self.call(
                    lambda s: wallets.transfer(
                        s,
                        user=self.user(s, account),
                        source_wallet_id=account.wallet_id,
                        destination_wallet_id=to.wallet_id,
                        amount=action.amount,
                        signed=self.signed(s, account, SensitiveAction.TRANSFER),
                        ip=account.ip,
                    )
                )[1]

            refused = send()
            if refused is not None and refused.code != "insufficient_funds":
                self._honest_friction(refused, account, "transfer", send)

    def _change_phone(self, action: Planned, account: Account) -> None:
        """A new number: signed by the registered device, confirmed by a code to the new
        number (the old one is warned)."""
        if account.device is None or account.device.device_id is None:
            return
        device = account.device
        new = f"0809{action.who:07d}"
        e164 = "+81" + new[1:]

        def start(session: Session) -> Any:
            user = self.user(session, account)
            assert device.device_id is not None
            proof = device.proof(session, user, SensitiveAction.CHANGE_PHONE)
            return identity.start_phone_change(
                session,
                user,
                phone=new,
                device_id=device.device_id,
                nonce=proof.nonce,
                signature=proof.signature,
                ip=account.ip,
            )

        change, refused = self.call(start)
        if refused is not None or change is None:
            if refused is not None:
                self._honest_friction_final(refused, account, "phone_change")
            return
        code = self._code(e164)
        _, refused = self.call(
            lambda s: identity.confirm_phone_change(s, self.user(s, account), change.id, code)
        )
        if refused is not None:
            self._honest_friction_final(refused, account, "phone_change")
            return
        account.phone = e164
        self.contacts[e164] = account.citizen

    def _new_device(self, account: Account) -> None:
        """A new phone beside the old one: the old phone approves its key (ADR 0033); when
        the old one is too new to vouch, an SMS step-up does. The new key is used from then on."""
        if not account.phone:
            return
        device = Device(ECKey.generate_key("P-256"))
        old = account.device

        def register(approved: bool = False) -> KouzaError | None:
            def act(s: Session) -> Any:
                user = self.user(s, account)
                approval = None
                if approved and old is not None and old.device_id is not None:
                    approval = old.signed(s, user, SensitiveAction.REGISTER_DEVICE)
                return identity.register_device(
                    s,
                    user,
                    jwk=dict(device.key.as_dict(private=False)),
                    name="new phone",
                    ip=account.ip,
                    approval=approval,
                )

            made, refused = self.call(act)
            if made is not None:
                device.device_id = made.id
            return refused

        refused = register(approved=True) if old is not None else register()
        if refused is not None and refused.code == "device_not_established":
            refused = register()
        if refused is not None:
            self._honest_friction(refused, account, "device.register", register)
        if device.device_id is not None:
            account.device = device

    def _pay(self, account: Account, qr: str, amount: int) -> KouzaError | None:
        return self.pay_returning(account, qr, amount)[1]

    def pay_returning(
        self, account: Account, qr: str, amount: int
    ) -> tuple[uuid.UUID | None, KouzaError | None]:
        """Pay; the payment's id (None if refused) and the refusal."""
        paid, refused = self.call(
            lambda s: wallets.pay(
                s,
                user=self.user(s, account),
                wallet_id=account.wallet_id,
                qr=qr,
                amount=amount,
                signed=self.signed(s, account, SensitiveAction.PAY),
                ip=account.ip,
            )
        )
        return (paid.id if paid is not None else None), refused

    def signed(
        self, session: Session, account: Account, action: SensitiveAction
    ) -> SignedChallenge | None:
        """What the app sends with money out: its device's signature, when it holds a key."""
        device = account.device
        if device is None or device.device_id is None:
            return None
        return device.signed(session, self.user(session, account), action)

    # --- attackers -------------------------------------------------------------------------

    def _attacker_account(self, a: int, attempt_no: int) -> Account | KouzaError:
        """A fresh wallet for the attacker (free e-mail, one of its sources)."""
        attacker = self.scenario.attackers[a]
        sources = getattr(attacker, "sources", 1)
        source = attempt_no % sources
        self.counter += 1
        email = f"x{a}{self.counter:06d}@freemail.example.com"
        ip = f"203.0.{(a * 37 + source // 250) % 256}.{source % 250 + 1}"
        if attacker.ips > 1 or attacker.devices > 1:
            ip = self.adversary.ip(a, attempt_no)
        self.attacker_ips[ip] = a
        account = self.sign_up(email, ip)
        if isinstance(account, KouzaError):
            return account
        self.attack_accounts[account.wallet_id] = a
        self.attack_users[account.user_id] = a
        self.opened_wallet = True
        return account

    def record_stage(self, attempt: Attempt, stage: str) -> None:
        index = STAGES.index(stage)
        if index > attempt.stage:
            attempt.stage = index
            self.result.attackers[attempt.attacker].stages[stage] += 1

    def record_refusal(self, attempt: Attempt, refusal: KouzaError) -> None:
        result = self.result.attackers[attempt.attacker]
        result.refusals[refusal.code] = result.refusals.get(refusal.code, 0) + 1
        rules = refusal.details.get("rules")
        if isinstance(rules, list):
            for rule in rules:
                result.stopped_by_rule[str(rule)] = result.stopped_by_rule.get(str(rule), 0) + 1

    def _attack(self, action: Planned) -> None:
        a = action.who
        attacker = self.scenario.attackers[a]
        victim = self.plan.citizens[action.target]
        result = self.result.attackers[a]
        attempt = Attempt(a, victim.index)
        self.acting = attempt
        self.attacked.add(victim.index)
        result.attempts += 1
        self.result.attack_attempts += 1
        if attacker.strategy in NEW_STRATEGIES:
            self.adversary.attack(attempt, attacker)
            return
        lure = random.Random(f"{self.scenario.seed}-{a}-{victim.index}").random()
        if attacker.strategy == "phishing" and lure >= attacker.hand_over_share:
            # only a share of the targets hand their details over; the rest is a failed lure
            self.record_refusal(attempt, NotFooled("did not take the bait"))
            return
        self.attempt_link(attempt)

    def attempt_link(self, attempt: Attempt) -> None:
        """Open (or reuse) the attacker's wallet and link the victim's account with what the
        attacker holds; on success the charges follow a minute later."""
        a = attempt.attacker
        attacker = self.scenario.attackers[a]
        victim = self.plan.citizens[attempt.victim]
        self.opened_wallet = False
        account = self._account_for(
            a, attacker, attempt, self.result.attackers[a].attempts + attempt.tries * 7919
        )
        if self.opened_wallet:
            self.record_stage(attempt, "wallet_opened")
        if isinstance(account, KouzaError):
            self.record_refusal(attempt, account)
            self.adversary.after_refusal(attempt, account)
            return
        attempt.account = account
        self.record_stage(attempt, "wallet_opened")
        self.record_stage(attempt, "link_attempted")
        if getattr(attacker, "gets_internet_banking", False) and self.bank_is_oauth(
            victim.bank_code
        ):
            # the victim typed the internet-banking password and a live code into the phishing
            # page: the attacker walks the bank's strong flow with them
            link_id, refused = self.adversary.link_oauth(account, victim)
        elif attacker.strategy == "reverse_brute_force":
            link_id, refused = self._sweep(account, attacker, victim)
        else:
            link_id, refused = self.link_legacy(account, victim, pin=victim.pin, holder=victim.kana)
        if (
            refused is not None
            and refused.code == "step_up_required"
            and self.adversary.answer_step_up(attempt, SensitiveAction.LINK_BANK.value)
        ):
            link_id, refused = self.link_legacy(account, victim, pin=victim.pin, holder=victim.kana)
        if refused is not None or link_id is None:
            refusal = refused or KouzaError("no link")
            self.record_refusal(attempt, refusal)
            self.adversary.after_refusal(attempt, refusal)
            return
        self.linked(attempt, account, link_id)

    def linked(self, attempt: Attempt, account: Account, link_id: uuid.UUID) -> None:
        """A victim's account is linked to a wallet the attacker controls: charge it."""
        attacker = self.scenario.attackers[attempt.attacker]
        account.links += 1
        self.record_stage(attempt, "linked")
        if account.wallet_id in self.attack_accounts:
            self.victim_links[link_id] = attempt.victim
            self.link_attacker[link_id] = attempt.attacker
        attempt.account = account
        attempt.link_id = link_id
        attempt.charges_left = list(attacker.charge_plan)
        self.schedule(self.world.clock.now() + timedelta(minutes=1), FollowUp.CHARGE, attempt)

    def _sweep(
        self, account: Account, attacker: Attacker, victim: Citizen
    ) -> tuple[uuid.UUID | None, KouzaError | None]:
        """Reverse brute force on one account: the sweep's PIN(s), never a third try (it would
        lock the account and tell the bank); some numbers of the range are no account at all."""
        assert attacker.strategy == "reverse_brute_force"
        draw = random.Random(f"{self.scenario.seed}-nx-{victim.index}").random()
        number_of = victim
        if draw < attacker.nonexistent_share:
            number_of = dataclasses.replace(victim, number="0" + victim.number[1:])
        pins = [attacker.pin, *attacker.pins]
        if attacker.birth_pins:
            pins += [victim.birth_date.strftime("%m%d"), f"{victim.birth_date.year}"]
        tries = list(dict.fromkeys(pins))[:2]
        refused: KouzaError | None = None
        for pin in tries:
            link_id, refused = self.link_legacy(account, number_of, pin=pin, holder=victim.kana)
            if refused is None:
                return link_id, None
            if refused.code != "bank_link_refused":
                break
        return None, refused

    def _account_for(
        self, a: int, attacker: Attacker, attempt: Attempt, number: int
    ) -> Account | KouzaError:
        """Which wallet the attacker uses: a fresh one per victim, or its own (mule, sweep)."""
        if attacker.strategy == "mule":
            if a not in self.mule_verified:
                account = self._attacker_account(a, 0)
                if isinstance(account, KouzaError):
                    return account
                mule = TestCitizen(
                    name="運び 屋男",
                    address="大阪府大阪市北区1-1",
                    birth_date=datetime(1990, 1, 1).date(),
                    sex=Sex.MALE,
                )
                phone = f"0702{a:02d}{self.counter % 100_000:05d}"
                refused = self.reach_link_level(account, phone, mule, "ハコビ ヤオ")
                if refused is not None:
                    return refused
                self.mule_verified[a] = account
            mule_account = self.mule_verified[a]
            if mule_account.links >= self.rt.settings.link_max_accounts_per_wallet:
                # the mule recruits another mule with a real identity
                del self.mule_verified[a]
                return self._account_for(a, attacker, attempt, number)
            return mule_account
        if attacker.strategy == "reverse_brute_force":
            sources = attacker.sources
            key = (a, number % sources)
            current = self.source_accounts.get(key)
            if current is None or current.links >= self.rt.settings.link_max_accounts_per_wallet:
                made = self._attacker_account(a, number)
                if isinstance(made, KouzaError):
                    return made
                refused = self.reach_link_level(made, f"0701{a:02d}{number:05d}", None, "")
                if refused is not None:
                    return refused
                self.source_accounts[key] = current = made
            return current
        account = self._attacker_account(a, number)
        if isinstance(account, KouzaError):
            return account
        refused = self.reach_link_level(account, f"0701{a:02d}{number:05d}", None, "")
        return refused if refused is not None else account

    def _charge(self, attempt: Attempt) -> None:
        assert attempt.account is not None and attempt.link_id is not None
        amount = attempt.charges_left.pop(0)
        refused = self.top_up(attempt.account, attempt.link_id, amount)
        if (
            refused is not None
            and refused.code == "step_up_required"
            and self.adversary.answer_step_up(attempt, SensitiveAction.CHARGE.value)
        ):
            refused = self.top_up(attempt.account, attempt.link_id, amount)
        attacker = self.scenario.attackers[attempt.attacker]
        now = self.world.clock.now()
        if refused is None:
            self.record_stage(attempt, "charged")
        else:
            self.record_refusal(attempt, refused)
        limit_hit = refused is not None and refused.code in (
            "limit_exceeded",
            "mandate_exceeded",
            "movement_refused",
        )
        if attempt.charges_left and (refused is None or limit_hit):
            gap = (
                timedelta(hours=attacker.charge_every_hours)
                if attacker.charge_every_hours
                else timedelta(seconds=20)
            )
            self.schedule(now + gap, FollowUp.CHARGE, attempt)
            return
        delay = self.adversary.cash_out_delay(attacker)
        self.schedule(now + delay, FollowUp.SPEND, attempt)
        if attacker.straddle_month_end and not attempt.straddled:
            # charged near a month's end: come back just after midnight on the 1st, when a
            # calendar-month cap starts again (2020: up to ¥600,000 per victim); the same
            # attempt goes on, so the funnel counts the victim once
            local = now.astimezone(JST)
            next_month = (local.replace(day=28) + timedelta(days=4)).replace(
                day=1, hour=0, minute=5, second=0, microsecond=0
            )
            end = self.scenario.start + timedelta(days=self.scenario.days)
            last = (
                self.scenario.start + timedelta(days=attacker.end_day)
                if attacker.end_day is not None
                else end
            )
            if next_month - local <= STRADDLE_WINDOW and next_month < min(end, last):
                attempt.straddled = True
                attempt.charges_left = list(attacker.charge_plan)
                self.schedule(next_month.astimezone(now.tzinfo), FollowUp.CHARGE, attempt)

    # --- the loop ----------------------------------------------------------------------------

    def run(self, tick: Callable[[int], None] | None = None) -> ProfileResult:
        started, started_cpu = time.perf_counter(), time.process_time()
        planned = self.plan.actions
        i = 0
        done = 0
        end = self.scenario.start + timedelta(days=self.scenario.days)
        self.fraud_team.start()
        for change in self.controls:
            self.schedule(datetime.fromisoformat(change.at), FollowUp.CONTROL, data=change)
        with password_cost(time_cost=1, memory_cost=1024):
            while i < len(planned) or self.dynamic:
                take_planned = not self.dynamic or (
                    i < len(planned) and planned[i].at <= self.dynamic[0].at
                )
                if take_planned:
                    action = planned[i]
                    i += 1
                    self.world.clock.set(action.at)
                    self._dispatch(action)
                    done += 1
                    if tick is not None and done % 200 == 0:
                        tick(200)
                else:
                    follow = heapq.heappop(self.dynamic)
                    if follow.at >= end:
                        continue
                    self.world.clock.set(follow.at)
                    self._follow(follow)
        if tick is not None:
            tick(done % 200)
        self._measure()
        self.result.seconds = time.perf_counter() - started
        self.result.cpu_seconds = time.process_time() - started_cpu
        return self.result

    def _dispatch(self, action: Planned) -> None:
        if action.kind is Kind.ATTACK:
            self._as_attacker(None, lambda: self._attack(action))
            return
        self.acting_honest = self.plan.honest[action.who].citizen.index
        try:
            if action.kind is Kind.JOIN:
                self._join(self.plan.honest[action.who])
            else:
                self._honest_action(action)
        finally:
            self.acting_honest = None

    def _follow(self, follow: Dynamic) -> None:
        attempt = follow.attempt
        if follow.kind == FollowUp.NOT_ME:
            self.fraud_team.holder_says_not_me(follow.data)
        elif follow.kind == FollowUp.OPERATOR:
            self.fraud_team.work_queue(shift=follow.data == "shift")
        elif follow.kind == FollowUp.CONTROL:
            self.fraud_team.replay(follow.data)
        elif follow.kind == FollowUp.PROBATION:
            self.fraud_team.release_probation()
        elif attempt is not None:
            self._as_attacker(attempt, lambda: self._follow_attack(follow.kind, attempt))

    def _follow_attack(self, kind: str, attempt: Attempt) -> None:
        if kind == FollowUp.CHARGE:
            self._charge(attempt)
        elif kind == FollowUp.RETRY:
            self.adversary.retry(attempt)
        else:
            self.adversary.cash_out(attempt)

    def _as_attacker(self, attempt: Attempt | None, work: Callable[[], None]) -> None:
        """Run an attacker's step with the world knowing who acts (notices it causes reach
        the victim, not an honest customer's friction)."""
        previous = self.acting
        self.acting = attempt or Attempt(-1, -1)
        try:
            work()
        finally:
            self.acting = previous

    # --- measuring ---------------------------------------------------------------------------

    def _measure(self) -> None:
        """Read the losses back from the ledger's records and check them against the bank."""
        result = self.result
        start = self.scenario.start
        result.losses_by_day = [0] * self.scenario.days
        per_victim: dict[int, int] = {}
        first_charge: dict[uuid.UUID, datetime] = {}
        victims_by_attacker: dict[int, set[int]] = {}

        def lose(
            victim: int, a: int, amount: int, bank_code: str, at: datetime, wallet_id: uuid.UUID
        ) -> None:
            per_victim[victim] = per_victim.get(victim, 0) + amount
            result.loss_yen += amount
            result.attackers[a].loss_yen += amount
            result.losses_by_bank[bank_code] = result.losses_by_bank.get(bank_code, 0) + amount
            day = int((at - start).total_seconds() // 86400)
            result.losses_by_day[min(max(day, 0), self.scenario.days - 1)] += amount
            first_charge.setdefault(wallet_id, at)
            victims_by_attacker.setdefault(a, set()).add(victim)

        with self.rt.db.session() as session:
            # 1. the victim's bank account debited into a wallet the attacker owns (net of what
            #    an operator sent back after a review)
            self.bank_debits = {}
            rows = session.execute(
                select(
                    BankMovement.wallet_id,
                    BankMovement.link_id,
                    BankMovement.bank_code,
                    BankMovement.amount,
                    BankMovement.created_at,
                    BankMovement.direction,
                )
                .where(
                    BankMovement.status == MovementStatus.POSTED.value,
                    BankMovement.link_id.in_(list(self.victim_links)),
                )
                .order_by(BankMovement.created_at)
            ).all()
            for wallet_id, link_id, bank_code, amount, at, direction in rows:
                victim = self.victim_links[link_id]
                signed = amount if direction == MovementDirection.DEBIT.value else -amount
                self.bank_debits[victim] = self.bank_debits.get(victim, 0) + signed
                lose(victim, self.link_attacker[link_id], signed, bank_code, at, wallet_id)
            # 2. money sent from a customer's own wallet to the attacker's (a takeover, or the
            #    customer talked into it)
            attack_wallets = list(self.attack_accounts)
            if attack_wallets:
                sent = session.execute(
                    select(
                        Transfer.source_wallet_id,
                        Transfer.destination_wallet_id,
                        Transfer.amount,
                        Transfer.created_at,
                    )
                    .where(
                        Transfer.destination_wallet_id.in_(attack_wallets),
                        Transfer.source_wallet_id.not_in(attack_wallets),
                    )
                    .order_by(Transfer.created_at)
                ).all()
                for source, destination, amount, at in sent:
                    victim = self.owner_of_wallet[source]
                    lose(
                        victim,
                        self.attack_accounts[destination],
                        amount,
                        self.plan.citizens[victim].bank_code,
                        at,
                        destination,
                    )
            # 3. the attacker paying merchants straight from a customer's wallet it took over
            for payment_id, victim, a in self.taken_payments:
                payment = session.get_one(Payment, payment_id)
                lose(
                    victim,
                    a,
                    payment.amount - payment.refunded_amount,
                    self.plan.citizens[victim].bank_code,
                    payment.created_at,
                    payment.wallet_id,
                )
            attack_wallets = list(self.attack_accounts)
            spent = (
                session.scalar(
                    select(
                        func.coalesce(func.sum(Payment.amount - Payment.refunded_amount), 0)
                    ).where(Payment.wallet_id.in_(attack_wallets))
                )
                if attack_wallets
                else 0
            )
            result.spent_yen = int(spent or 0)
            for wallet_id in attack_wallets:
                wallet = session.get_one(Wallet, wallet_id)
                if wallet.status == WalletStatus.LOCKED.value:
                    result.frozen_yen += wallets.balance(session, wallet).balance
            locks = session.execute(
                select(AuditEvent.subject, func.min(AuditEvent.created_at))
                .where(AuditEvent.action == "wallet.lock")
                .group_by(AuditEvent.subject)
            ).all()
            for subject, at in locks:
                wallet_id = uuid.UUID(subject)
                if wallet_id in first_charge:
                    hours = (at - first_charge[wallet_id]).total_seconds() / 3600
                    result.detection_delays_hours.append(round(max(hours, 0.0), 2))
        for a, victims in victims_by_attacker.items():
            result.attackers[a].victims = len(victims)
            result.attackers[a].succeeded = sum(1 for v in victims if per_victim.get(v, 0) > 0)
        per_victim = {victim: yen for victim, yen in per_victim.items() if yen > 0}
        result.losses_by_bank = {code: yen for code, yen in result.losses_by_bank.items() if yen}
        result.victims = len(per_victim)
        result.max_loss_per_victim_yen = max(per_victim.values(), default=0)
        for victim in per_victim:
            code = self.plan.citizens[victim].bank_code
            result.victims_by_bank[code] = result.victims_by_bank.get(code, 0) + 1
        result.banks_hit = len(result.losses_by_bank)
        result.honest_active_users = len(self.honest)
        result.net_loss_yen = max(result.loss_yen - result.frozen_yen, 0)
        self.per_victim = per_victim

    def export_events(self, sink: TextIO) -> int:
        """Write every event the risk engine saw in this world as JSON lines, labelled
        ``attack:<attacker>`` or ``honest``, with the profile in ``attributes.sim_profile``."""
        with self.rt.db.session() as session:
            events = risk.recorded_events(session, since=self.scenario.start)
        names = [attacker.name for attacker in self.scenario.attackers]
        for event in events:
            record = event.to_json()
            attacker = self._attacker_behind(event)
            record["label"] = f"attack:{names[attacker]}" if attacker is not None else "honest"
            record["attributes"] = {
                **record.get("attributes", {}),
                "sim_profile": self.profile.name,
            }
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
        return len(events)

    def _attacker_behind(self, event: RiskEvent) -> int | None:
        """Which attacker caused ``event``: one acting from its own wallet, from a customer's
        wallet it took over (its network), or a customer it talked into paying it."""
        wallet = _uuid_or_none(event.wallet)
        if wallet in self.attack_accounts:
            return self.attack_accounts[wallet]
        user = _uuid_or_none(event.user)
        if user in self.attack_users:
            return self.attack_users[user]
        if event.ip in self.attacker_ips:
            return self.attacker_ips[event.ip]
        payee = _uuid_or_none(str(event.attributes.get("to", "")))
        return self.attack_accounts.get(payee) if payee is not None else None

    def check_against_bank(self) -> None:
        """What the ledger says attackers' links took must be exactly what the bank's own
        records show moved under those links."""
        at_bank = self.bank_losses()
        mine = {victim: yen for victim, yen in self.bank_debits.items() if yen}
        if at_bank != mine:
            differ = sorted(set(at_bank.items()) ^ set(mine.items()))[:5]
            raise SimulationInconsistent(
                f"{self.profile.name}: the ledger and the bank disagree on victims' losses: "
                f"{differ}"
            )

    def bank_losses(self) -> dict[int, int]:
        """Per victim, what the bank debited (less what it credited back) under the links
        attackers made, from the bank's own database."""
        if not self.victim_links:
            return {}
        with self.rt.db.session() as session:
            bank_link_of = dict(
                session.execute(
                    select(BankLink.id, BankLink.bank_link_id).where(
                        BankLink.id.in_(list(self.victim_links))
                    )
                ).all()
            )
        victim_of = {
            bank_link_of[link]: victim
            for link, victim in self.victim_links.items()
            if link in bank_link_of
        }
        lost: dict[int, int] = {}
        with self.world.bank_rt.db.session() as session:
            rows = session.execute(
                select(BankTransfer.link_id, BankTransfer.kind, BankTransfer.amount).where(
                    BankTransfer.link_id.in_(list(victim_of))
                )
            ).all()
        for link_id, kind, amount in rows:
            victim = victim_of[link_id]
            lost[victim] = lost.get(victim, 0) + (amount if kind == "debit" else -amount)
        return {victim: yen for victim, yen in lost.items() if yen}
