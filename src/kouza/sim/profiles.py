"""Defence profiles: named bundles of real configuration switches.

A profile changes nothing but configuration that kouza (wallet and bank) really has; the
simulator applies it to fresh wallet and bank runtimes and lets the code under test decide every
attempt. Profiles answer "what would the same attackers have taken if these defences had been in
place from the start?".
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    reverify_existing_links: bool = False
    tags: tuple[str, ...] = field(default_factory=tuple)


PROFILES: dict[str, DefenceProfile] = {
    profile.name: profile
    for profile in (
        DefenceProfile(
            name="legacy-2019",
            description="E-mail-only wallets, legacy bank forms, calendar-month ¥300,000 cap, "
            "no name match, no risk rules: the design that was robbed in 2020.",
            link_min_level="email", link_name_match=False, accept_legacy_banks=True,
            require_device_signature=False, risk_rules="none",
            topup_cap=TopUpCap.CALENDAR_MONTH,
        ),
        DefenceProfile(
            name="docomo-2020-10",
            description="Docomo's October 2020 measures: SMS + eKYC before linking, name match, "
            "re-verification of existing links; banks unchanged.",
            link_min_level="verified", link_name_match=True, accept_legacy_banks=True,
            require_device_signature=False, risk_rules="none",
            topup_cap=TopUpCap.CALENDAR_MONTH, reverify_existing_links=True,
        ),
        DefenceProfile(
            name="jba-2020",
            description="The JBA guideline of 2020-11-30: every bank requires internet-banking "
            "password + one-time password at linking; the wallet as in 2019.",
            link_min_level="email", link_name_match=False, accept_legacy_banks=True,
            require_device_signature=False, risk_rules="none",
            topup_cap=TopUpCap.CALENDAR_MONTH, banks_require_oauth=True,
        ),
        DefenceProfile(
            name="kouza",
            description="Everything kouza has: verified identity + device keys, name match, "
            "legacy banks refused, strong bank authentication where offered, bank-side "
            "monitoring, rolling caps, the shipped risk rules, kill switches and locks.",
            link_min_level="verified", link_name_match=True, accept_legacy_banks=False,
            require_device_signature=True, risk_rules="shipped",
            topup_cap=TopUpCap.ROLLING_30_DAYS, bank_monitoring=True,
            reverify_existing_links=True,
        ),
    )
}
