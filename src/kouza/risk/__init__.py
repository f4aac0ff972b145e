"""Real-time risk: events, exact sliding-window features, rules as data, decisions."""
