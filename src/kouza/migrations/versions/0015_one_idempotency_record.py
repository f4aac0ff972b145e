"""idempotency: one record per keyed request; bank movements lose their own key and hash

``idempotency_keys`` gains ``resource`` (what a request made that a retry must resume, unique)
and the status ``open`` (ADR 0004); ``bank_movements`` loses ``idempotency_key`` and
``request_hash`` with their unique constraint: a movement is reached from the record of the
request that made it (``resource`` = ``bank_movement:<id>``).

Existing movements are moved over, oldest first. The record of the customer's key
(``user:<owner>``, the movement's key) is pointed at its movement when it is that movement's
request: still in flight, or completed with that movement as its answer. A movement whose key
was released (its bank answer was lost, or the bank refused it) gets an ``open`` record, so the
same request retried resumes it as before. Its fingerprint is the request's one fingerprint as
the wallet computes it (:meth:`kouza.linking.movements.MoveRequest.fingerprint`, frozen here);
a device signature was never stored with a movement, so it is computed without one — a signed
request retried after the upgrade is answered 409 instead of resuming, and reconciliation still
settles its movement. A review's refund was made by the wallet, not asked for with a key: it
gets no record.

SQLite rebuilds ``bank_movements`` to drop the columns, and with foreign keys on it cannot drop
a table that rows still reference: the ``bank_movement_reviews`` rows are set aside in a
temporary table meanwhile and put back unchanged.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

import kouza.kit.db

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RESOURCE = "bank_movement:"
OLD_UNIQUE = "uq_bank_movements_wallet_id_idempotency_key"

KEYS = sa.table(
    "idempotency_keys",
    sa.column("id", sa.BigInteger()),
    sa.column("scope", sa.String()),
    sa.column("key", sa.String()),
    sa.column("request_hash", sa.String()),
    sa.column("status", sa.String()),
    sa.column("resource", sa.String()),
    sa.column("response_body", sa.JSON()),
    sa.column("created_at", kouza.kit.db.UtcDateTime()),
    sa.column("locked_until", kouza.kit.db.UtcDateTime()),
)
MOVEMENTS = sa.table(
    "bank_movements",
    sa.column("id", sa.Uuid()),
    sa.column("wallet_id", sa.Uuid()),
    sa.column("link_id", sa.Uuid()),
    sa.column("direction", sa.String()),
    sa.column("amount", sa.BigInteger()),
    sa.column("idempotency_key", sa.String()),
    sa.column("request_hash", sa.String()),
    sa.column("device_id", sa.Uuid()),
    sa.column("created_at", kouza.kit.db.UtcDateTime()),
)
WALLETS = sa.table("wallets", sa.column("id", sa.Uuid()), sa.column("user_id", sa.Uuid()))
REVIEWS = sa.table(
    "bank_movement_reviews",
    sa.column("movement_id", sa.Uuid()),
    sa.column("refund_movement_id", sa.Uuid()),
)


def _hash(payload: Any) -> str:
    """``kouza.kit.idempotency.request_hash`` as of this revision (canonical JSON, SHA-256)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _fingerprint(movement: Any) -> str:
    """The request's fingerprint, as the HTTP body of a top-up or withdrawal without a device
    signature hashes (``MoveRequest.fingerprint``)."""
    kind = "topup" if movement.direction == "debit" else "withdrawal"
    body = {
        "device_id": str(movement.device_id) if movement.device_id else None,
        "nonce": None,
        "signature": None,
        "link_id": str(movement.link_id),
        "amount": movement.amount,
    }
    return _hash([kind, str(movement.wallet_id), body])


def _refunds(connection: sa.Connection) -> dict[uuid.UUID, uuid.UUID]:
    """Refund movement id → the id of the reviewed top-up it sends back."""
    rows = connection.execute(
        sa.select(REVIEWS.c.refund_movement_id, REVIEWS.c.movement_id).where(
            REVIEWS.c.refund_movement_id.is_not(None)
        )
    )
    return {row.refund_movement_id: row.movement_id for row in rows}


