"""``simulate``: per seed, draw the plan once, then replay it against a fresh world per profile.

The bank (banks, branches, every citizen's account with its PIN) and the wallet (migrated schema,
merchants) are seeded once per seed into template files; each profile copies them, so every
profile of a seed starts from the same world and only the profile's configuration differs.
Seeds are independent worlds (their own population, attackers' victims and luck), so a figure
reported over several seeds says how much of it is the draw.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import queue
import tempfile
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from queue import Queue

from cryptography.hazmat.primitives.asymmetric import rsa

from kouza.bank.assembly import build_bank_runtime
from kouza.bank.core import BankConfig, CustomerData, core
from kouza.bank.models import AccountType, AuthProfile
from kouza.bank.settings import BankSettings
from kouza.identity.ekyc.devca import DevCertificateAuthority, generate_rsa_key
from kouza.identity.ekyc.devchip import DevDocumentIssuer
from kouza.kit import zengin
from kouza.kit.clock import ManualClock
from kouza.kit.security import password_cost
from kouza.runtime import Runtime
from kouza.sim.driver import Runner
from kouza.sim.population import Plan, ib_password, make_plan
from kouza.sim.profiles import ABLATION_BASE, LAYERS, PROFILES, profile
from kouza.sim.results import ProfileResult, SimulationResult
from kouza.sim.scenario import Scenario, ScenarioError
from kouza.sim.world import (
    Ekyc,
    build_world,
    migrate_bank_template,
    migrate_wallet_template,
    register_wallet_client,
)
from kouza.wallet.models import MerchantCategory
from kouza.wallet.service import wallets

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
        BankSettings(_env_file=None, var_dir=folder / "seed-var", secret_key="sim-bank-secret"),
        clock=ManualClock(scenario.start),
        senders={},
        database_url=f"sqlite:///{bank_path}",
    )
    linkers = plan.internet_banking
    seeds: dict[int, str] = {}
    try:
        with password_cost(time_cost=1, memory_cost=1024), bank_rt.db.unit_of_work() as session:
            banks = {}
            for spec in scenario.banks:
                bank = core.create_bank(
                    session,
                    code=spec.code,
                    name=spec.name,
                    name_kana="ｷﾞﾝｺｳ",
                    config=BankConfig(
                        auth_profile=AuthProfile(spec.profile.value),
                        monitor_failed_links=spec.monitoring,
                    ),
                )
                home = zengin.branch(spec.code, zengin.home_branch(spec.code))
                branch = core.add_branch(session, bank, code=home.code, name=home.name)
                banks[spec.code] = (bank, branch)
            for citizen in plan.citizens:
                bank, branch = banks[citizen.bank_code]
                internet_banking = citizen.index in linkers
                customer = core.add_customer(
                    session,
                    bank,
                    CustomerData(
                        name_kanji=citizen.kanji,
                        name_kana=citizen.kana,
                        birth_date=citizen.birth_date,
                        address=citizen.address,
                        phone="+81" + citizen.phone[1:],
                        email=citizen.email,
                    ),
                    internet_banking_password=ib_password(citizen) if internet_banking else None,
                )
                if internet_banking:
                    _, seeds[citizen.index] = core.add_otp_device(
                        session, customer, label="hardware token"
                    )
                core.open_account(
                    session,
                    customer,
                    branch=branch,
                    account_type=AccountType.ORDINARY,
                    number=citizen.number,
                    pin=citizen.pin,
                    balance=citizen.balance,
                )
        secret = register_wallet_client(bank_rt)
    finally:
        bank_rt.db.dispose()
    legacy = [spec.code for spec in scenario.banks if spec.profile.value != "oauth"]
    return Templates(bank_path, wallet_path, secret, legacy, seeds)


def simulate(
    scenario: Scenario,
    *,
    profiles: list[str] | None = None,
    seeds: list[int] | None = None,
    population_scale: float = 1.0,
    workdir: Path | None = None,
    progress: Progress | None = None,
    export_events: Path | None = None,
    inspect: Callable[[Runner], None] | None = None,
    jobs: int = 1,
) -> SimulationResult:
    """Run ``scenario`` once per seed and defence profile; the same seeds give the same figures.

    Each seed (default: the scenario's own) is an independent world: the scenario with that
    seed, its own plan and its own template databases. Every (seed, profile) pair is one task;
    with ``jobs`` > 1 the tasks (and the seeding of each seed's templates) run in that many
    processes at once, and the figures do not depend on it. ``population_scale`` multiplies the
    honest population (:func:`scale_population`). ``inspect`` is called with each world's runner
    while its databases are still open (in this process, so it implies ``jobs=1``).
    """
    names = profiles or list(scenario.defences)
    _check_profiles(names)
    if jobs < 1:
        raise ScenarioError("jobs must be at least 1")
    seeds = [scenario.seed] if seeds is None else list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ScenarioError(f"seeds must be distinct and at least one, got {seeds}")
    scaled = scale_population(scenario, population_scale)
    result = SimulationResult(
        scenario=scenario.name,
        seeds=seeds,
        start=scenario.start.isoformat(),
        days=scenario.days,
        bank_names={bank.code: bank.name for bank in scenario.banks},
        population_scale=population_scale,
        wallet_share=scaled.population.wallet_share,
    )
    with tempfile.TemporaryDirectory(prefix="kouza-sim-", dir=workdir) as tmp:
        folder = Path(tmp)
        worlds = {seed: scaled.model_copy(update={"seed": seed}) for seed in seeds}
        tasks = [
            _Task(
                worlds[seed],
                name,
                folder / f"seed-{seed}",
                name if len(seeds) == 1 else f"{name} · seed {seed}",
                folder / f"seed-{seed}" / f"{name}.events.jsonl" if export_events else None,
            )
            for seed in seeds
            for name in names
        ]
        jobs = 1 if inspect is not None else min(jobs, len(tasks))
        if jobs == 1:
            measured = _in_this_process(worlds, tasks, progress, inspect)
        else:
            measured = _in_processes(worlds, tasks, jobs, progress)
        result.profiles = [measured[seed, name] for name in names for seed in seeds]
        if export_events is not None:
            _export(tasks, export_events)
    return result


def scale_population(scenario: Scenario, factor: float) -> Scenario:
    """``scenario`` with its honest population (``population.wallet_share``) times ``factor``,
    capped at every customer (1.0): a quicker, smaller run whose report says it was scaled."""
    if not math.isfinite(factor) or factor <= 0:
        raise ScenarioError(f"population scale must be a number greater than 0, got {factor}")
    if factor == 1:
        return scenario
    share = min(1.0, scenario.population.wallet_share * factor)
    return scenario.model_copy(
        update={"population": scenario.population.model_copy(update={"wallet_share": share})}
    )


def _check_profiles(names: list[str]) -> None:
    """Refuse unknown profile names up front, before any world is seeded."""
    unknown = []
    for name in names:
        try:
            profile(name)
        except KeyError:
            unknown.append(name)
    if unknown:
        known = sorted(PROFILES) + [f"{ABLATION_BASE}-without-{layer}" for layer in LAYERS]
        raise ScenarioError(f"unknown defence profiles {unknown}; known: {known}")
    if len(set(names)) != len(names):
        raise ScenarioError(f"defence profiles named twice: {names}")


@dataclass(frozen=True)
class _Task:
    """One (seed, profile) world, as a worker process receives it."""

    scenario: Scenario
    """The scenario with this world's seed (and population scale)."""
    profile: str
    folder: Path
    """The seed's folder: its templates, and one sub-folder per profile."""
    label: str
    """How progress names this world."""
    events: Path | None

    @property
    def key(self) -> tuple[int, str]:
        return self.scenario.seed, self.profile


def _seed_world(scenario: Scenario, folder: Path) -> Templates:
    """Draw one seed's plan and seed its templates (in a worker, or in this process)."""
    folder.mkdir(parents=True, exist_ok=True)
    return seed_templates(make_plan(scenario), folder)


def _in_this_process(
    worlds: dict[int, Scenario],
    tasks: list[_Task],
    progress: Progress | None,
    inspect: Callable[[Runner], None] | None,
) -> dict[tuple[int, str], ProfileResult]:
    """Seed by seed: draw the plan once, seed the templates, run every profile on them."""
    measured = {}
    for seed, scenario in worlds.items():
        plan = make_plan(scenario)
        mine = [task for task in tasks if task.scenario.seed == seed]
        mine[0].folder.mkdir(parents=True, exist_ok=True)
        templates = seed_templates(plan, mine[0].folder)  # _seed_world, keeping the plan
        for task in mine:
            measured[task.key] = _run_profile(task, templates, plan, progress, inspect)
    return measured


def _run_profile(
    task: _Task,
    templates: Templates,
    plan: Plan | None,
    progress: Progress | None,
    inspect: Callable[[Runner], None] | None = None,
) -> ProfileResult:
    """Build the world from the seed's templates, run the plan, measure, export."""
    scenario = task.scenario
    plan = plan or make_plan(scenario)
    card_key: rsa.RSAPrivateKey = generate_rsa_key()
    ca = DevCertificateAuthority.create(now=scenario.start, root_key=generate_rsa_key())
    clock = ManualClock(scenario.start)
    ekyc = Ekyc(ca, DevDocumentIssuer.create(now=scenario.start), clock)
    world = build_world(
        profile(task.profile),
        folder=task.folder / task.profile,
        clock=clock,
        bank_template=templates.bank,
        wallet_template=templates.wallet,
        client_secret=templates.client_secret,
        legacy_banks=templates.legacy_banks,
        ekyc=ekyc,
        totp_seeds=templates.totp_seeds,
    )
    try:
        merchants = _merchants(world.rt, plan)
        runner = Runner(plan, world, card_key=card_key, ekyc=ekyc, merchants=merchants)
        total = len(plan.actions)

        def tick(done: int) -> None:
            if progress is not None:
                progress(task.label, done, total)

        measured = runner.run(tick)
        measured.seed = scenario.seed
        runner.check_against_bank()
        if inspect is not None:
            inspect(runner)
        if task.events is not None:
            with task.events.open("w", encoding="utf-8") as sink:
                runner.export_events(sink)
        return measured
    finally:
        world.close()


def _seed_worker(scenario: Scenario, folder: Path) -> Templates:
    warnings.simplefilter("ignore", DeprecationWarning)
    return _seed_world(scenario, folder)


def _worker(task: _Task, templates: Templates, ticks: Queue[tuple[str, int, int]]) -> ProfileResult:
    warnings.simplefilter("ignore", DeprecationWarning)
    return _run_profile(
        task, templates, None, lambda label, done, total: ticks.put((label, done, total))
    )


def _in_processes(
    worlds: dict[int, Scenario], tasks: list[_Task], jobs: int, progress: Progress | None
) -> dict[tuple[int, str], ProfileResult]:
    """Seed every seed's templates, then run its profiles, in ``jobs`` fresh processes.

    A seed's profiles are submitted as soon as its templates exist, so seeding one seed
    overlaps with running the worlds of another. The first failure cancels what has not
    started and is raised.
    """
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(jobs, mp_context=context) as pool:
        ticks: Queue[tuple[str, int, int]] = manager.Queue()
        try:
            folders = {task.scenario.seed: task.folder for task in tasks}
            seeding = {
                pool.submit(_seed_worker, scenario, folders[seed]): seed
                for seed, scenario in worlds.items()
            }
            running: dict[Future[ProfileResult], _Task] = {}
            while seeding or not all(future.done() for future in running):
                for seeded in [seeded for seeded in seeding if seeded.done()]:
                    seed = seeding.pop(seeded)
                    templates = seeded.result()
                    for task in tasks:
                        if task.scenario.seed == seed:
                            running[pool.submit(_worker, task, templates, ticks)] = task
                for future in running:
                    if future.done() and future.exception() is not None:
                        future.result()
                _relay(ticks, progress, timeout=0.2)
            while not ticks.empty():
                _relay(ticks, progress, timeout=None)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        return {task.key: future.result() for future, task in running.items()}


def _relay(
    ticks: Queue[tuple[str, int, int]], progress: Progress | None, timeout: float | None
) -> None:
    """Pass one worker's progress tick on (waiting at most ``timeout`` for one)."""
    try:
        label, done, total = ticks.get(timeout=timeout) if timeout else ticks.get_nowait()
    except queue.Empty:
        return
    if progress is not None:
        progress(label, done, total)


def _export(tasks: list[_Task], sink_path: Path) -> None:
    """Every world's events in one JSON-lines file, seed by seed and profile by profile, each
    event also labelled with its world's seed (``attributes.sim_seed``)."""
    sink_path.parent.mkdir(parents=True, exist_ok=True)
    with sink_path.open("w", encoding="utf-8") as sink:
        for task in tasks:
            assert task.events is not None
            with task.events.open(encoding="utf-8") as source:
                for line in source:
                    record = json.loads(line)
                    record["attributes"] = {
                        **record.get("attributes", {}),
                        "sim_seed": task.scenario.seed,
                    }
                    sink.write(json.dumps(record, ensure_ascii=False) + "\n")


def _merchants(rt: Runtime, plan: Plan) -> list[tuple[uuid.UUID, str, str]]:
    """Create the plan's merchants in this world; (id, category, static QR) each."""
    made = []
    with rt.db.unit_of_work() as session:
        for name, category in plan.merchants:
            merchant = wallets.create_merchant(
                session, name=name, category=MerchantCategory(category)
            )
            qr = wallets.merchant_qr(session, merchant_id=merchant.id)
            made.append((merchant.id, category, qr))
    return made
