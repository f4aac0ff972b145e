"""The people who can stop an attack after it started: holders who read their bank's notices,
and the operator's fraud team working its queue (profiles with ``operator_playbook``).

A holder who receives a notice about a link or a debit they did not make says "not me" to the
bank — through the bank's real counter function — with a chance and a delay that depend on the
channel: an e-mail is read within hours, a letter days later. The bank revokes the link and
tells the wallet by its signed webhook, so the attacker's next charge is refused by the real
code. The fraud team then sees what the wallet's own records show: links the bank revoked on
a holder's word. Its playbook locks the wallet behind each such link, stops charges and links at
a bank where three holders said "not me" within a day (stop, don't throttle; re-opened after
three days), and decides the top-ups held for review after a day: released when the link is
still in good standing, sent back to the bank otherwise. Where restricted links exist, the
probation release job runs every simulated hour, as cron would run it (ADR 0032).
"""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta

from sqlalchemy import select

from kouza.bank.holder import holder
from kouza.controls.models import SwitchScope
from kouza.controls.switches import switches
from kouza.errors import KouzaError
from kouza.kit.notify import Message
from kouza.linking.models import BankLink, BankLinkStatus, BankMovementReview
from kouza.linking.probation import release_due
from kouza.linking.reviews import reviews
from kouza.sim.agents import Attempt, FollowUp
from kouza.sim.ports import FraudTeamPort
from kouza.sim.results import ControlChange
from kouza.wallet.locks import locks

REFERENCE = re.compile(r"reference (NM-[A-Z0-9]+)")
RESPONDS = 0.7
"""Share of holders who act on a notice of something they did not do."""
ACTOR = "sim:fraud-team"
BURST = 3
"""'Not me' reports at one bank within a day that make the team stop the bank's charges."""
SWITCH_HOURS = 72
REVIEW_AFTER = timedelta(hours=24)
SHIFT = timedelta(hours=12)
PROBATION_TICK = timedelta(hours=1)
"""How often the probation release job runs (a hold is released at most this late)."""


