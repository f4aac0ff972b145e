"""kouza: an e-money wallet that tops up from bank accounts.

Built so that the 2020 Docomo Kouza fraud cannot happen on it.
"""

__version__ = "0.1.0"
