"""Open a demo folder: reuse the world saved there, or build one (``--reset`` wipes it first)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kouza.demo.build import Builder
from kouza.demo.systems import DemoError, Systems, refuse_production, running
from kouza.demo.world import FORMAT, DemoWorld

DEFAULT_FOLDER = Path("var/demo")
DEFAULT_SEED = 2020
DEMO_ENTRIES = frozenset({"wallet", "bank", "devca", "demo.json", "wallet.env", "bank.env"})
"""What a demo folder holds; a folder with anything else is not wiped."""


def wipe(folder: Path) -> None:
    """Remove a demo folder; refuses a folder that holds anything but a demo's files."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise DemoError(f"{folder} is not a directory")
    strangers = sorted(entry.name for entry in folder.iterdir() if entry.name not in DEMO_ENTRIES)
    if strangers:
        raise DemoError(
            f"{folder} holds more than a demo ({', '.join(strangers[:3])}); "
            "choose another --dir or empty it yourself"
        )
    shutil.rmtree(folder)


def saved_world(folder: Path) -> DemoWorld | None:
    """The world saved in ``folder``; None when there is none, or of another format."""
    path = folder / "demo.json"
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        return None
    return DemoWorld.model_validate(raw)


@contextmanager
def open_demo(
    folder: Path,
    *,
    wallet_url: str,
    bank_url: str,
    seed: int = DEFAULT_SEED,
    reset: bool = False,
    host: str | None = None,
) -> Iterator[tuple[Systems, DemoWorld]]:
    """Both systems served on ``folder`` with its world: the saved one, or a new one built
    when there is none (or ``reset``). A world built for other URLs is refused: the bank
    registered the wallet's redirect URI and webhook URL with their ports."""
    refuse_production()
    world = None if reset else saved_world(folder)
    if world is None:
        wipe(folder)
    elif (world.wallet_url, world.bank_url) != (wallet_url, bank_url):
        raise DemoError(
            f"the demo in {folder} was built for {world.wallet_url} and {world.bank_url}: "
            "run with those ports, or with --reset"
        )
    with running(folder, wallet_url=wallet_url, bank_url=bank_url, host=host) as systems:
        if world is None:
            world = Builder(systems, seed=seed).build()
            world.save(systems.state_file)
        yield systems, world


def build_demo(
    var_dir: Path = DEFAULT_FOLDER,
    *,
    wallet_url: str,
    bank_url: str,
    seed: int = DEFAULT_SEED,
    reset: bool = False,
) -> DemoWorld:
    """Build (or reuse) the demo world in ``var_dir`` with both systems served at their URLs
    while it is built; the servers stop when it returns."""
    with open_demo(var_dir, wallet_url=wallet_url, bank_url=bank_url, seed=seed, reset=reset) as (
        _,
        world,
    ):
        return world
