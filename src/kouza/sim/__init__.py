"""The simulator: replay the 2020 incident through the real code and price every defence."""
