"""Attackers as capable as real ones: the post-2020 strategies and what every attacker can do.

:class:`Adversary` plays ``phishing_relay``, ``account_takeover``, ``verified_mule_market`` and
``authorised_push`` for the driver (whose members it uses are
:class:`~kouza.sim.ports.AdversaryPort`), and gives every strategy the same capabilities a real
attacker has: rotating residential IPs across /24s, devices (fewer than IPs) and e-mail domains;
SIMs that answer SMS step-ups; a budget of retries after a refusal (with a new wallet, device and
IP, a few hours later); charges spread over days; and cash-out through person-to-person chains
and merchants. Like the driver, it only *acts* through the real services; whether anything works
is the code's answer.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from functools import partial

import jaconv
from joserfc.jwk import ECKey

from kouza.errors import KouzaError
from kouza.identity.devices import SensitiveAction
from kouza.identity.ekyc.devca import TestCitizen
from kouza.identity.ekyc.result import Sex
from kouza.identity.service import identity
from kouza.sim.agents import Account, Attempt, Device, FollowUp, NotFooled
from kouza.sim.population import Citizen
from kouza.sim.ports import AdversaryPort
from kouza.sim.scenario import Attacker
from kouza.wallet.models import Wallet
from kouza.wallet.service import wallets

NOT_WORTH_RETRYING = frozenset(
    {
        "verification_level_required",
        "verified_name_required",
        "legacy_bank_not_accepted",
        "oauth_not_offered",
        "did_not_take_the_bait",
        "invalid_credentials",
        "not_a_customer",
    }
)
"""Refusals a new wallet, device or IP does not change (the attacker lacks what is asked)."""

MULE_NAMES = (
    ("運び 屋男", "ハコビ ヤオ"),
    ("受子 花代", "ウケコ ハナヨ"),
    ("出子 健", "デコ ケン"),
    ("名義 貸太", "メイギ カシタ"),
    ("口座 売男", "コウザ ウリオ"),
)


class NotACustomer(KouzaError):
    """The attack needs the victim's own wallet, and the victim has none (yet)."""

    code = "not_a_customer"


