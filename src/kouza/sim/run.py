"""``simulate``: per seed, draw the plan once, then replay it against a fresh world per profile.

The bank (banks, branches, every citizen's account with its PIN) and the wallet (migrated schema,
merchants) are seeded once per seed into template databases; each profile starts from a copy, so
every profile of a seed starts from the same world and only the profile's configuration differs.
Seeds are independent worlds (their own population, attackers' victims and luck), so a figure
reported over several seeds says how much of it is the draw.

A population larger than the attacked world's sample (``population.honest_users``) is carried by
**honest worlds** of ``shard_size`` users each: the same banks, habits and dates, no attacker,
and the operator's switches of the attacked world replayed at the same moments; their honest
figures are added to the attacked world's (ADR 0030). Every world — (seed, profile, shard) — is
one task of a graph: seeding a world's templates, running the attacked world, then its honest
worlds. The graph runs in this process (``jobs=1``) or on Dask distributed: a local cluster of
``jobs`` worker processes, or the cluster at ``scheduler``. Shards are fixed by the scenario, never
by the number of processes, so the figures are the same however the graph is spread.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

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
from kouza.sim.population import Plan, honest_world, ib_password, make_plan, shard_sizes
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
"""Called with (profile, actions done since last call, total actions of the profile's worlds
started so far: it grows as the honest worlds of a large population start)."""
Ticks = Callable[[str, str, int, int], None]
"""What a world reports: (label, world, actions done since last call, the world's actions)."""


@dataclass
class Templates:
    """The seeded databases every profile's world starts from (their bytes: a task on another
    machine of a cluster gets them with its inputs)."""

    bank: bytes
    wallet: bytes
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
    return Templates(bank_path.read_bytes(), wallet_path.read_bytes(), secret, legacy, seeds)


def simulate(
    scenario: Scenario,
    *,
    profiles: list[str] | None = None,
    seeds: list[int] | None = None,
    population_scale: float = 1.0,
    honest_users: int | None = None,
    workdir: Path | None = None,
    progress: Progress | None = None,
    export_events: Path | None = None,
    inspect: Callable[[Runner], None] | None = None,
    jobs: int = 1,
    scheduler: str | None = None,
) -> SimulationResult:
    """Run ``scenario`` once per seed and defence profile; the same seeds give the same figures.

    Each seed (default: the scenario's own) is an independent world: the scenario with that
    seed, its own plan and its own template databases. ``honest_users`` (default: the
    scenario's ``population.honest_users``) adds honest worlds until the run carries that many
    honest users. With ``jobs`` > 1 the worlds run on a local Dask cluster of that many worker
    processes, with ``scheduler`` on the Dask cluster at that address; the figures do not
    depend on either. ``population_scale`` multiplies the honest population
    (:func:`scale_population`). ``inspect`` is called with each world's runner while its
    databases are still open (in this process, so it implies ``jobs=1`` and no scheduler).
    """
    names = profiles or list(scenario.defences)
    _check_profiles(names)
    if jobs < 1:
        raise ScenarioError("jobs must be at least 1")
    seeds = [scenario.seed] if seeds is None else list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ScenarioError(f"seeds must be distinct and at least one, got {seeds}")
    if honest_users is not None:
        scenario = with_honest_users(scenario, honest_users)
    scaled = scale_population(scenario, population_scale)
    result = SimulationResult(
        scenario=scenario.name,
        seeds=seeds,
        start=scenario.start.isoformat(),
        days=scenario.days,
        bank_names={bank.code: bank.name for bank in scenario.banks},
        population_scale=population_scale,
        wallet_share=scaled.population.wallet_share,
        honest_users=scaled.population.honest_users,
    )
    relay = _Relay(progress)
    with tempfile.TemporaryDirectory(prefix="kouza-sim-", dir=workdir) as tmp:
        parts = Path(tmp) / "events" if export_events is not None else None
        if inspect is not None or (jobs == 1 and scheduler is None):
            graph = _graph(_Eager(relay, inspect), scaled, seeds, names, parts)
        else:
            with _dask(jobs, scheduler) as client:
                graph = _graph(_OnDask(client, relay), scaled, seeds, names, parts)
        result.profiles = [graph[seed, name] for name in names for seed in seeds]
        if parts is not None and export_events is not None:
            _export(parts, seeds, names, export_events)
    return result


def with_honest_users(scenario: Scenario, users: int) -> Scenario:
    """``scenario`` carrying ``users`` honest wallet users in all (``population.honest_users``)."""
    if not 0 <= users <= 10_000_000:
        raise ScenarioError(f"the population must be 0 to 10,000,000 honest users, got {users}")
    population = scenario.population.model_copy(update={"honest_users": users})
    return scenario.model_copy(update={"population": population})


def scale_population(scenario: Scenario, factor: float) -> Scenario:
    """``scenario`` with its honest population times ``factor``: the attacked world's share of
    customers who use the wallet (``population.wallet_share``, capped at every customer) and the
    honest users in all (``population.honest_users``) — a quicker, smaller run whose report says
    it was scaled."""
    if not math.isfinite(factor) or factor <= 0:
        raise ScenarioError(f"population scale must be a number greater than 0, got {factor}")
    if factor == 1:
        return scenario
    share = min(1.0, scenario.population.wallet_share * factor)
    users = scenario.population.honest_users
    update: dict[str, Any] = {"wallet_share": share}
    if users is not None:
        update["honest_users"] = round(users * factor)
    return scenario.model_copy(update={"population": scenario.population.model_copy(update=update)})


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


# --- the graph of worlds ----------------------------------------------------------------------


@dataclass(frozen=True)
class WorldTask:
    """One world: a profile run on one seed's attacked world (``shard`` 0) or on one of its
    honest worlds."""

    scenario: Scenario
    """The attacked world's scenario with this seed, or an honest world's (:func:`honest_world`)."""
    profile: str
    shard: int
    label: str
    """How progress names the profile (and seed) this world counts for."""
    events: Path | None
    """Where this world's labelled events go (a part of ``--export-events``)."""

    @property
    def name(self) -> str:
        return f"{self.scenario.seed}/{self.profile}/{self.shard}"


class _Executor(Protocol):
    """Runs a task once its inputs exist: in this process at once, or on a Dask cluster."""

    def seed(self, scenario: Scenario, shard: int) -> Any: ...

    def run(self, task: WorldTask, templates: Any, attacked: Any) -> Any: ...

    def gather(
        self, handles: dict[tuple[int, str, int], Any]
    ) -> dict[tuple[int, str, int], ProfileResult]: ...


def _graph(
    executor: _Executor,
    scenario: Scenario,
    seeds: list[int],
    names: list[str],
    parts: Path | None,
) -> dict[tuple[int, str], ProfileResult]:
    """Submit every world of the run, gather them, and fold each seed and profile's honest
    worlds into its attacked world (in shard order: the same sums whatever ran where)."""
    handles: dict[tuple[int, str, int], Any] = {}
    for seed in seeds:
        attacked_world = scenario.model_copy(update={"seed": seed})
        sizes = shard_sizes(attacked_world, len(make_plan(attacked_world).honest))
        honest = {k: honest_world(attacked_world, size) for k, size in enumerate(sizes, 1)}
        templates = {0: executor.seed(attacked_world, 0)}
        templates |= {k: executor.seed(world, k) for k, world in honest.items()}
        for name in names:
            label = name if len(seeds) == 1 else f"{name} · seed {seed}"
            attacked = executor.run(
                WorldTask(attacked_world, name, 0, label, _part(parts, seed, name, 0)),
                templates[0],
                None,
            )
            handles[seed, name, 0] = attacked
            for k, world in honest.items():
                handles[seed, name, k] = executor.run(
                    WorldTask(world, name, k, label, _part(parts, seed, name, k)),
                    templates[k],
                    attacked,
                )
    measured = executor.gather(handles)
    folded: dict[tuple[int, str], ProfileResult] = {}
    for (seed, name, shard), measured_world in sorted(measured.items()):
        if shard == 0:
            folded[seed, name] = measured_world
        else:
            folded[seed, name].absorb(measured_world)
    for result in folded.values():
        result.time_to_money_hours.sort()
    return folded


def _part(parts: Path | None, seed: int, name: str, shard: int) -> Path | None:
    return None if parts is None else parts / f"{seed}-{name}-{shard}.jsonl"


def seed_world(scenario: Scenario, shard: int) -> Templates:
    """Draw a world's plan and seed its template databases (a task of the graph)."""
    warnings.simplefilter("ignore", DeprecationWarning)
    with tempfile.TemporaryDirectory(prefix="kouza-seed-") as tmp:
        return seed_templates(make_plan(scenario, shard), Path(tmp))


def run_world(
    task: WorldTask,
    templates: Templates,
    attacked: ProfileResult | None,
    ticks: Ticks | None = None,
    inspect: Callable[[Runner], None] | None = None,
) -> ProfileResult:
    """Build the world from its templates, run its plan (replaying the attacked world's
    switches in an honest world), measure, export its events (a task of the graph)."""
    warnings.simplefilter("ignore", DeprecationWarning)
    scenario = task.scenario
    plan = make_plan(scenario, task.shard)
    card_key: rsa.RSAPrivateKey = generate_rsa_key()
    ca = DevCertificateAuthority.create(now=scenario.start, root_key=generate_rsa_key())
    clock = ManualClock(scenario.start)
    ekyc = Ekyc(ca, DevDocumentIssuer.create(now=scenario.start), clock)
    with tempfile.TemporaryDirectory(prefix="kouza-world-") as tmp:
        folder = Path(tmp)
        bank_template, wallet_template = folder / "bank-template.db", folder / "wallet-template.db"
        bank_template.write_bytes(templates.bank)
        wallet_template.write_bytes(templates.wallet)
        world = build_world(
            profile(task.profile),
            folder=folder / task.profile,
            clock=clock,
            bank_template=bank_template,
            wallet_template=wallet_template,
            client_secret=templates.client_secret,
            legacy_banks=templates.legacy_banks,
            ekyc=ekyc,
            totp_seeds=templates.totp_seeds,
        )
        try:
            merchants = _merchants(world.rt, plan)
            runner = Runner(
                plan,
                world,
                card_key=card_key,
                ekyc=ekyc,
                merchants=merchants,
                controls=attacked.controls if attacked is not None else None,
            )
            total = len(plan.actions)

            def tick(done: int) -> None:
                if ticks is not None:
                    ticks(task.label, task.name, done, total)

            measured = runner.run(tick)
            measured.seed = scenario.seed
            runner.check_against_bank()
            if inspect is not None:
                inspect(runner)
            if task.events is not None:
                task.events.parent.mkdir(parents=True, exist_ok=True)
                with task.events.open("w", encoding="utf-8") as sink:
                    runner.export_events(sink)
            return measured
        finally:
            world.close()


class _Relay:
    """Turns the worlds' ticks into one progress line per profile (and seed), whose total grows
    as that profile's worlds start."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.totals: dict[str, int] = {}
        self.seen: set[str] = set()

    def __call__(self, label: str, world: str, done: int, total: int) -> None:
        if world not in self.seen:
            self.seen.add(world)
            self.totals[label] = self.totals.get(label, 0) + total
        if self.progress is not None:
            self.progress(label, done, self.totals[label])


class _Eager:
    """Every task at once, in this process, in the order the graph submits them."""

    def __init__(self, relay: _Relay, inspect: Callable[[Runner], None] | None) -> None:
        self.relay = relay
        self.inspect = inspect

    def seed(self, scenario: Scenario, shard: int) -> Templates:
        return seed_world(scenario, shard)

    def run(
        self, task: WorldTask, templates: Templates, attacked: ProfileResult | None
    ) -> ProfileResult:
        return run_world(task, templates, attacked, self.relay, self.inspect)

    def gather(
        self, handles: dict[tuple[int, str, int], Any]
    ) -> dict[tuple[int, str, int], ProfileResult]:
        return dict(handles)


class _OnDask:
    """Every task on a Dask cluster; a task starts when its inputs exist (an honest world when
    its templates and its attacked world are done). Attacked worlds go first: their honest
    worlds wait for them. Progress comes back through a Dask queue."""

    def __init__(self, client: Any, relay: _Relay) -> None:
        from distributed import Queue

        self.client = client
        self.relay = relay
        self.queue = Queue(f"kouza-sim-progress-{uuid.uuid4().hex}", client=client)

    def seed(self, scenario: Scenario, shard: int) -> Any:
        return self.client.submit(
            seed_world,
            scenario,
            shard,
            key=f"seed-{scenario.seed}-{shard}-{uuid.uuid4().hex}",
            priority=20 if shard == 0 else 0,
            pure=False,
        )

    def run(self, task: WorldTask, templates: Any, attacked: Any) -> Any:
        return self.client.submit(
            _run_on_worker,
            task,
            templates,
            attacked,
            self.queue.name,
            key=f"world-{task.name}-{uuid.uuid4().hex}".replace("/", "-"),
            priority=10 if task.shard == 0 else 0,
            pure=False,
        )

    def gather(
        self, handles: dict[tuple[int, str, int], Any]
    ) -> dict[tuple[int, str, int], ProfileResult]:
        from distributed import wait

        pending = set(handles.values())
        while pending:
            try:
                done = wait(pending, timeout=0.5, return_when="FIRST_COMPLETED")
            except TimeoutError:  # nothing finished within the timeout: pass progress on
                self._drain()
                continue
            self._drain()
            for future in done.done:
                if future.status == "error":
                    future.result()  # raises the world's exception here
            pending = set(done.not_done)
        self._drain()
        return dict(zip(handles, self.client.gather(list(handles.values())), strict=True))

    def _drain(self) -> None:
        while True:
            try:
                batch = self.queue.get(timeout=0.01, batch=True)
            except TimeoutError:
                return
            if not batch:
                return
            for tick in batch:
                self.relay(*tick)


def _run_on_worker(
    task: WorldTask, templates: Templates, attacked: ProfileResult | None, queue: str
) -> ProfileResult:
    """A world on a Dask worker, its progress put on the run's queue (by name: a queue object
    in a task's arguments would be unpickled by the scheduler, which deadlocks in-process)."""
    from distributed import Queue

    ticks = Queue(queue)
    return run_world(task, templates, attacked, lambda *tick: ticks.put(tick))


@contextmanager
def _dask(jobs: int, scheduler: str | None) -> Iterator[Any]:
    """A Dask client: of the cluster at ``scheduler``, or of a local cluster of ``jobs``
    single-threaded worker processes (no dashboard) that lives as long as the run."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=jobs,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _export(parts: Path, seeds: list[int], names: list[str], sink_path: Path) -> None:
    """Every world's events in one JSON-lines file, seed by seed, profile by profile and world by
    world, each event also labelled with its world's seed (``attributes.sim_seed``)."""
    sink_path.parent.mkdir(parents=True, exist_ok=True)
    with sink_path.open("w", encoding="utf-8") as sink:
        for seed in seeds:
            for name in names:
                shard = 0
                while (part := parts / f"{seed}-{name}-{shard}.jsonl").exists():
                    with part.open(encoding="utf-8") as source:
                        for line in source:
                            record = json.loads(line)
                            record["attributes"] = {
                                **record.get("attributes", {}),
                                "sim_seed": seed,
                            }
                            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
                    shard += 1


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
