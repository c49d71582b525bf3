"""Commands that touch two aggregates: the learner (the agent's bookings) and the session.

Order and recovery (docs/training.md):
- Enroll: each learner books first (no double enrollment, no overlap, prerequisites: decided
  serially per agent by the learner's unique event insert), then the session seats or waitlists
  them (decided serially per session). If the session refuses, the bookings this request made
  are released again and those it took over from another request are handed back to it
  (compensating events). All or nothing across the batch. The booking records the request's
  key, and the learner steps are idempotent by state (fresh step keys): a retry of a refused
  request books again instead of replaying a booking since undone. The booking's key time
  names the attempt holding it: a retry takes an earlier attempt's booking over as it would
  another request's (unless the session holds the agent), and an undo releases only its own
  attempt's, so it never frees an agent another attempt is seating.
- Enroll interrupted between the steps (a crash, the store or the bus away, the caller's
  deadline): the bookings stand and nobody is on the session. A retry with the same key
  finishes it; if none comes, the service's reconciler (reconciler.py) settles each booking
  the session does not hold the agent for: it first spends the enrollment's key on the
  session (so it can never land afterwards), then releases the booking (`settle_booking`).
- Move (UpdateSession of the time): each learner on the session holds the new time first
  (a hold on its booking, decided serially per agent like a booking, so nothing else takes
  that time meanwhile), then the session moves, then each booking follows and lets go of
  the hold. A refusal lets go of the holds; the reconciler lets go of those a cut-off move
  left.
- Withdraw / no-show / completion: the session first (the state machine and the waitlist live
  there), then the learner (release or record the completion).
Withdraw and the rest: each step has its own idempotency key derived from the request's, so a
retry after a crash between the steps replays the first and finishes the second.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from google.protobuf.message import Message
from wfm.training.v1 import events_pb2 as ev

from services.training import domain as d
from services.training import store
from wfm_runtime.commands import Behaviour, Command, CommandRunner, Outcome
from wfm_runtime.errors import (
    Aborted,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    RuleViolation,
)
from wfm_runtime.timefmt import utc_now

S = TypeVar("S")


@dataclass(frozen=True)
class Request:
    key: str
    fingerprint: str
    request_id: str
    expected_version: int | None = None

    def command(
        self, kind: str, entity_id: str, suffix: str = "", *, checked: bool = False
    ) -> Command:
        return Command(
            kind,
            entity_id,
            f"{self.key}{suffix}",
            self.fingerprint,
            self.expected_version if checked else None,
            self.request_id,
        )


_FRESH = "fresh"
_MINE = "mine"


@dataclass(frozen=True)
class _TookOver:
    """This call took the booking over from another request (`held`: as it was then) at
    `since` (the booking's key_time from then on)."""

    held: d.Booking
    since: datetime


@dataclass(frozen=True)
class _Booked:
    fresh: list[str]  # booked by this call
    mine: list[str]  # booked by this request (this call or an earlier attempt)
    refused: BaseException | None = None  # why a learner refused (every broken rule listed)
    taken: dict[str, _TookOver] = field(default_factory=dict)  # taken over by this call
    # When this request took each booking it holds (Booking.keyed_since): names the attempt
    # in a give-up mark (see _release_mine).
    since: dict[str, datetime | None] = field(default_factory=dict)


class Flows:
    def __init__(self, commands: CommandRunner, training: store.TrainingStore) -> None:
        self._runner = commands
        self._training = training
        self._commands = _Refreshing(commands)
        self._sessions = training.session_behaviour()
        self._learners = training.learner_behaviour()

    # --- enroll ----------------------------------------------------------------------------
    async def enroll(
        self,
        request: Request,
        contexts: dict[str, d.EnrollmentContext],
        *,
        session_id: str,
        refuse_if_full: bool,
    ) -> d.Session:
        # One instant for the learners' bookings and the session's enrollments: a due list as
        # of a past instant shows a booking from the enrollment's creation on.
        now = utc_now()
        bookings = await self._book_all(request, contexts, now)
        if bookings.refused is not None:
            return await self._answer_refused(request, bookings, session_id)
        try:
            outcome = await self._commands.execute(
                self._sessions,
                request.command(store.SESSION, session_id, checked=True),
                lambda current, version: _enrolled(
                    current,
                    version,
                    list(contexts),
                    refuse_if_full=refuse_if_full,
                    booked_as=next(iter(contexts.values())).session,
                    now=now,
                ),
            )
        except InvalidArgument:
            # The key was spent by a different request (other agents, another RPC): the
            # bookings made under it are that request's and stand; only this call's go.
            await self._undo_all(request, bookings.fresh, session_id, bookings.since)
            await self._hand_back(request, bookings)
            await self._refuse_if_abandoned(request, session_id)
            raise
        except DomainError:
            await self._undo_mine(request, bookings, session_id)
            raise
        if outcome.replayed:
            # The request was done before; a booking this retry made anew belongs to nothing
            # (the agent has since withdrawn, or finished the session); one it took over goes
            # back to the request that holds it.
            await self._undo_all(request, bookings.fresh, session_id, bookings.since)
            await self._hand_back(request, bookings)
        return outcome.state

    async def _book_all(
        self, request: Request, contexts: dict[str, d.EnrollmentContext], now: datetime
    ) -> _Booked:
        """Books every learner; a refusal lists every broken rule (the caller undoes)."""
        results = await asyncio.gather(
            *(self._book(request, agent, ctx, now) for agent, ctx in contexts.items()),
            return_exceptions=True,
        )
        tags = [r[0] if isinstance(r, tuple) else r for r in results]
        return _Booked(
            fresh=[a for a, r in zip(contexts, tags, strict=True) if r == _FRESH],
            mine=[a for a, r in zip(contexts, tags, strict=True) if r in (_FRESH, _MINE)],
            refused=_refusal([r for r in results if isinstance(r, BaseException)]),
            taken={a: r for a, r in zip(contexts, tags, strict=True) if isinstance(r, _TookOver)},
            since={a: r[1] for a, r in zip(contexts, results, strict=True) if isinstance(r, tuple)},
        )

    async def _answer_refused(
        self, request: Request, booked: _Booked, session_id: str
    ) -> d.Session:
        """A learner refused. A late retry of a request that went through is refused by what
        its agents did since (one withdrew and booked the next class of the course): it answers
        the first result, and only this call's bookings go (the others are still on the
        session). Otherwise every booking of this request is undone and the refusal stands."""
        assert booked.refused is not None
        if isinstance(booked.refused, DomainError):
            try:
                outcome = await self._commands.first_result(
                    self._sessions, request.command(store.SESSION, session_id), booked.refused
                )
            except InvalidArgument:  # the key is a different request's: its bookings stand
                await self._undo_all(request, booked.fresh, session_id, booked.since)
                await self._hand_back(request, booked)
                await self._refuse_if_abandoned(request, session_id)
                raise
            except DomainError:
                pass  # not done before: the refusal stands
            else:
                await self._undo_all(request, booked.fresh, session_id, booked.since)
                await self._hand_back(request, booked)
                return outcome.state
        await self._undo_mine(request, booked, session_id)
        raise booked.refused

    async def _book(
        self, request: Request, agent_id: str, ctx: d.EnrollmentContext, now: datetime
    ) -> tuple[str, datetime | None] | _TookOver | str:
        """(_FRESH, since) if this call booked, (_MINE, since) if an earlier attempt of this
        request did and the session holds the agent (a late retry), _TookOver if the agent
        already held the session by another request or by an earlier attempt of this one whose
        enrollment has not landed (this one takes the booking over, see domain.decide_book, but
        did not make it), else "". `since`: when this request took the booking
        (Booking.keyed_since).

        The learner step is idempotent by its state, not by a replayable key: a refused
        attempt's undo is final, and a retry of it books again (its step key is new each time).
        """
        held: d.Booking | None = None

        def decide(current: d.Learner, version: int) -> Message | None:
            nonlocal held
            held = current.booking(ctx.session.session_id)
            return _learner_event(
                d.decide_book(current, ctx, request.key, now=now),
                version,
                ev.SessionBooked,
                ctx.session.session_id,
            )

        outcome = await self._commands.execute(
            self._learners,
            _one_off(request.command(store.LEARNER, agent_id, f"/book/{agent_id}")),
            decide,
        )
        mine = outcome.state.booking(ctx.session.session_id)
        if outcome.event is not None and held is None:
            return _FRESH, now
        if held is not None and mine is not None and _holder(mine) != _holder(held):
            # Taken over from another request, or from an earlier attempt of this one: either
            # gets it back if this attempt is refused (_hand_back).
            return _TookOver(held, now)
        if mine is not None and mine.enrollment_key == request.key:
            return _MINE, mine.keyed_since  # an earlier attempt's (perhaps moved), or this one's
        return ""

    async def _undo_mine(self, request: Request, booked: _Booked, session_id: str) -> None:
        """Releases every booking this request holds, except where the session holds the agent
        (_undo_all): a booking an earlier attempt took over from the request that seated them
        stays."""
        earlier = [a for a in booked.mine if a not in booked.fresh]
        await self._undo_all(request, [*booked.fresh, *earlier], session_id, booked.since)
        await self._hand_back(request, booked)

    async def _hand_back(self, request: Request, booked: _Booked) -> None:
        """The request is refused: each booking this call took over goes back to the request
        that held it (its key and key_time), so the refusal changes nothing (a reconciler
        settles that request's booking, not this one's). Not if it moved on since."""
        await asyncio.gather(
            *(self._hand_back_one(request, a, took) for a, took in booked.taken.items()),
            return_exceptions=True,
        )

    async def _hand_back_one(self, request: Request, agent_id: str, took: _TookOver) -> None:
        """Hands the booking back to the request this call took it from. If a third request
        has taken it over from this one meanwhile, that one hands it back here once it is
        refused, after this call is over: so this call leaves a mark that it gave the booking
        up, naming the request it took it from (the mark's fingerprint), and the third one's
        hand-back goes on to that request (_give_back); then it looks once more, in case that
        hand-back landed before the mark. Only the booking as this call took it goes back
        (its key and key_time): one released since and booked anew under the same key by
        another attempt of this request is that attempt's, which undoes or keeps it itself
        (the mark names only this call's taking, so it changes nothing for that one)."""
        handed, learner = await self._give_back(
            request, agent_id, took.held, request.key, took.since
        )
        if handed:
            return
        if learner.booking(took.held.session_id) is None:
            return  # released: nothing to hand back
        key = _give_up_key(request.key, agent_id, took.held.session_id, took.since)
        mark = Command(store.LEARNER, agent_id, key, _took_from(took.held))
        with contextlib.suppress(InvalidArgument):  # marked already
            await self._runner.spend_key(mark)
        await self._give_back(request, agent_id, took.held, request.key, took.since)

    async def _give_back(
        self,
        request: Request,
        agent_id: str,
        held: d.Booking,
        from_key: str,
        since: datetime | None,
    ) -> tuple[bool, d.Learner]:
        """Hands the booking request `from_key` holds (taken at `since`, its key_time) back to
        `held`'s request (True if it did; the learner as this step left it). If that request
        gave the booking up meanwhile (its mark), the booking goes on to the request it took it
        from, if the mark names one, or is released."""
        back = request.command(store.LEARNER, agent_id, f"/back/{agent_id}")
        handed, first = False, None
        for _ in range(MAX_HAND_BACKS):
            outcome = await self._hand_back_step(back, held, from_key, since)
            first = first or outcome.state
            if outcome.event is None:
                break
            handed = True
            mark = await self._give_up_mark(agent_id, held)
            if mark is None:
                break
            earlier = _took_from_mark(mark, held)
            if earlier is None:
                # The request handed back to was refused meanwhile, its undo finding the
                # booking taken over by this one: it left a mark, and its booking goes now.
                given_up = request.command(store.LEARNER, agent_id, f"/given-up/{agent_id}")
                await self._release_taken(
                    given_up, held.enrollment_key, held.keyed_since, held.session_id
                )
                break
            from_key, since, held = held.enrollment_key, held.key_time, earlier
        assert first is not None
        return handed, first

    async def _hand_back_step(
        self, command: Command, held: d.Booking, from_key: str, since: datetime | None
    ) -> Outcome[d.Learner]:
        return await self._commands.execute(
            self._learners,
            _one_off(command),
            lambda current, version: _learner_event(
                d.decide_hand_back(current, held, from_key, since),
                version,
                ev.SessionBooked,
                held.session_id,
            ),
        )

    async def _refuse_if_abandoned(self, request: Request, session_id: str) -> None:
        """The session step's key was spent by something else: if the reconciler gave this
        enrollment up, says so (FAILED_PRECONDITION: send it again with a new key); otherwise a
        different request used the key (the caller raises its INVALID_ARGUMENT)."""
        if await self._training.is_abandoned(request.key):
            raise FailedPrecondition(
                [
                    RuleViolation(
                        "ENROLLMENT_ABANDONED",
                        f"sessions/{session_id}",
                        "this request was cut off before it seated anyone and, not retried "
                        "in time, was given up and its bookings released; nothing was kept: "
                        "send it again with a new idempotency key",
                    )
                ]
            )

    # --- reconciliation --------------------------------------------------------------------
    async def settle_booking(self, agent_id: str, booking: d.Booking, agent_zone: str = "") -> bool:
        """Settles a booking whose session does not hold the agent (True if it changed it).

        The session holding the agent (waitlisted, enrolled, in progress) keeps it, always.
        A result on the session: the completion recorded on the learner's record, as the cut-off
        request would have (`agent_zone`: the agent's zone, for the record).
        Final otherwise on the session (withdrawn, no-show): the release after it was cut off.
        Not on the session: the enrollment never landed (cut off between its steps). Its key is
        spent on the session first, so that it cannot land once the time is freed; a retry of
        it is then refused (ENROLLMENT_ABANDONED) and changes nothing.
        """
        session = await self._training.session_now(booking.session_id)
        if session.holds(agent_id):
            return False
        entry = session.enrollment(agent_id)
        # With the result on the learner already, the booking is a later request's that never
        # landed (the session refuses it ALREADY_LEFT): it is released below.
        if (
            entry is not None
            and entry.completion is not None
            and await self._finish_completion(session, agent_id, entry.completion, agent_zone)
        ):
            return True
        if entry is None and booking.enrollment_key:
            await self._abandon(booking.enrollment_key, booking.session_id)
            session = await self._training.session_now(booking.session_id)  # after the claim
            if session.holds(agent_id):
                return False
        outcome = await self._commands.execute(
            self._learners,
            _reconciling(agent_id, booking.session_id),
            lambda current, version: _learner_event(
                # Only the booking seen (its key): one another request has taken over since
                # is that request's (domain.decide_book).
                d.decide_release(current, booking.session_id, made_by=booking.enrollment_key),
                version,
                ev.BookingReleased,
                booking.session_id,
            ),
        )
        return outcome.event is not None

    async def _finish_completion(
        self, session: d.Session, agent_id: str, completion: d.Completion, agent_zone: str
    ) -> bool:
        """The learner step of a RecordCompletion(s) cut off after the session took the result:
        a result is the agent's record (hours, competency, certification), not only a booking
        to free."""
        course = await self._training.course(session.course_id)
        if course is None:  # cannot happen for a session that exists; keep the booking
            return False
        record = d.completion_record(
            course=course, session=session, completion=completion, agent_zone=agent_zone
        )
        outcome = await self._commands.execute(
            self._learners,
            _reconciling(agent_id, session.session_id),
            lambda current, version: _completed(current, version, record),
        )
        return outcome.event is not None

    async def _abandon(self, enrollment_key: str, session_id: str) -> None:
        """Spends the enrollment's key on the session unless it was spent (by the enrollment,
        by a different request, or by an earlier reconciliation): either way it cannot seat
        anyone after this (CommandRunner.spend_key, as a bulk request spends its own)."""
        command = Command(store.SESSION, session_id, enrollment_key, store.ABANDONED)
        with contextlib.suppress(InvalidArgument):  # spent by a request: decided already
            await self._runner.spend_key(command)

    async def _undo_all(
        self,
        request: Request,
        agents: list[str],
        session_id: str,
        since: dict[str, datetime | None],
    ) -> None:
        """Releases the bookings this request made (never another request's), except where the
        session holds the agent: another attempt of this request, running at the same time,
        may have seated the agent on the booking this one made (this one's session step then
        replays it), and a booking whose session holds the agent is never released."""
        if not agents:
            return
        session = await self._training.session_now(session_id)
        agents = [a for a in agents if not session.holds(a)]
        await asyncio.gather(
            *(self._undo_one(request, a, session_id, since.get(a)) for a in agents),
            return_exceptions=True,
        )

    async def _undo_one(
        self, request: Request, agent_id: str, session_id: str, since: datetime | None
    ) -> None:
        """Releases the agent's booking of the session if this attempt holds it. If another
        request, or another attempt of this one, has taken it over (decide_book), that one may
        yet seat the agent, so it stays; but if that one is refused too it hands the booking
        back to this attempt, whose undo is over by then: so this attempt leaves a mark that it
        gave the booking up (`since` names the attempt), which the hand-back reads
        (_hand_back_one), and looks once more, in case the hand-back landed before the mark."""
        undo = request.command(store.LEARNER, agent_id, f"/undo/{agent_id}")
        learner = await self._release_taken(undo, request.key, since, session_id)
        if learner.booking(session_id) is None:
            return
        mark = Command(
            store.LEARNER, agent_id, _give_up_key(request.key, agent_id, session_id, since), ""
        )
        with contextlib.suppress(InvalidArgument):  # marked already
            await self._runner.spend_key(mark)
        await self._release_taken(undo, request.key, since, session_id)

    async def _give_up_mark(self, agent_id: str, held: d.Booking) -> str | None:
        """The fingerprint of the mark that `held`'s request gave the booking up, if it left
        one ("" if its own booking was taken over, else the request it had taken it from)."""
        key = _give_up_key(held.enrollment_key, agent_id, held.session_id, held.keyed_since)
        return await self._training.claim_fingerprint(store.LEARNER, key)

    async def _release_taken(
        self, command: Command, key: str, since: datetime | None, session_id: str
    ) -> d.Learner:
        """Releases the agent's booking of the session if it is the one an attempt of request
        `key` made or took at `since` (the learner step `command`, under a key of its own); the
        learner after."""
        outcome = await self._commands.execute(
            self._learners,
            _one_off(command),
            lambda current, version: _learner_event(
                d.decide_undo(current, session_id, key, since),
                version,
                ev.BookingReleased,
                session_id,
            ),
        )
        return outcome.state

    async def release(
        self, request: Request, agent_id: str, session_id: str, suffix: str = "/release"
    ) -> None:
        await self._commands.execute(
            self._learners,
            request.command(store.LEARNER, agent_id, f"{suffix}/{agent_id}"),
            lambda current, version: _learner_event(
                d.decide_release(current, session_id), version, ev.BookingReleased, session_id
            ),
        )

    # --- one enrollment --------------------------------------------------------------------
    async def transition(
        self,
        request: Request,
        *,
        session_id: str,
        agent_id: str,
        target: d.EnrollmentState,
        completion: d.Completion | None = None,
    ) -> d.Session:
        outcome = await self._commands.execute(
            self._sessions,
            request.command(store.SESSION, session_id, checked=True),
            lambda current, version: _changed(current, version, agent_id, target, completion),
        )
        return outcome.state

    async def start(self, request: Request, session_id: str) -> d.Session:
        """Checks the session in, then frees the time of the waitlisted agents it withdrew
        (again on a retry: each release is done once)."""
        outcome: Outcome[d.Session] = await self._commands.execute(
            self._sessions,
            request.command(store.SESSION, session_id, checked=True),
            _started,
        )
        session = outcome.state
        released = d.released_at_check_in(session)
        await asyncio.gather(*(self.release(request, a, session_id) for a in released))
        return session

    async def update_session(
        self, request: Request, session_id: str, requested: d.Session, paths: list[str]
    ) -> d.Session:
        """Moves or resizes the session, then every booking on it follows a move.

        A move first holds the new time on the learner of everyone on the session: each
        learner's event insert orders the hold against any other booking of that time, so an
        enrollment there or another session's move there made meanwhile is refused OVERLAP, or
        refuses the hold (and so the move). The session step checks that everyone it moves has
        the hold (someone seated meanwhile gets one, and the step is decided again); the
        booking steps then move each booking and let go of its hold. A refusal lets go of the
        holds made; a hold a cut-off move leaves is let go of by the reconciler."""
        holds = _MoveHolds()
        outcome: Outcome[d.Session] | None = None
        for _ in range(MAX_HOLD_ROUNDS):
            try:
                outcome = await self._commands.execute(
                    self._sessions,
                    request.command(store.SESSION, session_id, checked=True),
                    lambda current, version: _updated(current, version, requested, paths, holds),
                )
                break
            except _Unheld as unheld:
                await self._hold(request, unheld, holds)
            except Exception:
                await self._drop_holds(request, session_id, set(holds.held))
                raise
        if outcome is None:
            await self._drop_holds(request, session_id, set(holds.held))
            raise Aborted("the session's roster changed too fast to move it: retry")
        session = outcome.state
        moved: set[str] = set()
        if outcome.event is not None and d.SESSION_TIME_FIELDS & set(paths):
            moved = {e.agent_id for e in session.roster if e.state in d.ACTIVE}
            await asyncio.gather(*(self._move(request, a, session) for a in moved))
        # A replayed move's booking steps replay too: they let go of no hold this call made.
        await self._drop_holds(
            request, session_id, set(holds.held) - (set() if outcome.replayed else moved)
        )
        return session

    async def _hold(self, request: Request, unheld: _Unheld, holds: _MoveHolds) -> None:
        """Holds the session's new time on these agents' learners; a refusal lets go of every
        hold the move made and is raised (every clash listed), unless the move went through
        before (a retry: its session step replays the first result)."""
        agents = unheld.agents
        results = await asyncio.gather(
            *(self._hold_one(request, a, unheld.moved) for a in agents), return_exceptions=True
        )
        span = d.span_of(unheld.moved)
        for agent_id, result in zip(agents, results, strict=True):
            if not isinstance(result, BaseException):
                holds.held[agent_id] = span
        refusal = _refusal([r for r in results if isinstance(r, BaseException)])
        if refusal is None:
            return
        if await self._training.is_claimed(store.SESSION, request.key):
            holds.checking = False
            return
        await self._drop_holds(request, unheld.moved.session_id, set(holds.held))
        raise refusal

    async def _hold_one(self, request: Request, agent_id: str, moved: d.Session) -> None:
        now = utc_now()
        await self._commands.execute(
            self._learners,
            _one_off(request.command(store.LEARNER, agent_id, f"/hold/{agent_id}")),
            lambda current, version: _learner_event(
                d.decide_hold_move(current, moved, request.key, now=now),
                version,
                ev.BookingMoveHeld,
                moved.session_id,
            ),
        )

    async def _drop_holds(self, request: Request, session_id: str, agents: set[str]) -> None:
        """Lets go of the request's holds on these agents' learners. A failure leaves a hold
        for the reconciler (the error that ended the move is the one to answer)."""
        await asyncio.gather(
            *(
                self._let_go(
                    _one_off(request.command(store.LEARNER, a, f"/unhold/{a}")),
                    session_id,
                    {request.key},
                )
                for a in sorted(agents)
            ),
            return_exceptions=True,
        )

    async def settle_holds(self, agent_id: str, booking: d.Booking, update_keys: set[str]) -> bool:
        """Lets go of holds a move left on the booking (cut off before it let go of them:
        True if it changed it); if the session holds the agent at a newer version's time (the
        move was cut off after the session moved), the booking follows it there."""
        session = await self._training.session_now(booking.session_id)
        follow = session if session.holds(agent_id) else None
        command = _reconciling(agent_id, booking.session_id)
        return await self._let_go(command, booking.session_id, update_keys, follow)

    async def _let_go(
        self,
        command: Command,
        session_id: str,
        update_keys: set[str],
        follow: d.Session | None = None,
    ) -> bool:
        """The learner step letting go of the holds of requests `update_keys` on the booking of
        the session (domain.decide_drop_holds); True if it changed the learner."""
        outcome = await self._commands.execute(
            self._learners,
            command,
            lambda current, version: _learner_event(
                d.decide_drop_holds(current, session_id, update_keys, follow),
                version,
                ev.BookingHoldDropped,
                session_id,
            ),
        )
        return outcome.event is not None

    async def _move(self, request: Request, agent_id: str, session: d.Session) -> None:
        await self._commands.execute(
            self._learners,
            request.command(store.LEARNER, agent_id, f"/move/{agent_id}"),
            lambda current, version: _learner_event(
                d.decide_move_booking(current, session, request.key),
                version,
                ev.BookingMoved,
                session.session_id,
            ),
        )

    async def cancel(self, request: Request, session_id: str, reason: str) -> d.Session:
        """Cancels the session, then frees the time of everyone it withdrew."""
        outcome = await self._commands.execute(
            self._sessions,
            request.command(store.SESSION, session_id, checked=True),
            lambda current, version: _cancelled(current, version, reason),
        )
        session = outcome.state
        withdrawn = [
            e.agent_id
            for e in session.roster
            if e.state is d.EnrollmentState.WITHDRAWN and e.withdraw_reason
        ]
        await asyncio.gather(*(self.release(request, a, session_id) for a in withdrawn))
        return session

    async def record_results(
        self, request: Request, session_id: str, results: list[tuple[str, d.Completion]]
    ) -> d.Session:
        outcome = await self._commands.execute(
            self._sessions,
            request.command(store.SESSION, session_id, checked=True),
            lambda current, version: _results(current, version, results),
        )
        return outcome.state

    async def record_completions(
        self, request: Request, records: dict[str, d.CompletionRecord]
    ) -> None:
        """Each learner's completion (after the session recorded the results)."""
        await asyncio.gather(
            *(self.record_completion(request, agent, record) for agent, record in records.items())
        )

    async def record_completion(
        self, request: Request, agent_id: str, record: d.CompletionRecord
    ) -> None:
        await self._commands.execute(
            self._learners,
            request.command(store.LEARNER, agent_id, f"/complete/{agent_id}"),
            lambda current, version: _completed(current, version, record),
        )


class _Refreshing:
    """Runs commands; a refusal judged on this process's copy is judged again on the
    aggregate as its events say (CommandRunner.execute_rechecked): another replica may have
    enrolled the agent or recorded a completion since, so a replica never refuses on stale
    state."""

    def __init__(self, runner: CommandRunner) -> None:
        self._runner = runner

    async def execute(
        self, behaviour: Behaviour[S], command: Command, decide: Callable[[S, int], Any]
    ) -> Outcome[S]:
        return await self._runner.execute_rechecked(behaviour, command, decide)

    async def first_result(
        self, behaviour: Behaviour[S], command: Command, refusal: DomainError
    ) -> Outcome[S]:
        """The first result of the command's key if it was spent on the aggregate (the runner
        answers a refused retry so), else raises `refusal` (InvalidArgument if the key was
        spent by a different request)."""

        def refuse(current: S, version: int) -> Message | None:
            raise refusal

        return await self._runner.execute(behaviour, command, refuse)


def _refusal(failures: list[BaseException]) -> BaseException | None:
    """One error for a batch's refusals: every broken rule, or the first other failure."""
    if not failures:
        return None
    other = [f for f in failures if not isinstance(f, FailedPrecondition)]
    if other:
        return other[0]
    return FailedPrecondition(
        [v for f in failures if isinstance(f, FailedPrecondition) for v in f.violations]
    )


def _enrolled(
    current: d.Session,
    version: int,
    agents: list[str],
    *,
    refuse_if_full: bool,
    booked_as: d.Session,
    now: datetime,
) -> Message | None:
    _require_exists(current)
    d.require_same_time(current, booked_as)
    session, enrolled, waitlisted = d.decide_enroll(
        current, agents, refuse_if_full=refuse_if_full, now=now
    )
    if not enrolled and not waitlisted:
        return None
    return ev.AgentsEnrolled(
        session=store.session_to_proto(replace(session, version=version + 1)),
        enrolled_agents=enrolled,
        waitlisted_agents=waitlisted,
    )


MAX_HOLD_ROUNDS = 8  # people seated on the session while its move holds the new time


@dataclass
class _MoveHolds:
    """The learners a move holds the session's new time on (agent -> the time held)."""

    held: dict[str, d.Span] = field(default_factory=dict)
    checking: bool = True  # off for a retry of a move that went through (it replays)

    def check(self, moved: d.Session, changed: list[str]) -> None:
        """Raises _Unheld naming everyone the move takes along without the new time held."""
        if not self.checking or not d.SESSION_TIME_FIELDS & set(changed):
            return
        span = d.span_of(moved)
        unheld = [
            e.agent_id
            for e in moved.roster
            if e.state in d.ACTIVE and self.held.get(e.agent_id) != span
        ]
        if unheld:
            raise _Unheld(moved, unheld)


class _Unheld(Exception):
    """The session step of a move found agents whose learner does not hold the new time."""

    def __init__(self, moved: d.Session, agents: list[str]) -> None:
        super().__init__(f"the new time is not held on {len(agents)} learner(s)")
        self.moved = moved
        self.agents = agents


def _updated(
    current: d.Session,
    version: int,
    requested: d.Session,
    paths: list[str],
    holds: _MoveHolds | None = None,
) -> Message | None:
    decided = d.decide_update_session(current, requested, paths, utc_now())
    if decided is None:
        return None
    session, changed, promoted = decided
    if holds is not None:
        holds.check(session, changed)
    return ev.SessionUpdated(
        session=store.session_to_proto(replace(session, version=version + 1)),
        changed_fields=changed,
        promoted_agents=promoted,
    )


def _cancelled(current: d.Session, version: int, reason: str) -> Message:
    _require_exists(current)
    session, withdrawn = d.decide_cancel_session(current, reason, utc_now())
    return ev.SessionCancelled(
        session=store.session_to_proto(replace(session, version=version + 1)),
        reason=reason,
        withdrawn_agents=withdrawn,
    )


def _started(current: d.Session, version: int) -> Message:
    # Check-in is judged by the session's times: a copy of a session not seen yet has none
    # (the refusal is judged again on the session's events, see _Refreshing).
    _require_exists(current)
    session = d.decide_start_session(current, utc_now())
    return ev.SessionStarted(
        session=store.session_to_proto(replace(session, version=version + 1)),
        released_agents=d.released_at_check_in(session),
    )


def _changed(
    current: d.Session,
    version: int,
    agent_id: str,
    target: d.EnrollmentState,
    completion: d.Completion | None,
) -> Message:
    _require_exists(current)
    before = current.enrollment(agent_id)
    session, promoted = d.decide_transition(current, agent_id, target, utc_now(), completion)
    return ev.EnrollmentChanged(
        session=store.session_to_proto(replace(session, version=version + 1)),
        agent=agent_id,
        from_state=store.state_to_proto(before.state if before else target),
        to_state=store.state_to_proto(target),
        promoted_agents=promoted,
    )


def _results(current: d.Session, version: int, results: list[tuple[str, d.Completion]]) -> Message:
    _require_exists(current)
    session = d.decide_results(current, results, utc_now())
    return ev.ResultsRecorded(
        session=store.session_to_proto(replace(session, version=version + 1)),
        completed_agents=[a for a, c in results if c.passed],
        failed_agents=[a for a, c in results if not c.passed],
    )


def _learner_event(
    learner: d.Learner | None, version: int, cls: Callable[..., Message], session_id: str
) -> Message | None:
    if learner is None:
        return None
    return cls(
        learner=store.learner_to_proto(replace(learner, version=version + 1)),
        session=f"sessions/{session_id}",
    )


def _completed(current: d.Learner, version: int, record: d.CompletionRecord) -> Message | None:
    learner = d.decide_complete(current, record)
    if learner is None:
        return None
    return ev.CompletionRecorded(
        learner=store.learner_to_proto(replace(learner, version=version + 1)),
        completion=store.completion_to_proto(current.agent_id, record),
    )


MAX_HAND_BACKS = 16  # a chain of requests that took one booking over from each other

_TOOK_FROM = "took-from:"


def _holder(booking: d.Booking) -> tuple[str, datetime | None]:
    """The attempt holding a booking: its request's key and when it took it (key_time)."""
    return booking.enrollment_key, booking.key_time


def _took_from(held: d.Booking) -> str:
    """A give-up mark's fingerprint naming the request (key and key_time) the booking was taken
    from: the booking goes back to it when handed back to the one that gave it up."""
    since = held.key_time.isoformat() if held.key_time else ""
    return f"{_TOOK_FROM}{since}|{held.enrollment_key}"


def _took_from_mark(mark: str, booking: d.Booking) -> d.Booking | None:
    """The booking as the request a give-up mark names held it; None for a plain mark."""
    if not mark.startswith(_TOOK_FROM):
        return None
    since, key = mark.removeprefix(_TOOK_FROM).split("|", 1)
    key_time = datetime.fromisoformat(since) if since else None
    return replace(booking, enrollment_key=key, key_time=key_time)


def _give_up_key(key: str, agent_id: str, session_id: str, since: datetime | None) -> str:
    """The mark that request `key`'s attempt that took the booking at `since` gave it up."""
    return f"{key}/gave-up/{agent_id}/{session_id}/{since.isoformat() if since else ''}"


def _reconciling(agent_id: str, session_id: str) -> Command:
    """The reconciler's learner step for a booking of the session (no request of its own)."""
    return _one_off(Command(store.LEARNER, agent_id, f"reconcile/{agent_id}/{session_id}", ""))


def _one_off(command: Command) -> Command:
    """A learner step's command under a key of its own (a random suffix): the steps are
    idempotent by the learner's state, not by a key a retry could send again, so a step that
    changes nothing spends no key either."""
    key = f"{command.idempotency_key}/{uuid.uuid4().hex}"
    return replace(command, idempotency_key=key, one_off=True)


def _require_exists(session: d.Session) -> None:
    if not session.version:
        raise FailedPrecondition(
            [RuleViolation("SESSION_EXISTS", f"sessions/{session.session_id}", "no such session")]
        )


__all__ = ["Flows", "Request"]
