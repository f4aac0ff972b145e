"""The simulated people: bank customers, the honest wallet users among them, and the plan of what
everyone does when — drawn once per run from the scenario's seed, the same for every profile.

Honest activity is generated in bulk with numpy (Poisson arrivals per user); attacks are planned
as "go after this victim at this time". Whether anything succeeds is decided later, by the real
services of each profile's world (:mod:`kouza.sim.driver`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

import numpy as np

from kouza.sim.scenario import Attacker, Scenario

FAMILY_NAMES = (
    ("佐藤", "ｻﾄｳ"), ("鈴木", "ｽｽﾞｷ"), ("高橋", "ﾀｶﾊｼ"), ("田中", "ﾀﾅｶ"), ("伊藤", "ｲﾄｳ"),
    ("渡辺", "ﾜﾀﾅﾍﾞ"), ("山本", "ﾔﾏﾓﾄ"), ("中村", "ﾅｶﾑﾗ"), ("小林", "ｺﾊﾞﾔｼ"), ("加藤", "ｶﾄｳ"),
    ("吉田", "ﾖｼﾀﾞ"), ("山田", "ﾔﾏﾀﾞ"), ("佐々木", "ｻｻｷ"), ("斎藤", "ｻｲﾄｳ"), ("井上", "ｲﾉｳｴ"),
    ("木村", "ｷﾑﾗ"), ("林", "ﾊﾔｼ"), ("清水", "ｼﾐｽﾞ"), ("山口", "ﾔﾏｸﾞﾁ"), ("森", "ﾓﾘ"),
)
GIVEN_NAMES = (
    ("太郎", "ﾀﾛｳ"), ("花子", "ﾊﾅｺ"), ("翔太", "ｼﾖｳﾀ"), ("美咲", "ﾐｻｷ"), ("健一", "ｹﾝｲﾁ"),
    ("陽子", "ﾖｳｺ"), ("大輔", "ﾀﾞｲｽｹ"), ("由美", "ﾕﾐ"), ("誠", "ﾏｺﾄ"), ("恵子", "ｹｲｺ"),
    ("拓也", "ﾀｸﾔ"), ("裕子", "ﾕｳｺ"), ("修", "ｵｻﾑ"), ("直美", "ﾅｵﾐ"), ("隆", "ﾀｶｼ"),
    ("明美", "ｱｹﾐ"), ("浩", "ﾋﾛｼ"), ("久美子", "ｸﾐｺ"), ("勇", "ｲｻﾑ"), ("千尋", "ﾁﾋﾛ"),
)
COMMON_PINS = ("1234", "0000", "1111", "1212", "7777", "2580", "5555", "1122")
COMMON_PIN_WEIGHTS = (0.05, 0.02, 0.015, 0.01, 0.008, 0.006, 0.006, 0.005)
"""Share of cash-card PINs that are one of the common ones (order of magnitude of published PIN
frequency studies; only the reverse-brute-force attacker depends on it)."""


@dataclass(frozen=True)
class Citizen:
    """A bank customer with one ordinary account."""

    index: int
    bank_code: str
    branch: str
    number: str
    kanji: str
    kana: str
    """Half-width Zengin kana, as the bank keeps it."""
    birth_date: date
    pin: str
    balance: int
    phone: str
    """National mobile number (for honest users who verify a phone)."""

    @property
    def email(self) -> str:
        return f"citizen{self.index:06d}@mail.example.jp"


def ib_password(citizen: Citizen) -> str:
    """The simulated person's internet-banking password (hashed at the bank like any other)."""
    return f"ib-{citizen.index:06d}-{citizen.number}"


class Kind(StrEnum):
    """Kinds of planned actions."""

    JOIN = "join"
    TOPUP = "topup"
    PAY = "pay"
    TRANSFER = "transfer"
    ATTACK = "attack"


@dataclass(frozen=True, order=True)
class Planned:
    """One planned action: at ``at``, ``who`` does ``kind`` with ``amount`` (and a target)."""

    at: datetime
    seq: int
    kind: Kind = field(compare=False)
    who: int = field(compare=False)
    """Honest user index, or attacker index for ATTACK."""
    amount: int = field(compare=False, default=0)
    target: int = field(compare=False, default=-1)
    """Citizen index (attack victim), merchant index (payment) or honest user (transfer)."""
    category: str = field(compare=False, default="")