class Adversary:
    """The attackers' side of one world."""

    def __init__(self, runner: AdversaryPort) -> None:
        self.r = runner
        self.mules: dict[int, Account] = {}
        """Attacker → the bought verified wallet it is using now."""
        self.bought = 0

    # --- infrastructure ------------------------------------------------------------------

    def ip(self, a: int, n: int) -> str:
        """The ``n``-th residential IP of attacker ``a``: ``ips`` addresses over ``subnets``
        /24 networks (documentation ranges, never contacted)."""
        attacker = self.r.scenario.attackers[a]
        address = n % attacker.ips
        subnet = address % attacker.subnets
        ip = (
            f"198.{18 + (a * 7 + subnet // 256) % 2}.{(a * 37 + subnet) % 256}."
            f"{(address // attacker.subnets) % 250 + 1}"
        )
        self.r.attacker_ips[ip] = a
        return ip

    def fresh_account(self, a: int, n: int) -> Account | KouzaError:
        """A new wallet on the attacker's ``n``-th IP, device and e-mail domain, with a phone
        (an attacker's SIM) and a device key when the profile asks for them."""
        attacker = self.r.scenario.attackers[a]
        self.r.counter += 1
        domain = f"mail{self.r.counter % attacker.email_domains}.example.net"
        account = self.r.sign_up(f"x{a}{self.r.counter:06d}@{domain}", self.ip(a, n))
        if isinstance(account, KouzaError):
            return account
        self.r.attack_accounts[account.wallet_id] = a
        self.r.attack_users[account.user_id] = a
        refused = self.r.reach_link_level(
            account, f"0703{a:02d}{self.r.counter % 100_000:05d}", None, ""
        )
        return refused if refused is not None else account

    def answer_step_up(self, attempt: Attempt, purpose: str) -> bool:
        """Answer an SMS step-up if the attacker receives the SMS of the wallet's phone."""
        account = attempt.account
        if account is None or not account.phone or attempt.attacker < 0:
            return False
        attacker = self.r.scenario.attackers[attempt.attacker]
        own_phone = account.citizen < 0 and attacker.answers_step_ups
        relayed = attempt.payload.get("receives_sms", False)
        if not (own_phone or relayed):
            return False
        return self.r.step_up(account, purpose)

    def after_refusal(self, attempt: Attempt, refusal: KouzaError) -> None:
        """Adaptive: within its budget, come back to the same victim hours later with a new
        wallet, device and IP (pacing under velocity rules)."""
        attacker = self.r.scenario.attackers[attempt.attacker]
        if attempt.tries >= attacker.budget or refusal.code in NOT_WORTH_RETRYING:
            return
        attempt.tries += 1
        wait = timedelta(hours=6 * attempt.tries + self.r.rng.uniform(0, 6))
        self.r.schedule(self.r.world.clock.now() + wait, FollowUp.RETRY, attempt)

    def retry(self, attempt: Attempt) -> None:
        attacker = self.r.scenario.attackers[attempt.attacker]
        self.r.result.attackers[attempt.attacker].refusals["retried"] = (
            self.r.result.attackers[attempt.attacker].refusals.get("retried", 0) + 1
        )
        if attacker.strategy in (
            "phishing_relay",
            "account_takeover",
            "verified_mule_market",
            "authorised_push",
        ):
            self._play(attempt, attacker)
        else:
            self.r.attempt_link(attempt)

    # --- the strategies ------------------------------------------------------------------

    def attack(self, attempt: Attempt, attacker: Attacker) -> None:
        """First contact with a victim: the lure (where there is one), then the play."""
        if attacker.strategy in ("phishing_relay", "authorised_push") and not self._falls_for_it(
            attempt, attacker.hand_over_share
        ):
            self.r.record_refusal(attempt, NotFooled("did not take the bait"))
            return
        self._play(attempt, attacker)

    def _play(self, attempt: Attempt, attacker: Attacker) -> None:
        victim = self.r.plan.citizens[attempt.victim]
        if attacker.strategy == "phishing_relay":
            self._relay(attempt, attacker, victim)
        elif attacker.strategy == "account_takeover":
            self._take_over(attempt, attacker, victim)
        elif attacker.strategy == "verified_mule_market":
            self._mule_market(attempt, attacker, victim)
        elif attacker.strategy == "authorised_push":
            self._push(attempt, attacker, victim)

    def _falls_for_it(self, attempt: Attempt, share: float) -> bool:
        """Whether the lure works: the scenario's share, scaled by how easily this person is
        fooled when they are a customer with drawn traits."""
        draw = random.Random(
            f"{self.r.scenario.seed}-lure-{attempt.attacker}-{attempt.victim}"
        ).random()
        person = self.r.plan.honest_of_citizen.get(attempt.victim)
        chance = share
        if person is not None:
            mean = self.r.scenario.population.phishing_susceptibility
            chance = min(1.0, share * self.r.plan.honest[person].susceptibility / mean)
        return draw < chance

    def _relay(self, attempt: Attempt, attacker: Attacker, victim: Citizen) -> None:
        assert attacker.strategy == "phishing_relay"
        if attacker.into == "own_wallet":
            account = self._taken_over(attempt, victim, sms=True)
            if isinstance(account, Account) and account.link_id is not None:
                # the customer's account is linked already: charge it, no need to link
                self.r.linked(attempt, account, account.link_id)
                return
        elif attacker.into == "bought_verified":
            account = self._mule_wallet(attempt, victim, declares_victim_kana=False)
        else:
            account = self.fresh_account(attempt.attacker, self._n(attempt))
        self._link_and_charge(attempt, account, victim, internet_banking=True)

    def _take_over(self, attempt: Attempt, attacker: Attacker, victim: Citizen) -> None:
        assert attacker.strategy == "account_takeover"
        self._stuff(attempt, attacker)
        account = self._taken_over(attempt, victim, sms=attacker.sim_swap)
        if isinstance(account, KouzaError):
            self.r.record_refusal(attempt, account)
            return
        own = self.r.honest[self.r.plan.honest_of_citizen[victim.index]]
        if own.link_id is not None:
            # charge to the cap from the account the customer already linked
            self.r.linked(attempt, account, own.link_id)
            return
        self.r.schedule(
            self.r.world.clock.now() + self.cash_out_delay(attacker), FollowUp.SPEND, attempt
        )

    def _mule_market(self, attempt: Attempt, attacker: Attacker, victim: Citizen) -> None:
        assert attacker.strategy == "verified_mule_market"
        account = self._mule_wallet(
            attempt, victim, declares_victim_kana=attacker.declares_victim_kana
        )
        self._link_and_charge(
            attempt, account, victim, internet_banking=attacker.with_internet_banking
        )

    def _push(self, attempt: Attempt, attacker: Attacker, victim: Citizen) -> None:
        """The customer, convinced by a caller, charges and sends money to a mule themselves:
        their own device, network and answers to step-ups."""
        assert attacker.strategy == "authorised_push"
        person = self.r.plan.honest_of_citizen.get(victim.index)
        own = self.r.honest.get(person) if person is not None else None
        if own is None:
            self.r.record_refusal(attempt, NotACustomer("the victim has no wallet"))
            return
        mule = self.fresh_account(attempt.attacker, self._n(attempt))
        if isinstance(mule, KouzaError):
            self.r.record_refusal(attempt, mule)
            return
        self.r.record_stage(attempt, "wallet_opened")
        attempt.payload["authorised"] = True
        for amount in attacker.transfers:
            link_id = own.link_id
            if link_id is not None:
                charged = self._victim_does(
                    own, partial(self.r.top_up, own, link_id, amount), SensitiveAction.CHARGE.value
                )
                if charged is not None:
                    self.r.record_refusal(attempt, charged)
            refused = self._victim_does(own, partial(self._send, own, mule, amount), "transfer")
            if refused is not None:
                self.r.record_refusal(attempt, refused)
                break
            self.r.record_stage(attempt, "charged")
        attempt.account = mule
        self.r.schedule(
            self.r.world.clock.now() + self.cash_out_delay(attacker), FollowUp.SPEND, attempt
        )

    def _victim_does(
        self, own: Account, work: Callable[[], KouzaError | None], purpose: str
    ) -> KouzaError | None:
        refused = work()
        if (
            refused is not None
            and refused.code == "step_up_required"
            and self.r.step_up(own, purpose)
        ):
            refused = work()
        return refused

    # --- pieces the strategies share -----------------------------------------------------

    def _n(self, attempt: Attempt) -> int:
        return self.r.result.attackers[attempt.attacker].attempts * 31 + attempt.tries

    def _stuff(self, attempt: Attempt, attacker: Attacker) -> None:
        """Credential stuffing: leaked pairs of other customers whose passwords differ here,
        tried from rotating IPs (each refused by the real login)."""
        assert attacker.strategy == "account_takeover"
        others = [
            self.r.honest[i] for i in self.r.joined if self.r.honest[i].citizen != attempt.victim
        ]
        for k in range(min(attacker.stuffing_attempts, len(others))):
            other = others[(attempt.victim * 7919 + k * 104729) % len(others)]
            self.r.call(
                lambda s, e=other.email, n=k: identity.login(  # type: ignore[misc]
                    s, email=e, password="leaked-elsewhere-1", ip=self.ip(attempt.attacker, n)
                )
            )

    def _taken_over(self, attempt: Attempt, victim: Citizen, *, sms: bool) -> Account | KouzaError:
        """Log in to the customer's wallet with their password from the attacker's IP; with
        their SMS (a relayed live code, or a swapped SIM) register a device key of its own."""
        person = self.r.plan.honest_of_citizen.get(victim.index)
        own = self.r.honest.get(person) if person is not None else None
        if own is None:
            return NotACustomer("the victim has no wallet")
        n = self._n(attempt)
        ip = self.ip(attempt.attacker, n)
        _, refused = self.r.call(
            lambda s: identity.login(s, email=own.email, password=own.password, ip=ip)
        )
        if refused is not None:
            return refused
        account = Account(
            own.user_id,
            own.wallet_id,
            own.email,
            ip,
            phone=own.phone,
            link_id=own.link_id,
            password=own.password,
            citizen=own.citizen,
        )
        attempt.account = account
        attempt.payload["receives_sms"] = sms
        self.r.record_stage(attempt, "wallet_opened")
        if sms and own.phone:
            device = Device(ECKey.generate_key("P-256"))

            def register() -> KouzaError | None:
                made, refused = self.r.call(
                    lambda s: identity.register_device(
                        s,
                        self.r.user(s, account),
                        jwk=dict(device.key.as_dict(private=False)),
                        name="phone",
                        ip=ip,
                    )
                )
                if made is not None:
                    device.device_id = made.id
                return refused

            refused = register()
            if (
                refused is not None
                and refused.code == "step_up_required"
                and self.answer_step_up(attempt, SensitiveAction.REGISTER_DEVICE.value)
            ):
                refused = register()
            if device.device_id is not None:
                account.device = device
        return account

    def _mule_wallet(
        self, attempt: Attempt, victim: Citizen, *, declares_victim_kana: bool
    ) -> Account | KouzaError:
        """A verified wallet bought from a real person: their phone, their card, their eKYC
        (reused until the wallet has as many links as allowed)."""
        a = attempt.attacker
        attacker = self.r.scenario.attackers[a]
        per_wallet = getattr(attacker, "links_per_wallet", 1)
        current = self.mules.get(a)
        if (
            current is not None
            and not declares_victim_kana
            and current.links < min(per_wallet, self.r.rt.settings.link_max_accounts_per_wallet)
        ):
            return current
        self.bought += 1
        account = self.fresh_account(a, self._n(attempt))
        if isinstance(account, KouzaError):
            return account
        kanji, kana = MULE_NAMES[self.bought % len(MULE_NAMES)]
        person = TestCitizen(
            name=kanji,
            address=f"大阪府大阪市北区{self.bought}",
            birth_date=date(1985 + self.bought % 15, 1 + self.bought % 12, 1),
            sex=Sex.MALE,
        )
        declared = (
            jaconv.h2z(victim.kana, kana=True, ascii=False, digit=False)
            if declares_victim_kana
            else kana
        )
        if account.device is None:
            refused = self.r.verify_phone(account, f"0704{a:02d}{self.bought % 100_000:05d}")
            if refused is not None:
                return refused
        refused = self.r.verify_identity(account, person, declared)
        if refused is not None:
            return refused
        self.mules[a] = account
        return account

    def _link_and_charge(
        self,
        attempt: Attempt,
        account: Account | KouzaError,
        victim: Citizen,
        *,
        internet_banking: bool,
    ) -> None:
        if isinstance(account, KouzaError):
            self.r.record_refusal(attempt, account)
            self.after_refusal(attempt, account)
            return
        attempt.account = account
        self.r.record_stage(attempt, "wallet_opened")
        self.r.record_stage(attempt, "link_attempted")
        link_id, refused = self.link(attempt, account, victim, internet_banking=internet_banking)
        if refused is not None or link_id is None:
            refusal = refused or KouzaError("no link")
            self.r.record_refusal(attempt, refusal)
            self.after_refusal(attempt, refusal)
            return
        self.r.linked(attempt, account, link_id)

    def link(
        self, attempt: Attempt, account: Account, victim: Citizen, *, internet_banking: bool
    ) -> tuple[uuid.UUID | None, KouzaError | None]:
        """Link the victim's account: the bank's strong flow with relayed credentials where
        the bank has it, else its legacy form with the PIN; a step-up answered if possible."""

        def once() -> tuple[uuid.UUID | None, KouzaError | None]:
            if internet_banking and self.r.bank_is_oauth(victim.bank_code):
                return self.link_oauth(account, victim)
            return self.r.link_legacy(account, victim, pin=victim.pin, holder=victim.kana)

        link_id, refused = once()
        if (
            refused is not None
            and refused.code == "step_up_required"
            and self.answer_step_up(attempt, SensitiveAction.LINK_BANK.value)
        ):
            link_id, refused = once()
        return link_id, refused

    def link_oauth(
        self, account: Account, victim: Citizen
    ) -> tuple[uuid.UUID | None, KouzaError | None]:
        """The bank's strong flow walked with the victim's relayed password and live code;
        the identity the wallet sends is whatever the wallet's policy sends."""
        return self.r.link_oauth(account, victim)

    # --- cash-out --------------------------------------------------------------------------

    def cash_out_delay(self, attacker: Attacker) -> timedelta:
        low, high = attacker.cash_out.delay_hours
        return timedelta(hours=self.r.rng.uniform(low, max(high, low)))

    def cash_out(self, attempt: Attempt) -> None:
        """Move the balance on through mule wallets (a share), then buy resellable goods."""
        account = attempt.account
        if account is None:
            return
        attacker = self.r.scenario.attackers[attempt.attacker]
        available = self._available(account)
        if available < 1_000:
            return
        plan = attacker.cash_out
        onward = int(available * plan.p2p_share) // 1_000 * 1_000
        taken = account.wallet_id not in self.r.attack_accounts
        if taken and onward == 0:
            onward = available if plan.p2p_share else 0
        if onward:
            last = self._chain(attempt, account, onward, plan.p2p_hops)
            if last is not None:
                self._spend(attempt, last)
        self._spend(attempt, account)

    def _chain(self, attempt: Attempt, source: Account, amount: int, hops: int) -> Account | None:
        """Send ``amount`` through ``hops`` fresh mule wallets; the last one is returned."""
        current = source
        for _ in range(hops):
            mule = self.fresh_account(attempt.attacker, self._n(attempt) + hops)
            if isinstance(mule, KouzaError):
                self.r.record_refusal(attempt, mule)
                return None
            refused = self._send(current, mule, amount)
            if (
                refused is not None
                and refused.code == "step_up_required"
                and current is attempt.account
                and self.answer_step_up(attempt, "transfer")
            ):
                refused = self._send(current, mule, amount)
            if refused is not None:
                self.r.record_refusal(attempt, refused)
                return None
            self.r.record_stage(attempt, "spent")
            current = mule
        return current

    def _send(self, source: Account, destination: Account, amount: int) -> KouzaError | None:
        return self.r.call(
            lambda s: wallets.transfer(
                s,
                user=self.r.user(s, source),
                source_wallet_id=source.wallet_id,
                destination_wallet_id=destination.wallet_id,
                amount=amount,
                signed=self.r.signed(s, source, SensitiveAction.TRANSFER),
                ip=source.ip,
            )
        )[1]

    def _available(self, account: Account) -> int:
        with self.r.rt.db.session() as session:
            wallet = session.get_one(Wallet, account.wallet_id)
            return wallets.balance(session, wallet).available

    def _spend(self, attempt: Attempt, account: Account) -> None:
        """Buy resellable goods until the balance is gone or the code refuses."""
        attacker = self.r.scenario.attackers[attempt.attacker]
        shops = [m for m in self.r.merchants if m[1] in attacker.resell_categories]
        taken = account.wallet_id not in self.r.attack_accounts
        for _ in range(20):
            available = self._available(account)
            if available < 1_000 or not shops:
                return
            merchant_id, _, qr = shops[self.r.rng.randrange(len(shops))]
            amount = min(available, self.r.rng.choice(attacker.cash_out.amounts))
            paid, refused = self.r.pay_returning(account, qr, amount)
            if (
                refused is not None
                and refused.code == "step_up_required"
                and self.answer_step_up(attempt, "payment")
            ):
                paid, refused = self.r.pay_returning(account, qr, amount)
            if refused is not None:
                self.r.record_refusal(attempt, refused)
                if refused.code != "limit_exceeded":
                    return
                shops = [m for m in shops if m[0] != merchant_id]
                continue
            if taken and paid is not None:
                self.r.taken_payments.append((paid, account.citizen, attempt.attacker))
            self.r.record_stage(attempt, "spent")
