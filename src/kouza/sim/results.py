"""What a simulation run measured, per defence profile: the figures the report and summary show.

Every figure is counted from what the real code did: losses are posted top-ups from victims'
bank accounts (read back from the wallet's ledger and checked against the bank's balances),
friction is what the real risk engine and policies answered to honest users.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from kouza.sim.aggregate import ablation, spread

STAGES = ("wallet_opened", "link_attempted", "linked", "charged", "spent")
"""How far an attack attempt got, in order."""

FRICTION_USERS = (
    "step_up",
    "review",
    "block",
    "false_lock",
    "limit_refusal",
    "link_refusal",
    "holder_notice",
    "delayed_money",
)
"""Kinds of friction counted once per honest user who met them at least once."""
FRICTION_EVENTS = (
    "step_up",
    "review",
    "block",
    "limit_refusal",
    "link_refusal",
    "holder_notice",
    "delayed_money",
    "other_refusal",
)
"""Kinds of friction counted per event (an honest operation answered that way)."""

CONTROLS: dict[str, str] = {
    "verification_level_required": "verified identity (level gate)",
    "reverification_required": "re-verification campaign",
    "device_signature_required": "device keys",
    "device_signature_invalid": "device keys",
    "step_up_required": "step-up the attacker could not answer",
    "legacy_bank_not_accepted": "legacy-bank refusal",
    "oauth_not_offered": "legacy-bank refusal",
    "legacy_form_not_offered": "bank requires internet banking + OTP",
    "bank_link_refused": "bank's identity / PIN check",
    "bank_page_refused": "bank's login page",
    "bank_identity_mismatch": "bank's identity match",
    "verified_name_required": "verified identity (the bank's OAuth link needs the verified name)",
    "limit_exceeded": "wallet limits",
    "mandate_exceeded": "bank mandate limits",
    "held_for_review": "risk review (funds held)",
    "risk_refused": "risk block",
    "wallet_not_active": "wallet lock",
    "kill_switch_active": "kill switch",
    "link_not_active": 'link revoked (holder said "not me")',
    "invalid_credentials": "password",
    "did_not_take_the_bait": "victim not fooled",
}
"""Refusal code → the control it stands for, for the funnels' "stopped by" column. Codes not
listed are shown as they are."""


@dataclass
class AttackerResult:
    """One attacker's run against one profile."""

    name: str
    strategy: str
    attempts: int = 0
    """Victim accounts (or swept accounts) the attacker went after."""
    stages: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STAGES, 0))
    """Attempts that reached each stage."""
    refusals: dict[str, int] = field(default_factory=dict)
    """Why attempts stopped: error code of the refusal → count."""
    loss_yen: int = 0
    victims: int = 0
    stopped_by_rule: dict[str, int] = field(default_factory=dict)
    """Risk refusals of this attacker by the rule that fired (operators' view)."""
    succeeded: int = 0
    """Attempts that moved money out of a victim (linked and charged, took over, or pushed)."""


@dataclass(frozen=True)
class ControlChange:
    """An operator action that reaches every customer, not one wallet: a kill switch turned on
    or off. Recorded in the attacked world; replayed at the same moment in its honest worlds
    (ADR 0030), where no attack could have caused it."""

    at: str
    """When (ISO 8601, the simulated clock)."""
    scope: str
    target: str
    active: bool
    reason: str


HONEST_COUNTS = (
    "honest_active_users",
    "honest_operations",
    "honest_step_ups",
    "honest_reviews",
    "honest_blocks",
    "false_locks",
    "honest_link_refusals",
    "honest_link_attempters",
    "operations",
)
"""The counts an honest world adds to its attacked world's (:meth:`ProfileResult.absorb`)."""


