"""``kouza demo``'s world, built in a temporary folder with both systems served on free ports.

The world is built once for the module (argon2 with small parameters, as every test here
uses); then it is opened again without ``--reset`` (reused, not rebuilt) and served for the
sign-in tests, which use only what the demo printed: the operators' passwords and TOTP seeds
through the console's own sign-in form, a holder's internet-banking password and TOTP seed
through the bank portal's forms.
"""

from __future__ import annotations

import re
import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyotp
import pytest
from sqlalchemy import func, select

from kouza.bank.core import core
from kouza.controls.models import Case
from kouza.demo.build import LEGACY_BANK, OAUTH_BANK, STOLEN
from kouza.demo.run import build_demo, open_demo, wipe
from kouza.demo.systems import DemoError, Systems
from kouza.demo.world import DemoWorld
from kouza.identity.models import User
from kouza.kit.security import password_cost
from kouza.risk.events import EventType
from kouza.risk.models import RiskEventRecord
from kouza.wallet.models import Wallet

pytestmark = pytest.mark.slow
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
VICTIM_BALANCE = 650_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Built:
    folder: Path
    urls: dict[str, str]
    world: DemoWorld


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    folder = tmp_path_factory.mktemp("demo") / "var-demo"
    urls = {
        "wallet_url": f"http://127.0.0.1:{free_port()}",
        "bank_url": f"http://127.0.0.1:{free_port()}",
    }
    with password_cost(time_cost=1, memory_cost=1024):
        world = build_demo(folder, **urls)
    return Built(folder, urls, world)


@pytest.fixture(scope="module")
def served(built: Built) -> Iterator[tuple[Systems, DemoWorld]]:
    with password_cost(time_cost=1, memory_cost=1024):
        with open_demo(built.folder, **built.urls) as opened:
            yield opened


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, f"no CSRF field on {page.url}: {page.status_code}"
    return found.group(1)


class TestTheAttack:
    def test_left_refused_attempts_locked_wallets_and_open_cases(
        self, served: tuple[Systems, DemoWorld]
    ) -> None:
        systems, world = served
        with systems.rt.db.unit_of_work() as session:
            refusals = dict(
                session.execute(
                    select(RiskEventRecord.outcome, func.count())
                    .where(
                        RiskEventRecord.type == EventType.LINK_ATTEMPT.value,
                        RiskEventRecord.outcome != "ok",
                    )
                    .group_by(RiskEventRecord.outcome)
                ).all()
            )
            locked = session.scalars(select(Wallet.id).where(Wallet.status == "locked")).all()
            open_cases = session.scalars(select(Case).where(Case.status == "open")).all()
        assert refusals["verification_level_required"] == 6
        assert sum(refusals.values()) == world.attack.refused_attempts == 9
        fraud = uuid.UUID(world.attack.fraud_wallet_id)
        assert fraud in locked and len(locked) == 2
        assert sorted(str(w) for w in locked) == sorted(world.attack.locked_wallets)
        assert {case.wallet_id for case in open_cases} == set(locked)
        assert all(case.source.startswith("risk") for case in open_cases)

    def test_the_victim_was_robbed_and_his_holder_got_the_notice(
        self, served: tuple[Systems, DemoWorld]
    ) -> None:
        systems, world = served
        victim = world.holder(world.attack.victim)
        with systems.bank_rt.db.unit_of_work() as session:
            account = core.account(
                session,
                bank_code=LEGACY_BANK,
                branch_code=victim.branch,
                number=victim.account_number,
            )
            assert account.balance == VICTIM_BALANCE - STOLEN == victim.balance
        notice = systems.bank_mail["email"].file.read()
        assert any(
            m.recipient == "taro.yamada@example.jp" and world.attack.notice_reference in m.body
            for m in notice
        )
        with httpx.Client(base_url=world.bank_url) as browser:  # the notice's own page
            lookup = browser.get(f"/banks/{LEGACY_BANK}/notice")
            shown = browser.post(
                f"/banks/{LEGACY_BANK}/notice",
                data={"csrf_token": csrf_of(lookup), "reference": world.attack.notice_reference},
            )
        assert shown.status_code == 200, shown.text
        assert f"***{victim.account_number[-3:]}" in shown.text


