"""The ops tests reuse linking's in-process wallet + bank world (tests/linking/conftest.py)."""

from tests.linking.conftest import (  # noqa: F401  (pytest fixtures)
    bank_url,
    linking_bank_postgres,
    linking_bank_template,
    world,
)
