"""Controls: operator accounts, the audit chain, kill switches and cases.

The layer just above ``kit``: every domain may check a kill switch, record an audited action or
open a case for the fraud team without depending on the incident tooling (:mod:`kouza.ops`) that
works those cases.
"""
