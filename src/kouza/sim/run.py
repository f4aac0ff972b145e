"""``simulate``: draw the plan once, then replay it against a fresh world per defence profile.

The bank (banks, branches, every citizen's account with its PIN) and the wallet (migrated schema,
merchants) are seeded once into template files; each profile copies them, so every profile
starts from the same world and only the profile's configuration differs.
"""

from __future__ import annotations

import multiprocessing
import queue
import tempfile
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from queue import Queue

from cryptography.hazmat.primitives.asymmetric import rsa

from kouza.banks.bank.core import BankConfig, CustomerData, core
from kouza.banks.bank.models import AccountType, AuthProfile
from kouza.banks.bank.runtime import build_bank_runtime
from kouza.banks.bank.settings import BankSettings
from kouza.identity.ekyc.devca import DevCertificateAuthority, generate_rsa_key
from kouza.identity.ekyc.devchip import DevDocumentIssuer
from kouza.kit.clock import ManualClock
from kouza.kit.runtime import Runtime
from kouza.kit.security import password_cost
from kouza.sim.population import Plan, ib_password, make_plan
from kouza.sim.profiles import PROFILES
from kouza.sim.results import ProfileResult, SimulationResult
from kouza.sim.scenario import Scenario, ScenarioError
from kouza.wallet.models import MerchantCategory
from kouza.wallet.service import wallets

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kouza.sim.driver import Runner
    from kouza.sim.world import (
        Ekyc,
        build_world,
        migrate_bank_template,
        migrate_wallet_template,
        register_wallet_client,
    )

Progress = Callable[[str, int, int], None]
"""Called with (profile, actions done since last call, total actions of the profile)."""


@dataclass
class Templates:
    """The seeded databases every profile's world starts from."""

    bank: Path
    wallet: Path
    client_secret: str
    legacy_banks: list[str]
    totp_seeds: dict[int, str]
    """Citizen index → base32 seed of their internet-banking OTP token (honest linkers)."""


def seed_templates(plan: Plan, folder: Path) -> Templates:
    """Create the bank and wallet template databases for ``plan``."""
    scenario = plan.scenario
    bank_path, wallet_path = folder / "bank-template.db", folder / "wallet-template.db"
    migrate_bank_template(bank_path)
    migrate_wallet_template(wallet_path)
    bank_rt = build_bank_runtime(
        BankSettings(_env_file=None, var_dir=folder / "seed-var",
                     secret_key="sim-bank-secret"),
        clock=ManualClock(scenario.start), senders={}, database_url=f"sqlite:///{bank_path}")
    linkers = plan.internet_banking
    seeds: dict[int, str] = {}
    try:
        with password_cost(time_cost=1, memory_cost=1024), bank_rt.db.unit_of_work() as session:
            banks = {}
            for spec in scenario.banks:
                bank = core.create_bank(
                    session, code=spec.code, name=spec.name, name_kana="ｷﾞﾝｺｳ",
                    config=BankConfig(auth_profile=AuthProfile(spec.profile.value),
                                      monitor_failed_links=spec.monitoring))
                branch = core.add_branch(session, bank, code="018" if spec.code == "9900"
                                         else "100", name="本店")
                banks[spec.code] = (bank, branch)
            for citizen in plan.citizens:
                bank, branch = banks[citizen.bank_code]
                internet_banking = citizen.index in linkers
                customer = core.add_customer(session, bank, CustomerData(
                    name_kanji=citizen.kanji, name_kana=citizen.kana,
                    birth_date=citizen.birth_date, address=citizen.address,
                    phone="+81" + citizen.phone[1:],
                    email=citizen.email),
                    internet_banking_password=ib_password(citizen) if internet_banking else None)
                if internet_banking:
                    _, seeds[citizen.index] = core.add_otp_device(session, customer,
                                                                  label="hardware token")
                core.open_account(session, customer, branch=branch,
                                  account_type=AccountType.ORDINARY, number=citizen.number,
                                  pin=citizen.pin, balance=citizen.balance)
        secret = register_wallet_client(bank_rt)
    finally:
        bank_rt.db.dispose()
    legacy = [spec.code for spec in scenario.banks if spec.profile.value != "oauth"]
    return Templates(bank_path, wallet_path, secret, legacy, seeds)


