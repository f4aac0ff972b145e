"""Bank accounts: the bank system (``banks.bank``) and, later, the wallet's client of it.

``kouza.banks.bank`` is a separate system with its own database, settings and HTTP API. It
imports nothing of the wallet side (identity, wallet, ledger, ops, api); the wallet reaches it
only over HTTP. ``kouza.banks.webhooks`` is the one contract module both sides import (the
signed bank → operator events); ``kouza.banks.linking`` is the wallet's side.
"""
