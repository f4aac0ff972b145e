"""Run-time settings: what an operator may change while the wallet runs (ADR 0035).

Most settings are read once from the environment (``kouza.config.Settings``) and a change means
a restart. A few are operator policy that an incident changes by the hour — which legacy-form
banks are accepted, the restricted-link caps, the limits — and those are listed in
:data:`RUNTIME_SETTINGS`. An override is a ``setting_overrides`` row (key, JSON value, who, why,
when) that wins over the environment; removing it returns to the environment's value. Every
change is audited with who and why, and a value is validated with the very pydantic type and
constraints of its ``Settings`` field before anything is stored, so a bad value changes nothing.

Code that reads one of these settings asks :meth:`OverrideService.settings` for the *effective*
settings (the environment's with the overrides applied) instead of ``runtime.settings``. That
object is cached per runtime, so a hot path costs a dictionary look-up: the cache is dropped when
this process changes an override (at once, and again after the commit) and reloaded at most
:data:`RELOAD_SECONDS` later otherwise — which is what another process (``kouza serve --workers
N``, another host, the CLI) sees of a change made elsewhere.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Annotated, Any
from weakref import WeakKeyDictionary

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from kouza.config import Settings
from kouza.controls.errors import InvalidSettingValue, SettingNotChangeable, UnknownSetting
from kouza.controls.models import SettingOverride
from kouza.controls.service import controls
from kouza.kit.locking import lock_named
from kouza.runtime import Runtime, runtime_of

RUNTIME_SETTINGS: tuple[str, ...] = (
    "accepted_legacy_banks",
    "legacy_bank_links",
    "restricted_link_max_per_debit_yen",
    "restricted_link_max_30_days_yen",
    "restricted_link_probation_days",
    "restricted_link_hold_hours",
    "link_mandate_max_per_debit_yen",
    "link_mandate_max_30_days_yen",
    "limit_per_transaction_yen",
    "limit_per_day_yen",
    "limit_rolling_30d_yen",
    "limit_type2_ceiling_yen",
    "limit_category_per_day_yen",
    "max_wallet_balance_yen",
    "money_out_free_payment_yen",
)
"""The settings an operator may change at run time: policy, read per request. Everything else
(URLs, keys, providers, timeouts, what the server builds at start) needs a restart."""
RELOAD_SECONDS = 5.0
"""How stale another process's view of the overrides may be."""
ENV_PREFIX = "KOUZA_"
_LOCK = "kouza.setting_overrides."
BANK_CODE = re.compile(r"\d{4}")


@dataclass(frozen=True)
class SettingView:
    """One run-time setting as operators see it."""

    key: str
    env_var: str
    environment: Any
    """The value from the environment (or the default)."""
    override: Any | None
    """The stored override, None when there is none."""
    effective: Any
    actor: str | None
    reason: str | None
    changed_at: datetime | None

    @property
    def overridden(self) -> bool:
        return self.actor is not None


@dataclass
class _Cached:
    settings: Settings
    loaded_at: float


_cache: WeakKeyDictionary[Runtime, _Cached] = WeakKeyDictionary()


def setting_key(name: str) -> str:
    """The field name of a run-time setting given as ``limit_per_day_yen`` or
    ``KOUZA_LIMIT_PER_DAY_YEN``; UnknownSetting or SettingNotChangeable otherwise."""
    key = name.strip().lower()
    key = key.removeprefix(ENV_PREFIX.lower())
    if key not in Settings.model_fields:
        raise UnknownSetting(f"there is no setting {name!r}", key=name)
    if key not in RUNTIME_SETTINGS:
        raise SettingNotChangeable(
            f"{key} cannot be changed at run time: set {(ENV_PREFIX + key).upper()} in the "
            "environment and restart (`kouza settings list` shows what can change)",
            key=key,
        )
    return key


@cache
def _adapter(key: str) -> TypeAdapter[Any]:
    """Validates a value as the ``Settings`` field does: its type and its constraints."""
    field = Settings.model_fields[key]
    annotation: Any = field.annotation
    if field.metadata:
        annotation = Annotated[annotation, *field.metadata]
    return TypeAdapter(annotation)


def validate(key: str, value: Any) -> Any:
    """``value`` as the setting's field would accept it (JSON form); InvalidSettingValue else."""
    adapter = _adapter(key)
    try:
        valid = adapter.validate_python(value)
    except ValidationError as exc:
        problems = "; ".join(error["msg"] for error in exc.errors(include_url=False))
        raise InvalidSettingValue(f"{key}: {problems}", key=key) from None
    if key == "accepted_legacy_banks":
        valid = sorted(set(valid))
        wrong = [code for code in valid if not BANK_CODE.fullmatch(code)]
        if wrong:
            raise InvalidSettingValue(
                f"{key}: bank codes are four digits, not {', '.join(map(repr, wrong))}", key=key
            )
    return adapter.dump_python(valid, mode="json")


