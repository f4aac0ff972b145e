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


class PopulationSpec(_Strict):
    """Honest users: how many use the wallet and how."""

    wallet_share: float = Field(gt=0, le=1)
    """Share of each bank's customers who use the wallet."""
    linked_share: float = Field(ge=0, le=1, default=0.6)
    """Share of wallet users who link their bank account (the rest top up otherwise)."""
    topups_per_month: float = Field(ge=0, le=60, default=2)
    topup_amounts: list[Annotated[int, Field(gt=0, le=1_000_000)]] = Field(
        default_factory=lambda: [3_000, 5_000, 10_000, 20_000, 30_000], min_length=1)
    payments_per_week: float = Field(ge=0, le=100, default=3)
    categories: dict[str, Annotated[float, Field(ge=0)]] = Field(min_length=1)
    """Merchant category → weight of a payment going there."""
    transfers_per_month: float = Field(ge=0, le=60, default=0.3)
    second_device_share: float = Field(ge=0, le=1, default=0.1)
    """Share of users who sometimes use a second device (honest device changes)."""


class AttackerBase(_Strict):
    """What every attacker strategy has."""

    name: str = Field(min_length=1, max_length=60)
    start_day: int = Field(ge=0, default=0)
    end_day: int | None = Field(ge=1, default=None)
    banks: list[BankCode] = Field(min_length=1)
    """Banks whose customers this attacker targets."""
    charge_plan: list[Annotated[int, Field(gt=0, le=1_000_000)]] = Field(
        default_factory=lambda: [100_000, 90_000, 90_000, 20_000], min_length=1)
    """Top-ups tried one after another after a successful link (2020: four within a minute)."""
    straddle_month_end: bool = True
    """Charge again just after a calendar month turns (2020: up to ¥600,000 per victim)."""
    resell_categories: list[str] = Field(
        default_factory=lambda: ["tobacco", "electronics"], min_length=1)


class LeakedCredentials(AttackerBase):
    """Holds name + account number + PIN (+ birth date) for a list of victims."""

    strategy: Literal["leaked_credentials"]
    victims: int = Field(gt=0, le=100_000)
    per_day: float = Field(gt=0, le=10_000, default=1)


class ReverseBruteForce(AttackerBase):
    """One PIN tried across many account numbers, so no account reaches its lockout."""

    strategy: Literal["reverse_brute_force"]
    pin: str = Field(pattern=r"^\d{4}$", default="1234")
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
    LeakedCredentials | ReverseBruteForce | Phishing | Mule | LowAndSlow,
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
        missing = sorted(set(self.population.categories) - set(self.merchants))
        if missing:
            raise ValueError(f"payments go to categories without merchants: {missing}")
        from kouza.wallet.models import MerchantCategory

        known = {category.value for category in MerchantCategory}
        strange = sorted((set(self.merchants) | set(self.population.categories)) - known)
        if strange:
            raise ValueError(f"unknown merchant categories {strange}; known: {sorted(known)}")
        from kouza.sim.profiles import PROFILES

        unknown_profiles = sorted(set(self.defences) - set(PROFILES))
        if unknown_profiles:
            raise ValueError(f"unknown defence profiles {unknown_profiles}; "
                             f"known: {sorted(PROFILES)}")
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