@dataclass
class Honest:
    """An honest wallet user."""

    index: int
    citizen: Citizen
    links_bank: bool
    joins_at: datetime
    ip: str
    second_device: bool


@dataclass
class Plan:
    """Everything that is the same for every profile."""

    scenario: Scenario
    citizens: list[Citizen]
    honest: list[Honest]
    actions: list[Planned]
    victims_of: dict[int, list[int]]
    """Attacker index → citizen indexes it holds details of (or sweeps)."""
    merchants: list[tuple[str, str]]
    """(name, category) of each merchant."""

    def counts(self) -> dict[str, int]:
        kinds: dict[str, int] = {}
        for action in self.actions:
            kinds[action.kind.value] = kinds.get(action.kind.value, 0) + 1
        return kinds


def _pins(rng: np.random.Generator, count: int) -> list[str]:
    common = rng.random(count)
    thresholds = np.cumsum(COMMON_PIN_WEIGHTS)
    randoms = rng.integers(0, 10_000, size=count)
    pins = []
    for draw, fallback in zip(common, randoms, strict=True):
        slot = int(np.searchsorted(thresholds, draw, side="right"))
        pins.append(COMMON_PINS[slot] if slot < len(COMMON_PINS) else f"{int(fallback):04d}")
    return pins


def _citizens(scenario: Scenario, rng: np.random.Generator) -> list[Citizen]:
    citizens: list[Citizen] = []
    for bank in scenario.banks:
        n = bank.customers
        families = rng.integers(0, len(FAMILY_NAMES), size=n)
        givens = rng.integers(0, len(GIVEN_NAMES), size=n)
        births = rng.integers(0, 365 * 62, size=n)
        # account balances: log-normal around ¥500,000 (regional banks' ordinary accounts)
        balances = np.minimum(rng.lognormal(np.log(500_000), 1.0, size=n), 20_000_000)
        numbers = rng.choice(np.arange(1_000_000, 10_000_000), size=n, replace=False)
        pins = _pins(rng, n)
        branch = "018" if bank.code == "9900" else "100"
        for i in range(n):
            family, given = FAMILY_NAMES[families[i]], GIVEN_NAMES[givens[i]]
            index = len(citizens)
            citizens.append(Citizen(
                index=index, bank_code=bank.code, branch=branch, number=f"{numbers[i]:07d}",
                kanji=f"{family[0]} {given[0]}", kana=f"{family[1]} {given[1]}",
                birth_date=date(1940, 1, 1) + timedelta(days=int(births[i])), pin=pins[i],
                balance=int(balances[i]) // 1000 * 1000, phone=f"0801{index:07d}",
            ))
    return citizens


def _poisson_times(rng: np.random.Generator, start: datetime, span_days: float,
                   per_day: float) -> list[datetime]:
    """Arrival times of a Poisson process of rate ``per_day`` over ``span_days``, in daytime."""
    if span_days <= 0 or per_day <= 0:
        return []
    count = int(rng.poisson(per_day * span_days))
    days = np.sort(rng.random(count) * span_days)
    # people act in the daytime: squeeze the time of day into 08:00–23:00 JST
    return [start + timedelta(days=int(d)) + timedelta(hours=8 + 15 * (d - int(d)))
            for d in days]


