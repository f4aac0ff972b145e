"""What the fraud desk watches, read from the database when ``/metrics`` is scraped.

Counters (link attempts and refusals, top-ups, risk decisions) are counted where things happen
(``kouza.runtime.WalletMetrics``); the state of the platform is read here at each scrape, so
whichever server process answers, the numbers are the database's:

* ``kouza_kill_switches_active{scope}`` — active kill switches per scope, every scope listed
  (0 when none); ``kouza_kill_switch_on{scope,target}`` — 1 per active switch (which bank,
  which merchant);
* ``kouza_wallets_locked`` — wallets locked now (their open locks: an index lookup);
* ``kouza_outbox_backlog{channel}`` — messages waiting to go out (e-mail, SMS, bank notices).
"""

from __future__ import annotations

from sqlalchemy import func, select

from kouza.controls.models import KillSwitch, SwitchScope
from kouza.kit.metrics import GaugeRows
from kouza.kit.outbox import OutboxMessage
from kouza.runtime import Runtime
from kouza.wallet.models import WalletLock


def watch(runtime: Runtime) -> None:
    """Serve the fraud desk's gauges on ``runtime``'s metrics (read at each scrape)."""
    metrics = runtime.metrics
    metrics.read_at_scrape(
        "kouza_kill_switches_active",
        "Active kill switches per scope (all_links, bank_links, bank_charges, merchant_payments).",
        ("scope",),
        lambda: switches_per_scope(runtime),
    )
    metrics.read_at_scrape(
        "kouza_kill_switch_on",
        "1 for each active kill switch, with its scope and target (bank code, merchant id).",
        ("scope", "target"),
        lambda: switches_on(runtime),
    )
    metrics.read_at_scrape(
        "kouza_wallets_locked", "Wallets locked now.", (), lambda: locked_wallets(runtime)
    )
    metrics.read_at_scrape(
        "kouza_outbox_backlog",
        "Outbox messages not delivered yet, by channel.",
        ("channel",),
        lambda: outbox_backlog(runtime),
    )


def _active_switches(runtime: Runtime) -> list[tuple[str, str]]:
    with runtime.db.session() as session:
        rows = session.execute(
            select(KillSwitch.scope, KillSwitch.target).where(KillSwitch.active.is_(True))
        )
        return [(scope, target) for scope, target in rows]


def switches_per_scope(runtime: Runtime) -> GaugeRows:
    """Active kill switches per scope, every scope included."""
    counts = dict.fromkeys((scope.value for scope in SwitchScope), 0)
    for scope, _target in _active_switches(runtime):
        counts[scope] = counts.get(scope, 0) + 1
    return [((scope,), float(count)) for scope, count in counts.items()]


def switches_on(runtime: Runtime) -> GaugeRows:
    """One row per active kill switch."""
    return [((scope, target), 1.0) for scope, target in _active_switches(runtime)]


def locked_wallets(runtime: Runtime) -> GaugeRows:
    """The number of wallets locked now."""
    with runtime.db.session() as session:
        count = session.scalar(
            select(func.count()).select_from(WalletLock).where(WalletLock.unlocked_at.is_(None))
        )
    return [((), float(count or 0))]


def outbox_backlog(runtime: Runtime) -> GaugeRows:
    """Undelivered outbox messages per channel."""
    with runtime.db.session() as session:
        rows = session.execute(
            select(OutboxMessage.channel, func.count())
            .where(OutboxMessage.delivered_at.is_(None))
            .group_by(OutboxMessage.channel)
        )
        return [((channel,), float(count)) for channel, count in rows]
