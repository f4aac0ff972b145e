"""The bank system: a simulator of a real bank's side that speaks real protocols.

One deployment serves any number of banks (4-digit Zengin codes). Modules:

* ``models`` — its own tables on its own ``MetaData`` (``BankBase``), migrated from
  ``migrations/`` by ``migrate`` (version table ``bank_alembic_version``);
* ``settings``, ``runtime`` — ``KOUZA_BANK_*`` configuration and the injected clock, database,
  notice senders and webhook transport; ``keys`` — keys derived from the bank secret;
* ``core`` (banks, branches, customers, accounts, OTP devices, operator clients), ``kana``
  (Zengin holder names), ``linking`` (the 2020 legacy form, PIN lockout, reverse brute-force
  monitoring), ``transfers`` (debits and credits under a mandate), ``holder`` (link lookup,
  revoke, suspend, overdraft opt-in, "not me"), ``notices`` and ``outbox`` (holder notices and
  webhooks after commit), ``webhooks`` (pure JWS signing and verification), ``oauth`` (the
  ``oauth`` linking profile: PAR, private_key_jwt, PKCE, DPoP, holder login and consent);
* ``dependencies``, ``endpoints``, ``app`` — the FastAPI application; ``seed`` — realistic banks
  and customers.

It imports nothing from the wallet side (enforced by ``tests/bank/test_layering.py``).
"""
