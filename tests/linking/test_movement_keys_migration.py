"""Migration 0015: the customer's key moves from ``bank_movements`` to its idempotency record.

Movements are made through the real services at the head revision, the database is taken
down to 0014 (each movement gets its key and its own hash back) and up again (each key's record
points at its movement again), and a request whose bank answer was lost before the upgrade is
resumed after it — the same movement, the same bank key, one debit.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from alembic import command

from kouza.kit.idempotency import request_hash
from kouza.kit.migrate import alembic_config, current, head, upgrade
from kouza.linking.service import linking
from tests.linking.conftest import World, is_transfer
from tests.linking.support import bank_transfer_count, charge, movements
from tests.linking.test_reviews import held_top_up, operator

OLD_MOVEMENTS = sa.table(
    "bank_movements",
    sa.column("id", sa.Uuid()),
    sa.column("idempotency_key", sa.String()),
    sa.column("request_hash", sa.String()),
)
KEYS = sa.table(
    "idempotency_keys",
    sa.column("key", sa.String()),
    sa.column("status", sa.String()),
    sa.column("request_hash", sa.String()),
)


def _rows(world: World, query: Any) -> list[Any]:
    with world.rt.db.engine.connect() as connection:
        return list(connection.execute(query))


def _records(world: World) -> dict[str, tuple[str, str | None]]:
    """key → (status, resource), read without the model (it follows the head revision)."""
    query = sa.text("SELECT key, status, resource FROM idempotency_keys")
    return {row.key: (row.status, row.resource) for row in _rows(world, query)}


def _downgrade(world: World, revision: str) -> None:
    config = alembic_config()
    with world.rt.db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def test_keys_move_down_and_back_up(world: World) -> None:
    linked, held = held_top_up(world)  # key "big", ¥100,000 held for review
    rejected = world.wallet.post(
        f"/v1/ops/bank-reviews/{held}/reject", json={"reason": "not hers"}, headers=operator(world)
    )
    assert rejected.status_code == 200, rejected.text
    refund = rejected.json()["refund_movement_id"]
    world.transport.lose_response = is_transfer
    assert charge(world, linked, 30_000, "lost").status_code == 503
    world.transport.lose_response = lambda _request: False
    direct = linking.top_up(
        world.rt,
        user=linked.person.user,
        wallet_id=linked.person.wallet.id,
        link_id=uuid.UUID(linked.link_id),
        amount=10_000,
        idempotency_key="direct",
        ip="203.0.113.9",
    )
    by_amount = {(m.direction, m.amount): m for m in movements(world)}
    lost = by_amount["debit", 30_000]
    ids = {"big": held, "lost": str(lost.id), "direct": str(direct.id)}
    assert _records(world) == {
        "big": ("completed", f"bank_movement:{held}"),
        "lost": ("open", f"bank_movement:{lost.id}"),
        "direct": ("completed", f"bank_movement:{direct.id}"),
    }
    try:
        _downgrade(world, "0014")
        old = {str(row.id): row for row in _rows(world, sa.select(OLD_MOVEMENTS))}
        assert {key: old[ids[key]].idempotency_key for key in ids} == {k: k for k in ids}
        assert old[refund].idempotency_key == f"review-refund:{held}"
        assert old[str(lost.id)].request_hash == request_hash(["debit", linked.link_id, 30_000])
        assert old[refund].request_hash == request_hash(["review-refund", held, 100_000])
        # the older code released a failed request's key and found the movement by its own
        assert {row.key: row.status for row in _rows(world, sa.select(KEYS))} == {
            "big": "completed",
            "direct": "completed",
        }
    finally:
        upgrade(world.rt.db.engine)
    assert current(world.rt.db.engine) == head()
    assert _records(world) == {
        key: (status, f"bank_movement:{ids[key]}")
        for key, status in (
            ("big", "completed"),
            ("lost", "open"),
            ("direct", "completed"),
        )
    }
    transfers = bank_transfer_count(world)
    resumed = charge(world, linked, 30_000, "lost")
    assert resumed.status_code == 201, resumed.text
    assert (resumed.json()["id"], resumed.json()["status"]) == (str(lost.id), "posted")
    sent = [r.headers["Idempotency-Key"] for r in world.transport.requests if is_transfer(r)]
    assert sent[-1] == lost.bank_key and sent.count(lost.bank_key) == 2
    assert bank_transfer_count(world) == transfers
    assert _records(world)["lost"] == ("completed", f"bank_movement:{lost.id}")
