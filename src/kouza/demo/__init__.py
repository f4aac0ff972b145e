"""``kouza demo``: a wallet and a bank in one process, filled with a small world to look at.

:mod:`kouza.demo.systems` builds both runtimes on SQLite files under one folder (default
``./var/demo``) and serves both apps with uvicorn, wired as in production (the wallet reaches the
bank over HTTP with ``private_key_jwt``, the bank's webhooks come back over HTTP, a browser
follows the OAuth redirects between the two origins). :mod:`kouza.demo.build` fills them
through the real APIs and services (customers, links, payments, an attack in progress, cases,
operators) and :mod:`kouza.demo.world` keeps what a person needs to log in, so that running
again without ``--reset`` serves the same world. Development only: the demo prints secrets, so
it refuses ``KOUZA_ENV=production`` (ADR 0036).
"""
