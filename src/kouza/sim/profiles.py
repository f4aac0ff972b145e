"""Defence profiles: named bundles of real configuration switches.

A profile changes nothing but configuration that kouza (wallet and bank) really has; the
simulator applies it to fresh wallet and bank runtimes and lets the code under test decide every
attempt. Profiles answer "what would the same attackers have taken if these defences had been in
place from the start?".
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum


class TopUpCap(StrEnum):
    """How the monthly charge cap is counted."""

    CALENDAR_MONTH = "calendar_month"
    """¥300,000 per calendar month (Docomo 2020): straddling a month end doubles it."""
    ROLLING_30_DAYS = "rolling_30_days"
    """¥300,000 in any 30 days (kouza)."""


@dataclass(frozen=True)
class DefenceProfile:
    """The switches a profile sets."""

    name: str
    description: str
    link_min_level: str
    """Verification level a wallet needs to link a bank (``email`` replays 2019)."""
    link_name_match: bool
    """Send the verified kana name to the bank (True) or the name the user typed (False)."""
    accept_legacy_banks: bool
    """Link banks that only have the legacy PIN form."""
    require_device_signature: bool
    risk_rules: str
    """``none`` or ``shipped``."""
    topup_cap: TopUpCap
    topup_cap_yen: int = 300_000
    banks_require_oauth: bool = False
    """Every bank demands internet-banking login + OTP at linking (JBA guideline, 2020-11)."""
    bank_monitoring: bool = False
    """Banks watch failed link attempts across accounts (reverse brute force)."""
    holder_notices: bool = False
    """Banks tell the holder at once (e-mail) of every new link and debit, with a "not me"
    reference; otherwise the holder learns from a letter or the passbook days later."""
    operator_playbook: bool = False
    """The operator's fraud team acts on what it is told (a holder's "not me", burst alerts):
    locks the wallet behind a reported link and stops charges at a bank under attack."""
    money_out_proof: bool = False
    """Payments above ¥3,000 and every transfer need a device signature or an SMS step-up
    (ADR 0021); honest customers register their phone's key at onboarding."""
    restricted_legacy_links: bool = False
    """Banks that only have the legacy PIN form (and are not accepted) get *restricted* links
    instead of a refusal: a ¥30,000 / ¥50,000 mandate and, for 30 days, each top-up held 48 h
    and sent back if the holder says "not me" (``legacy_bank_links``, ADR 0032). Needs the
    card's name sent to the bank (``link_name_match``, ``verified``), else still refused."""
    risk_rules_without: tuple[str, ...] = ()
    """Shipped rule ids left out (ablation of a rule group)."""
    tags: tuple[str, ...] = field(default_factory=tuple)


PROFILES: dict[str, DefenceProfile] = {
    profile.name: profile
    for profile in (
        DefenceProfile(
            name="legacy-2019",
            description="E-mail-only wallets, legacy bank forms, calendar-month ¥300,000 cap, "
            "no name match, no risk rules: the design that was robbed in 2020.",
            link_min_level="email",
            link_name_match=False,
            accept_legacy_banks=True,
            require_device_signature=False,
            risk_rules="none",
            topup_cap=TopUpCap.CALENDAR_MONTH,
        ),
        DefenceProfile(
            name="docomo-2020-10",
            description="Docomo's October 2020 measures for new links: SMS + eKYC before "
            "linking, name match; banks unchanged. (Docomo also re-verified existing links; "
            "the simulator does not replay that campaign.)",
            link_min_level="verified",
            link_name_match=True,
            accept_legacy_banks=True,
            require_device_signature=False,
            risk_rules="none",
            topup_cap=TopUpCap.CALENDAR_MONTH,
        ),
        DefenceProfile(
            name="jba-2020",
            description="The JBA guideline of 2020-11-30: every bank requires internet-banking "
            "password + one-time password at linking; the wallet as in 2019.",
            link_min_level="email",
            link_name_match=False,
            accept_legacy_banks=True,
            require_device_signature=False,
            risk_rules="none",
            topup_cap=TopUpCap.CALENDAR_MONTH,
            banks_require_oauth=True,
        ),
        DefenceProfile(
            name="kouza",
            description="Everything kouza has: verified identity + device keys, name match, "
            "legacy-form banks given restricted links (lower mandate, first top-ups held 48 h), "
            "strong bank authentication where offered, bank-side "
            "monitoring, rolling caps, the shipped risk rules, immediate holder notices and "
            "the fraud team's playbook (locks, kill switches, reviews).",
            link_min_level="verified",
            link_name_match=True,
            accept_legacy_banks=False,
            require_device_signature=True,
            risk_rules="shipped",
            topup_cap=TopUpCap.ROLLING_30_DAYS,
            bank_monitoring=True,
            holder_notices=True,
            operator_playbook=True,
            money_out_proof=True,
            restricted_legacy_links=True,
        ),
    )
}

