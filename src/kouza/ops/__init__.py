"""Operations: operator accounts, the audit trail, and (later) switches, locks, cases."""