def make_plan(scenario: Scenario) -> Plan:
    """Draw the population and everyone's actions from the scenario's seed."""
    rng = np.random.default_rng(scenario.seed)
    citizens = _citizens(scenario, rng)
    pop = scenario.population
    start = scenario.start
    merchants = [(f"{category}-{i:03d}", category)
                 for category, count in sorted(scenario.merchants.items()) for i in range(count)]
    by_category: dict[str, list[int]] = {}
    for index, (_, category) in enumerate(merchants):
        by_category.setdefault(category, []).append(index)

    # attack targets first: most victims never used the wallet (INCIDENT.md)
    taken: set[int] = set()
    victims_of: dict[int, list[int]] = {}
    by_bank: dict[str, list[int]] = {}
    for citizen in citizens:
        by_bank.setdefault(citizen.bank_code, []).append(citizen.index)
    for a, attacker in enumerate(scenario.attackers):
        pool = [i for code in attacker.banks for i in by_bank[code] if i not in taken]
        wanted = min(_targets(attacker), len(pool))
        chosen = sorted(int(i) for i in rng.choice(pool, size=wanted, replace=False))
        victims_of[a] = chosen
        taken.update(chosen)

    honest: list[Honest] = []
    actions: list[Planned] = []
    seq = 0
    candidates = [c for c in citizens if c.index not in taken]
    users = rng.random(len(candidates)) < pop.wallet_share
    links = rng.random(len(candidates)) < pop.linked_share
    seconds = rng.random(len(candidates)) < pop.second_device_share
    joins = rng.random(len(candidates)) * scenario.days * 0.6
    categories = sorted(pop.categories)
    weights = np.array([pop.categories[c] for c in categories], dtype=float)
    weights = weights / weights.sum()
    for k, citizen in enumerate(candidates):
        if not users[k]:
            continue
        joined = start + timedelta(days=float(joins[k]))
        person = Honest(index=len(honest), citizen=citizen, links_bank=bool(links[k]),
                        joins_at=joined, ip=f"10.{(k >> 16) & 255}.{(k >> 8) & 255}.{k & 255}",
                        second_device=bool(seconds[k]))
        honest.append(person)
        actions.append(Planned(joined, seq, Kind.JOIN, person.index))
        seq += 1
        active_from = joined + timedelta(hours=1)
        span = (start + timedelta(days=scenario.days) - active_from).total_seconds() / 86400
        for at in _poisson_times(rng, active_from, span, pop.topups_per_month / 30):
            amount = int(rng.choice(pop.topup_amounts))
            actions.append(Planned(at, seq, Kind.TOPUP, person.index, amount))
            seq += 1
        for at in _poisson_times(rng, active_from, span, pop.payments_per_week / 7):
            category = categories[int(rng.choice(len(categories), p=weights))]
            merchant = int(rng.choice(by_category[category]))
            amount = int(min(rng.lognormal(np.log(1_200), 0.8), 30_000)) // 10 * 10 + 100
            actions.append(Planned(at, seq, Kind.PAY, person.index, amount, merchant, category))
            seq += 1
        for at in _poisson_times(rng, active_from, span, pop.transfers_per_month / 30):
            actions.append(Planned(at, seq, Kind.TRANSFER, person.index,
                                   int(rng.choice([1_000, 2_000, 3_000, 5_000])), -1))
            seq += 1
    # transfers go to someone who has already joined at that time (resolved when run)
    for a, attacker in enumerate(scenario.attackers):
        for at, victim in _attack_times(rng, scenario, attacker, victims_of[a]):
            actions.append(Planned(at, seq, Kind.ATTACK, a, target=victim))
            seq += 1
    actions.sort()
    return Plan(scenario, citizens, honest, actions, victims_of, merchants)


def _targets(attacker: Attacker) -> int:
    if attacker.strategy == "reverse_brute_force":
        return attacker.accounts
    if attacker.strategy == "phishing":
        return attacker.targets
    return attacker.victims


def _attack_times(rng: np.random.Generator, scenario: Scenario, attacker: Attacker,
                  victims: list[int]) -> list[tuple[datetime, int]]:
    """When the attacker goes after each target (night-time, like 2020's logs)."""
    first = attacker.start_day
    last = attacker.end_day if attacker.end_day is not None else scenario.days
    span = max(last - first, 1)
    order = [int(v) for v in rng.permutation(victims)]
    if attacker.strategy == "reverse_brute_force":
        # a sweep: one attempt every 20 seconds from the start day's night
        begin = scenario.start + timedelta(days=first, hours=1)
        return [(begin + timedelta(seconds=20 * i), v) for i, v in enumerate(order)]
    per_day = {"leaked_credentials": getattr(attacker, "per_day", 1.0),
               "low_and_slow": getattr(attacker, "per_week", 2.0) / 7}.get(
        attacker.strategy, len(order) / span)
    gaps = rng.exponential(1 / per_day, size=len(order))
    days = np.cumsum(gaps)
    times = []
    for day, victim in zip(days, order, strict=True):
        if day >= span:
            break
        when = scenario.start + timedelta(days=first + int(day),
                                          hours=float(rng.uniform(0, 5)))
        times.append((when, victim))
    return times
