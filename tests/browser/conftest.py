"""Browser tests: Playwright (pytest-playwright) driving Debian's Chromium against real servers.

* Chromium is ``/usr/bin/chromium`` (``KOUZA_CHROMIUM`` overrides); Playwright never downloads a
  browser. Without it every test here is skipped with the reason — unless
  ``KOUZA_REQUIRE_BROWSER=1`` (CI sets it: ``.ci/run`` installs ``chromium`` and axe-core), where
  a missing browser fails.
* :func:`assert_accessible` injects axe-core, installed from the npm registry into
  ``tests/browser/node_modules`` by ``npm ci`` (``tests/browser/package.json``), and fails on
  any serious or critical violation.
* :class:`LiveWorld` (fixture ``live_world``): the wallet and the bank, each on its own uvicorn
  server on a free loopback port, each on its own SQLite file, wired as in production — the
  wallet reaches the bank API over HTTP with ``private_key_jwt``, the bank's webhooks come back
  over HTTP, and the browser follows the OAuth redirects between the two origins.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from kouza.api.app import create_app
from kouza.assembly import build_runtime
from kouza.bank.app import create_bank_app
from kouza.bank.assembly import build_bank_runtime
from kouza.bank.migrate import upgrade as upgrade_bank
from kouza.bank.models import AuthProfile
from kouza.bank.runtime import BankRuntime
from kouza.bank.settings import BankSettings
from kouza.config import Settings
from kouza.kit.migrate import upgrade
from kouza.kit.notify import MemoryMailbox
from kouza.linking.keys import client_jwks
from kouza.runtime import Runtime
from tests.bank.helpers import Holder, make_bank, make_client, make_holder
from tests.browser.live import free_port, serve
from tests.linking.oauth_support import IbHolder, ib_holder_at

HERE = Path(__file__).parent
CHROMIUM = Path(os.environ.get("KOUZA_CHROMIUM", "/usr/bin/chromium"))
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
REQUIRED = os.environ.get("KOUZA_REQUIRE_BROWSER") == "1"
STAFF_TOKEN = "browser-staff-token"
LEGACY_BANK = "0125"
OAUTH_BANK = "0010"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test here is a ``browser`` test; without Chromium they skip (or fail in CI)."""
    for item in items:
        if HERE not in Path(str(item.fspath)).parents:
            continue
        item.add_marker(pytest.mark.browser)
        if not CHROMIUM.exists() and not REQUIRED:
            item.add_marker(
                pytest.mark.skip(reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
            )


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's Chromium, headless, without the background connections a closed network refuses."""
    if not CHROMIUM.exists():
        pytest.fail(f"KOUZA_REQUIRE_BROWSER=1 but there is no Chromium at {CHROMIUM}")
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    """English pages by default; CSP bypassed only so that axe-core can be injected (the pages'
    own policy forbids any script not served by them — tests/browser/test_headers.py)."""
    return {
        **browser_context_args,
        "locale": "en-US",
        "viewport": {"width": 1280, "height": 900},
        "bypass_csp": True,
    }


IMPACTS_THAT_FAIL = ("serious", "critical")


def assert_accessible(page: Any, what: str = "") -> None:
    """axe-core finds no serious or critical violation on the page as it is now."""
    if not AXE.exists():
        message = f"axe-core is not installed at {AXE}: run npm ci --prefix tests/browser"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [v for v in result["violations"] if v.get("impact") in IMPACTS_THAT_FAIL]
    summary = "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(node["target"][0] if node["target"] else "?" for node in v["nodes"][:5])
        for v in bad
    )
    assert not bad, f"axe found serious/critical violations on {what or page.url}:\n{summary}"


@dataclass
class LiveWorld:
    """The wallet and the bank, served for real."""

    rt: Runtime
    bank_rt: BankRuntime
    wallet_url: str
    bank_url: str
    mailbox: MemoryMailbox
    bank_mailbox: MemoryMailbox
    legacy_victim: Holder
    oauth_holder: Holder
    ib_holder: IbHolder
    """A holder at the OAuth bank with internet banking (password + TOTP), branch 100."""
    holders: dict[str, Holder] = field(default_factory=dict)

    def staff(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {STAFF_TOKEN}"}


@pytest.fixture
def live_world(tmp_path: Path) -> Iterator[LiveWorld]:
    wallet_port, bank_port = free_port(), free_port()
    wallet_url = f"http://127.0.0.1:{wallet_port}"
    bank_url = f"http://127.0.0.1:{bank_port}"
    bank_mailbox = MemoryMailbox()
    bank_settings = BankSettings(
        var_dir=tmp_path / "bank",
        secret_key="browser-bank-secret-not-for-production",
        staff_token=STAFF_TOKEN,
        issuer=bank_url,  # the public URL: OAuth metadata, PAR and DPoP ``htu`` use it
    )
    bank_rt = build_bank_runtime(
        bank_settings,
        senders={"email": bank_mailbox, "sms": bank_mailbox, "post": bank_mailbox},
        database_url=f"sqlite:///{tmp_path / 'bank.db'}",
    )
    upgrade_bank(bank_rt.db.engine)
    make_bank(bank_rt, LEGACY_BANK)
    make_bank(bank_rt, OAUTH_BANK, profile=AuthProfile.OAUTH)
    legacy_victim = make_holder(
        bank_rt,
        bank_code=LEGACY_BANK,
        number="1234567",
        pin="4321",
        balance=500_000,
        name_kana="ﾔﾏﾀﾞ ﾀﾛｳ",
        email="taro@example.jp",
    )
    oauth_holder = make_holder(
        bank_rt,
        bank_code=OAUTH_BANK,
        number="7654321",
        pin="1111",
        balance=500_000,
        name_kana="ｻﾄｳ ﾊﾅｺ",
        email="hanako@example.jp",
    )
    ib = ib_holder_at(bank_rt)
    client_id, secret = make_client(bank_rt, webhook_url=f"{wallet_url}/v1/banks/webhooks")

    mailbox = MemoryMailbox()
    settings = Settings(
        var_dir=tmp_path / "wallet",
        secret_key="browser-wallet-secret-not-for-production",
        bank_api_url=bank_url,
        bank_client_id=client_id,
        bank_client_secret=secret,
        bank_issuer=bank_settings.issuer,
        bank_oauth_redirect_uri=f"{wallet_url}/app/bank-callback",
    )
    rt = build_runtime(
        settings,
        senders={"email": mailbox, "sms": mailbox},
        database_url=f"sqlite:///{tmp_path / 'wallet.db'}",
    )
    upgrade(rt.db.engine)
    with serve(create_bank_app(bank_rt), port=bank_port), serve(create_app(rt), port=wallet_port):
        answer = httpx.put(
            f"{bank_url}/v1/counter/operators/{client_id}/oauth-registration",
            json={"redirect_uris": [settings.bank_oauth_redirect_uri], "jwks": client_jwks(rt)},
            headers={"Authorization": f"Bearer {STAFF_TOKEN}"},
        )
        assert answer.status_code == 201, answer.text
        yield LiveWorld(
            rt,
            bank_rt,
            wallet_url,
            bank_url,
            mailbox,
            bank_mailbox,
            legacy_victim,
            oauth_holder,
            ib,
        )
    rt.db.dispose()
    bank_rt.db.dispose()


@pytest.fixture(scope="session", autouse=True)
def _no_stray_browser_profiles() -> Iterator[None]:
    yield
    shutil.rmtree(HERE / ".playwright", ignore_errors=True)
