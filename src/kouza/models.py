"""Every table of the wallet operator: importing this module registers each domain's models on
``Base.metadata``, which Alembic's ``env.py`` and the tests compare with the migrations.

Whole ``models`` modules are imported, not class names, so a model added to a domain is seen
without touching this file (a missed import once hid the incident tooling's tables from
``alembic check``: ``tests/kit/test_migrations.py`` now checks this in a fresh interpreter).
"""

from kouza.console import models as console_models
from kouza.controls import models as controls_models
from kouza.identity import models as identity_models
from kouza.kit import idempotency, outbox
from kouza.kit.db import Base
from kouza.ledger import models as ledger_models
from kouza.linking import models as linking_models
from kouza.ops import models as ops_models
from kouza.risk import models as risk_models
from kouza.wallet import models as wallet_models

MODEL_MODULES = (
    console_models,
    controls_models,
    identity_models,
    idempotency,
    outbox,
    ledger_models,
    linking_models,
    ops_models,
    risk_models,
    wallet_models,
)
"""The modules whose classes are the wallet's tables."""

__all__ = ["MODEL_MODULES", "Base"]
