"""Scenario files: who lives in the simulated world, who attacks it, for how long.

A scenario is YAML (or TOML) validated by the pydantic models below; any mistake is refused with
the path of the field and the reason (:class:`ScenarioError`), e.g.
``attackers.0.victims: Input should be greater than 0``. Only the attacker and population
parameters are calibrated against the public record (docs/simulator.md); the defences under test
are named profiles (:mod:`kouza.sim.profiles`), never scenario knobs.
"""

from __future__ import annotations

import tomllib
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kouza.errors import BadRequest
from kouza.kit import zengin
from kouza.sim.profiles import PROFILES
from kouza.wallet.models import MerchantCategory

BankCode = Annotated[str, Field(pattern=r"^\d{4}$")]


class ScenarioError(BadRequest):
    """A scenario file that cannot be used; names the field and the reason."""

    code = "invalid_scenario"


class LinkingProfile(StrEnum):
    """How a bank authenticates a linking request (the bank system's own profiles)."""

    LEGACY_PIN = "legacy_pin"
    """Account number + kana name + 4-digit PIN (Web口振受付, 2020)."""
    LEGACY_PIN_DOB = "legacy_pin_dob"
    """The same plus birth date."""
    OAUTH = "oauth"
    """Internet-banking login + one-time password (FAPI-style OAuth)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BankSpec(_Strict):
    """One partner bank."""

    code: BankCode
    name: str = Field(min_length=1, max_length=60)
    profile: LinkingProfile
    monitoring: bool = False
    customers: int = Field(gt=0, le=1_000_000)
    """Bank customers simulated (the wallet users among them come from ``population``)."""

    @model_validator(mode="after")
    def _real_bank(self) -> BankSpec:
        listed = zengin.find_bank(self.code)
        if listed is None:
            raise ValueError(f"bank {self.code} is not in the Zengin list of bank codes")
        if not zengin.same_name(listed.name, self.name):
            raise ValueError(
                f"bank {self.code} is {listed.name} in the Zengin list, not {self.name}"
            )
        return self


class RateChange(_Strict):
    """Honest activity multiplied by ``factor`` from ``start_day`` for ``days``."""

    start_day: int = Field(ge=0)
    days: int = Field(gt=0)
    factor: float = Field(ge=0, le=20)


class PopulationSpec(_Strict):
    """Honest users: how many use the wallet and how."""

    wallet_share: float = Field(gt=0, le=1)
    """Share of each bank's customers who use the wallet."""
    linked_share: float = Field(ge=0, le=1, default=0.6)
    """Share of wallet users who link their bank account (the rest top up otherwise)."""
    topups_per_month: float = Field(ge=0, le=60, default=2)
    topup_amounts: list[Annotated[int, Field(gt=0, le=1_000_000)]] = Field(
        default_factory=lambda: [3_000, 5_000, 10_000, 20_000, 30_000], min_length=1
    )
    payments_per_week: float = Field(ge=0, le=100, default=3)
    categories: dict[str, Annotated[float, Field(ge=0)]] = Field(min_length=1)
    """Merchant category → weight of a payment going there."""
    transfers_per_month: float = Field(ge=0, le=60, default=0.3)
    second_device_share: float = Field(ge=0, le=1, default=0.1)
    """Share of users who add a new device during the period (a new phone, a tablet)."""
    existing_share: float = Field(ge=0, le=1, default=0.0)
    """Share of wallet users who are already customers when the period starts (they join on
    day 0, with their bank linked and a balance, before any attacker acts on them)."""
    password_reuse_share: float = Field(ge=0, le=1, default=0.1)
    """Share of users whose wallet password is also in a leaked list (credential stuffing)."""
    phishing_susceptibility: float = Field(gt=0, le=1, default=0.2)
    """Mean of each user's chance of falling for a lure (drawn per person, Beta-distributed)."""
    phone_churn_per_year: float = Field(ge=0, le=1, default=0.05)
    """Share of users who change phone number within a year (a contact change)."""
    travel_share: float = Field(ge=0, le=1, default=0.05)
    """Share of a user's actions made away from home (another network)."""
    pin_birth_share: float = Field(ge=0, le=1, default=0.0)
    """Share of cash-card PINs that are the holder's birth month and day (MMDD) or year."""
    rate_changes: list[RateChange] = Field(default_factory=list)
    """Periods when honest activity runs at another rate (a holiday week)."""
    honest_users: int | None = Field(default=None, ge=0, le=10_000_000)
    """Honest wallet users the run carries in all (a sample of the operator's customers). The
    attacked world holds ``wallet_share`` of its banks' customers; the rest are drawn into
    honest worlds of ``shard_size`` users each (ADR 0030). None, or no more than the attacked
    world's sample (0): the attacked world alone."""
    shard_size: int = Field(default=2_500, ge=100, le=1_000_000)
    """Honest users per additional world: fixed by the scenario, never by the number of
    processes, so the figures do not depend on how the run is spread."""


