"""Demotion: the last device revoked, or the JPKI certificate found revoked by a re-check, lowers
the level (audited); charging and linking stop until the missing fact is restored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from typer.testing import CliRunner

from kouza.cli import common
from kouza.cli.identity_cli import app
from kouza.config import get_settings
from kouza.controls.models import AuditEvent
from kouza.identity.ekyc.devca import DevCertificateAuthority
from kouza.identity.ekyc.devchip import DevDocumentIssuer
from kouza.identity.errors import EkycNotConfigured, LevelRequired, ReverificationRequired
from kouza.identity.models import EkycRecheck, User, VerifiedIdentity
from kouza.identity.service import identity
from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox
from kouza.runtime import Runtime
from tests.identity.support import (
    CITIZEN,
    E164,
    PHONE,
    CrlShelf,
    DeviceKey,
    EkycWorld,
    PhoneUser,
    count,
    ekyc_configuration,
    jpki_attempt,
    load_user,
    phone_user,
    records_of,
    step_up,
)


def verified(
    rt: Runtime, mailbox: MemoryMailbox, world: EkycWorld, phone: str = PHONE, e164: str = E164
) -> PhoneUser:
    someone = phone_user(rt, mailbox, phone=phone, e164=e164)
    jpki_attempt(rt, someone.user, world.card)
    someone.user = load_user(rt, someone.user.id)
    assert someone.user.level == "verified"
    return someone


def recheck(rt: Runtime) -> dict[str, int]:
    with rt.db.unit_of_work() as session:
        summary = identity.recheck_ekyc(session, actor="test")
    return dict(summary.outcomes)


def charge_refusal(rt: Runtime, user: User) -> str | None:
    with rt.db.session() as session:
        try:
            identity.require_charge_allowed(session, load_user(rt, user.id))
        except (LevelRequired, ReverificationRequired) as refusal:
            return refusal.code
    return None


def audits(rt: Runtime) -> list[AuditEvent]:
    with rt.db.session() as session:
        return list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "identity.level.lowered")
                .order_by(AuditEvent.id)
            )
        )


class TestLastDeviceRevoked:
    def test_lowers_to_email_and_a_new_device_restores_the_level(
        self, rt: Runtime, mailbox: MemoryMailbox, world: EkycWorld
    ) -> None:
        holder = verified(rt, mailbox, world)
        user, device = holder.user, holder.device
        step_up(rt, mailbox, holder, "device.revoke")
        with rt.db.unit_of_work() as session:
            identity.revoke_device(session, user, device.id)
        assert load_user(rt, user.id).level == "email"
        assert charge_refusal(rt, user) == "verification_level_required"
        [audit] = audits(rt)
        assert (audit.actor, audit.subject) == (f"user:{user.id}", f"user:{user.id}")
        assert audit.details == {"from": "verified", "to": "email"}
        assert "no active device key left" in audit.reason
        step_up(rt, mailbox, holder, "device.register")
        with rt.db.unit_of_work() as session:
            identity.register_device(session, user, jwk=DeviceKey.es256().public_jwk, name="new")
        assert load_user(rt, user.id).level == "verified"
        assert charge_refusal(rt, user) is None

    def test_revoking_one_of_two_devices_changes_nothing(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        someone = phone_user(rt, mailbox)
        step_up(rt, mailbox, someone, "device.register")
        with rt.db.unit_of_work() as session:
            identity.register_device(
                session, someone.user, jwk=DeviceKey.es256().public_jwk, name="tablet"
            )
        step_up(rt, mailbox, someone, "device.revoke")
        with rt.db.unit_of_work() as session:
            identity.revoke_device(session, someone.user, someone.device.id)
        assert load_user(rt, someone.user.id).level == "phone"
        assert audits(rt) == []


class TestJpkiRecheck:
    def test_a_revoked_certificate_demotes_until_a_new_ekyc(
        self,
        rt: Runtime,
        mailbox: MemoryMailbox,
        world: EkycWorld,
        clock: ManualClock,
        identity_rsa_keys: list[rsa.RSAPrivateKey],
    ) -> None:
        user = verified(rt, mailbox, world).user
        other = verified(rt, mailbox, world, phone="090-5555-0001", e164="+819055550001").user
        assert recheck(rt) == {"good": 2}
        clock.advance(days=30)
        world.ca.revoke(world.card.certificate.serial_number, now=clock.now())
        world.publish(clock.now())
        assert recheck(rt) == {"revoked": 2}
        for someone in (user, other):
            assert load_user(rt, someone.id).level == "phone"
            assert charge_refusal(rt, someone) == "reverification_required"
        with rt.db.session() as session:
            identity_row = session.get(VerifiedIdentity, user.id)
            assert identity_row is not None and identity_row.revoked_at == clock.now()
            assert identity_row.revocation_reason is not None
            assert "revoked" in identity_row.revocation_reason
            checks = list(session.scalars(select(EkycRecheck).order_by(EkycRecheck.id)))
        assert [(c.outcome, c.demoted) for c in checks] == [("good", False)] * 2 + [
            ("revoked", True)
        ] * 2
        assert [a.details for a in audits(rt)] == [{"from": "verified", "to": "phone"}] * 2
        assert "verify your identity again" in (mailbox.last_to(user.email).subject or "")
        assert recheck(rt) == {}  # revoked identities are not asked again
        # a new card (after the move) restores the level and the charge gate
        card = world.ca.issue_card(CITIZEN, now=clock.now(), key=identity_rsa_keys[2])
        jpki_attempt(rt, user, card)
        assert load_user(rt, user.id).level == "verified"
        assert charge_refusal(rt, user) is None
        assert recheck(rt) == {"good": 1}
        assert len(records_of(rt, user)) == 2

    def test_unknown_revocation_demotes_nobody(
        self, rt: Runtime, mailbox: MemoryMailbox, world: EkycWorld, clock: ManualClock
    ) -> None:
        user = verified(rt, mailbox, world).user
        world.ca.revoke(world.card.certificate.serial_number, now=clock.now())
        clock.advance(days=60)  # the published CRLs are past their nextUpdate: stale
        assert recheck(rt) == {"unknown": 1}
        assert load_user(rt, user.id).level == "verified"
        assert charge_refusal(rt, user) is None
        assert audits(rt) == []

    def test_an_expired_certificate_is_uncheckable_not_demoted(
        self, rt: Runtime, mailbox: MemoryMailbox, world: EkycWorld, clock: ManualClock
    ) -> None:
        user = verified(rt, mailbox, world).user
        clock.advance(days=365 * 6)
        world.publish(clock.now())
        assert recheck(rt) == {"uncheckable": 1}
        assert load_user(rt, user.id).level == "verified"

    def test_needs_jpki_configured(self, rt: Runtime) -> None:
        with rt.db.unit_of_work() as session, pytest.raises(EkycNotConfigured):
            identity.recheck_ekyc(session, actor="test")


@pytest.fixture
def cli_rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KOUZA_VAR_DIR", f"{tmp_path}/var")
    monkeypatch.setenv("KOUZA_SECRET_KEY", "x" * 32)
    monkeypatch.delenv("KOUZA_DATABASE_URL", raising=False)
    monkeypatch.setattr(common, "_runtime", None)
    monkeypatch.setattr(common.console, "_width", 240)
    get_settings.cache_clear()
    runtime = common.runtime()
    mailbox = MemoryMailbox()
    runtime.senders.update(email=mailbox, sms=mailbox)
    yield runtime
    runtime.db.dispose()
    get_settings.cache_clear()


def test_cli_recheck_demotes_and_audits(
    cli_rt: Runtime, identity_rsa_keys: list[rsa.RSAPrivateKey]
) -> None:
    now = cli_rt.now()
    ca = DevCertificateAuthority.create(now=now, root_key=identity_rsa_keys[0])
    card = ca.issue_card(CITIZEN, now=now, key=identity_rsa_keys[1])
    world = EkycWorld(ca, DevDocumentIssuer.create(now=now), CrlShelf(ca.cas), CrlShelf([]), card)
    world.publish(now)
    cli_rt.ekyc = ekyc_configuration(world)
    mailbox = cli_rt.senders["email"]
    assert isinstance(mailbox, MemoryMailbox)
    user = phone_user(cli_rt, mailbox).user
    jpki_attempt(cli_rt, user, card)
    ca.revoke(card.certificate.serial_number, now=now)
    world.publish(now)
    result = CliRunner().invoke(app, ["recheck-ekyc", "--reason", "nightly"])
    assert result.exit_code == 0, result.output
    assert f"demoted: {user.id}" in result.stdout and "1 checked" in result.stdout
    assert load_user(cli_rt, user.id).level == "phone"
    with cli_rt.db.session() as session:
        run = session.scalars(select(AuditEvent).where(AuditEvent.action == "ekyc.recheck")).one()
    assert run.reason == "nightly" and run.details is not None
    assert run.details["outcomes"] == {"revoked": 1}
    cli_rt.ekyc = None
    refused = CliRunner().invoke(app, ["recheck-ekyc"])
    assert refused.exit_code == 1 and "JPKI is not configured" in refused.output
    assert count(cli_rt, EkycRecheck) == 1
