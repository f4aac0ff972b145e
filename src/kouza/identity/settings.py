"""Typed access to the identity settings of ``kouza.config.Settings`` from a session."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from kouza.runtime import runtime_of


def setting(session: Session, name: str) -> int:
    """The configured value of the integer setting ``name``."""
    return int(getattr(runtime_of(session).settings, name))


def seconds(session: Session, name: str) -> timedelta:
    """A ``*_seconds`` setting as a timedelta."""
    return timedelta(seconds=setting(session, name))