def parse_text(text: str) -> Any:
    """A value typed on a command line: JSON if it parses (``300000``, ``["0125"]``), else the
    plain string (``refuse``)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


class OverrideService:
    """Read the effective settings; set and remove run-time overrides (audited)."""

    def settings(self, session: Session) -> Settings:
        """The wallet's settings with the run-time overrides applied (cached per runtime)."""
        runtime = runtime_of(session)
        cached = _cache.get(runtime)
        if cached is not None and time.monotonic() - cached.loaded_at < RELOAD_SECONDS:
            return cached.settings
        stored = self._stored(session)
        # no override: the runtime's own object (the same one every time, so what is built
        # from it — the limit set — is built once, as before run-time settings existed)
        effective = runtime.settings.model_copy(update=stored) if stored else runtime.settings
        _cache[runtime] = _Cached(effective, time.monotonic())
        return effective

    def list(self, session: Session) -> list[SettingView]:
        """Every run-time setting: environment value, override (who, why, when), effective."""
        rows = {row.key: row for row in self._rows(session)}
        base = runtime_of(session).settings
        effective = self.settings(session)
        views = []
        for key in RUNTIME_SETTINGS:
            row = rows.get(key)
            views.append(
                SettingView(
                    key=key,
                    env_var=(ENV_PREFIX + key).upper(),
                    environment=_adapter(key).dump_python(getattr(base, key), mode="json"),
                    override=row.value if row else None,
                    effective=_adapter(key).dump_python(getattr(effective, key), mode="json"),
                    actor=row.actor if row else None,
                    reason=row.reason if row else None,
                    changed_at=row.changed_at if row else None,
                )
            )
        return views

    def get(self, session: Session, key: str) -> SettingView:
        """One run-time setting (by field or variable name)."""
        key = setting_key(key)
        return next(view for view in self.list(session) if view.key == key)

    def set(
        self, session: Session, *, key: str, value: Any, actor: str, reason: str
    ) -> SettingView:
        """Override a run-time setting (validated first; audited with who and why)."""
        key = setting_key(key)
        valid = validate(key, value)
        lock_named(session, _LOCK + key)  # one change of a key at a time: none is lost
        row = self._row(session, key)
        controls.audit(
            session,
            actor=actor,
            action="setting.set",
            subject=key,
            reason=reason,
            details={"value": valid, "previous": row.value if row else None},
        )
        now = runtime_of(session).now()
        if row is None:
            session.add(
                SettingOverride(key=key, value=valid, actor=actor, reason=reason, changed_at=now)
            )
        else:
            row.value, row.actor, row.reason, row.changed_at = valid, actor, reason, now
        session.flush()
        self._changed(session)
        return self.get(session, key)

    def unset(self, session: Session, *, key: str, actor: str, reason: str) -> SettingView:
        """Remove an override: the environment's value applies again (audited; idempotent)."""
        key = setting_key(key)
        lock_named(session, _LOCK + key)
        row = self._row(session, key)
        controls.audit(
            session,
            actor=actor,
            action="setting.unset",
            subject=key,
            reason=reason,
            details={"previous": row.value if row else None},
        )
        if row is not None:
            session.delete(row)
            session.flush()
        self._changed(session)
        return self.get(session, key)

    def accept_legacy_bank(
        self, session: Session, *, bank_code: str, accepted: bool, actor: str, reason: str
    ) -> SettingView:
        """Add a bank code to (or remove it from) ``accepted_legacy_banks``."""
        key = "accepted_legacy_banks"
        lock_named(session, _LOCK + key)  # read and write under one lock: no change is lost
        row = self._row(session, key)
        current = row.value if row else runtime_of(session).settings.accepted_legacy_banks
        codes = set(validate(key, current))
        codes = codes | {bank_code} if accepted else codes - {bank_code}
        return self.set(
            session, key="accepted_legacy_banks", value=sorted(codes), actor=actor, reason=reason
        )

    def _changed(self, session: Session) -> None:
        """Drop this process's cache now and once the change commits (another request may
        have reloaded the old rows in between)."""
        runtime = runtime_of(session)
        _cache.pop(runtime, None)
        event.listen(session, "after_commit", lambda _session: _cache.pop(runtime, None), once=True)

    def _stored(self, session: Session) -> dict[str, Any]:
        """The stored overrides that still validate (a row left by an older version whose
        constraint has changed is ignored rather than applied)."""
        stored = {}
        for row in self._rows(session):
            if row.key not in RUNTIME_SETTINGS:
                continue
            try:
                stored[row.key] = _adapter(row.key).validate_python(row.value)
            except ValidationError:
                continue
        return stored

    def _rows(self, session: Session) -> Sequence[SettingOverride]:
        return session.scalars(select(SettingOverride).order_by(SettingOverride.key)).all()

    def _row(self, session: Session, key: str) -> SettingOverride | None:
        return session.scalars(
            select(SettingOverride)
            .where(SettingOverride.key == key)
            .execution_options(populate_existing=True)
        ).one_or_none()


overrides = OverrideService()
"""The run-time settings service singleton."""
