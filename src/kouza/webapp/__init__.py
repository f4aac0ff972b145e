"""The customer's wallet pages (``/app``): sign-up, verification, device key, eKYC, bank linking
through the bank's own pages, top-up, payments, transfers, statement and notices (ADR 0037)."""
