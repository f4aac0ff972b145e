"""Verification levels gate charging; a re-verification campaign blocks charges, not payments."""

from __future__ import annotations

import uuid

import pytest

from kouza.identity import levels
from kouza.identity.devices import SensitiveAction, SignedChallenge
from kouza.identity.errors import (
    EmptyCohort,
    LevelRequired,
    ReverificationRequired,
    UnknownUsers,
)
from kouza.identity.models import ReverificationCampaign, ReverificationRequirement, User
from kouza.identity.service import identity
from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox
from kouza.runtime import Runtime
from kouza.wallet.models import Wallet
from kouza.wallet.service import wallets
from tests.factories import balance_of, verified_user
from tests.identity.support import (
    EkycWorld,
    PhoneUser,
    count,
    jpki_attempt,
    load_user,
    phone_user,
)


def may_charge(rt: Runtime, user: User) -> bool:
    with rt.db.session() as session:
        return identity.may_charge(session, load_user(rt, user.id))


def require_charge(rt: Runtime, user: User) -> None:
    with rt.db.session() as session:
        identity.require_charge_allowed(session, load_user(rt, user.id))


def campaign(rt: Runtime, cohort: levels.Cohort) -> ReverificationCampaign:
    with rt.db.unit_of_work() as session:
        return identity.start_reverification(
            session,
            name="2020-09 re-eKYC",
            reason="linked-bank fraud",
            started_by="test",
            cohort=cohort,
        )


def progress(rt: Runtime, campaign_id: uuid.UUID) -> tuple[int, int]:
    with rt.db.session() as session:
        found = levels.campaign_progress(session, campaign_id)
        return found.pending, found.cleared


def funded_wallet(rt: Runtime, user: User, amount: int) -> Wallet:
    with rt.db.unit_of_work() as session:
        wallet = wallets.open_wallet(session, user=user)
        if amount:
            wallets.credit_from_float(session, wallet_id=wallet.id, amount=amount, reason="test")
    return wallet


def spend(rt: Runtime, someone: PhoneUser, wallet: Wallet, to: Wallet, amount: int) -> None:
    """A transfer, signed by the person's device as every transfer is (ADR 0021)."""
    with rt.db.unit_of_work() as session:
        nonce = identity.issue_device_challenge(
            session, someone.user, someone.device.id, SensitiveAction.TRANSFER.value
        )
    signature = someone.key.sign_challenge(
        nonce=nonce,
        action=SensitiveAction.TRANSFER.value,
        device_id=someone.device.id,
        user_id=someone.user.id,
    )
    with rt.db.unit_of_work() as session:
        wallets.transfer(
            session,
            user=load_user(rt, someone.user.id),
            source_wallet_id=wallet.id,
            destination_wallet_id=to.id,
            amount=amount,
            signed=SignedChallenge(someone.device.id, nonce, signature),
        )


class TestLevels:
    def test_each_level_needs_the_ones_below(
        self, rt: Runtime, mailbox: MemoryMailbox, world: EkycWorld
    ) -> None:
        user = verified_user(rt, mailbox)
        assert load_user(rt, user.id).level == "email"
        assert not may_charge(rt, user)
        someone = phone_user(rt, mailbox, phone="080-9876-5432", e164="+818098765432")
        assert someone.user.level == "phone"
        with pytest.raises(LevelRequired) as caught:
            require_charge(rt, someone.user)
        assert caught.value.details == {"required": "verified", "current": "phone"}
        jpki_attempt(rt, someone.user, world.card)
        assert load_user(rt, someone.user.id).level == "verified"
        assert may_charge(rt, someone.user)

    def test_earned_level_needs_an_active_device(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        someone = phone_user(rt, mailbox)
        with rt.db.session() as session:
            assert levels.earned_level(session, load_user(rt, someone.user.id)) == "phone"
        with rt.db.unit_of_work() as session:
            session.get(type(someone.device), someone.device.id).revoked_at = (  # type: ignore[union-attr]
                someone.device.created_at
            )
        with rt.db.session() as session:
            assert levels.earned_level(session, load_user(rt, someone.user.id)) == "email"


class TestReverificationCampaign:
    def test_end_to_end(
        self, rt: Runtime, mailbox: MemoryMailbox, world: EkycWorld, clock: ManualClock
    ) -> None:
        someone = phone_user(rt, mailbox)
        jpki_attempt(rt, someone.user, world.card)
        wallet = funded_wallet(rt, someone.user, 10_000)
        assert may_charge(rt, someone.user)
        clock.advance(minutes=1)
        started = campaign(rt, [someone.user.id])
        assert progress(rt, started.id) == (1, 0)

        with pytest.raises(ReverificationRequired) as caught:
            require_charge(rt, someone.user)
        assert caught.value.details == {"campaigns": [str(started.id)]}
        assert not may_charge(rt, someone.user)
        friend = funded_wallet(rt, verified_user(rt, mailbox), 0)
        spend(rt, someone, wallet, friend, 3_000)  # the balance stays spendable
        assert (balance_of(rt, wallet), balance_of(rt, friend)) == (7_000, 3_000)

        clock.advance(minutes=1)
        record = jpki_attempt(rt, someone.user, world.card)
        assert may_charge(rt, someone.user)
        assert progress(rt, started.id) == (0, 1)
        with rt.db.session() as session:
            requirement = session.query(ReverificationRequirement).one()
        assert (requirement.cleared_at, requirement.cleared_by) == (clock.now(), record.id)

    def test_a_refused_ekyc_does_not_clear(
        self, rt: Runtime, mailbox: MemoryMailbox, world: EkycWorld, clock: ManualClock
    ) -> None:
        from kouza.identity.errors import EkycRefused

        someone = phone_user(rt, mailbox)
        jpki_attempt(rt, someone.user, world.card)
        started = campaign(rt, [someone.user.id])
        clock.advance(minutes=1)
        with pytest.raises(EkycRefused):
            jpki_attempt(rt, someone.user, world.card, sign_nonce="wrong")
        assert progress(rt, started.id) == (1, 0)
        assert not may_charge(rt, someone.user)

    def test_every_verified_user_cohort(
        self, rt: Runtime, mailbox: MemoryMailbox, world: EkycWorld
    ) -> None:
        first = phone_user(rt, mailbox)
        jpki_attempt(rt, first.user, world.card)
        phone_user(rt, mailbox, phone="080-9876-5432", e164="+818098765432")
        started = campaign(rt, levels.every_verified_user)
        assert progress(rt, started.id) == (1, 0)
        with rt.db.session() as session:
            assert [r.user_id for r in session.query(ReverificationRequirement)] == [first.user.id]

    def test_bad_cohorts_change_nothing(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        with pytest.raises(EmptyCohort):
            campaign(rt, [])
        user = verified_user(rt, mailbox)
        with pytest.raises(UnknownUsers):
            campaign(rt, [user.id, uuid.uuid4()])
        assert count(rt, ReverificationCampaign) == 0
        assert count(rt, ReverificationRequirement) == 0
