"""Training persistence: proto codec of courses, sessions and learners, and state hints.

Every event carries its aggregate's full new state, so `evolve` only decodes it. The write
model's hints come from the views (`courses`, `sessions`, `learners`), which keep each
aggregate's state as its serialized proto next to a few queryable fields; the event insert is
the real check.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import datetime
from typing import Any

from bson.binary import Binary
from google.protobuf.message import Message
from wfm.events.v1.envelope_pb2 import EventEnvelope
from wfm.training.v1 import events_pb2 as ev
from wfm.training.v1 import training_service_pb2 as pb

from services.training import domain as d
from wfm_runtime import mongo
from wfm_runtime.commands import Behaviour
from wfm_runtime.events import short_type
from wfm_runtime.eventstore import EventStore
from wfm_runtime.timefmt import EPOCH, checked_timestamp, localized, to_timestamp

COURSE = "course"
SESSION = "session"
LEARNER = "learner"
# The fingerprint a reconciler spends an enrollment's key with on the session when the
# enrollment never landed (flows.Flows.settle_booking): the request can no longer commit.
ABANDONED = "enrollment-abandoned"
# EPOCH stands in for a time a stored message lacks (never written by this service).


# --- enums ---------------------------------------------------------------------------------
def category_from_proto(value: int) -> d.Category | None:
    return _enum_from(pb.CourseCategory, "COURSE_CATEGORY_", value, d.Category)


def delivery_from_proto(value: int) -> d.Delivery | None:
    return _enum_from(pb.Delivery, "DELIVERY_", value, d.Delivery)


def state_from_proto(value: int) -> d.EnrollmentState | None:
    return _enum_from(pb.EnrollmentState, "ENROLLMENT_STATE_", value, d.EnrollmentState)


def level_from_proto(value: int) -> d.Level | None:
    if value not in pb.CompetencyLevel.values() or value == 0:
        return None
    return d.Level[pb.CompetencyLevel.Name(value).removeprefix("COMPETENCY_LEVEL_")]  # type: ignore[arg-type]


def level_to_proto(level: d.Level | None) -> Any:
    return pb.CompetencyLevel.Value(f"COMPETENCY_LEVEL_{level.name}") if level else 0


def state_to_proto(state: d.EnrollmentState) -> Any:
    return pb.EnrollmentState.Value(f"ENROLLMENT_STATE_{state.value}")


def _enum_from(proto_enum: Any, prefix: str, value: int, cls: Any) -> Any:
    if value not in proto_enum.values() or value == 0:
        return None
    return cls(proto_enum.Name(value).removeprefix(prefix))


def _time(message: Any, field_name: str) -> datetime | None:
    return checked_timestamp(getattr(message, field_name)) if message.HasField(field_name) else None


def _set_time(message: Any, field_name: str, value: datetime | None) -> None:
    if value is not None:
        getattr(message, field_name).CopyFrom(to_timestamp(value))


def _id(name: str, collection: str) -> str:
    return name.removeprefix(f"{collection}/")


# --- courses -------------------------------------------------------------------------------
def course_to_proto(course: d.Course) -> pb.Course:
    message = pb.Course(
        name=f"courses/{course.course_id}",
        title=course.title,
        category=pb.CourseCategory.Value(f"COURSE_CATEGORY_{course.category.value}"),
        client=course.client,
        credit_minutes=course.credit_minutes,
        technical=course.technical,
        competency=course.competency,
        competency_level=level_to_proto(course.level),
        prerequisite_courses=[f"courses/{c}" for c in course.prerequisite_courses],
        prerequisite_competencies=[
            pb.CompetencyRequirement(competency=r.competency, level=level_to_proto(r.level))
            for r in course.prerequisite_competencies
        ],
        validity_days=course.validity_days,
        required_for_clients=list(course.required_for_clients),
        self_enrollment=course.self_enrollment,
        version=course.version,
    )
    _set_time(message, "create_time", course.create_time)
    return message


def course_from_proto(message: pb.Course, course_id: str) -> d.Course:
    """Unknown enum values decode to defaults; the api reports them as violations first."""
    return d.Course(
        course_id=course_id,
        title=message.title,
        category=category_from_proto(message.category) or d.Category.PRODUCT,
        client=message.client,
        credit_minutes=message.credit_minutes,
        technical=message.technical,
        competency=message.competency,
        level=level_from_proto(message.competency_level),
        prerequisite_courses=tuple(_id(c, "courses") for c in message.prerequisite_courses),
        prerequisite_competencies=tuple(
            d.CompetencyRequirement(r.competency, level_from_proto(r.level) or d.Level.FOUNDATION)
            for r in message.prerequisite_competencies
        ),
        validity_days=message.validity_days,
        required_for_clients=tuple(message.required_for_clients),
        self_enrollment=message.self_enrollment,
        version=message.version,
        create_time=_time(message, "create_time"),
    )


# --- sessions ------------------------------------------------------------------------------
def enrollment_to_proto(
    session: d.Session, entry: d.Enrollment, position: int | None = None
) -> pb.Enrollment:
    """`position`: the entry's waitlist position when the caller knows it (a whole roster)."""
    message = pb.Enrollment(
        name=f"sessions/{session.session_id}/enrollments/{entry.agent_id}",
        agent=f"agents/{entry.agent_id}",
        session=f"sessions/{session.session_id}",
        course=f"courses/{session.course_id}",
        state=state_to_proto(entry.state),
        waitlist_position=session.waitlist_position(entry.agent_id)
        if position is None
        else position,
        session_version=session.version,
        withdraw_reason=entry.withdraw_reason,
    )
    _set_time(message, "enroll_time", entry.enroll_time)
    _set_time(message, "update_time", entry.update_time)
    if entry.completion is not None:
        c = entry.completion
        message.completion.CopyFrom(
            pb.Completion(
                completion_time=to_timestamp(c.completion_time),
                attended_minutes=c.attended_minutes,
                score=c.score,
                passed=c.passed,
            )
        )
    return message