def simulate(
    scenario: Scenario,
    *,
    profiles: list[str] | None = None,
    workdir: Path | None = None,
    progress: Progress | None = None,
    export_events: Path | None = None,
    inspect: Callable[[Runner], None] | None = None,
    jobs: int = 1,
) -> SimulationResult:
    """Run ``scenario`` once per defence profile; the same seed gives the same figures.

    Profiles are independent worlds: with ``jobs`` > 1 they run in that many processes at once
    (the figures do not depend on it). ``inspect`` is called with each profile's runner while its
    databases are still open (in this process, so it implies ``jobs=1``).
    """
    names = profiles or list(scenario.defences)
    unknown = [name for name in names if name not in PROFILES]
    if unknown:
        raise ScenarioError(f"unknown defence profiles {unknown}; known: {sorted(PROFILES)}")
    if jobs < 1:
        raise ScenarioError("jobs must be at least 1")
    plan = make_plan(scenario)
    result = SimulationResult(
        scenario=scenario.name, seed=scenario.seed, start=scenario.start.isoformat(),
        days=scenario.days, bank_names={bank.code: bank.name for bank in scenario.banks})
    with tempfile.TemporaryDirectory(prefix="kouza-sim-", dir=workdir) as tmp:
        folder = Path(tmp)
        templates = seed_templates(plan, folder)
        jobs = 1 if inspect is not None else min(jobs, len(names))
        tasks = [_Task(scenario, name, folder, templates,
                       folder / f"{name}.events.jsonl" if export_events else None)
                 for name in names]
        if jobs == 1:
            for task in tasks:
                result.profiles.append(_run_profile(task, plan, progress, inspect))
        else:
            result.profiles.extend(_in_processes(tasks, jobs, progress))
        if export_events is not None:
            export_events.parent.mkdir(parents=True, exist_ok=True)
            with export_events.open("w", encoding="utf-8") as sink:
                for task in tasks:
                    assert task.events is not None
                    sink.write(task.events.read_text(encoding="utf-8"))
    return result


@dataclass(frozen=True)
class _Task:
    """One profile's run, as a worker process receives it."""

    scenario: Scenario
    profile: str
    folder: Path
    templates: Templates
    events: Path | None


def _run_profile(task: _Task, plan: Plan | None, progress: Progress | None,
                 inspect: Callable[[Runner], None] | None = None) -> ProfileResult:
    """Build the profile's world from the templates, run the plan, measure, export."""
    scenario = task.scenario
    plan = plan or make_plan(scenario)
    card_key: rsa.RSAPrivateKey = generate_rsa_key()
    ca = DevCertificateAuthority.create(now=scenario.start, root_key=generate_rsa_key())
    clock = ManualClock(scenario.start)
    ekyc = Ekyc(ca, DevDocumentIssuer.create(now=scenario.start), clock)
    templates = task.templates
    world = build_world(
        PROFILES[task.profile], folder=task.folder / task.profile, clock=clock,
        bank_template=templates.bank, wallet_template=templates.wallet,
        client_secret=templates.client_secret, legacy_banks=templates.legacy_banks, ekyc=ekyc,
        totp_seeds=templates.totp_seeds)
    try:
        merchants = _merchants(world.rt, plan)
        runner = Runner(plan, world, card_key=card_key, ekyc=ekyc, merchants=merchants)
        total = len(plan.actions)

        def tick(done: int) -> None:
            if progress is not None:
                progress(task.profile, done, total)

        measured = runner.run(tick)
        runner.check_against_bank()
        if inspect is not None:
            inspect(runner)
        if task.events is not None:
            with task.events.open("w", encoding="utf-8") as sink:
                runner.export_events(sink)
        return measured
    finally:
        world.close()


def _worker(task: _Task, ticks: Queue[tuple[str, int, int]]) -> ProfileResult:
    warnings.simplefilter("ignore", DeprecationWarning)
    return _run_profile(task, None, lambda name, done, total: ticks.put((name, done, total)))


def _in_processes(tasks: list[_Task], jobs: int,
                  progress: Progress | None) -> list[ProfileResult]:
    """Run the tasks in ``jobs`` fresh processes; results in the tasks' order."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(jobs, mp_context=context) as pool:
        ticks: Queue[tuple[str, int, int]] = manager.Queue()
        futures = [pool.submit(_worker, task, ticks) for task in tasks]
        while not all(future.done() for future in futures):
            try:
                name, done, total = ticks.get(timeout=0.2)
            except queue.Empty:
                continue
            if progress is not None:
                progress(name, done, total)
        while not ticks.empty():
            name, done, total = ticks.get()
            if progress is not None:
                progress(name, done, total)
        return [future.result() for future in futures]


def _merchants(rt: Runtime, plan: Plan) -> list[tuple[uuid.UUID, str, str]]:
    """Create the plan's merchants in this world; (id, category, static QR) each."""
    made = []
    with rt.db.unit_of_work() as session:
        for name, category in plan.merchants:
            merchant = wallets.create_merchant(session, name=name,
                                               category=MerchantCategory(category))
            qr = wallets.merchant_qr(session, merchant_id=merchant.id)
            made.append((merchant.id, category, qr))
    return made
