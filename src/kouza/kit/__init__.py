"""Infrastructure with no business words: database, clock, money, ids, idempotency, outbox."""