def session_to_proto(session: d.Session) -> pb.Session:
    positions = {e.agent_id: i for i, e in enumerate(session.waitlist, start=1)}
    message = pb.Session(
        name=f"sessions/{session.session_id}",
        course=f"courses/{session.course_id}",
        time_zone=session.time_zone,
        trainer=session.trainer,
        capacity=session.capacity,
        delivery=pb.Delivery.Value(f"DELIVERY_{session.delivery.value}"),
        state=pb.SessionState.Value(f"SESSION_STATE_{session.state.value}"),
        seats_taken=session.seats_taken,
        waitlist_length=len(session.waitlist),
        roster=[
            enrollment_to_proto(session, e, positions.get(e.agent_id, 0)) for e in session.roster
        ],
        version=session.version,
        cancel_reason=session.cancel_reason,
    )
    _set_time(message, "start_time", session.start)
    _set_time(message, "end_time", session.end)
    _set_time(message, "create_time", session.create_time)
    if session.start is not None and session.time_zone:
        message.start_local.CopyFrom(localized(session.start, session.time_zone))
    if session.end is not None and session.time_zone:
        message.end_local.CopyFrom(localized(session.end, session.time_zone))
    return message


def _enrollment_from_proto(message: pb.Enrollment, sequence: int) -> d.Enrollment:
    completion = None
    if message.HasField("completion"):
        c = message.completion
        completion = d.Completion(
            _time(c, "completion_time") or EPOCH, c.attended_minutes, c.score, c.passed
        )
    return d.Enrollment(
        agent_id=_id(message.agent, "agents"),
        state=state_from_proto(message.state) or d.EnrollmentState.ENROLLED,
        sequence=sequence,
        enroll_time=_time(message, "enroll_time") or EPOCH,
        update_time=_time(message, "update_time") or EPOCH,
        completion=completion,
        withdraw_reason=message.withdraw_reason,
    )


def session_from_proto(message: pb.Session, session_id: str) -> d.Session:
    roster = tuple(_enrollment_from_proto(e, i + 1) for i, e in enumerate(message.roster))
    state = _enum_from(pb.SessionState, "SESSION_STATE_", message.state, d.SessionState)
    return d.Session(
        session_id=session_id,
        course_id=_id(message.course, "courses"),
        start=_time(message, "start_time"),
        end=_time(message, "end_time"),
        time_zone=message.time_zone,
        trainer=message.trainer,
        capacity=message.capacity,
        delivery=delivery_from_proto(message.delivery) or d.Delivery.CLASSROOM,
        state=state or d.SessionState.SCHEDULED,
        roster=roster,
        next_sequence=len(roster) + 1,  # the roster is kept in arrival order
        version=message.version,
        create_time=_time(message, "create_time"),
        cancel_reason=message.cancel_reason,
    )


