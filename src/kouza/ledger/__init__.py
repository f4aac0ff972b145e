"""Double-entry ledger: accounts, journal entries, postings, holds."""