def _rebuild_movements(change: Callable[[BatchOperations], None]) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("CREATE TEMP TABLE kouza_0015_reviews AS SELECT * FROM bank_movement_reviews")
        op.execute("DELETE FROM bank_movement_reviews")
    with op.batch_alter_table("bank_movements", schema=None) as batch_op:
        change(batch_op)
    if sqlite:
        op.execute("INSERT INTO bank_movement_reviews SELECT * FROM kouza_0015_reviews")
        op.execute("DROP TABLE kouza_0015_reviews")


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resource", sa.String(length=100), nullable=True))
        batch_op.create_unique_constraint(op.f("uq_idempotency_keys_resource"), ["resource"])
        batch_op.create_check_constraint(
            op.f("ck_idempotency_keys_status_valid"),
            "status IN ('in_flight', 'open', 'completed')",
        )
        batch_op.create_check_constraint(
            op.f("ck_idempotency_keys_open_has_resource"),
            "status <> 'open' OR resource IS NOT NULL",
        )
    _point_records_at_movements(op.get_bind())

    def drop(batch_op: BatchOperations) -> None:
        batch_op.drop_constraint(OLD_UNIQUE, type_="unique")
        batch_op.drop_column("request_hash")
        batch_op.drop_column("idempotency_key")

    _rebuild_movements(drop)


def _point_records_at_movements(connection: sa.Connection) -> None:
    refunds = _refunds(connection)
    movements = connection.execute(
        sa.select(MOVEMENTS, WALLETS.c.user_id)
        .join(WALLETS, WALLETS.c.id == MOVEMENTS.c.wallet_id)
        .order_by(MOVEMENTS.c.created_at, MOVEMENTS.c.id)
    ).all()
    for movement in movements:
        if movement.id in refunds:
            continue
        scope, resource = f"user:{movement.user_id}", f"{RESOURCE}{movement.id}"
        record = connection.execute(
            sa.select(KEYS).where(KEYS.c.scope == scope, KEYS.c.key == movement.idempotency_key)
        ).one_or_none()
        if record is None:
            connection.execute(
                KEYS.insert().values(
                    scope=scope,
                    key=movement.idempotency_key,
                    request_hash=_fingerprint(movement),
                    status="open",
                    resource=resource,
                    created_at=movement.created_at,
                    locked_until=movement.created_at,
                )
            )
        elif _made_it(record, movement.id):
            connection.execute(
                KEYS.update().where(KEYS.c.id == record.id).values(resource=resource)
            )
        # else: the key was released and then reused for another request; reconciliation
        # settles the movement, and that other request keeps its record


def _made_it(record: Any, movement_id: uuid.UUID) -> bool:
    """Whether ``record`` is the request that recorded the movement: one still in flight (no
    answer yet), or one whose stored answer is that movement."""
    if record.status != "completed":
        return True
    body = record.response_body
    return isinstance(body, dict) and body.get("id") == str(movement_id)


def downgrade() -> None:
    def add(batch_op: BatchOperations) -> None:
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("request_hash", sa.String(length=64), nullable=True))

    _rebuild_movements(add)
    _give_movements_their_keys(op.get_bind())

    def require(batch_op: BatchOperations) -> None:
        batch_op.alter_column("idempotency_key", existing_type=sa.String(255), nullable=False)
        batch_op.alter_column("request_hash", existing_type=sa.String(64), nullable=False)
        batch_op.create_unique_constraint(OLD_UNIQUE, ["wallet_id", "idempotency_key"])

    _rebuild_movements(require)
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_idempotency_keys_open_has_resource"), type_="check")
        batch_op.drop_constraint(op.f("ck_idempotency_keys_status_valid"), type_="check")
        batch_op.drop_constraint(op.f("uq_idempotency_keys_resource"), type_="unique")
        batch_op.drop_column("resource")


def _give_movements_their_keys(connection: sa.Connection) -> None:
    """Back to one key and hash per movement; open records are forgotten (the older code
    released a failed request's key and found the movement by its own key instead)."""
    refunds = _refunds(connection)
    keys = {
        record.resource.removeprefix(RESOURCE): record.key
        for record in connection.execute(
            sa.select(KEYS.c.resource, KEYS.c.key).where(KEYS.c.resource.like(f"{RESOURCE}%"))
        )
    }
    for movement in connection.execute(sa.select(MOVEMENTS)).all():
        reviewed = refunds.get(movement.id)
        if reviewed is not None:
            key = f"review-refund:{reviewed}"
            fingerprint = _hash(["review-refund", str(reviewed), movement.amount])
        else:
            key = keys.get(str(movement.id), f"movement:{movement.id}")
            fingerprint = _hash([movement.direction, str(movement.link_id), movement.amount])
        connection.execute(
            MOVEMENTS.update()
            .where(MOVEMENTS.c.id == movement.id)
            .values(idempotency_key=key, request_hash=fingerprint)
        )
    connection.execute(KEYS.delete().where(KEYS.c.status == "open"))
