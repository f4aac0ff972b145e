"""Fill the demo's wallet and bank through the real APIs and services.

What is built, over the last two days of the demo clock (:class:`~kouza.demo.systems.DemoClock`):

* the bank: the 2020 partner banks (:func:`kouza.bank.seed.seed_banks`: legacy-form banks and
  OAuth banks), holders with internet banking (password + TOTP) at the OAuth bank りそな銀行
  (0010) and at the legacy-form bank 七十七銀行 (0125), and the wallet registered as an OAuth
  client (its public key, the redirect URI ``<wallet>/app/bank-callback``, its webhook URL);
* the wallet: merchants with static QR codes, operators with console credentials (two admins,
  an analyst, a call-centre operator), a verified customer (phone, device key, eKYC with a
  development card) whose りそな account is linked through the bank's own pages, with top-ups,
  payments and a transfer to a customer who has only confirmed an e-mail address;
* the 2020 attack, through the real code: under the 2019 policy (e-mail level, typed name, the
  legacy form accepted, no device, no rules) an e-mail-only wallet links the victim's 七十七
  account with leaked details, charges it and spends; with the shipped rules back on, that wallet
  and a second one try strangers' accounts and the rules lock them and open cases; under
  kouza's own policy two more e-mail-only wallets are refused at the level gate. The victim's
  bank has sent its holder the link notice (its reference is printed).

Customers, links and money go over HTTP as the app and a browser would; banks, holders,
merchants and operators through the services their CLI commands call.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources

from sqlalchemy import select

from kouza.bank.core import CustomerData, core
from kouza.bank.holder import holder as bank_holder
from kouza.bank.models import AccountType
from kouza.bank.oauth.clients import oauth_clients
from kouza.bank.seed import SeededAccount, seed_banks
from kouza.console.auth import console_auth
from kouza.controls.cases import cases
from kouza.controls.models import CaseStatus, OperatorRole
from kouza.controls.service import controls
from kouza.demo.people import Customer, IbLogin, WalletApi, totp_code
from kouza.demo.systems import CLIENT_ID, Systems
from kouza.demo.world import (
    Attack,
    Card,
    DemoWorld,
    Holder,
    Merchant,
    OperatorLogin,
    WalletLogin,
)
from kouza.identity.ekyc.devca import TestCard, TestCitizen
from kouza.identity.ekyc.devca_store import DEFAULT_PASSPHRASE
from kouza.identity.ekyc.result import Sex
from kouza.kit import zengin
from kouza.kit.security import password_cost
from kouza.linking.keys import client_jwks
from kouza.risk.service import risk
from kouza.wallet.models import MerchantCategory, Wallet, WalletStatus
from kouza.wallet.service import wallets

SPREAD = timedelta(days=2)
"""How far back the demo's story starts."""
ACTOR = "demo"
OAUTH_BANK = "0010"
LEGACY_BANK = "0125"
STOLEN = 100_000
EMPTY_RULES = "version: none\nrules: []\n"
WORDS = (
    "sakura", "momiji", "fuji", "kamo", "tsuki", "hoshi", "kawa", "umi", "yama", "sora",
    "kaze", "mori", "hana", "yuki", "ame", "nami", "ishi", "take", "matsu", "ume",
)  # fmt: skip


@dataclass(frozen=True)
class Person:
    """A made-up person: a bank holder, and the name their card carries."""

    label: str
    kanji: str
    kana: str
    """Half-width, as the bank keeps it."""
    card_kana: str
    """Full-width, as a customer declares it at eKYC."""
    birth_date: date
    email: str


HANAKO = Person(
    "りそな: Hanako (linked to her verified wallet)",
    "佐藤 花子",
    "ｻﾄｳ ﾊﾅｺ",
    "サトウ ハナコ",
    date(1985, 5, 5),
    "hanako@example.jp",
)
ICHIRO = Person(
    "りそな: Ichiro (not linked yet: sign up at /app with his card)",
    "鈴木 一郎",
    "ｽｽﾞｷ ｲﾁﾛｳ",
    "スズキ イチロウ",
    date(1990, 10, 10),
    "ichiro@example.jp",
)
TARO = Person(
    "七十七: Taro (the victim)",
    "山田 太郎",
    "ﾔﾏﾀﾞ ﾀﾛｳ",
    "ヤマダ タロウ",
    date(1960, 4, 1),
    "taro.yamada@example.jp",
)


