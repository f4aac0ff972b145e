"""The risk service: the one entry point the rest of kouza calls, ``risk.assess``.

The engine (rule set + feature store + models) lives on the runtime, so each kouza instance —
a server process, or one of the simulator's isolated instances — has its own. The rule set comes
from ``KOUZA_RISK_RULES`` (a YAML path) or the shipped default; :meth:`RiskService.load_rules`
swaps it at once, or refuses a bad file and keeps the old one. The feature store comes from
``KOUZA_RISK_FEATURE_STORE``: this process's memory, or Redis shared by several API processes.
This process's memory starts empty, so it is warmed from ``risk_events`` when the engine is
built (:func:`warm`), as far back as the rule set can look
(:func:`~kouza.risk.plan.history_needed`); the SQL is in :mod:`kouza.risk.repository`.
With a shared store each decision reads what the rule set needs for its event type and records
the event in one round trip (:meth:`~kouza.risk.features.SharedFeatureStore.snapshot`), instead
of one round trip per feature.

A learned model (``KOUZA_RISK_MODEL``, :mod:`kouza.risk.learned`) is loaded when the runtime is
built (:func:`load_risk_model`: a bad file stops the start), scores every decision from the
same history as the rules, and is readable by rules as ``model("risk")``; on a shared store its
reads join the rules' in the decision's one round trip.

A candidate rule set (``KOUZA_RISK_CANDIDATE_RULES`` at start, :meth:`RiskService.load_candidate`
at run time) is judged beside the live one on every decision and never enforced; on a shared
store its reads join the same round trip, and the in-memory store is warmed for whichever of the
two looks further back.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Protocol, cast

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from kouza.kit.logs import get_logger
from kouza.risk import repository
from kouza.risk.engine import Decision, LearnedScorer, RiskEngine
from kouza.risk.events import RiskEvent
from kouza.risk.features import InMemoryFeatureStore, SharedFeatureStore
from kouza.risk.learned.model import LearnedModel
from kouza.risk.plan import ReadPlan, ReadPlanner, history_needed, merge
from kouza.risk.redis_store import open_feature_store
from kouza.risk.rules import RuleSet, RuleSetError, load_rule_set, parse_rule_set
from kouza.runtime import Runtime, runtime_of

logger = get_logger("kouza.risk")
PUBLISHED_RULES_CHECK_SECONDS = 5.0
"""How often a process looks for a rule set published elsewhere (one indexed query)."""


def shipped_rule_set() -> RuleSet:
    """kouza's default rule set (``kouza/risk/rulesets/default.yaml``)."""
    text = resources.files("kouza.risk").joinpath("rulesets/default.yaml").read_text("utf-8")
    return parse_rule_set(text, source="default.yaml")


class RiskPort(Protocol):
    """What the risk service keeps on the runtime (``kouza.assembly.KouzaRuntime``)."""

    risk_engine: RiskEngine | None
    """None until first used: then built from settings (:meth:`RiskService.engine`)."""
    risk_reads: ReadPlanner
    risk_autocommit: Engine | None
    """An autocommit engine for the HTTP API's one-statement store on PostgreSQL."""
    risk_model: LearnedScorer | None
    """The learned model loaded at start (``KOUZA_RISK_MODEL``), or None."""


def load_risk_model(settings: object) -> LearnedModel | None:
    """The model file named by ``risk_model_path`` (``KOUZA_RISK_MODEL``), or None when unset;
    raises :class:`~kouza.risk.learned.model.ModelFileError` saying what is wrong with a bad
    one, so a misconfigured process stops at start rather than deciding without its model."""
    path = getattr(settings, "risk_model_path", "")
    return LearnedModel.load(Path(path)) if path else None


def _port(runtime: Runtime) -> RiskPort:
    return cast(RiskPort, runtime)