# --- learners ------------------------------------------------------------------------------
# A learner's every event carries all its completions: the same records are encoded and
# decoded again and again (timestamps are the costly part), so both directions are memoized.
# Records are immutable and hashable; a cached message is only ever copied, never changed.
_CODEC_CACHE = 65536


def completion_to_proto(agent_id: str, c: d.CompletionRecord) -> ev.TrainingCompletion:
    message = ev.TrainingCompletion()
    message.CopyFrom(_completion_message(agent_id, c))
    return message


@functools.lru_cache(maxsize=_CODEC_CACHE)
def _completion_message(agent_id: str, c: d.CompletionRecord) -> ev.TrainingCompletion:
    message = ev.TrainingCompletion(
        agent=f"agents/{agent_id}",
        course=f"courses/{c.course_id}",
        session=f"sessions/{c.session_id}",
        course_title=c.course_title,
        session_start_time=to_timestamp(c.session_start),
        completion_time=to_timestamp(c.completion_time),
        time_zone=c.time_zone,
        attended_minutes=c.attended_minutes,
        technical=c.technical,
        score=c.score,
        passed=c.passed,
        competency=c.competency,
        competency_level=level_to_proto(c.level),
        self_paced=c.self_paced,
    )
    _set_time(message, "certification_expire_time", c.expire_time)
    return message


def _completion_from_proto(m: ev.TrainingCompletion) -> d.CompletionRecord:
    return _completion_from_bytes(m.SerializeToString(deterministic=True))


@functools.lru_cache(maxsize=_CODEC_CACHE)
def _completion_from_bytes(data: bytes) -> d.CompletionRecord:
    m = ev.TrainingCompletion.FromString(data)
    return d.CompletionRecord(
        course_id=_id(m.course, "courses"),
        session_id=_id(m.session, "sessions"),
        course_title=m.course_title,
        session_start=_time(m, "session_start_time") or EPOCH,
        completion_time=_time(m, "completion_time") or EPOCH,
        time_zone=m.time_zone,
        attended_minutes=m.attended_minutes,
        technical=m.technical,
        score=m.score,
        passed=m.passed,
        competency=m.competency,
        level=level_from_proto(m.competency_level),
        expire_time=_time(m, "certification_expire_time"),
        self_paced=m.self_paced,
    )


def learner_to_proto(learner: d.Learner) -> ev.Learner:
    return ev.Learner(
        agent=f"agents/{learner.agent_id}",
        bookings=[
            ev.Booking(
                session=f"sessions/{b.session_id}",
                course=f"courses/{b.course_id}",
                start_time=to_timestamp(b.start),
                end_time=to_timestamp(b.end),
                self_paced=b.self_paced,
                enrollment_key=b.enrollment_key,
                booked_time=to_timestamp(b.booked_time) if b.booked_time else None,
                key_time=to_timestamp(b.key_time) if b.key_time else None,
                session_version=b.session_version,
                move_holds=[_hold_to_proto(h) for h in b.move_holds] if b.move_holds else None,
            )
            for b in learner.bookings
        ],
        completions=[_completion_message(learner.agent_id, c) for c in learner.completions],
        version=learner.version,
    )


def _hold_to_proto(hold: d.MoveHold) -> ev.MoveHold:
    return ev.MoveHold(
        update_key=hold.update_key,
        start_time=to_timestamp(hold.start),
        end_time=to_timestamp(hold.end),
        self_paced=hold.self_paced,
        hold_time=to_timestamp(hold.hold_time),
    )


def _hold_from_proto(m: ev.MoveHold) -> d.MoveHold:
    return d.MoveHold(
        m.update_key,
        _time(m, "start_time") or EPOCH,
        _time(m, "end_time") or EPOCH,
        m.self_paced,
        _time(m, "hold_time") or EPOCH,
    )


def session_from_doc(doc: dict[str, Any]) -> d.Session:
    """A session as the `sessions` view stores it."""
    return session_from_proto(decode_doc(doc, pb.Session), str(doc["_id"]))


def learner_from_doc(doc: dict[str, Any]) -> d.Learner:
    """A learner as the `learners` view stores it."""
    return learner_from_proto(decode_doc(doc, ev.Learner), str(doc["_id"]))