VictimPool = Literal["non_users", "customers", "any"]


class CashOut(_Strict):
    """How stolen balance leaves the wallet: resellable goods and person-to-person chains."""

    p2p_share: float = Field(ge=0, le=1, default=0.0)
    """Share of the balance sent on through other wallets instead of spent at once."""
    p2p_hops: int = Field(ge=1, le=10, default=1)
    """Mule wallets the money passes through before it is spent."""
    amounts: list[Annotated[int, Field(gt=0, le=1_000_000)]] = Field(
        default_factory=lambda: [30_000, 50_000, 100_000], min_length=1
    )
    """Purchase sizes tried (the rest of the balance when it is less)."""
    delay_hours: tuple[float, float] = (0.3, 3.0)
    """Hours from the money arriving to the cash-out starting."""


class AttackerBase(_Strict):
    """What every attacker strategy has."""

    name: str = Field(min_length=1, max_length=60)
    start_day: int = Field(ge=0, default=0)
    end_day: int | None = Field(ge=1, default=None)
    banks: list[BankCode] = Field(min_length=1)
    """Banks whose customers this attacker targets."""
    charge_plan: list[Annotated[int, Field(gt=0, le=1_000_000)]] = Field(
        default_factory=lambda: [100_000, 90_000, 90_000, 20_000], min_length=1
    )
    """Top-ups tried one after another after a successful link (2020: four within a minute)."""
    straddle_month_end: bool = True
    """Charge again just after a calendar month turns (2020: up to ¥600,000 per victim)."""
    resell_categories: list[str] = Field(
        default_factory=lambda: ["tobacco", "electronics"], min_length=1
    )
    # --- what a capable attacker has (all optional; the defaults replay 2020) ---
    hours: tuple[float, float] = (0.0, 5.0)
    """Local (JST) hours of the day the attacker works in, [from, to)."""
    max_per_day: int | None = Field(ge=1, default=None)
    """At most this many new victims a day (pacing under velocity rules)."""
    ips: int = Field(gt=0, le=100_000, default=1)
    """Residential (proxy) IP addresses rotated over."""
    subnets: int = Field(gt=0, le=100_000, default=1)
    """/24 networks those IPs spread over."""
    devices: int = Field(gt=0, le=100_000, default=1)
    """Devices (phones, emulators) rotated over; each wallet on one device. The wallet sees a
    device only through the key registered on it (ADR 0021), so this spreads the attacker's
    wallets over its IPs; it no longer names a typed device id."""
    email_domains: int = Field(gt=0, le=1_000, default=1)
    answers_step_ups: bool = False
    """Holds the SIM of every wallet's phone (prepaid SIMs, rented numbers) and answers SMS
    step-ups on it."""
    budget: int = Field(ge=0, le=100, default=0)
    """Extra tries per victim after a refusal: a new wallet, device and IP, another method."""
    charge_every_hours: float = Field(ge=0, le=24 * 60, default=0)
    """Hours between charges of the plan (0: one after another, as in 2020)."""
    cash_out: CashOut = Field(default_factory=lambda: CashOut())
    victims_from: VictimPool = "non_users"
    """Whose accounts: people who never used the wallet (2020), its customers, or anyone."""

    @model_validator(mode="after")
    def _capabilities(self) -> AttackerBase:
        low, high = self.hours
        if not 0 <= low < high <= 24:
            raise ValueError("hours must be [from, to) within 0–24")
        if self.devices > self.ips and self.ips > 1:
            raise ValueError("devices cannot outnumber IPs (a device is on one network)")
        if self.subnets > self.ips:
            raise ValueError("subnets cannot outnumber IPs")
        return self


