"""Console test helpers: operators with console credentials, signing in through the form."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyotp
from fastapi.testclient import TestClient

from kouza.console.auth import console_auth
from kouza.controls.models import OperatorRole
from kouza.controls.service import controls
from kouza.runtime import Runtime

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


@dataclass
class Staff:
    name: str
    password: str
    totp: pyotp.TOTP
    role: OperatorRole


def make_staff(rt: Runtime, name: str, role: OperatorRole = OperatorRole.ANALYST) -> Staff:
    with rt.db.unit_of_work() as session:
        controls.create_operator(session, name=name, role=role, actor="test")
        seed = console_auth.set_credential(
            session, operator_name=name, password=PASSWORD, actor="test"
        )
    return Staff(name, PASSWORD, pyotp.TOTP(seed), role)


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(
    client: TestClient, rt: Runtime, staff: Staff, *, code: str | None = None, step: int = 0
) -> object:
    """Post the sign-in form as a browser would (the form's CSRF token first)."""
    page = client.get("/console/login")
    assert page.status_code == 200
    when = rt.now().timestamp() + step * 30
    return client.post(
        "/console/login",
        data={
            "csrf_token": csrf_of(page.text),
            "name": staff.name,
            "password": staff.password,
            "code": code if code is not None else staff.totp.at(when),
        },
        follow_redirects=False,
    )
