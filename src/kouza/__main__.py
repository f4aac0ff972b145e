"""``python -m kouza …``: the same command line as ``kouza …``."""

from kouza.cli.main import app

if __name__ == "__main__":
    app(prog_name="kouza")