class LeakedCredentials(AttackerBase):
    """Holds name + account number + PIN (+ birth date) for a list of victims."""

    strategy: Literal["leaked_credentials"]
    victims: int = Field(gt=0, le=100_000)
    per_day: float = Field(gt=0, le=10_000, default=1)


class ReverseBruteForce(AttackerBase):
    """One PIN tried across many account numbers, so no account reaches its lockout."""

    strategy: Literal["reverse_brute_force"]
    pin: str = Field(pattern=r"^\d{4}$", default="1234")
    pins: list[Annotated[str, Field(pattern=r"^\d{4}$")]] = Field(
        default_factory=list, max_length=2
    )
    """More PINs tried on each account after ``pin`` (at most two: the third try locks)."""
    birth_pins: bool = False
    """Also try the holder's birth month-day and year (the list has birth dates)."""
    nonexistent_share: float = Field(ge=0, lt=1, default=0.0)
    """Share of the numbers swept that are no account at all (a generated range)."""
    accounts: int = Field(gt=0, le=1_000_000)
    sources: int = Field(gt=0, le=100_000, default=1)
    """Distinct IPs/devices the attempts are spread over."""


class Phishing(AttackerBase):
    """A campaign: a share of targets hand over their banking details."""

    strategy: Literal["phishing"]
    targets: int = Field(gt=0, le=1_000_000)
    hand_over_share: float = Field(gt=0, le=1)
    gets_internet_banking: bool = False
    """Whether victims also type their internet-banking password and a live OTP."""


class PhishingRelay(AttackerBase):
    """A fake bank page relays the victim's internet-banking password and live one-time code
    (and, for wallet customers, the wallet password and SMS code) while the attacker links."""

    strategy: Literal["phishing_relay"]
    targets: int = Field(gt=0, le=1_000_000)
    hand_over_share: float = Field(gt=0, le=1)
    into: Literal["fresh", "bought_verified", "own_wallet"] = "fresh"
    """The wallet the account is linked to: a new one, a verified wallet bought from a mule,
    or the victim's own wallet taken over (victims are then the wallet's customers)."""


class AccountTakeover(AttackerBase):
    """Credential stuffing of wallet logins, then charge-to-cap and cash-out."""

    strategy: Literal["account_takeover"]
    targets: int = Field(gt=0, le=1_000_000)
    """Customers whose leaked e-mail + password pairs the attacker tries."""
    stuffing_attempts: int = Field(ge=0, le=1_000, default=20)
    """Failed logins (other leaked pairs) per takeover, spread over the IPs."""
    sim_swap: bool = False
    """The attacker also has the victim's phone number moved to its SIM (receives the SMS)."""
    victims_from: VictimPool = "customers"


class VerifiedMuleMarket(AttackerBase):
    """Verified wallets of real people (their own cards) bought in bulk to link victims."""

    strategy: Literal["verified_mule_market"]
    victims: int = Field(gt=0, le=100_000)
    links_per_wallet: int = Field(gt=0, le=10, default=1)
    with_internet_banking: bool = False
    """The victims' internet-banking password and live code are relayed too (OAuth banks)."""
    declares_victim_kana: bool = False
    """At eKYC the mule types the victim's kana reading instead of its own. It stays the
    mule's self-declared reading: its card's kanji name and birth date are its own, and they
    are what a name-matching wallet sends to the bank (ADR 0023)."""


