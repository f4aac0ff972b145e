"""Wallets, merchants, top-ups, payments, refunds, transfers and limits."""