class Builder:
    """Builds one demo world; every step at a pinned time of the story."""

    def __init__(self, systems: Systems, *, seed: int) -> None:
        self.systems = systems
        self.rng = random.Random(seed)
        self.seed = seed
        self.api = WalletApi(systems)
        self.start = datetime.now(UTC).replace(microsecond=0) - SPREAD
        self.holders: list[Holder] = []
        self.strangers: list[SeededAccount] = []
        self.merchants: dict[str, Merchant] = {}
        self.customers: list[WalletLogin] = []
        self.cards: list[Card] = []
        self.test_cards: dict[str, TestCard] = {}
        self.saved_policy: dict[str, object] = {}

    # --- time and secrets ------------------------------------------------------------------

    def at(self, hours: float) -> None:
        """Pin the clock ``hours`` after the story's start."""
        self.systems.clock.pin(self.start + timedelta(hours=hours))

    def code(self, seed: str) -> str:
        """The TOTP code a holder's token shows now (the demo clock's now)."""
        return totp_code(seed, self.systems.clock.now().timestamp())

    def passphrase(self) -> str:
        words = self.rng.sample(WORDS, 3)
        return f"{'-'.join(words)}-{self.rng.randrange(100, 1000)}"

    # --- the whole story -------------------------------------------------------------------

    def build(self) -> DemoWorld:
        try:
            self.at(0)
            self.bank()
            self.register_wallet()
            operators = self.operators()
            self.shop()
            hanako, kenji = self.honest_customers()
            attack = self.attack()
            self.customers.insert(0, self.login_of(hanako, "verified, りそな linked", HANAKO))
            self.customers.insert(1, self.login_of(kenji, "e-mail only", None))
        finally:
            self.api.close()
            self.systems.clock.release()
        self.systems.devca.write_crls(self.systems.devca.load(), now=self.systems.clock.now())
        self.bank_balances()
        return DemoWorld(
            folder=str(self.systems.folder),
            wallet_url=self.systems.wallet_url,
            bank_url=self.systems.bank_url,
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
            customers=self.customers,
            operators=operators,
            holders=self.holders,
            merchants=list(self.merchants.values()),
            cards=self.cards,
            attack=attack,
        )

    # --- the bank ----------------------------------------------------------------------------

    def bank(self) -> None:
        """The partner banks with a few random customers each, and the demo's named holders."""
        bank_rt = self.systems.bank_rt
        # the random customers' PINs are hashed with small argon2 parameters: they are made-up
        # secrets of a demo, and verification reads the parameters from each hash
        with password_cost(time_cost=1, memory_cost=1024), bank_rt.db.unit_of_work() as session:
            report = seed_banks(session, rng_seed=self.seed, customers_per_bank=3)
        self.strangers = [a for a in report.accounts if a.bank_code == LEGACY_BANK]
        self.add_holder(HANAKO, OAUTH_BANK, balance=420_000)
        self.add_holder(ICHIRO, OAUTH_BANK, balance=180_000)
        self.add_holder(TARO, LEGACY_BANK, balance=650_000)

    def add_holder(self, person: Person, bank_code: str, *, balance: int) -> None:
        branch_code = zengin.branches(bank_code)[0].code
        password, pin = self.passphrase(), f"{self.rng.randrange(10_000):04d}"
        number = f"{self.rng.randrange(10**6, 10**7):07d}"
        with self.systems.bank_rt.db.unit_of_work() as session:
            bank = core.bank(session, bank_code)
            customer = core.add_customer(
                session,
                bank,
                CustomerData(
                    name_kanji=person.kanji,
                    name_kana=person.kana,
                    birth_date=person.birth_date,
                    address="東京都千代田区千代田1-1",
                    phone=f"+8180{self.rng.randrange(10**8):08d}",
                    email=person.email,
                ),
                internet_banking_password=password,
            )
            _, seed = core.add_otp_device(session, customer, label="hardware token")
            core.open_account(
                session,
                customer,
                branch=core.branch(session, bank, branch_code),
                account_type=AccountType.ORDINARY,
                number=number,
                pin=pin,
                balance=balance,
            )
            bank_name = bank.name
        self.holders.append(
            Holder(
                label=person.label,
                bank_code=bank_code,
                bank_name=bank_name,
                branch=branch_code,
                account_number=number,
                name_kanji=person.kanji,
                name_kana=person.kana,
                birth_date=person.birth_date.isoformat(),
                pin=pin,
                ib_password=password,
                totp_seed=seed,
                balance=balance,
            )
        )

    def bank_balances(self) -> None:
        """Each named holder's balance as the bank keeps it now (after the story's debits)."""
        with self.systems.bank_rt.db.unit_of_work() as session:
            for held in self.holders:
                held.balance = core.account(
                    session,
                    bank_code=held.bank_code,
                    branch_code=held.branch,
                    number=held.account_number,
                ).balance

    def ib_login(self, person: Person) -> IbLogin:
        held = next(h for h in self.holders if h.label == person.label)
        return IbLogin(
            held.bank_code, held.branch, held.account_number, held.ib_password, held.totp_seed
        )

    def register_wallet(self) -> None:
        """The bank registers the wallet: webhook URL, public key, redirect URI."""
        settings = self.systems.rt.settings
        with self.systems.bank_rt.db.unit_of_work() as session:
            client, _ = core.register_client(
                session,
                client_id=CLIENT_ID,
                name="ドコモ口座",
                webhook_url=f"{self.systems.wallet_url}/v1/banks/webhooks",
            )
            oauth_clients.register(
                session,
                client,
                redirect_uris=[settings.bank_oauth_redirect_uri],
                jwks=client_jwks(self.systems.rt),
            )

    # --- the wallet's staff and shops --------------------------------------------------------

    def operators(self) -> list[OperatorLogin]:
        made = []
        for name, role in (
            ("akira", OperatorRole.ADMIN),
            ("bunta", OperatorRole.ADMIN),
            ("chika", OperatorRole.ANALYST),
            ("daichi", OperatorRole.CALL_CENTRE),
        ):
            password = self.passphrase()
            with self.systems.rt.db.unit_of_work() as session:
                controls.create_operator(session, name=name, role=role, actor=ACTOR)
                seed = console_auth.set_credential(
                    session, operator_name=name, password=password, actor=ACTOR
                )
            made.append(
                OperatorLogin(name=name, role=role.value, password=password, totp_seed=seed)
            )
        return made

    def shop(self) -> None:
        for key, name, category in (
            ("konbini", "Lawson Shibuya", MerchantCategory.CONVENIENCE_STORE),
            ("cafe", "Kissa Komorebi", MerchantCategory.RESTAURANT),
            ("super", "Maruetsu Ebisu", MerchantCategory.SUPERMARKET),
            ("electronics", "Akiba Denki", MerchantCategory.ELECTRONICS),
        ):
            with self.systems.rt.db.unit_of_work() as session:
                merchant = wallets.create_merchant(session, name=name, category=category)
                controls.audit(
                    session,
                    actor=ACTOR,
                    action="merchant.create",
                    subject=str(merchant.id),
                    reason="demo merchant",
                    details={"name": name},
                )
                qr = wallets.merchant_qr(session, merchant_id=merchant.id)
            self.merchants[key] = Merchant(
                name=name, merchant_id=str(merchant.id), category=category.value, qr=qr
            )

    # --- honest customers --------------------------------------------------------------------

    def issue_card(self, person: Person, label: str) -> Card:
        store = self.systems.devca
        store.write_crls(store.load(), now=self.systems.clock.now())
        citizen = TestCitizen(
            name=person.kanji.replace(" ", "\u3000"),
            address="東京都千代田区千代田1-1",
            birth_date=person.birth_date,
            sex=Sex.FEMALE if person is HANAKO else Sex.MALE,
        )
        ca = store.load()
        issued = ca.issue_card(citizen, now=self.systems.clock.now())
        self.test_cards[person.label] = issued
        stored = store.save_card(issued)
        card = Card(
            label=label,
            name=citizen.name,
            birth_date=person.birth_date.isoformat(),
            kana=person.card_kana,
            certificate_file=str(stored.certificate_path),
            key_file=str(stored.key_path),
            passphrase=DEFAULT_PASSPHRASE,
        )
        self.cards.append(card)
        return card

    def honest_customers(self) -> tuple[Customer, Customer]:
        api = self.api
        self.at(1)
        hanako = api.sign_up(HANAKO.email, self.passphrase())
        api.add_phone(hanako, "090-5555-0101")
        self.at(1.1)
        self.issue_card(HANAKO, "Hanako's card (already used for her eKYC)")
        api.verify_with_card(hanako, self.test_cards[HANAKO.label], HANAKO.card_kana)
        self.at(1.2)
        link_id = api.link_oauth(hanako, self.ib_login(HANAKO), self.code(self.totp(HANAKO)))
        self.at(1.3)
        api.top_up(hanako, link_id, 30_000)
        self.at(3)
        kenji = api.sign_up("kenji@example.jp", self.passphrase())
        self.issue_card(
            ICHIRO, "Ichiro's card: use it for eKYC at /app, then link his りそな account"
        )
        for hours, merchant, amount in ((5, "konbini", 1_200), (20, "cafe", 4_800)):
            self.at(hours)
            api.pay(hanako, self.merchants[merchant].qr, amount)
        self.at(26)
        api.transfer(hanako, kenji, 2_000, "lunch, thanks!")
        self.at(30)
        api.top_up(hanako, link_id, 20_000)
        self.at(40)
        api.pay(hanako, self.merchants["super"].qr, 3_500)
        return hanako, kenji

    def totp(self, person: Person) -> str:
        return self.holder(person).totp_seed

    def holder(self, person: Person) -> Holder:
        return next(h for h in self.holders if h.label == person.label)

    def login_of(self, who: Customer, label: str, person: Person | None) -> WalletLogin:
        with self.systems.rt.db.unit_of_work() as session:
            wallet = wallets.get_wallet(session, who.wallet_id)
            balance = wallets.balance(session, wallet).balance
        return WalletLogin(
            label=label,
            email=who.email,
            password=who.password,
            level="verified" if person else "email",
            wallet_id=str(who.wallet_id),
            balance=balance,
            phone=who.phone,
            linked=person.label if person else "",
        )

    # --- the attack --------------------------------------------------------------------------

    def attack(self) -> Attack:
        """The theft under the 2019 design, the rules catching the burst, kouza's refusals."""
        victim = self.holder(TARO)
        fraud = self.theft(victim)
        refused = self.burst(fraud)
        refused += self.refused_by_level()
        with self.systems.bank_rt.db.unit_of_work() as session:
            account = core.account(
                session,
                bank_code=victim.bank_code,
                branch_code=victim.branch,
                number=victim.account_number,
            )
            reference = bank_holder.links(session, account)[0].notice_reference
        return Attack(
            victim=victim.label,
            stolen=STOLEN,
            fraud_email=fraud.email,
            fraud_wallet_id=str(fraud.wallet_id),
            notice_reference=reference,
            notice_url=f"{self.systems.bank_url}/banks/{victim.bank_code}/notice#{reference}",
            refused_attempts=refused,
            locked_wallets=locked_wallets(self.systems),
            open_cases=open_cases(self.systems),
        )

    def theft(self, victim: Holder) -> Customer:
        """An e-mail-only wallet links the victim's account with leaked details (account, PIN,
        kana name), charges it and spends, under the 2019 policy; the rules come back on."""
        rt = self.systems.rt
        saved = {name: getattr(rt.settings, name) for name in POLICY_2019}
        for name, value in POLICY_2019.items():
            setattr(rt.settings, name, value)
        risk.load_rules(rt, EMPTY_RULES, source="the 2019 design: no rules")
        try:
            self.at(41)
            fraud = self.api.sign_up("k7.mule@example.net", self.passphrase())
            self.at(41.05)
            link_id = self.api.link_legacy(fraud, legacy_form(victim)).json()["id"]
            self.at(41.1)
            self.api.top_up(fraud, link_id, STOLEN)
            self.at(41.3)
            self.api.pay(fraud, self.merchants["electronics"].qr, 60_000)
            risk.load_rules(rt, shipped_rules(), source="default.yaml")
        finally:
            self.saved_policy = saved
        return fraud

    def burst(self, fraud: Customer) -> int:
        """Still on the 2019 policy, with the shipped rules: the fraud wallet and a second one
        try strangers' accounts; the rules lock both and open their cases."""
        strangers = self.strangers
        try:
            self.at(44)
            self.api.link_legacy(fraud, stranger_form(strangers[0]), expect=REFUSED)
            self.at(45)
            second = self.api.sign_up("k8.mule@example.net", self.passphrase())
            self.at(45.02)
            wrong = stranger_form(strangers[1]) | {"pin": wrong_pin(strangers[1].pin)}
            self.api.link_legacy(second, wrong, expect=REFUSED)
            self.at(45.04)
            self.api.link_legacy(second, stranger_form(strangers[2]), expect=REFUSED)
        finally:
            for name, value in self.saved_policy.items():
                setattr(self.systems.rt.settings, name, value)
        return 3

    def refused_by_level(self) -> int:
        """Under kouza's policy, e-mail-only wallets are refused before the bank is asked."""
        refused = 0
        for number, hours in ((9, 46), (10, 47)):
            self.at(hours)
            someone = self.api.sign_up(f"k{number}.mule@example.net", self.passphrase())
            for step, stranger in enumerate(self.strangers):
                self.at(hours + 0.01 * (step + 1))
                self.api.link_legacy(someone, stranger_form(stranger), expect=REFUSED)
                refused += 1
        return refused


