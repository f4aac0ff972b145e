"""kouza: an e-money wallet that tops up from bank accounts, hardened against the 2020 Docomo Kouza fraud."""

__version__ = "0.1.0"