RULE_GROUPS: dict[str, tuple[str, ...]] = {
    "linking-rules": (
        "many-accounts-from-device",
        "many-accounts-from-network",
        "many-holder-names-from-wallet",
        "failed-link-burst",
        "failed-pin-burst-at-bank",
        "holder-name-near-miss",
    ),
    "charging-rules": ("charge-to-cap-after-link", "device-changed-since-link"),
    "spending-rules": ("resellable-spend-new-wallet",),
    "money-out-rules": ("money-out-from-device-added-by-sms", "first-transfer-to-mule-like-wallet"),
    "device-rules": ("many-wallets-on-device", "established-device"),
}
"""The shipped rules by the stage they watch (each group is one row of the ablation table)."""

LAYERS: dict[str, tuple[str, dict[str, object]]] = {
    "verified-identity": (
        "eKYC before linking (phone + device key still required)",
        {"link_min_level": "phone"},
    ),
    "device-keys": (
        "device-key signatures (or SMS step-ups) on links, charges and money out",
        {"require_device_signature": False, "money_out_proof": False},
    ),
    "name-match": ("the verified name sent to the bank", {"link_name_match": False}),
    "legacy-bank-refusal": (
        "no full links at banks that only have the legacy PIN form (restricted ones at most)",
        {"accept_legacy_banks": True},
    ),
    "restricted-legacy-links": (
        "restricted links for banks that only have the legacy PIN form (refused instead)",
        {"restricted_legacy_links": False},
    ),
    "bank-monitoring": (
        "banks watching failed link attempts across accounts",
        {"bank_monitoring": False},
    ),
    "rolling-caps": (
        "rolling 30-day caps (calendar month instead)",
        {"topup_cap": TopUpCap.CALENDAR_MONTH},
    ),
    **{
        group: (f"the shipped {group.replace('-', ' ')}", {"risk_rules_without": rules})
        for group, rules in RULE_GROUPS.items()
    },
    "holder-notices": ('immediate holder notices with a "not me" path', {"holder_notices": False}),
    "operator-playbook": (
        "the fraud team's playbook (locks, kill switches)",
        {"operator_playbook": False},
    ),
}
"""kouza's layers for the ablation table: name → (what it is, the switches that remove it)."""

ABLATION_BASE = "kouza"


def ablation_profiles() -> list[DefenceProfile]:
    """``kouza`` and one "kouza without X" profile per layer, in :data:`LAYERS` order."""
    base = PROFILES[ABLATION_BASE]
    made = [base]
    for layer, (what, switches) in LAYERS.items():
        made.append(
            replace(
                base,
                name=f"{ABLATION_BASE}-without-{layer}",
                description=f"kouza without {what}.",
                tags=("ablation", layer),
                **switches,  # type: ignore[arg-type]
            )
        )
    return made


def profile(name: str) -> DefenceProfile:
    """A named profile: one of :data:`PROFILES` or an ablation ``kouza-without-<layer>``."""
    if name in PROFILES:
        return PROFILES[name]
    for made in ablation_profiles():
        if made.name == name:
            return made
    known = sorted(PROFILES) + [f"{ABLATION_BASE}-without-{layer}" for layer in LAYERS]
    raise KeyError(f"unknown defence profile {name!r}; known: {known}")