POLICY_2019: dict[str, object] = {
    "link_min_level": "email",
    "link_name_match": False,
    "accepted_legacy_banks": [LEGACY_BANK],
    "require_device_signature": False,
    "money_out_proof": False,
}
"""What the wallets of 2019 checked (ADR 0010): an e-mail address, the typed name, any bank's
legacy form, no device key, no proof for money out (and no risk rules)."""
REFUSED = range(400, 500)


def legacy_form(victim: Holder) -> dict[str, str]:
    """The legacy form as an attacker with the leaked details fills it in."""
    return {
        "bank_code": victim.bank_code,
        "branch": victim.branch,
        "account_type": "ordinary",
        "account_number": victim.account_number,
        "pin": victim.pin,
        "holder_name": victim.name_kana,
    }


def stranger_form(account: SeededAccount) -> dict[str, str]:
    return {
        "bank_code": account.bank_code,
        "branch": account.branch_code,
        "account_type": "ordinary",
        "account_number": account.number,
        "pin": account.pin,
        "holder_name": account.name_kana,
    }


def wrong_pin(pin: str) -> str:
    return f"{(int(pin) + 1) % 10_000:04d}"


def locked_wallets(systems: Systems) -> list[str]:
    with systems.rt.db.unit_of_work() as session:
        found = session.scalars(select(Wallet.id).where(Wallet.status == WalletStatus.LOCKED.value))
        return [str(wallet_id) for wallet_id in found]


def open_cases(systems: Systems) -> list[str]:
    with systems.rt.db.unit_of_work() as session:
        return [str(case.id) for case in cases.list(session, status=CaseStatus.OPEN)]


def shipped_rules() -> str:
    return resources.files("kouza.risk").joinpath("rulesets/default.yaml").read_text("utf-8")
