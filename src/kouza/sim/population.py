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

from kouza.kit import zengin
from kouza.sim.scenario import Attacker, PopulationSpec, Scenario

FAMILY_NAMES = (
    ("佐藤", "ｻﾄｳ"),
    ("鈴木", "ｽｽﾞｷ"),
    ("高橋", "ﾀｶﾊｼ"),
    ("田中", "ﾀﾅｶ"),
    ("伊藤", "ｲﾄｳ"),
    ("渡辺", "ﾜﾀﾅﾍﾞ"),
    ("山本", "ﾔﾏﾓﾄ"),
    ("中村", "ﾅｶﾑﾗ"),
    ("小林", "ｺﾊﾞﾔｼ"),
    ("加藤", "ｶﾄｳ"),
    ("吉田", "ﾖｼﾀﾞ"),
    ("山田", "ﾔﾏﾀﾞ"),
    ("佐々木", "ｻｻｷ"),
    ("斎藤", "ｻｲﾄｳ"),
    ("井上", "ｲﾉｳｴ"),
    ("木村", "ｷﾑﾗ"),
    ("林", "ﾊﾔｼ"),
    ("清水", "ｼﾐｽﾞ"),
    ("山口", "ﾔﾏｸﾞﾁ"),
    ("森", "ﾓﾘ"),
)
GIVEN_NAMES = (
    ("太郎", "ﾀﾛｳ"),
    ("花子", "ﾊﾅｺ"),
    ("翔太", "ｼﾖｳﾀ"),
    ("美咲", "ﾐｻｷ"),
    ("健一", "ｹﾝｲﾁ"),
    ("陽子", "ﾖｳｺ"),
    ("大輔", "ﾀﾞｲｽｹ"),
    ("由美", "ﾕﾐ"),
    ("誠", "ﾏｺﾄ"),
    ("恵子", "ｹｲｺ"),
    ("拓也", "ﾀｸﾔ"),
    ("裕子", "ﾕｳｺ"),
    ("修", "ｵｻﾑ"),
    ("直美", "ﾅｵﾐ"),
    ("隆", "ﾀｶｼ"),
    ("明美", "ｱｹﾐ"),
    ("浩", "ﾋﾛｼ"),
    ("久美子", "ｸﾐｺ"),
    ("勇", "ｲｻﾑ"),
    ("千尋", "ﾁﾋﾛ"),
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

    @property
    def address(self) -> str:
        """Postal address on file at the bank (letters are addressed to it)."""
        return f"東京都千代田区千代田{self.index}"


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
    PHONE_CHANGE = "phone_change"
    NEW_DEVICE = "new_device"


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
    away: bool = field(compare=False, default=False)
    """The user acts away from home (another network)."""


@dataclass
class Honest:
    """An honest wallet user."""

    index: int
    citizen: Citizen
    links_bank: bool
    joins_at: datetime
    ip: str
    second_device: bool
    existing: bool = False
    """Already a customer (with a balance) when the period starts."""
    opening_balance: int = 0
    reuses_password: bool = False
    """The wallet password is in a leaked list from another site."""
    susceptibility: float = 0.0
    """Chance of falling for a lure (phishing, a call posing as the bank)."""


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
    internet_banking: set[int] = field(default_factory=set)
    """Citizens with internet banking (password + OTP token) at their bank: honest linkers and
    the victims whose banking login an attacker relays."""
    honest_of_citizen: dict[int, int] = field(default_factory=dict)
    """Citizen index → honest user index, for citizens who use the wallet."""

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


def _citizens(scenario: Scenario, rng: np.random.Generator, shard: int = 0) -> list[Citizen]:
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
        if scenario.population.pin_birth_share:
            side = np.random.default_rng([scenario.seed, 2, len(citizens), *_stream(shard)])
            birth_pins = side.random(n) < scenario.population.pin_birth_share
            for j in np.flatnonzero(birth_pins).tolist():
                born = date(1940, 1, 1) + timedelta(days=int(births[j]))
                pins[j] = born.strftime("%m%d") if side.random() < 0.6 else f"{born.year}"
        branch = zengin.home_branch(bank.code)
        for i in range(n):
            family, given = FAMILY_NAMES[families[i]], GIVEN_NAMES[givens[i]]
            index = len(citizens)
            citizens.append(
                Citizen(
                    index=index,
                    bank_code=bank.code,
                    branch=branch,
                    number=f"{numbers[i]:07d}",
                    kanji=f"{family[0]} {given[0]}",
                    kana=f"{family[1]} {given[1]}",
                    birth_date=date(1940, 1, 1) + timedelta(days=int(births[i])),
                    pin=pins[i],
                    balance=int(balances[i]) // 1000 * 1000,
                    phone=f"0801{index:07d}",
                )
            )
    return citizens


def _poisson_times(
    rng: np.random.Generator, start: datetime, span_days: float, per_day: float
) -> list[datetime]:
    """Arrival times of a Poisson process of rate ``per_day`` over ``span_days``, in daytime."""
    if span_days <= 0 or per_day <= 0:
        return []
    count = int(rng.poisson(per_day * span_days))
    days = np.sort(rng.random(count) * span_days)
    # people act in the daytime: squeeze the time of day into 08:00–23:00 JST
    return [start + timedelta(days=int(d)) + timedelta(hours=8 + 15 * (d - int(d))) for d in days]


CUSTOMER_POOLS = ("customers", "any")
EVEN_CAMPAIGNS = ("phishing_relay", "account_takeover", "verified_mule_market", "authorised_push")
RELAYS_BANKING = ("phishing_relay", "verified_mule_market")


def _stream(shard: int) -> list[int]:
    """What sets an honest world's random streams apart from the attacked world's (none for
    shard 0, so the attacked world draws what it always drew)."""
    return [1000, shard] if shard else []


def make_plan(scenario: Scenario, shard: int = 0) -> Plan:
    """Draw the population and everyone's actions from the scenario's seed.

    Two random streams: the main one draws what the 2020 replay has always drawn (so its
    calibration stays put), a side stream (seeded from the same seed) draws everything added
    since — people's traits, device and phone changes, travel, rate changes, and the victims
    of attacks on existing customers. ``shard`` > 0 draws an honest world
    (:func:`honest_world`'s scenario) from streams of its own.
    """
    rng = np.random.default_rng([scenario.seed, *_stream(shard)] if shard else scenario.seed)
    side = np.random.default_rng([scenario.seed, 14, *_stream(shard)])
    citizens = _citizens(scenario, rng, shard)
    pop = scenario.population
    start = scenario.start
    merchants = [
        (f"{category}-{i:03d}", category)
        for category, count in sorted(scenario.merchants.items())
        for i in range(count)
    ]
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
        if attacker.victims_from in CUSTOMER_POOLS:
            continue
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
    end = start + timedelta(days=scenario.days)
    for k, citizen in enumerate(candidates):
        if not users[k]:
            continue
        person = _honest(
            side,
            pop,
            len(honest),
            citizen,
            k,
            bool(links[k]),
            bool(seconds[k]),
            start + timedelta(days=float(joins[k])),
            start,
        )
        honest.append(person)
        actions.append(Planned(person.joins_at, seq, Kind.JOIN, person.index))
        seq += 1
        active_from = person.joins_at + timedelta(hours=1)
        span = (end - active_from).total_seconds() / 86400
        planned: list[tuple[datetime, Kind, int, int, str]] = []
        for at in _poisson_times(rng, active_from, span, pop.topups_per_month / 30):
            planned.append((at, Kind.TOPUP, int(rng.choice(pop.topup_amounts)), -1, ""))
        for at in _poisson_times(rng, active_from, span, pop.payments_per_week / 7):
            category = categories[int(rng.choice(len(categories), p=weights))]
            merchant = int(rng.choice(by_category[category]))
            amount = int(min(rng.lognormal(np.log(1_200), 0.8), 30_000)) // 10 * 10 + 100
            planned.append((at, Kind.PAY, amount, merchant, category))
        for at in _poisson_times(rng, active_from, span, pop.transfers_per_month / 30):
            planned.append(
                (at, Kind.TRANSFER, int(rng.choice([1_000, 2_000, 3_000, 5_000])), -1, "")
            )
        planned = _reshape(side, scenario, planned)
        planned.extend(_life_events(side, pop, person, active_from, span))
        for at, kind, amount, target, category in planned:
            away = bool(side.random() < pop.travel_share)
            actions.append(Planned(at, seq, kind, person.index, amount, target, category, away))
            seq += 1
    honest_of_citizen = {person.citizen.index: person.index for person in honest}
    # attacks on the wallet's customers: victims drawn from honest users (side stream)
    for a, attacker in enumerate(scenario.attackers):
        if attacker.victims_from in CUSTOMER_POOLS:
            victims_of[a] = _customer_victims(side, attacker, honest, citizens, taken)
            taken.update(victims_of[a])
    # transfers go to someone who has already joined at that time (resolved when run)
    for a, attacker in enumerate(scenario.attackers):
        stream = side if attacker.victims_from in CUSTOMER_POOLS else rng
        for at, victim in _attack_times(stream, scenario, attacker, victims_of[a]):
            customer = honest_of_citizen.get(victim)
            if customer is not None and honest[customer].joins_at + timedelta(days=1) > at:
                # a customer is attacked once they are one (a day after joining at the earliest)
                at = honest[customer].joins_at + timedelta(
                    days=1, hours=(at - start).seconds / 3600
                )
                if at >= end:
                    continue
            actions.append(Planned(at, seq, Kind.ATTACK, a, target=victim))
            seq += 1
    actions.sort()
    banking = {person.citizen.index for person in honest if person.links_bank}
    for a, attacker in enumerate(scenario.attackers):
        if (
            getattr(attacker, "gets_internet_banking", False)
            or getattr(attacker, "with_internet_banking", False)
            or attacker.strategy == "phishing_relay"
        ):
            banking.update(victims_of[a])  # phished: their banking login is known
    return Plan(
        scenario, citizens, honest, actions, victims_of, merchants, banking, honest_of_citizen
    )


def _honest(
    side: np.random.Generator,
    pop: PopulationSpec,
    index: int,
    citizen: Citizen,
    k: int,
    links: bool,
    second_device: bool,
    joins_at: datetime,
    start: datetime,
) -> Honest:
    """One honest user with the traits each attack surface depends on."""
    existing = bool(side.random() < pop.existing_share)
    mean = pop.phishing_susceptibility
    # Beta with the given mean and a wide spread: most people are hard to fool, a few easy
    susceptibility = float(side.beta(mean * 2, (1 - mean) * 2)) if mean < 1 else 1.0
    reuses = bool(side.random() < pop.password_reuse_share)
    opening = int(side.lognormal(np.log(20_000), 0.7)) // 1000 * 1000 if existing else 0
    if existing:
        # their history before the period is not replayed: they join in its first hours
        joins_at = start + timedelta(hours=6 * float(side.random()))
    # home networks are spread over the address space (neighbours in the list are not
    # neighbours on the network): a multiplicative hash of the index
    spread = (k * 2654435761) & 0xFFFFFF
    return Honest(
        index=index,
        citizen=citizen,
        links_bank=links,
        joins_at=joins_at,
        ip=f"10.{spread >> 16}.{(spread >> 8) & 255}.{spread & 255}",
        second_device=second_device,
        existing=existing,
        opening_balance=min(opening, 200_000),
        reuses_password=reuses,
        susceptibility=susceptibility,
    )


def _reshape(
    side: np.random.Generator,
    scenario: Scenario,
    planned: list[tuple[datetime, Kind, int, int, str]],
) -> list[tuple[datetime, Kind, int, int, str]]:
    """Apply the scenario's rate changes: thin the actions in a slower period, add copies
    (shifted within the same day) in a busier one."""
    changes = scenario.population.rate_changes
    if not changes:
        return planned
    out: list[tuple[datetime, Kind, int, int, str]] = []
    for item in planned:
        day = (item[0] - scenario.start).days
        factor = 1.0
        for change in changes:
            if change.start_day <= day < change.start_day + change.days:
                factor *= change.factor
        whole, extra = int(factor), factor - int(factor)
        copies = whole + int(side.random() < extra)
        for copy in range(copies):
            shift = timedelta(hours=float(side.uniform(-3, 3))) if copy else timedelta()
            out.append((item[0] + shift, *item[1:]))
    return out


def _life_events(
    side: np.random.Generator,
    pop: PopulationSpec,
    person: Honest,
    active_from: datetime,
    span: float,
) -> list[tuple[datetime, Kind, int, int, str]]:
    """A new phone number, a new device: the honest changes that look like a takeover."""
    events: list[tuple[datetime, Kind, int, int, str]] = []
    if span <= 1:
        return events
    if side.random() < pop.phone_churn_per_year * span / 365:
        events.append(
            (_daytime(active_from, span, float(side.random())), Kind.PHONE_CHANGE, 0, -1, "")
        )
    if person.second_device:
        events.append(
            (_daytime(active_from, span, float(side.random())), Kind.NEW_DEVICE, 0, -1, "")
        )
    return events


def _daytime(active_from: datetime, span: float, draw: float) -> datetime:
    day = int(draw * span)
    return active_from + timedelta(days=day) + timedelta(hours=8 + 12 * ((draw * span) % 1))


def _customer_victims(
    side: np.random.Generator,
    attacker: Attacker,
    honest: list[Honest],
    citizens: list[Citizen],
    taken: set[int],
) -> list[int]:
    """Victims among the wallet's customers (or anyone, for ``any``) at the attacker's banks.

    Credential stuffing only works on people whose password leaked elsewhere; lures work on
    people in proportion to how easily they are fooled (the draw happens at attack time)."""
    banks = set(attacker.banks)
    if attacker.victims_from == "any":
        pool = [c.index for c in citizens if c.bank_code in banks and c.index not in taken]
    else:
        people = [
            p for p in honest if p.citizen.bank_code in banks and p.citizen.index not in taken
        ]
        if attacker.strategy == "account_takeover":
            people = [p for p in people if p.reuses_password]
        pool = [p.citizen.index for p in people]
    wanted = min(_targets(attacker), len(pool))
    if wanted == 0:
        return []
    return sorted(int(i) for i in side.choice(pool, size=wanted, replace=False))


def _targets(attacker: Attacker) -> int:
    """How many people the attacker goes after (its list, sweep or campaign size)."""
    if attacker.strategy == "reverse_brute_force":
        return attacker.accounts
    count = getattr(attacker, "targets", None) or getattr(attacker, "victims", 0)
    return int(count or 0)


def _attack_times(
    rng: np.random.Generator, scenario: Scenario, attacker: Attacker, victims: list[int]
) -> list[tuple[datetime, int]]:
    """When the attacker goes after each target (night-time, like 2020's logs)."""
    first = attacker.start_day
    last = attacker.end_day if attacker.end_day is not None else scenario.days
    span = max(last - first, 1)
    order = [int(v) for v in rng.permutation(victims)]
    if attacker.strategy == "reverse_brute_force":
        # a sweep: one attempt every 20 seconds from the start day's night
        begin = scenario.start + timedelta(days=first, hours=1)
        return [(begin + timedelta(seconds=20 * i), v) for i, v in enumerate(order)]
    per_day = {
        "leaked_credentials": getattr(attacker, "per_day", 1.0),
        "low_and_slow": getattr(attacker, "per_week", 2.0) / 7,
    }.get(attacker.strategy, len(order) / span)
    if attacker.strategy in EVEN_CAMPAIGNS:
        # a campaign without a daily rate reaches its targets over the whole period
        days = np.sort(rng.random(len(order)) * span)
    else:
        days = np.cumsum(rng.exponential(1 / per_day, size=len(order)))
    times = []
    low, high = attacker.hours
    per_day_count: dict[int, int] = {}
    for day, victim in zip(days, order, strict=True):
        whole = int(day)
        if attacker.max_per_day is not None:
            # pacing: no more than max_per_day new victims on one day; the rest wait
            while per_day_count.get(whole, 0) >= attacker.max_per_day:
                whole += 1
            per_day_count[whole] = per_day_count.get(whole, 0) + 1
        if whole >= span:
            break
        when = scenario.start + timedelta(days=first + whole, hours=float(rng.uniform(low, high)))
        times.append((when, victim))
    return times


def shard_sizes(scenario: Scenario, attacked_world_users: int) -> list[int]:
    """Honest users in each additional world: what ``population.honest_users`` asks beyond the
    attacked world's own sample, cut into worlds of at most ``shard_size`` (as even as can be).
    Depends on the scenario and its seed only, never on how many processes run it."""
    wanted = scenario.population.honest_users
    extra = max(0, (wanted or 0) - attacked_world_users)
    if extra == 0:
        return []
    count = -(-extra // scenario.population.shard_size)
    return [extra // count + (1 if i < extra % count else 0) for i in range(count)]


def honest_world(scenario: Scenario, users: int) -> Scenario:
    """The scenario of an honest world of ``users`` wallet users: customers of the scenario's
    banks in proportion to theirs (largest remainder), every one of them a wallet user, with the
    same habits, merchants and dates, and no attacker. Its plan is drawn by
    ``make_plan(world, shard)`` from streams of its own."""
    weights = [bank.customers for bank in scenario.banks]
    total = sum(weights)
    exact = [users * weight / total for weight in weights]
    counts = [int(share) for share in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: users - sum(counts)]:
        counts[i] += 1
    banks = [
        bank.model_copy(update={"customers": count})
        for bank, count in zip(scenario.banks, counts, strict=True)
        if count
    ]
    population = scenario.population.model_copy(update={"wallet_share": 1.0, "honest_users": None})
    return scenario.model_copy(update={"banks": banks, "attackers": [], "population": population})
