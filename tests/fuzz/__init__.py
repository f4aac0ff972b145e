"""Fuzzing both APIs with schemathesis against real servers: ``python -m tests.fuzz``.

Not collected by pytest (no ``test_*`` modules): ``.ci/run`` starts it after ``make test``.
:mod:`tests.fuzz.__main__` starts the wallet and bank APIs on a fresh SQLite in a temporary
directory, provisions real credentials, and runs ``st run --checks all`` on every operation of
each API; :mod:`tests.fuzz.hooks` gives schemathesis a credential per security scheme.
Decisions: ADR 0020, "Fuzzing".
"""