class RiskService:
    """Assess events; manage the active rule set."""

    def engine(self, runtime: Runtime, session: Session | None = None) -> RiskEngine:
        """The runtime's engine, created on first use (its in-memory store warmed through
        ``session`` when given: on SQLite a second connection would wait for its write lock)."""
        port = _port(runtime)
        engine = port.risk_engine
        if engine is None:
            settings = runtime.settings
            path = getattr(settings, "risk_rules", "")
            rules = load_rule_set(Path(path)) if path else shipped_rule_set()
            candidate_path = getattr(settings, "risk_candidate_rules", "")
            candidate = load_rule_set(Path(candidate_path)) if candidate_path else None
            store = open_feature_store(
                getattr(settings, "risk_feature_store", "memory"),
                prefix=getattr(settings, "risk_feature_prefix", "kouza:risk:"),
            )
            learned = port.risk_model
            if isinstance(store, InMemoryFeatureStore):
                # a model reads ages and whole-history features: warm the whole retention
                retention = store.retention
                window = (
                    retention
                    if learned
                    else max(
                        history_needed(rules, retention),
                        history_needed(candidate, retention) if candidate else timedelta(0),
                    )
                )
                since = runtime.now() - window
                warm(store, runtime, since=since, session=session)
            engine = port.risk_engine = RiskEngine(
                rules, store, learned=learned, candidate=candidate
            )
        if session is not None:
            self._follow_published(engine, session)
        return engine

    def _follow_published(self, engine: RiskEngine, session: Session) -> None:
        """Switch to the rule set published last, when another process (or an earlier run of
        this one) published one this engine does not run yet — looked up at most every
        :data:`PUBLISHED_RULES_CHECK_SECONDS` (ADR 0041). A published set wins over
        ``KOUZA_RISK_RULES`` and the shipped default, which only seed a fresh database."""
        now = time.monotonic()
        if now - engine.published_checked_at < PUBLISHED_RULES_CHECK_SECONDS:
            return
        engine.published_checked_at = now
        latest = repository.latest_published_rule_set_id(session)
        if latest is None or latest == engine.published_id:
            return
        record = repository.rule_set_record(session, latest)
        if record is None:
            return
        try:
            rules = parse_rule_set(record.text, source=f"risk_rule_sets#{record.id}")
        except RuleSetError as exc:  # recorded by an older kouza whose language differed
            logger.error("published rule set not loadable, keeping the current one", error=str(exc))
            engine.published_id = latest
            return
        engine.replace_rules(rules)
        engine.published_id = latest

    def assess(self, session: Session, event: RiskEvent) -> Decision:
        """Judge ``event`` against its history, record it, and store the decision."""
        runtime = runtime_of(session)
        decision = self._decide(runtime, event, record=True, session=session)
        count_decision(runtime, decision)
        return replace(decision, record_id=self.store(session, decision))

    def preview(self, session: Session, event: RiskEvent) -> Decision:
        """What the engine would decide about ``event``, without recording it (what-if)."""
        return self._decide(runtime_of(session), event, record=False, session=session)

    def _decide(
        self, runtime: Runtime, event: RiskEvent, *, record: bool, session: Session | None = None
    ) -> Decision:
        planner = _port(runtime).risk_reads
        return decide(self.engine(runtime, session), planner, event, record=record)

    def assess_on_its_own(self, runtime: Runtime, event: RiskEvent) -> Decision:
        """:meth:`assess` for a caller with no unit of work of its own (the HTTP API): the event
        and the decision are committed before this returns. On PostgreSQL they are one
        autocommitted statement — one round trip instead of ``BEGIN``, ``INSERT``, ``COMMIT``
        (the statement is atomic on its own); elsewhere one unit of work."""
        if runtime.db.dialect != "postgresql":
            with runtime.db.unit_of_work() as session:
                return self.assess(session, event)
        decision = self._decide(runtime, event, record=True)
        port = _port(runtime)
        autocommit = port.risk_autocommit
        if autocommit is None:
            autocommit = port.risk_autocommit = runtime.db.engine.execution_options(
                isolation_level="AUTOCOMMIT"
            )
        with autocommit.connect() as connection:
            repository.store_decision_in_one_statement(connection, decision, runtime.now())
        count_decision(runtime, decision)
        return decision

    def store(self, session: Session, decision: Decision) -> int:
        """Persist an event and its decision (in the caller's unit of work); the decision's id."""
        return repository.store_decision(session, decision, runtime_of(session).now())

    def recorded_events(
        self,
        session: Session,
        *,
        since: datetime,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[RiskEvent]:
        """Stored events in time order, as the engine saw them (for backtests); with
        ``limit``, the latest ``limit`` only."""
        return repository.recorded_events(session, since=since, until=until, limit=limit)

    def load_rules(self, runtime: Runtime, text: str, *, source: str) -> RuleSet:
        """Validate and switch to a new rule set; a bad one raises and changes nothing."""
        rules = parse_rule_set(text, source=source)
        self.engine(runtime).replace_rules(rules)
        return rules

    def load_candidate(self, runtime: Runtime, text: str | None, *, source: str) -> RuleSet | None:
        """Validate and set a candidate rule set beside the live one (``None``: remove it); a bad
        one raises and changes nothing. It is judged on every decision and never enforced."""
        candidate = parse_rule_set(text, source=source) if text is not None else None
        self.engine(runtime).replace_candidate(candidate)
        return candidate


def count_decision(runtime: Runtime, decision: Decision) -> None:
    """Count a recorded decision by event and outcome, and each rule that fired."""
    metrics = runtime.metrics
    metrics.risk_decisions.inc(event=decision.event.type.value, outcome=decision.outcome.value)
    for rule in decision.fired:
        metrics.risk_rules_fired.inc(
            rule=rule.id,
            outcome=rule.outcome.value if rule.outcome is not None else "score",
            shadow="true" if rule.shadow else "false",
        )


def warm(
    store: InMemoryFeatureStore,
    runtime: Runtime,
    *,
    since: datetime,
    session: Session | None = None,
) -> int:
    """Replay the stored events at or after ``since`` into a fresh in-process store, in the
    order they were assessed, so a restart does not make every wallet look new (one streamed
    query over ``ix_risk_events_at``, in ``session`` if given); how many were replayed."""
    replayed = 0
    with contextlib.ExitStack() as stack:
        connection = (
            session.connection()
            if session is not None
            else stack.enter_context(runtime.db.engine.connect())
        )
        for event in repository.events_since(connection, since):
            store.record(event)
            replayed += 1
    return replayed


def decide(engine: RiskEngine, planner: ReadPlanner, event: RiskEvent, *, record: bool) -> Decision:
    """The engine's decision on ``event`` (recording it when ``record``). On a shared store the
    history the rules need is read, and the event recorded, in one atomic round trip first."""
    store = engine.store
    if not _is_shared(store):
        return engine.assess(event) if record else engine.evaluate(event)
    rules, candidate = engine.rules, engine.candidate
    shared = cast(SharedFeatureStore, store)
    plan = planner.plan(rules, event.type)
    if candidate is not None:
        plan = merge(plan, planner.plan(candidate, event.type))
    if engine.learned is not None:
        plan = _with(plan, engine.learned.reads)
    snapshot = shared.snapshot(event, plan, record=record)
    # the engine's own evaluation, over this decision's snapshot instead of the live store
    return RiskEngine(rules, snapshot, engine.models, engine.learned, candidate).evaluate(event)


def _with(plan: ReadPlan, more: ReadPlan) -> ReadPlan:
    """Both plans' reads: per dimension the longer window (None, the whole history, wins)."""
    return merge(plan, more)


_SHARED: dict[type, bool] = {}


def _is_shared(store: object) -> bool:
    """``isinstance(store, SharedFeatureStore)``, remembered per class (a protocol check walks
    the protocol's members each time: tens of microseconds per decision)."""
    kind = type(store)
    if kind not in _SHARED:
        _SHARED[kind] = isinstance(store, SharedFeatureStore)
    return _SHARED[kind]


risk = RiskService()
"""The risk service singleton."""