class AuthorisedPush(AttackerBase):
    """The victim is talked into charging and sending money to a mule themselves."""

    strategy: Literal["authorised_push"]
    targets: int = Field(gt=0, le=1_000_000)
    hand_over_share: float = Field(gt=0, le=1)
    """Share of the people called who are persuaded."""
    transfers: list[Annotated[int, Field(gt=0, le=1_000_000)]] = Field(
        default_factory=lambda: [100_000, 100_000], min_length=1
    )
    """What the victim is told to send, one transfer after another."""
    victims_from: VictimPool = "customers"


class Mule(AttackerBase):
    """A real person with a verified identity who links accounts that are not theirs."""

    strategy: Literal["mule"]
    victims: int = Field(gt=0, le=100_000)


class LowAndSlow(AttackerBase):
    """Leaked credentials used over weeks, from many IPs and devices, in small amounts."""

    strategy: Literal["low_and_slow"]
    victims: int = Field(gt=0, le=100_000)
    sources: int = Field(gt=0, le=100_000, default=50)
    per_week: float = Field(gt=0, le=10_000, default=2)


Attacker = Annotated[
    LeakedCredentials
    | ReverseBruteForce
    | Phishing
    | Mule
    | LowAndSlow
    | PhishingRelay
    | AccountTakeover
    | VerifiedMuleMarket
    | AuthorisedPush,
    Field(discriminator="strategy"),
]


class Scenario(_Strict):
    """A whole simulated world."""

    name: str = Field(min_length=1, max_length=60)
    description: str = ""
    seed: int
    start: datetime
    days: int = Field(gt=0, le=1_000)
    defences: list[str] = Field(min_length=1)
    """Defence profiles to run by default (see kouza.sim.profiles)."""
    banks: list[BankSpec] = Field(min_length=1)
    population: PopulationSpec
    merchants: dict[str, Annotated[int, Field(gt=0, le=100_000)]] = Field(min_length=1)
    attackers: list[Attacker] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if self.start.tzinfo is None:
            raise ValueError("start needs a timezone, e.g. 2019-10-01T00:00:00+09:00")
        codes = [bank.code for bank in self.banks]
        if len(set(codes)) != len(codes):
            raise ValueError("bank codes must be unique")
        for attacker in self.attackers:
            unknown = sorted(set(attacker.banks) - set(codes))
            if unknown:
                raise ValueError(f"attacker {attacker.name!r} targets unknown banks {unknown}")
            if attacker.end_day is not None and attacker.end_day <= attacker.start_day:
                raise ValueError(f"attacker {attacker.name!r} ends before it starts")
        for attacker in self.attackers:
            shopless = sorted(set(attacker.resell_categories) - set(self.merchants))
            if shopless:
                raise ValueError(
                    f"attacker {attacker.name!r} resells at categories without "
                    f"merchants: {shopless}"
                )
        missing = sorted(set(self.population.categories) - set(self.merchants))
        if missing:
            raise ValueError(f"payments go to categories without merchants: {missing}")
        known = {category.value for category in MerchantCategory}
        strange = sorted((set(self.merchants) | set(self.population.categories)) - known)
        if strange:
            raise ValueError(f"unknown merchant categories {strange}; known: {sorted(known)}")
        unknown_profiles = sorted(set(self.defences) - set(PROFILES))
        if unknown_profiles:
            raise ValueError(
                f"unknown defence profiles {unknown_profiles}; known: {sorted(PROFILES)}"
            )
        return self


def parse_scenario(data: Any, *, source: str = "<scenario>") -> Scenario:
    """Validate already-parsed scenario data."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(top)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ScenarioError(f"{source}: {problems}") from None


def load_scenario(name_or_path: str) -> Scenario:
    """A shipped scenario by name (``docomo-2020``) or a YAML/TOML file by path."""
    path = Path(name_or_path)
    if not path.exists():
        shipped = Path(__file__).parent / "scenarios" / f"{name_or_path}.yaml"
        if not shipped.exists():
            raise ScenarioError(f"no scenario file or shipped scenario named {name_or_path!r}")
        path = shipped
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
    return parse_scenario(data, source=str(path))
