"""The wallet's side of bank linking: HTTP client, link records, top-ups and withdrawals."""
