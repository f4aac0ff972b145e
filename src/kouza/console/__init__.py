"""The operator console (``/console``): the fraud team's, the call centre's and the admins' screens,
in Japanese and English, served by the wallet app next to its API (ADR 0037)."""
