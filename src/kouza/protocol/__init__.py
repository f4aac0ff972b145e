"""What the wallet and the bank agree on, and the only code both import (besides ``kouza.kit``).

The bank (:mod:`kouza.bank`) is a separate system with its own database, settings and HTTP API;
the wallet's side of it (:mod:`kouza.linking`) reaches it only over HTTP. The contract between
them lives here: :mod:`kouza.protocol.webhooks`, the signed bank → operator events.
"""