@dataclass
class ProfileResult:
    """One defence profile's run."""

    profile: str
    description: str
    seed: int = 0
    """The scenario seed this world was drawn from (one world per seed and profile)."""
    loss_yen: int = 0
    """Yen debited from victims' bank accounts into attackers' wallets (ledger, posted)."""
    spent_yen: int = 0
    """Of which attackers spent at merchants (cashed out)."""
    frozen_yen: int = 0
    """Left in attackers' wallets that a lock froze (recoverable for restitution)."""
    victims: int = 0
    banks_hit: int = 0
    attack_attempts: int = 0
    losses_by_bank: dict[str, int] = field(default_factory=dict)
    """Bank code → yen."""
    victims_by_bank: dict[str, int] = field(default_factory=dict)
    losses_by_day: list[int] = field(default_factory=list)
    """Yen lost on each simulated day (index 0 = the scenario's start day)."""
    max_loss_per_victim_yen: int = 0
    attackers: list[AttackerResult] = field(default_factory=list)
    detection_delays_hours: list[float] = field(default_factory=list)
    """For attacker wallets that were locked: hours from their first fraudulent top-up."""
    honest_active_users: int = 0
    honest_operations: int = 0
    """Honest operations: sign-ups (with their link), top-ups, payments, transfers, contact and
    device changes (the denominator of per-event friction)."""
    honest_step_ups: int = 0
    honest_reviews: int = 0
    honest_blocks: int = 0
    false_locks: int = 0
    honest_link_refusals: int = 0
    """Honest users whose own bank account could not be linked under this profile."""
    honest_refusals: dict[str, int] = field(default_factory=dict)
    """Why honest users were refused anything: error code → count."""
    honest_link_attempters: int = 0
    """Honest users who tried to link a bank account (denominator of link refusals)."""
    friction_users: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FRICTION_USERS, 0))
    """Honest users who met each kind of friction at least once."""
    friction_events: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(FRICTION_EVENTS, 0)
    )
    """Honest operations answered with each kind of friction."""
    time_to_money_hours: list[float] = field(default_factory=list)
    """For honest top-ups that did not arrive at once: hours until the money was spendable
    (a held top-up counts until its release; one never released is not in the list)."""
    net_loss_yen: int = 0
    """``loss_yen`` less what was frozen in locked attacker wallets and returned to victims by
    the bank on a "not me" (what the operator cannot recover)."""
    operations: int = 0
    """Every simulated customer operation driven through the real services."""
    seconds: float = 0.0
    """Wall-clock time of this profile's run."""
    cpu_seconds: float = 0.0
    """CPU time of this profile's process during the run, every thread (the bank's endpoints
    run in FastAPI's worker threads): what the operations cost, whatever else the machine ran."""
    controls: list[ControlChange] = field(default_factory=list)
    """The operator's switches in this world, in order (the attacked world's are replayed in
    the honest worlds)."""
    worlds: int = 1
    """Worlds measured together: the attacked world and the honest worlds absorbed into it."""

    def absorb(self, honest: ProfileResult) -> None:
        """Add an honest world of the same seed and profile to this attacked world's figures:
        its honest counts, friction and delays (its users are other people, so users add up);
        the attack figures stay this world's. An honest world that lost money is a bug."""
        if honest.loss_yen or honest.attack_attempts or honest.victims:
            raise ValueError(f"honest world of {honest.profile} lost money or was attacked")
        for name in HONEST_COUNTS:
            setattr(self, name, getattr(self, name) + getattr(honest, name))
        for mine, theirs in (
            (self.honest_refusals, honest.honest_refusals),
            (self.friction_users, honest.friction_users),
            (self.friction_events, honest.friction_events),
        ):
            for key, count in theirs.items():
                mine[key] = mine.get(key, 0) + count
        self.time_to_money_hours.extend(honest.time_to_money_hours)
        self.seconds += honest.seconds
        self.cpu_seconds += honest.cpu_seconds
        self.worlds += honest.worlds

    @property
    def detection_delay_median_hours(self) -> float | None:
        delays = sorted(self.detection_delays_hours)
        if not delays:
            return None
        middle = len(delays) // 2
        return delays[middle] if len(delays) % 2 else (delays[middle - 1] + delays[middle]) / 2

    def per_thousand(self, count: int) -> float:
        """``count`` per 1,000 active honest users."""
        return 1000 * count / self.honest_active_users if self.honest_active_users else 0.0

    def summary(self) -> dict[str, Any]:
        """The machine-readable figures of ``summary.json``."""
        return {
            "loss_yen": self.loss_yen,
            "victims": self.victims,
            "banks_hit": self.banks_hit,
            "attack_attempts": self.attack_attempts,
            "honest_active_users": self.honest_active_users,
            "honest_step_ups": self.honest_step_ups,
            "honest_reviews": self.honest_reviews,
            "honest_blocks": self.honest_blocks,
            "false_locks": self.false_locks,
            "honest_link_refusals": self.honest_link_refusals,
            "spent_yen": self.spent_yen,
            "frozen_yen": self.frozen_yen,
            "max_loss_per_victim_yen": self.max_loss_per_victim_yen,
            "losses_by_bank": dict(sorted(self.losses_by_bank.items())),
            "detection_delay_median_hours": self.detection_delay_median_hours,
            "friction_per_1000": {
                "step_ups": round(self.per_thousand(self.honest_step_ups), 2),
                "reviews": round(self.per_thousand(self.honest_reviews), 2),
                "blocks": round(self.per_thousand(self.honest_blocks), 2),
                "false_locks": round(self.per_thousand(self.false_locks), 2),
            },
            "operations": self.operations,
            "friction": self.friction(),
            "net_loss_yen": self.net_loss_yen,
            "attacks_succeeded": sum(a.succeeded for a in self.attackers),
            "worlds": self.worlds,
        }

    def friction(self) -> dict[str, Any]:
        """Honest friction with its denominators, so a reader sees when a rate rests on few."""
        users = self.honest_active_users
        events = self.honest_operations

        def rate(count: int, of: int) -> float | None:
            return round(count / of, 6) if of else None

        per_user = {}
        for kind, count in self.friction_users.items():
            of = self.honest_link_attempters if kind == "link_refusal" else users
            per_user[kind] = {"users": count, "of": of, "rate": rate(count, of)}
        per_event = {
            kind: {"count": count, "of": events, "rate": rate(count, events)}
            for kind, count in self.friction_events.items()
        }
        delays = sorted(self.time_to_money_hours)
        return {
            "honest_active_users": users,
            "honest_operations": events,
            "honest_link_attempters": self.honest_link_attempters,
            "per_user": per_user,
            "per_event": per_event,
            "time_to_money": {
                "delayed": len(delays),
                "median_hours": delays[len(delays) // 2] if delays else None,
                "max_hours": delays[-1] if delays else None,
            },
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, for the report's data file."""
        data = asdict(self)
        data["detection_delay_median_hours"] = self.detection_delay_median_hours
        return data


def stopped_by(refusals: Mapping[str, int]) -> dict[str, int]:
    """Refusal counts by the control they stand for (:data:`CONTROLS`; unknown codes as they
    are), most frequent first: several codes can stand for one control (``device keys``)."""
    controls: dict[str, int] = {}
    for code, count in refusals.items():
        control = CONTROLS.get(code, code)
        controls[control] = controls.get(control, 0) + count
    return dict(sorted(controls.items(), key=lambda item: (-item[1], item[0])))


@dataclass
class SimulationResult:
    """A whole run: the scenario's identity and one result per (seed, profile) world.

    ``profiles`` holds every world, grouped by profile in run order and by seed within a
    profile; :meth:`by_profile` regroups them and :meth:`summary` aggregates them over seeds.
    """

    scenario: str
    seeds: list[int]
    start: str
    days: int
    bank_names: dict[str, str]
    profiles: list[ProfileResult] = field(default_factory=list)
    population_scale: float = 1.0
    """Factor applied to the scenario's honest population (``population.wallet_share``)."""
    wallet_share: float | None = None
    """The share of bank customers who used the wallet in this run (after the scale)."""
    honest_users: int | None = None
    """The honest users the run was asked to carry in all (``population.honest_users``, after
    the scale; None: the attacked world's sample alone)."""

    def by_profile(self) -> dict[str, list[ProfileResult]]:
        """Profile name → its worlds in seed order, profiles in run order."""
        grouped: dict[str, list[ProfileResult]] = {}
        for result in self.profiles:
            grouped.setdefault(result.profile, []).append(result)
        for runs in grouped.values():
            runs.sort(
                key=lambda run: (
                    self.seeds.index(run.seed) if run.seed in self.seeds else len(self.seeds)
                )
            )
        return grouped

    def per_seed_summaries(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Profile name → seed (as text, as in JSON) → :meth:`ProfileResult.summary`."""
        return {
            name: {str(run.seed): run.summary() for run in runs}
            for name, runs in self.by_profile().items()
        }

    def summary(self) -> dict[str, Any]:
        """``summary.json``, one shape for any number of seeds (docs/simulator.md):
        ``scenario``, ``seeds``, ``population_scale``, ``wallet_share``, ``start``, ``days``,
        ``profiles`` (name → ``description`` and :func:`~kouza.sim.aggregate.spread` of its
        per-seed summaries) and ``ablation`` (:func:`~kouza.sim.aggregate.ablation`)."""
        summaries = self.per_seed_summaries()
        descriptions = {result.profile: result.description for result in self.profiles}
        return {
            "scenario": self.scenario,
            "seeds": list(self.seeds),
            "population_scale": self.population_scale,
            "wallet_share": self.wallet_share,
            "honest_users": self.honest_users,
            "start": self.start,
            "days": self.days,
            "profiles": {
                name: {"description": descriptions[name], **spread(per_seed)}
                for name, per_seed in summaries.items()
            },
            "ablation": ablation(summaries),
        }