def learner_from_proto(message: ev.Learner, agent_id: str) -> d.Learner:
    return d.Learner(
        agent_id=agent_id,
        bookings=tuple(
            d.Booking(
                _id(b.session, "sessions"),
                _id(b.course, "courses"),
                _time(b, "start_time") or EPOCH,
                _time(b, "end_time") or EPOCH,
                b.self_paced,
                b.enrollment_key,
                _time(b, "booked_time"),
                _time(b, "key_time"),
                b.session_version,
                tuple(_hold_from_proto(h) for h in b.move_holds) if b.move_holds else (),
            )
            for b in message.bookings
        ),
        completions=tuple(_completion_from_proto(c) for c in message.completions),
        version=message.version,
    )


# --- events --------------------------------------------------------------------------------
COURSE_EVENTS: dict[str, type[Message]] = {
    "CourseCreated": ev.CourseCreated,
    "CourseUpdated": ev.CourseUpdated,
}
SESSION_EVENTS: dict[str, type[Message]] = {
    "SessionUpdated": ev.SessionUpdated,
    "SessionCancelled": ev.SessionCancelled,
    "SessionScheduled": ev.SessionScheduled,
    "AgentsEnrolled": ev.AgentsEnrolled,
    "EnrollmentChanged": ev.EnrollmentChanged,
    "SessionStarted": ev.SessionStarted,
    "ResultsRecorded": ev.ResultsRecorded,
}
LEARNER_EVENTS: dict[str, type[Message]] = {
    "SessionBooked": ev.SessionBooked,
    "BookingReleased": ev.BookingReleased,
    "CompletionRecorded": ev.CompletionRecorded,
    "BookingMoved": ev.BookingMoved,
    "BookingMoveHeld": ev.BookingMoveHeld,
    "BookingHoldDropped": ev.BookingHoldDropped,
}


def _payload(envelope: EventEnvelope, kinds: dict[str, type[Message]]) -> Any:
    cls = kinds[short_type(envelope.event_type)]
    message = cls()
    if not envelope.payload.Unpack(message):
        raise TypeError(f"{envelope.event_type} is not {cls.DESCRIPTOR.full_name}")
    return message


def event_state(envelope: EventEnvelope) -> Any:
    """The aggregate's full state an event carries (pb.Course, pb.Session or ev.Learner)."""
    kind = envelope.aggregate_type
    if kind == COURSE:
        return _payload(envelope, COURSE_EVENTS).course
    if kind == SESSION:
        return _payload(envelope, SESSION_EVENTS).session
    return _payload(envelope, LEARNER_EVENTS).learner


def evolve_course(state: d.Course, envelope: EventEnvelope) -> d.Course:
    course = course_from_proto(_payload(envelope, COURSE_EVENTS).course, state.course_id)
    return _versioned(course, envelope)


def evolve_session(state: d.Session, envelope: EventEnvelope) -> d.Session:
    session = session_from_proto(_payload(envelope, SESSION_EVENTS).session, state.session_id)
    return _versioned(session, envelope)


def evolve_learner(state: d.Learner, envelope: EventEnvelope) -> d.Learner:
    learner = learner_from_proto(_payload(envelope, LEARNER_EVENTS).learner, state.agent_id)
    return _versioned(learner, envelope)


def _versioned(state: Any, envelope: EventEnvelope) -> Any:
    return replace(state, version=envelope.aggregate_version)


# --- view documents (shared with views.py) -------------------------------------------------
def state_doc(message: Message, version: int, **fields: Any) -> dict[str, Any]:
    return {"version": version, "data": Binary(message.SerializeToString()), **fields}


async def replace_many(coll: mongo.Collection, docs: dict[str, dict[str, Any]]) -> None:
    """Writes a projector batch: one delete_many by `_id` and one insert_many.

    On FerretDB v1 (SQLite) every update or single delete scans its collection (about 16 ms
    each at 1,000 learners), while one delete_many plus one insert_many of 200 documents takes
    about 170 ms in all. The price: for a moment between the two a replaced document is
    missing; readers fall back to the event store (TrainingStore) or see it a moment later.
    """
    if docs:
        # (A per-document version guard as an `$or` in the delete costs 14x more on FerretDB;
        # the projector checks versions itself and assumes it is the views' only writer.)
        await mongo.delete_ids(coll, list(docs))
        await mongo.insert_new(coll, [{"_id": k, **v} for k, v in docs.items()])


