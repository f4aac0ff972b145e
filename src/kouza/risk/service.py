"""The risk service: the one entry point the rest of kouza calls, ``risk.assess``.

The engine (rule set + feature store + models) lives on the runtime, so each kouza instance —
a server process, or one of the simulator's isolated instances — has its own. The rule set comes
from ``KOUZA_RISK_RULES`` (a YAML path) or the shipped default; :meth:`RiskService.load_rules`
swaps it at once, or refuses a bad file and keeps the old one.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from sqlalchemy.orm import Session

from kouza.kit.runtime import Runtime, runtime_of
from kouza.risk.engine import Decision, RiskEngine
from kouza.risk.events import RiskEvent
from kouza.risk.rules import RuleSet, load_rule_set, parse_rule_set


def shipped_rule_set() -> RuleSet:
    """kouza's default rule set (``kouza/risk/rulesets/default.yaml``)."""
    text = resources.files("kouza.risk").joinpath("rulesets/default.yaml").read_text("utf-8")
    return parse_rule_set(text, source="default.yaml")


class RiskService:
    """Assess events; manage the active rule set."""

    def engine(self, runtime: Runtime) -> RiskEngine:
        """The runtime's engine, created on first use."""
        engine = runtime.providers.get("risk")
        if engine is None:
            path = getattr(runtime.settings, "risk_rules", "")
            rules = load_rule_set(Path(path)) if path else shipped_rule_set()
            engine = runtime.providers["risk"] = RiskEngine(rules)
        assert isinstance(engine, RiskEngine)
        return engine

    def assess(self, session: Session, event: RiskEvent) -> Decision:
        """Judge ``event`` against its history, then record it."""
        return self.engine(runtime_of(session)).assess(event)

    def load_rules(self, runtime: Runtime, text: str, *, source: str) -> RuleSet:
        """Validate and switch to a new rule set; a bad one raises and changes nothing."""
        rules = parse_rule_set(text, source=source)
        self.engine(runtime).replace_rules(rules)
        return rules


risk = RiskService()
"""The risk service singleton."""
