"""Frees the time of bookings whose session does not hold the agent (docs/training.md).

An enrollment books the learners first and seats them on the session second, with no
transaction between (flows.py). Cut off between the two (the process dies, the store or the
bus fails, the caller's deadline cancels the call), it leaves bookings for a session nobody
was seated on, and a retry with the same key is the only thing that finishes it. A caller who
never retries would leave the agent blocked for good: `DOUBLE_ENROLLMENT` on every other
session of the course, `OVERLAP` at that time. The same holds for a withdrawal, no-show or
cancellation cut off before its release; and a result the session took, cut off before the
learner's record, would be missing from the transcript and the training hours: the reconciler
records it from the session's copy.

So the service runs this reconciler, on start-up and every `INTERVAL_S`: a booking older than
`GRACE` whose session does not hold the agent is settled by `Flows.settle_booking` (the key is
spent on the session first, so the enrollment cannot land afterwards). The grace is the time a
retry with the same key has to finish the enrollment, not a guess at how long one takes: an
enrollment still under way when its key is spent is refused and keeps nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from services.training import domain as d
from services.training.flows import Flows
from services.training.views import Directory, TrainingViews
from wfm_runtime import logging as wlog
from wfm_runtime.periodic import repeat_forever
from wfm_runtime.timefmt import EPOCH, utc_now

log = wlog.get("training.reconciler")

GRACE = timedelta(minutes=15)
INTERVAL_S = 60.0


class BookingReconciler:
    def __init__(self, flows: Flows, views: TrainingViews, directory: Directory) -> None:
        self.flows = flows
        self._views = views
        self._directory = directory

    async def sweep(self, now: datetime) -> int:
        """Settles the bookings keyed before `now - GRACE` (their request's booking or taking
        over, domain.Booking.keyed_since) that their session, as the view shows
        it, does not hold the agent for (each checked again on the session's events), after
        letting go of the holds of moves cut off before then; returns how many bookings it
        changed (holds let go of, released, or completed from the session's result)."""
        cutoff = now - GRACE
        learners = await self._views.learners_with_bookings()
        settled = await self._settle_holds(learners, cutoff)
        # Bookings recorded before booked_time was kept are old by now.
        due = [
            (learner.agent_id, booking)
            for learner in learners
            for booking in learner.bookings
            if (booking.keyed_since or EPOCH) <= cutoff
        ]
        sessions = await self._views.sessions_of(sorted({b.session_id for _, b in due}))
        for agent_id, booking in due:
            seen = sessions.get(booking.session_id)
            if seen is not None and seen.holds(agent_id):
                continue  # the common case, without reading any event
            agent = await self._directory.agent(agent_id)
            zone = agent.time_zone if agent else ""
            if await self.flows.settle_booking(agent_id, booking, zone):
                log.info("booking_settled", agent=agent_id, session=booking.session_id)
                settled += 1
        return settled

    async def _settle_holds(self, learners: list[d.Learner], cutoff: datetime) -> int:
        """Lets go of the holds moves left behind (held before `cutoff`): a move holds the new
        time on each learner before the session moves and lets go of it after, so a hold this
        old belongs to a move cut off in between (Flows.update_session)."""
        settled = 0
        for learner in learners:
            for booking in learner.bookings:
                stale = {h.update_key for h in booking.move_holds if h.hold_time <= cutoff}
                agent_id = learner.agent_id
                if stale and await self.flows.settle_holds(agent_id, booking, stale):
                    log.info("move_hold_settled", agent=agent_id, session=booking.session_id)
                    settled += 1
        return settled

    async def run_forever(self, interval_s: float = INTERVAL_S) -> None:
        await repeat_forever(
            lambda: self.sweep(utc_now()), interval_s, "booking_sweep_failed", at_once=True
        )
