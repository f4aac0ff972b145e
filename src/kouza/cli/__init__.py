"""The ``kouza`` command line (typer + rich)."""