class TestTheVerifiedCustomer:
    def test_is_linked_at_the_oauth_bank_with_a_balance_payments_and_a_transfer(
        self, served: tuple[Systems, DemoWorld]
    ) -> None:
        _, world = served
        hanako = world.customers[0]
        api = httpx.Client(base_url=world.wallet_url)
        token = api.post(
            "/v1/auth/login", json={"email": hanako.email, "password": hanako.password}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert api.get("/v1/me", headers=headers).json()["level"] == "verified"
        wallet = api.get(f"/v1/wallets/{hanako.wallet_id}", headers=headers).json()
        spent = 1_200 + 4_800 + 2_000 + 3_500
        assert wallet["balance"] == hanako.balance == 30_000 + 20_000 - spent
        links = api.get(f"/v1/wallets/{hanako.wallet_id}/bank-links", headers=headers).json()
        assert [(link["bank_code"], link["status"]) for link in links] == [(OAUTH_BANK, "active")]
        lines = api.get(f"/v1/wallets/{hanako.wallet_id}/statement", headers=headers).json()
        kinds = sorted(line["kind"] for line in lines["lines"])
        assert kinds.count("payment") == 3 and kinds.count("topup") == 2
        assert any(line["amount"] == -2_000 for line in lines["lines"])  # the transfer
        assert world.customers[1].level == "email" and world.customers[1].balance == 2_000


class TestSigningIn:
    def test_every_operator_signs_in_to_the_console_with_what_was_printed(
        self, served: tuple[Systems, DemoWorld]
    ) -> None:
        _, world = served
        assert {op.role for op in world.operators} == {"admin", "analyst", "call_centre"}
        for operator in world.operators:
            english = {"Accept-Language": "en"}
            with httpx.Client(base_url=world.wallet_url, headers=english) as browser:
                page = browser.get("/console/login")
                answer = browser.post(
                    "/console/login",
                    data={
                        "csrf_token": csrf_of(page),
                        "name": operator.name,
                        "password": operator.password,
                        "code": pyotp.TOTP(operator.totp_seed).now(),
                    },
                )
                assert answer.status_code == 303, (operator.name, answer.text)
                if operator.role == "call_centre":  # signed in; its page is another issue's
                    assert answer.headers["location"] == "/console/call-centre"
                    continue
                home = browser.get(answer.headers["location"])
                assert home.status_code == 200, (operator.name, answer.headers["location"])
                assert f"Signed in as {operator.name}" in home.text

    def test_the_victim_signs_in_to_the_bank_portal_and_sees_the_link(
        self, served: tuple[Systems, DemoWorld]
    ) -> None:
        _, world = served
        victim = world.holder(world.attack.victim)
        portal = f"/banks/{victim.bank_code}/portal"
        with httpx.Client(base_url=world.bank_url) as browser:
            page = browser.post(
                f"{portal}/login",
                data={
                    "csrf_token": csrf_of(browser.get(portal)),
                    "branch_code": victim.branch,
                    "account_number": victim.account_number,
                    "password": victim.ib_password,
                },
            )
            answer = browser.post(
                f"{portal}/otp",
                data={"csrf_token": csrf_of(page), "otp": pyotp.TOTP(victim.totp_seed).now()},
            )
            assert answer.status_code == 303, answer.text
            home = browser.get(portal)
            assert victim.name_kanji in home.text
            links = browser.get(f"{portal}/links")
            assert "ドコモ口座" in links.text


class TestRunningAgain:
    def test_without_reset_reuses_the_world(
        self, built: Built, served: tuple[Systems, DemoWorld]
    ) -> None:
        systems, world = served
        assert world == built.world
        with systems.rt.db.unit_of_work() as session:
            users = session.scalar(select(func.count()).select_from(User))
        assert users == 6  # hanako, kenji and four attackers: nothing built twice
        env = (built.folder / "wallet.env").read_text().splitlines()
        assert f"KOUZA_BANK_ISSUER={world.bank_url}" in env  # the CLI reaches this bank
        assert f"KOUZA_VAR_DIR={(built.folder / 'wallet').resolve()}" in env

    def test_a_folder_with_other_files_is_never_wiped(self, tmp_path: Path) -> None:
        (tmp_path / "notes.txt").write_text("mine")
        with pytest.raises(DemoError, match="holds more than a demo"):
            wipe(tmp_path)
        assert (tmp_path / "notes.txt").read_text() == "mine"

    def test_with_reset_rebuilds_a_new_world(self, built: Built) -> None:
        folder = built.folder.parent / "copy"
        shutil.copytree(built.folder, folder)  # the served original keeps its ports
        urls = {
            "wallet_url": f"http://127.0.0.1:{free_port()}",
            "bank_url": f"http://127.0.0.1:{free_port()}",
        }
        with pytest.raises(DemoError, match="was built for"), open_demo(folder, **urls):
            pass
        with password_cost(time_cost=1, memory_cost=1024):
            again = build_demo(folder, reset=True, **urls)
        assert again.wallet_url == urls["wallet_url"]
        assert {op.totp_seed for op in again.operators}.isdisjoint(
            op.totp_seed for op in built.world.operators
        )
        assert again.attack.notice_reference != built.world.attack.notice_reference
        assert DemoWorld.model_validate_json((folder / "demo.json").read_text()) == again
        cards = sorted(path.name for path in (folder / "devca" / "cards").iterdir())
        assert len(cards) == 4  # two cards (certificate and key each): the old ones are gone
