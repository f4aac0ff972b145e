"""Synthetic labelled exports for the learned-model tests: small, fast, and shaped like the
simulator's (several worlds per file, ``label``, ``sim_seed``/``sim_profile``), with honest
users and attackers who behave differently but come from the same kinds of addresses (so a model
can only learn behaviour). ``leaky`` makes every attack happen at 03:00 in Japan and no honest
event then: a feature that alone separates the classes, for the leak check to find."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kouza.risk.events import EventType, RiskEvent

E = EventType
START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 60


def _at(rng: random.Random, day: float, leaky_attack: bool) -> datetime:
    """A time on ``day``: honest hours 08–22 JST; leaky attacks at 03 JST."""
    base = START + timedelta(days=int(day))
    hour_jst = 3 if leaky_attack else rng.randint(8, 21)
    return base + timedelta(hours=(hour_jst - 9) % 24, minutes=rng.uniform(0, 59))


def world(seed: int, profile: str, *, honest: int = 50, attackers: int = 14, leaky: bool = False):  # type: ignore[no-untyped-def]
    """One world's (event, label) pairs."""
    rng = random.Random(f"{seed}/{profile}")
    out: list[tuple[RiskEvent, str]] = []

    def add(label: str, **fields: object) -> None:
        attributes = dict(fields.pop("attributes", {}) or {})  # type: ignore[call-overload]
        attributes |= {"sim_seed": seed, "sim_profile": profile}
        out.append((RiskEvent(attributes=attributes, **fields), label))  # type: ignore[arg-type]

    for n in range(honest):
        w, u, d = f"hw{n}", f"hu{n}", f"hd{n}"
        ip = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        day = rng.uniform(0, DAYS - 20)
        t = _at(rng, day, False)
        add("honest", type=E.SIGNUP, at=t, wallet=w, user=u, device=d, ip=ip)
        day += rng.uniform(0.5, 10)
        t = _at(rng, day, False)
        acct = f"ha{n}"
        common = {"wallet": w, "user": u, "device": d, "ip": ip, "bank": "0005", "account": acct}
        add("honest", type=E.LINK_ATTEMPT, at=t, holder_name=f"H{n}", **common)
        add("honest", type=E.LINK_CREATED, at=t + timedelta(seconds=5), **common)
        for _ in range(rng.randint(2, 5)):
            day += rng.uniform(1, 6)
            amount = rng.choice([5_000, 10_000, 20_000, 30_000])
            add("honest", type=E.TOPUP, at=_at(rng, day, False), amount=amount, **common)
            for _ in range(rng.randint(1, 5)):
                add(
                    "honest",
                    type=E.PAYMENT,
                    at=_at(rng, day + rng.uniform(0, 3), False),
                    wallet=w,
                    user=u,
                    device=d,
                    ip=ip,
                    merchant=f"m{rng.randint(0, 5)}",
                    category=rng.choice(["convenience_store", "supermarket", "electronics"]),
                    amount=rng.randint(3, 60) * 100,
                )
    for n in range(attackers):
        w, u, d = f"aw{n}", f"au{n}", f"ad{n}"
        ip = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        t = _at(rng, rng.uniform(0, DAYS - 1), leaky)
        label = f"attack:crew{n % 3}"
        add(label, type=E.SIGNUP, at=t, wallet=w, user=u, device=d, ip=ip)
        accounts = [f"victim{n}-{k}" for k in range(rng.randint(2, 5))]
        for k, acct in enumerate(accounts):
            t += timedelta(minutes=rng.uniform(1, 20))
            ok = k == len(accounts) - 1
            add(
                label,
                type=E.LINK_ATTEMPT,
                at=t,
                wallet=w,
                user=u,
                device=d,
                ip=ip,
                bank="0125",
                account=acct,
                holder_name=f"V{n}-{k}",
                outcome="ok" if ok else "wrong_pin",
            )
        common = {"wallet": w, "user": u, "device": d, "ip": ip, "bank": "0125"}
        add(label, type=E.LINK_CREATED, at=t, account=accounts[-1], **common)
        for _ in range(3):
            t += timedelta(minutes=rng.uniform(0.2, 3))
            add(label, type=E.TOPUP, at=t, amount=100_000, account=accounts[-1], **common)
        t += timedelta(minutes=5)
        add(
            label,
            type=E.PAYMENT,
            at=t,
            wallet=w,
            user=u,
            device=d,
            ip=ip,
            merchant="m9",
            category="electronics",
            amount=250_000,
        )
    return out


def write_export(path: Path, seeds: tuple[int, ...] = (1,), *, leaky: bool = False) -> Path:
    """A file of worlds ``(seed, "legacy")`` and ``(seed, "kouza")`` for each seed."""
    with path.open("w", encoding="utf-8") as sink:
        for seed in seeds:
            for profile in ("legacy", "kouza"):
                pairs = world(seed, profile, leaky=leaky)
                pairs.sort(key=lambda pair: pair[0].at)
                for event, label in pairs:
                    sink.write(json.dumps(event.to_json() | {"label": label}) + "\n")
    return path