class FraudTeam:
    """Holders' reactions and the operator's playbook in one world."""

    def __init__(self, runner: FraudTeamPort) -> None:
        self.r = runner
        self.reported: set[str] = set()
        self.notices_to: dict[int, int] = {}
        """Citizen → notices of an attacker's doing they received so far."""
        self.seen_revocations: set[object] = set()
        self.reports_at_bank: dict[str, list[datetime]] = {}
        self.switched: dict[str, datetime] = {}
        self.scheduled = False

    @property
    def playbook(self) -> bool:
        return self.r.profile.operator_playbook

    # --- holders -------------------------------------------------------------------------

    def notice_to_victim(self, citizen: int, message: Message, attempt: Attempt) -> None:
        """A bank told ``citizen`` of something an attacker did in their name."""
        if attempt.attacker < 0 or attempt.payload.get("authorised"):
            return  # the customer did it themselves (talked into it): nothing to disown
        found = REFERENCE.search(message.body)
        if found is None or found.group(1) in self.reported:
            return
        reference = found.group(1)
        # the draw must not depend on the reference: the bank makes it up at random, so the
        # same seed would not give the same world (the n-th notice of this citizen instead)
        nth = self.notices_to.get(citizen, 0)
        self.notices_to[citizen] = nth + 1
        draw = random.Random(f"{self.r.scenario.seed}-notice-{citizen}-{nth}")
        if draw.random() >= RESPONDS:
            return
        self.reported.add(reference)
        letter = "@" not in message.recipient and not message.recipient.startswith("+")
        hours = draw.uniform(48, 120) if letter else draw.uniform(1, 14)
        self.r.schedule(
            self.r.world.clock.now() + timedelta(hours=hours), FollowUp.NOT_ME, data=reference
        )

    def holder_says_not_me(self, reference: str) -> None:
        try:
            with self.r.world.bank_rt.db.unit_of_work() as session:
                holder.not_me(session, reference)
        except KouzaError:
            return
        self.r.not_me_reports += 1
        if self.playbook:
            self.r.schedule(self.r.world.clock.now() + timedelta(hours=1), FollowUp.OPERATOR)

    # --- the operator's team -------------------------------------------------------------

    def start(self) -> None:
        """Schedule the team's regular shifts (reviews of held top-ups), and the hourly run
        of the probation release job where restricted links exist (ADR 0032)."""
        if self.playbook and not self.scheduled:
            self.scheduled = True
            self.r.schedule(self.r.scenario.start + SHIFT, FollowUp.OPERATOR, data="shift")
        if self.r.profile.restricted_legacy_links:
            self.r.schedule(self.r.scenario.start + PROBATION_TICK, FollowUp.PROBATION)

    def release_probation(self) -> None:
        """The release job, as cron runs it: holds due are released, those of links the
        holder disowned go back to the bank account; then again in an hour. One indexed query
        when nothing is due."""
        now = self.r.world.clock.now()
        report = release_due(self.r.rt)
        if report.released:
            with self.r.rt.db.session() as session:
                held = session.execute(
                    select(BankMovementReview.wallet_id, BankMovementReview.created_at).where(
                        BankMovementReview.movement_id.in_(report.released)
                    )
                ).all()
            for wallet_id, held_at in held:
                if wallet_id in self.r.owner_of_wallet:
                    hours = (now - held_at).total_seconds() / 3600
                    self.r.result.time_to_money_hours.append(round(hours, 2))
        self.r.schedule(now + PROBATION_TICK, FollowUp.PROBATION)

    def work_queue(self, shift: bool = False) -> None:
        now = self.r.world.clock.now()
        self._act_on_revocations(now)
        self._reopen(now)
        self._decide_reviews(now)
        if shift:
            self.r.schedule(now + SHIFT, FollowUp.OPERATOR, data="shift")

    def _act_on_revocations(self, now: datetime) -> None:
        with self.r.rt.db.session() as session:
            revoked = session.execute(
                select(BankLink.id, BankLink.wallet_id, BankLink.bank_code).where(
                    BankLink.status == BankLinkStatus.REVOKED.value,
                    BankLink.status_reason.like("%not me%"),
                )
            ).all()
        for link_id, wallet_id, bank_code in revoked:
            if link_id in self.seen_revocations:
                continue
            self.seen_revocations.add(link_id)
            self.r.call(
                lambda s, w=wallet_id: locks.lock(  # type: ignore[misc]
                    s,
                    wallet_id=w,
                    actor=ACTOR,
                    reason="the account holder told the bank the link was not theirs",
                )
            )
            recent = [
                t for t in self.reports_at_bank.get(bank_code, []) if now - t < timedelta(days=1)
            ] + [now]
            self.reports_at_bank[bank_code] = recent
            if len(recent) >= BURST and bank_code not in self.switched:
                self._switch(bank_code, active=True)
                self.switched[bank_code] = now

    def _reopen(self, now: datetime) -> None:
        for bank_code, since in list(self.switched.items()):
            if now - since >= timedelta(hours=SWITCH_HOURS):
                self._switch(bank_code, active=False)
                del self.switched[bank_code]

    def _switch(self, bank_code: str, *, active: bool) -> None:
        why = (
            "several holders said 'not me' at this bank within a day"
            if active
            else "attack over: re-opened after review"
        )
        at = self.r.world.clock.now().isoformat()
        for scope in (SwitchScope.BANK_CHARGES, SwitchScope.BANK_LINKS):
            change = ControlChange(at, scope.value, bank_code, active, why)
            self.replay(change)
            self.r.result.controls.append(change)

    def replay(self, change: ControlChange) -> None:
        """Set a switch as the team did (here, or in the attacked world of an honest one)."""
        self.r.call(
            lambda s: switches.set(
                s,
                scope=SwitchScope(change.scope),
                target=change.target,
                active=change.active,
                actor=ACTOR,
                reason=change.reason,
            )
        )

    def _decide_reviews(self, now: datetime) -> None:
        with self.r.rt.db.session() as session:
            waiting = [
                (
                    view.movement.id,
                    view.movement.wallet_id,
                    view.review.created_at,
                    session.get_one(BankLink, view.movement.link_id).status,
                )
                for view in reviews.list(session, limit=500)
                if now - view.review.created_at >= REVIEW_AFTER
            ]
        for movement_id, wallet_id, held_at, status in waiting:
            if status == BankLinkStatus.ACTIVE.value:
                _, refused = self.r.call(
                    lambda s, m=movement_id: reviews.release(  # type: ignore[misc]
                        s, m, actor=ACTOR, reason="no report from the holder within a day"
                    )
                )
                if refused is None and wallet_id in self.r.owner_of_wallet:
                    hours = (now - held_at).total_seconds() / 3600
                    self.r.result.time_to_money_hours.append(round(hours, 2))
                continue
            try:
                reviews.reject(
                    self.r.rt, movement_id, actor=ACTOR, reason="the link was disowned or suspended"
                )
            except KouzaError:
                continue