def decode_doc(doc: dict[str, Any], cls: type[Any]) -> Any:
    message = cls()
    message.ParseFromString(bytes(doc["data"]))
    return message


class TrainingStore:
    """Aggregate state from the views (a hint for writes: the event insert is the check).

    The event store is read only for an aggregate the views do not have yet (created moments
    ago, possibly by another replica): on FerretDB v1 a read of a missing `_id` scans the whole
    collection, so catching up on every read would cost a scan of `events` each time.
    """

    def __init__(
        self,
        events: EventStore,
        courses: mongo.Collection,
        sessions: mongo.Collection,
        learners: mongo.Collection,
    ) -> None:
        self._events = events
        self.courses = courses
        self.sessions = sessions
        self.learners = learners

    async def course(self, course_id: str) -> d.Course | None:
        doc = await mongo.get(self.courses, course_id)
        if doc is not None:
            return course_from_proto(decode_doc(doc, pb.Course), course_id)
        course = await self._from_events(COURSE, d.Course(course_id), evolve_course)
        return course if course.version else None

    async def session(self, session_id: str, *, events: bool = True) -> d.Session | None:
        doc = await mongo.get(self.sessions, session_id)
        if doc is not None:
            return session_from_doc(doc)
        if not events:
            return None
        session = await self._from_events(SESSION, d.Session(session_id), evolve_session)
        return session if session.version else None

    async def learner(self, agent_id: str) -> d.Learner | None:
        doc = await mongo.get(self.learners, agent_id)
        return learner_from_doc(doc) if doc else None

    async def session_now(self, session_id: str) -> d.Session:
        """The session as its events say, read from the view's copy on (one read past the last
        event): the truth, for a decision that must not rest on a lagging view."""
        session = await self.session(session_id, events=False) or d.Session(session_id)
        latest: d.Session = await self._from_events(SESSION, session, evolve_session)
        return latest

    async def is_abandoned(self, enrollment_key: str) -> bool:
        """True if a reconciler spent the enrollment's key on its session (see ABANDONED)."""
        claim = await self._events.claim_of(SESSION, enrollment_key)
        return claim is not None and claim.fingerprint == ABANDONED

    async def claim_fingerprint(self, kind: str, key: str) -> str | None:
        """The fingerprint the key was spent with on an aggregate of `kind`; None if unspent."""
        claim = await self._events.claim_of(kind, key)
        return None if claim is None else claim.fingerprint

    async def is_claimed(self, kind: str, key: str) -> bool:
        """True if the key was spent on an aggregate of `kind` (an event or a no-change mark)."""
        return await self._events.claim_of(kind, key) is not None

    async def _from_events(self, kind: str, state: Any, evolve: Any) -> Any:
        entity_id = {COURSE: "course_id", SESSION: "session_id", LEARNER: "agent_id"}[kind]
        entity_id = getattr(state, entity_id)
        while True:
            envelope = await self._events.get(kind, entity_id, state.version + 1)
            if envelope is None:
                return state
            state = evolve(state, envelope)

    async def _load_course(self, course_id: str) -> tuple[d.Course, int]:
        course = await self.course(course_id) or d.Course(course_id)
        return course, course.version

    # The write model loads only when this process has no copy: the view as a hint (the event
    # insert is the check). After a refusal on possibly stale state the runner reads the newer
    # events too (CommandRunner.execute_rechecked: one read past the last event, a scan on
    # FerretDB, so not on every load).
    async def _load_session(self, session_id: str) -> tuple[d.Session, int]:
        session = await self.session(session_id, events=False) or d.Session(session_id)
        return session, session.version

    async def _load_learner(self, agent_id: str) -> tuple[d.Learner, int]:
        learner = await self.learner(agent_id) or d.Learner(agent_id)
        return learner, learner.version

    def course_behaviour(self) -> Behaviour[d.Course]:
        return Behaviour(COURSE, d.Course, self._load_course, evolve_course)

    def session_behaviour(self) -> Behaviour[d.Session]:
        return Behaviour(SESSION, d.Session, self._load_session, evolve_session)

    def learner_behaviour(self) -> Behaviour[d.Learner]:
        return Behaviour(LEARNER, d.Learner, self._load_learner, evolve_learner)
