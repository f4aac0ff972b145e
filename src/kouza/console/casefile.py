"""What the case page shows: the wallet's facts, one timeline of everything that happened
around it, every risk decision with its reasons, and the entities it shares with other wallets.

The timeline merges case notes, the wallet's risk events (with their decisions), bank links,
bank movements, locks and the notices sent to banks, newest last. The graph's entities are read
from the wallet's risk events and links: devices, IP addresses, their /24 (IPv6: /48) and
bank-account fingerprints; another wallet is a neighbour when one of its events used the same
device, address, network or account (bounded: :data:`MAX_NEIGHBOURS`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kouza.controls.cases import cases
from kouza.controls.models import Case, CaseNote
from kouza.ledger.service import ledger
from kouza.linking import notices
from kouza.linking.models import BankLink, BankMovement
from kouza.ops.compensation import CompensationReport, Victim, compensations
from kouza.risk.events import ip_prefix
from kouza.risk.models import RiskDecisionRecord, RiskEventRecord
from kouza.wallet.models import Wallet, WalletLock

MAX_EVENTS = 300
MAX_NEIGHBOURS = 24


@dataclass(frozen=True)
class Entry:
    """One line of the timeline."""

    at: datetime
    kind: str
    """note, event, link, movement, lock, unlock, notice."""
    title: str
    text: str = ""
    decision: RiskDecisionRecord | None = None


@dataclass
class Graph:
    """The wallet, the entities it used, and other wallets that used them too."""

    wallet: str
    entities: list[tuple[str, str]] = field(default_factory=list)
    """(kind, value): kind is device, ip, network or account."""
    neighbours: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    """other wallet id → the entities it shares with this one."""


@dataclass
class CaseFile:
    case: Case
    wallet: Wallet
    balance: int
    notes: Sequence[CaseNote]
    links: Sequence[BankLink]
    timeline: list[Entry]
    decisions: list[tuple[RiskEventRecord, RiskDecisionRecord]]
    graph: Graph
    victims: list[Victim]
    compensation: CompensationReport | None
    open_lock: WalletLock | None


def case_file(session: Session, case_id: uuid.UUID) -> CaseFile:
    """Everything the case page shows about ``case_id``."""
    case = cases.get(session, case_id)
    wallet = session.get_one(Wallet, case.wallet_id)
    notes = cases.notes(session, case.id)
    links = session.scalars(
        select(BankLink).where(BankLink.wallet_id == wallet.id).order_by(BankLink.created_at)
    ).all()
    events = session.execute(
        select(RiskEventRecord, RiskDecisionRecord)
        .outerjoin(RiskDecisionRecord, RiskDecisionRecord.event_id == RiskEventRecord.id)
        .where(RiskEventRecord.wallet == str(wallet.id))
        .order_by(RiskEventRecord.at.desc())
        .limit(MAX_EVENTS)
    ).all()
    locks = session.scalars(
        select(WalletLock).where(WalletLock.wallet_id == wallet.id).order_by(WalletLock.locked_at)
    ).all()
    compensation = (
        compensations.report(session, case.id)
        if compensations.of_case(session, case.id) is not None
        else None
    )
    return CaseFile(
        case=case,
        wallet=wallet,
        balance=ledger.balance(session, wallet.ledger_account_id).balance,
        notes=notes,
        links=links,
        timeline=_timeline(session, wallet, notes, links, events, locks),
        decisions=[(event, decision) for event, decision in events if decision is not None],
        graph=_graph(session, wallet, events, links),
        victims=compensations.victims(session, wallet.id),
        compensation=compensation,
        open_lock=next((lock for lock in locks if lock.unlocked_at is None), None),
    )


def _timeline(
    session: Session,
    wallet: Wallet,
    notes: Sequence[CaseNote],
    links: Sequence[BankLink],
    events: Sequence[Any],
    locks: Sequence[WalletLock],
) -> list[Entry]:
    entries = [
        Entry(n.created_at, "note", f"case.{n.action}", f"{n.actor}: {n.note}") for n in notes
    ]
    for event, decision in events:
        text = f"bank {event.bank} " if event.bank else ""
        text += f"¥{event.amount:,} " if event.amount else ""
        text += f"outcome {event.outcome}"
        entries.append(Entry(event.at, "event", event.type, text.strip(), decision))
    for link in links:
        entries.append(
            Entry(
                link.created_at,
                "link",
                "link",
                f"{link.bank_code}-{link.branch} ***{link.account_last3} ({link.status})",
            )
        )
    movements = session.scalars(
        select(BankMovement).where(BankMovement.wallet_id == wallet.id)
    ).all()
    for movement in movements:
        entries.append(
            Entry(
                movement.created_at,
                "movement",
                movement.direction,
                f"{movement.bank_code} ¥{movement.amount:,} {movement.status} {movement.failure}",
            )
        )
    for lock in locks:
        entries.append(Entry(lock.locked_at, "lock", "lock", f"{lock.actor}: {lock.reason}"))
        if lock.unlocked_at is not None:
            entries.append(
                Entry(
                    lock.unlocked_at,
                    "unlock",
                    "unlock",
                    f"{lock.unlocked_by}: {lock.unlock_reason}",
                )
            )
    for notice, message in notices.notices_of(session, wallet.id):
        state = "delivered" if message.delivered_at else f"pending ({message.attempts} attempts)"
        entries.append(Entry(notice.created_at, "notice", "notice", f"{notice.bank_code}: {state}"))
    return sorted(entries, key=lambda entry: entry.at)


def _graph(
    session: Session, wallet: Wallet, events: Sequence[Any], links: Sequence[BankLink]
) -> Graph:
    devices = {e.device for e, _ in events if e.device}
    ips = {e.ip for e, _ in events if e.ip} | {link.ip for link in links if link.ip}
    networks = {ip_prefix(ip) for ip in ips}
    accounts = {e.account for e, _ in events if e.account} | {
        link.account_fingerprint for link in links
    }
    graph = Graph(str(wallet.id))
    graph.entities = (
        [("device", d) for d in sorted(devices)]
        + [("ip", i) for i in sorted(ips)]
        + [("network", n) for n in sorted(networks)]
        + [("account", a) for a in sorted(accounts)]
    )
    conditions: list[Any] = []
    if devices:
        conditions.append(RiskEventRecord.device.in_(devices))
    if accounts:
        conditions.append(RiskEventRecord.account.in_(accounts))
    for network in networks:
        conditions.append(RiskEventRecord.ip.like(_network_pattern(network)))
    if not conditions:
        return graph
    rows = session.execute(
        select(
            RiskEventRecord.wallet,
            RiskEventRecord.device,
            RiskEventRecord.ip,
            RiskEventRecord.account,
        )
        .where(
            or_(*conditions), RiskEventRecord.wallet != str(wallet.id), RiskEventRecord.wallet != ""
        )
        .distinct()
        .limit(2000)
    ).all()
    for other, device, ip, account in rows:
        shared = set()
        if device and device in devices:
            shared.add(("device", device))
        if ip and ip in ips:
            shared.add(("ip", ip))
        if ip and ip_prefix(ip) in networks:
            shared.add(("network", ip_prefix(ip)))
        if account and account in accounts:
            shared.add(("account", account))
        if shared and (other in graph.neighbours or len(graph.neighbours) < MAX_NEIGHBOURS):
            graph.neighbours.setdefault(other, set()).update(shared)
    return graph


def _network_pattern(network: str) -> str:
    """A LIKE pattern for the addresses of a /24 (``1.2.3.0/24`` → ``1.2.3.%``) or a /48."""
    if network.endswith(".0/24"):
        return network.removesuffix("0/24") + "%"
    return network.removesuffix("::/48") + ":%"
