"""Training rules: courses, sessions (seats + waitlist), learners (bookings + completions).

Pure functions on frozen dataclasses, no I/O. Three aggregates:
- Course: what is taught and what it grants.
- Session: one scheduled run of a course; its roster holds the seats and the waitlist, so the
  session's unique (aggregate, version) event insert serializes every seat decision.
- Learner (one per agent): the agent's bookings and completions. Checks that span sessions (no
  double enrollment in a course, no two sessions at the same time, prerequisites) are decided
  on the learner, which commits before the session; see docs/training.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from wfm_runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    RuleViolation,
    Violations,
)
from wfm_runtime.validation import check_id, check_time_zone

MAX_CREDIT_MINUTES = 1000 * 60
MAX_VALIDITY_DAYS = 3660
MAX_CAPACITY = 1000
MAX_SESSION_DAYS = 31
MAX_PREREQUISITES = 20
MAX_CLIENTS = 50
MAX_ENROLL_BATCH = 500
MAX_SCORE = 100
MAX_REASON = 500
# Check-in (StartSession) opens this long before the scheduled start: an hour lets a trainer
# open the room or the call and take the register as people arrive, without letting a class be
# "held" days early.
CHECK_IN_LEAD = timedelta(minutes=60)
# ...and closes this long after the scheduled end: a class that met while nobody pressed start
# still gets its register and results (trainers often record them the next day or after a
# week of classes); a session weeks past its end and never started was not held as planned.
CHECK_IN_AFTER_END = timedelta(days=14)

# Training takes place in these years (UTC). Sessions and results outside them are typos or hostile
# input, and near the ends of the Timestamp range (years 1-9999) a session's clock time, its
# check-in window or a certification's expiry would not fit in a datetime.
EARLIEST_TRAINING = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_TRAINING = datetime(2100, 1, 1, tzinfo=UTC)
TRAINING_YEARS = "in the years 2000-2099"

# Update masks (AIP-134): request path -> dataclass attribute.
COURSE_FIELDS = {
    "title": "title",
    "category": "category",
    "client": "client",
    "credit_minutes": "credit_minutes",
    "technical": "technical",
    "competency": "competency",
    "competency_level": "level",
    "prerequisite_courses": "prerequisite_courses",
    "prerequisite_competencies": "prerequisite_competencies",
    "validity_days": "validity_days",
    "required_for_clients": "required_for_clients",
    "self_enrollment": "self_enrollment",
}
SESSION_FIELDS = {
    "start_time": "start",
    "end_time": "end",
    "time_zone": "time_zone",
    "trainer": "trainer",
    "capacity": "capacity",
    "delivery": "delivery",
}
# Changing these moves the session in time: every booking follows, and must not clash.
SESSION_TIME_FIELDS = frozenset({"start_time", "end_time", "delivery"})


class Category(Enum):
    PRODUCT = "PRODUCT"
    CLIENT_SPECIFIC = "CLIENT_SPECIFIC"
    TECHNICAL = "TECHNICAL"
    COMPLIANCE = "COMPLIANCE"
    SOFT_SKILLS = "SOFT_SKILLS"


class Level(Enum):
    """Competency levels, in order: Foundation -> Competent -> Expert -> Master."""

    FOUNDATION = 1
    COMPETENT = 2
    EXPERT = 3
    MASTER = 4


class Delivery(Enum):
    CLASSROOM = "CLASSROOM"
    VIRTUAL = "VIRTUAL"
    SELF_PACED = "SELF_PACED"


class SessionState(Enum):
    SCHEDULED = "SCHEDULED"
    STARTED = "STARTED"
    CANCELLED = "CANCELLED"


class EnrollmentState(Enum):
    WAITLISTED = "WAITLISTED"
    ENROLLED = "ENROLLED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    WITHDRAWN = "WITHDRAWN"
    NO_SHOW = "NO_SHOW"


E = EnrollmentState
# The enrollment state machine: every allowed move (anything else is FAILED_PRECONDITION).
TRANSITIONS: dict[EnrollmentState, frozenset[EnrollmentState]] = {
    E.WAITLISTED: frozenset({E.ENROLLED, E.WITHDRAWN}),
    # NO_SHOW needs the session started, when nobody is ENROLLED any more: asked before, the
    # answer is SESSION_NOT_STARTED, which says more than TRANSITION would.
    E.ENROLLED: frozenset({E.IN_PROGRESS, E.WITHDRAWN, E.NO_SHOW}),
    # StartSession checks every enrolled agent in; the trainer then marks who did not come.
    E.IN_PROGRESS: frozenset({E.COMPLETED, E.FAILED, E.WITHDRAWN, E.NO_SHOW}),
    E.COMPLETED: frozenset(),
    E.FAILED: frozenset(),
    E.WITHDRAWN: frozenset(),
    E.NO_SHOW: frozenset(),
}
ACTIVE = frozenset({E.WAITLISTED, E.ENROLLED, E.IN_PROGRESS})
# The withdraw reason of agents still waitlisted when the session started.
WAITLIST_CLOSED = "waitlist closed: the session started without a seat for the agent"
# A seat is held from enrollment to the end; only a withdrawal (or never getting one) frees it.
HOLDS_SEAT = frozenset({E.ENROLLED, E.IN_PROGRESS, E.COMPLETED, E.FAILED, E.NO_SHOW})


@dataclass(frozen=True)
class CompetencyRequirement:
    competency: str
    level: Level


@dataclass(frozen=True)
class Course:
    course_id: str
    title: str = ""
    category: Category = Category.PRODUCT
    client: str = ""  # the client of a CLIENT_SPECIFIC course
    credit_minutes: int = 0
    technical: bool = False
    competency: str = ""
    level: Level | None = None
    prerequisite_courses: tuple[str, ...] = ()
    prerequisite_competencies: tuple[CompetencyRequirement, ...] = ()
    validity_days: int = 0  # 0: never expires; else recertification is due after this long
    required_for_clients: tuple[str, ...] = ()
    self_enrollment: bool = False
    version: int = 0
    create_time: datetime | None = None


@dataclass(frozen=True)
class Completion:
    """What a finished enrollment records (the performance service consumes it)."""

    completion_time: datetime
    attended_minutes: int
    score: int
    passed: bool


@dataclass(frozen=True)
class Enrollment:
    agent_id: str
    state: EnrollmentState
    sequence: int  # order of arrival: the waitlist is promoted in this order
    enroll_time: datetime
    update_time: datetime
    completion: Completion | None = None
    withdraw_reason: str = ""  # set when withdrawn by a cancellation, or at check-in


@dataclass(frozen=True)
class Session:
    session_id: str
    course_id: str = ""
    start: datetime | None = None
    end: datetime | None = None
    time_zone: str = ""
    trainer: str = ""
    capacity: int = 0
    delivery: Delivery = Delivery.CLASSROOM
    state: SessionState = SessionState.SCHEDULED
    roster: tuple[Enrollment, ...] = ()
    next_sequence: int = 1
    version: int = 0
    create_time: datetime | None = None
    cancel_reason: str = ""

    def enrollment(self, agent_id: str) -> Enrollment | None:
        return next((e for e in self.roster if e.agent_id == agent_id), None)

    def holds(self, agent_id: str) -> bool:
        """Whether the agent has a place on it (waitlisted, enrolled or in progress)."""
        entry = self.enrollment(agent_id)
        return entry is not None and entry.state in ACTIVE

    @property
    def seats_taken(self) -> int:
        return sum(1 for e in self.roster if e.state in HOLDS_SEAT)

    @property
    def waitlist(self) -> list[Enrollment]:
        return sorted((e for e in self.roster if e.state is E.WAITLISTED), key=lambda e: e.sequence)

    def waitlist_position(self, agent_id: str) -> int:
        ids = [e.agent_id for e in self.waitlist]
        return ids.index(agent_id) + 1 if agent_id in ids else 0


Span = tuple[datetime, datetime, bool]  # start, end, self-paced


@dataclass(frozen=True)
class MoveHold:
    """The new time a move of the session (UpdateSession request `update_key`) will take a
    booking to, held on the learner before the session moves: the learner's event insert
    orders it against any other booking of that time, so neither can slip past the other's
    clash check (see Flows.update_session). The move step lets go of it."""

    update_key: str
    start: datetime
    end: datetime
    self_paced: bool
    hold_time: datetime  # the reconciler lets go of a hold left behind after its grace

    @property
    def span(self) -> Span:
        return self.start, self.end, self.self_paced


@dataclass(frozen=True)
class Booking:
    """A session an agent holds a place in (enrolled or waitlisted): its time is taken."""

    session_id: str
    course_id: str
    start: datetime
    end: datetime
    self_paced: bool = False
    enrollment_key: str = ""  # the request that made it (see flows.py: only it undoes it)
    # When the place was taken: the enrollment's creation. None on bookings recorded before
    # this was kept; they count as known all along.
    booked_time: datetime | None = None
    # When `enrollment_key` took the booking (a take-over's instant, see decide_book); None:
    # booked_time. The reconciler's grace for that request runs from it.
    key_time: datetime | None = None
    # The version of the session whose time the booking holds (0: not recorded). A booking
    # never goes back to an older version's time (see _at_time_of).
    session_version: int = 0
    # Moves of the session under way: their new times are taken too.
    move_holds: tuple[MoveHold, ...] = ()

    @property
    def keyed_since(self) -> datetime | None:
        return self.key_time or self.booked_time

    @property
    def span(self) -> Span:
        """The booking's own time."""
        return self.start, self.end, self.self_paced

    @property
    def spans(self) -> list[Span]:
        """Every time the booking takes: its own, and the new times of moves under way."""
        return [self.span, *(h.span for h in self.move_holds)]

    def hold(self, update_key: str) -> MoveHold | None:
        return next((h for h in self.move_holds if h.update_key == update_key), None)


@dataclass(frozen=True)
class CompletionRecord:
    """One finished course on the agent's record, with everything reports need."""

    course_id: str
    session_id: str
    course_title: str
    session_start: datetime
    completion_time: datetime
    time_zone: str  # the agent's zone when it was recorded
    attended_minutes: int
    technical: bool
    score: int
    passed: bool
    competency: str = ""
    level: Level | None = None
    expire_time: datetime | None = None  # certification expiry (passed, course with validity)
    self_paced: bool = False  # trained in a self-paced window, at completion_time


@dataclass(frozen=True)
class Learner:
    agent_id: str
    bookings: tuple[Booking, ...] = ()
    completions: tuple[CompletionRecord, ...] = ()
    version: int = 0

    def booking(self, session_id: str) -> Booking | None:
        return next((b for b in self.bookings if b.session_id == session_id), None)


# --- validation ----------------------------------------------------------------------------
def validate_course(course: Course, v: Violations) -> None:
    check_id(v, course.course_id, "course_id", "course id")
    v.check(0 < len(course.title) <= 200, "course.title", "1-200 characters required")
    v.check(
        0 < course.credit_minutes <= MAX_CREDIT_MINUTES,
        "course.credit_minutes",
        f"must be between 1 and {MAX_CREDIT_MINUTES}",
    )
    if course.category is Category.CLIENT_SPECIFIC:
        v.check(bool(course.client), "course.client", "a client-specific course names its client")
    v.check(len(course.client) <= 100, "course.client", "at most 100 characters")
    v.check(len(course.competency) <= 100, "course.competency", "at most 100 characters")
    v.check(
        bool(course.competency) == (course.level is not None),
        "course.competency_level",
        "a competency and its level are given together",
    )
    v.check(
        0 <= course.validity_days <= MAX_VALIDITY_DAYS,
        "course.validity_days",
        f"must be between 0 (never expires) and {MAX_VALIDITY_DAYS}",
    )
    _check_prerequisites(course, v)
    v.check(
        len(course.required_for_clients) <= MAX_CLIENTS,
        "course.required_for_clients",
        f"at most {MAX_CLIENTS} clients",
    )
    for i, client in enumerate(course.required_for_clients[:MAX_CLIENTS]):
        v.check(
            0 < len(client) <= 100,
            f"course.required_for_clients[{i}]",
            "1-100 characters required",
        )


def _check_prerequisites(course: Course, v: Violations) -> None:
    total = len(course.prerequisite_courses) + len(course.prerequisite_competencies)
    if not v.check(total <= MAX_PREREQUISITES, "course", f"at most {MAX_PREREQUISITES} prereqs"):
        return
    for i, pre in enumerate(course.prerequisite_courses):
        check_id(v, pre, f"course.prerequisite_courses[{i}]", "course id")
        v.check(
            pre != course.course_id,
            f"course.prerequisite_courses[{i}]",
            "a course cannot require itself",
        )
    for i, req in enumerate(course.prerequisite_competencies):
        v.check(
            0 < len(req.competency) <= 100,
            f"course.prerequisite_competencies[{i}].competency",
            "1-100 characters required",
        )


def validate_session(session: Session, v: Violations) -> None:
    check_id(v, session.session_id, "session_id", "session id")
    check_id(v, session.course_id, "session.course", "course id")
    check_time_zone(v, session.time_zone, "session.time_zone")
    v.check(0 < len(session.trainer) <= 200, "session.trainer", "1-200 characters required")
    v.check(
        0 < session.capacity <= MAX_CAPACITY,
        "session.capacity",
        f"must be between 1 and {MAX_CAPACITY}",
    )
    if session.start is None or session.end is None:
        v.check(session.start is not None, "session.start_time", "is required")
        v.check(session.end is not None, "session.end_time", "is required")
        return
    v.check(session.start >= EARLIEST_TRAINING, "session.start_time", f"must be {TRAINING_YEARS}")
    v.check(session.end <= LATEST_TRAINING, "session.end_time", f"must be {TRAINING_YEARS}")
    length = session.end - session.start
    v.check(
        timedelta(0) < length <= timedelta(days=MAX_SESSION_DAYS),
        "session.end_time",
        f"must be after start_time, at most {MAX_SESSION_DAYS} days later",
    )


# --- courses -------------------------------------------------------------------------------
def decide_create_course(current: Course, requested: Course, now: datetime) -> Course:
    if current.version:
        raise AlreadyExists("course", f"courses/{requested.course_id}")
    return replace(requested, version=1, create_time=now)


def decide_update_course(
    current: Course, requested: Course, paths: list[str]
) -> tuple[Course, list[str]] | None:
    """The course with the masked fields taken from `requested`, and the paths that changed;
    None when nothing changes. Rules are checked on the result."""
    if not current.version:
        raise NotFound("course", f"courses/{current.course_id}")
    updated = _merged(current, requested, paths, COURSE_FIELDS)
    v = Violations()
    validate_course(updated, v)
    v.raise_if_any()
    changed = _changed_paths(current, updated, paths, COURSE_FIELDS)
    return (updated, changed) if changed else None


def _merged(current: object, requested: object, paths: list[str], fields: dict[str, str]) -> Any:
    return replace(current, **{fields[p]: getattr(requested, fields[p]) for p in paths})  # type: ignore[type-var]


def _changed_paths(
    before: object, after: object, paths: list[str], fields: dict[str, str]
) -> list[str]:
    return [p for p in paths if getattr(before, fields[p]) != getattr(after, fields[p])]


# --- sessions ------------------------------------------------------------------------------
def decide_create_session(
    current: Session, requested: Session, course: Course | None, now: datetime
) -> Session:
    if current.version:
        raise AlreadyExists("session", f"sessions/{requested.session_id}")
    if course is None:
        raise _broken(
            "COURSE_EXISTS",
            f"courses/{requested.course_id}",
            f"course {requested.course_id!r} does not exist: create it first",
        )
    return replace(
        requested,
        state=SessionState.SCHEDULED,
        roster=(),
        next_sequence=1,
        version=1,
        create_time=now,
    )


def decide_enroll(
    session: Session, agent_ids: list[str], *, refuse_if_full: bool, now: datetime
) -> tuple[Session, list[str], list[str]]:
    """Seats in arrival order, then the waitlist; returns (session, enrolled, waitlisted).

    Agents already active on the roster keep their place (a retried batch is harmless).
    """
    _require_scheduled(session)
    broken: list[RuleViolation] = []
    roster = list(session.roster)
    sequence = session.next_sequence
    free = session.capacity - session.seats_taken
    enrolled: list[str] = []
    waitlisted: list[str] = []
    for agent_id in agent_ids:
        existing = session.enrollment(agent_id)
        if existing is not None:
            if existing.state not in ACTIVE:
                broken.append(
                    RuleViolation(
                        "ALREADY_LEFT",
                        f"sessions/{session.session_id}/enrollments/{agent_id}",
                        f"agent {agent_id} is {existing.state.value.lower()} on this session "
                        "and cannot re-enroll in it",
                    )
                )
            continue
        state = E.ENROLLED if free > 0 else E.WAITLISTED
        if state is E.WAITLISTED and refuse_if_full:
            broken.append(
                RuleViolation(
                    "SESSION_FULL",
                    f"sessions/{session.session_id}",
                    f"all {session.capacity} seats are taken",
                )
            )
            continue
        free -= state is E.ENROLLED
        (enrolled if state is E.ENROLLED else waitlisted).append(agent_id)
        roster.append(Enrollment(agent_id, state, sequence, now, now))
        sequence += 1
    if broken:
        raise FailedPrecondition(broken)
    return (
        replace(session, roster=tuple(roster), next_sequence=sequence),
        enrolled,
        waitlisted,
    )


def decide_transition(
    session: Session,
    agent_id: str,
    target: EnrollmentState,
    now: datetime,
    completion: Completion | None = None,
) -> tuple[Session, list[str]]:
    """Moves one enrollment; a freed seat promotes the waitlist in order. Returns promoted ids."""
    current = session.enrollment(agent_id)
    subject = f"sessions/{session.session_id}/enrollments/{agent_id}"
    if current is None:
        raise _broken("ENROLLED", subject, f"agent {agent_id} is not on this session")
    if target not in TRANSITIONS[current.state]:
        raise _broken(
            "TRANSITION",
            subject,
            f"an enrollment cannot go from {current.state.value} to {target.value}",
        )
    if target in (E.IN_PROGRESS, E.COMPLETED, E.FAILED, E.NO_SHOW):
        _require_started(session, subject)
    updated = replace(current, state=target, update_time=now, completion=completion)
    session = _with_enrollment(session, updated)
    promoted = _promote(session, now) if session.state is SessionState.SCHEDULED else []
    for agent in promoted:
        entry = session.enrollment(agent)
        assert entry is not None
        session = _with_enrollment(session, replace(entry, state=E.ENROLLED, update_time=now))
    return session, promoted


def decide_results(
    session: Session, results: list[tuple[str, Completion]], now: datetime
) -> Session:
    """Completes or fails every listed enrollment; all or nothing, every broken rule listed."""
    broken: list[RuleViolation] = []
    for agent_id, completion in results:
        target = E.COMPLETED if completion.passed else E.FAILED
        try:
            session, _ = decide_transition(session, agent_id, target, now, completion)
        except FailedPrecondition as err:
            broken += err.violations
    if broken:
        raise FailedPrecondition(broken)
    return session


def decide_start_session(session: Session, now: datetime) -> Session:
    """Check-in: the session starts and every enrolled agent is in progress. The waitlist
    closes: agents still waiting are withdrawn (WAITLIST_CLOSED), so their time is freed and
    they may book another session of the course (a seat can no longer come free for them).
    Only while check-in is open, `[start - CHECK_IN_LEAD, end + CHECK_IN_AFTER_END)`; a
    cancelled or started session answers that first, whatever the time."""
    _require_scheduled(session)
    _require_check_in_open(session, now)
    roster = tuple(_checked_in(e, now) for e in session.roster)
    return replace(session, state=SessionState.STARTED, roster=roster)


def _checked_in(entry: Enrollment, now: datetime) -> Enrollment:
    if entry.state is E.ENROLLED:
        return replace(entry, state=E.IN_PROGRESS, update_time=now)
    if entry.state is E.WAITLISTED:
        return replace(entry, state=E.WITHDRAWN, update_time=now, withdraw_reason=WAITLIST_CLOSED)
    return entry


def released_at_check_in(session: Session) -> list[str]:
    """The agents whose waitlist place check-in closed (their bookings are to be released)."""
    return [e.agent_id for e in session.roster if e.withdraw_reason == WAITLIST_CLOSED]


def decide_update_session(
    current: Session, requested: Session, paths: list[str], now: datetime
) -> tuple[Session, list[str], list[str]] | None:
    """Moves or resizes a scheduled session; returns (session, changed paths, promoted agents),
    None when nothing changes. More seats promote the waitlist in arrival order; fewer seats
    than are taken is refused."""
    if not current.version:
        raise NotFound("session", f"sessions/{current.session_id}")
    _require_scheduled(current)
    updated = _merged(current, requested, paths, SESSION_FIELDS)
    v = Violations()
    validate_session(updated, v)
    v.raise_if_any()
    if updated.capacity < current.seats_taken:
        raise _broken(
            "CAPACITY",
            f"sessions/{current.session_id}",
            f"{current.seats_taken} seats are taken: the capacity cannot go below that "
            "(withdraw agents first)",
        )
    changed = _changed_paths(current, updated, paths, SESSION_FIELDS)
    if not changed:
        return None
    promoted = _promote(updated, now)
    for agent in promoted:
        entry = updated.enrollment(agent)
        assert entry is not None
        updated = _with_enrollment(updated, replace(entry, state=E.ENROLLED, update_time=now))
    return updated, changed, promoted


def decide_cancel_session(
    session: Session, reason: str, now: datetime
) -> tuple[Session, list[str]]:
    """Cancels the session: everyone still on it is withdrawn with the reason (results already
    recorded stay). Returns the session and the withdrawn agents."""
    if session.state is SessionState.CANCELLED:
        raise _cancelled(session)
    withdrawn = [e.agent_id for e in session.roster if e.state in ACTIVE]
    roster = tuple(
        replace(e, state=E.WITHDRAWN, update_time=now, withdraw_reason=reason)
        if e.state in ACTIVE
        else e
        for e in session.roster
    )
    cancelled = replace(session, state=SessionState.CANCELLED, roster=roster, cancel_reason=reason)
    return cancelled, withdrawn


def require_same_time(session: Session, booked_as: Session) -> None:
    """The learners booked the session's time as `booked_as` had it: if the session has moved
    since (UpdateSession), the bookings are wrong and the enrollment must be tried again."""
    if (session.start, session.end, session.delivery) != (
        booked_as.start,
        booked_as.end,
        booked_as.delivery,
    ):
        raise _broken(
            "SESSION_MOVED",
            f"sessions/{session.session_id}",
            "the session was moved while enrolling: try again",
        )


def _promote(session: Session, now: datetime) -> list[str]:
    free = session.capacity - session.seats_taken
    return [e.agent_id for e in session.waitlist[: max(free, 0)]]


def _with_enrollment(session: Session, updated: Enrollment) -> Session:
    roster = tuple(updated if e.agent_id == updated.agent_id else e for e in session.roster)
    return replace(session, roster=roster)


def _cancelled(session: Session) -> FailedPrecondition:
    return _broken(
        "SESSION_CANCELLED",
        f"sessions/{session.session_id}",
        f"the session was cancelled ({session.cancel_reason})",
    )


def _require_scheduled(session: Session) -> None:
    if session.state is SessionState.CANCELLED:
        raise _cancelled(session)
    if session.state is not SessionState.SCHEDULED:
        raise _broken(
            "SESSION_STARTED",
            f"sessions/{session.session_id}",
            "the session has started: enrollments are closed",
        )


def check_in_opens(session: Session) -> datetime:
    """CHECK_IN_LEAD of elapsed time before the start (in UTC: arithmetic on a zoned datetime
    would go by the wall clock, an hour off across a DST change)."""
    assert session.start is not None
    return session.start.astimezone(UTC) - CHECK_IN_LEAD


def check_in_closes(session: Session) -> datetime:
    """CHECK_IN_AFTER_END of elapsed time after the scheduled end."""
    assert session.end is not None
    return session.end.astimezone(UTC) + CHECK_IN_AFTER_END


def _require_check_in_open(session: Session, now: datetime) -> None:
    assert session.start is not None and session.end is not None
    subject = f"sessions/{session.session_id}"
    opens = check_in_opens(session)
    now = now.astimezone(UTC)
    if now < opens:
        lead = CHECK_IN_LEAD // timedelta(minutes=1)
        raise _broken(
            "CHECK_IN_NOT_OPEN",
            subject,
            f"check-in opens at {_when(opens, session.time_zone)}, {lead} minutes before the "
            f"session starts at {_when(session.start, session.time_zone)}; "
            f"it is {_when(now, '')} now",
        )
    if now >= check_in_closes(session):
        days = CHECK_IN_AFTER_END // timedelta(days=1)
        raise _broken(
            "SESSION_ENDED",
            subject,
            f"the session ended at {_when(session.end, session.time_zone)} and was never "
            f"started: check-in closed {days} days after the end, and results and no-shows "
            "can only be recorded on a started session. If the class is still to be held, "
            "move the session to its new time (UpdateSession) and start it then; if it will "
            "not be, cancel it",
        )


def _when(instant: datetime, zone: str) -> str:
    """`2026-03-10T03:00:00Z (2026-03-10 08:30 IST, Asia/Kolkata)`: the UTC instant, and the
    wall clock of the session's zone when it has one."""
    utc = instant.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    if not zone:
        return utc
    local = instant.astimezone(ZoneInfo(zone))
    return f"{utc} ({local:%Y-%m-%d %H:%M} {local.tzname()}, {zone})"


def _require_started(session: Session, subject: str) -> None:
    if session.state is not SessionState.STARTED:
        raise _broken(
            "SESSION_NOT_STARTED", subject, "the session has not started yet: start it first"
        )


# --- learners ------------------------------------------------------------------------------
@dataclass(frozen=True)
class EnrollmentContext:
    """What the learner's decision needs to know about the agent, course and session."""

    agent_client: str  # client served by the agent's team
    course: Course
    session: Session


def check_booking(learner: Learner, ctx: EnrollmentContext) -> list[RuleViolation]:
    """Every rule a new booking would break for this agent (empty: the agent may enroll)."""
    course, session = ctx.course, ctx.session
    subject = f"agents/{learner.agent_id}"
    broken: list[RuleViolation] = []
    if course.category is Category.CLIENT_SPECIFIC and course.client != ctx.agent_client:
        broken.append(
            RuleViolation(
                "CLIENT",
                subject,
                f"course {course.course_id} is for client {course.client!r}; "
                f"the agent's team serves {ctx.agent_client or 'no client'!r}",
            )
        )
    for pre in course.prerequisite_courses:
        if not any(c.course_id == pre and c.passed for c in learner.completions):
            broken.append(
                RuleViolation("PREREQUISITE", subject, f"has not passed prerequisite course {pre}")
            )
    levels = competency_levels(learner)
    for req in course.prerequisite_competencies:
        held = levels.get(req.competency)
        if held is None or held.level.value < req.level.value:
            broken.append(
                RuleViolation(
                    "PREREQUISITE",
                    subject,
                    f"needs {req.competency} at {req.level.name.title()} or above",
                )
            )
    broken += _booking_clashes(learner, course, session)
    return broken


def _booking_clashes(learner: Learner, course: Course, session: Session) -> list[RuleViolation]:
    subject = f"agents/{learner.agent_id}"
    broken: list[RuleViolation] = []
    for booked in learner.bookings:
        if booked.session_id == session.session_id:
            continue  # the same session again: the session keeps the agent's place
        if booked.course_id == course.course_id:
            broken.append(
                RuleViolation(
                    "DOUBLE_ENROLLMENT",
                    subject,
                    f"already enrolled in {course.course_id} (session {booked.session_id})",
                )
            )
        elif (span := _clash(booked, session)) is not None:
            broken.append(
                RuleViolation(
                    "OVERLAP",
                    subject,
                    f"session {booked.session_id} at the same time {_described(booked, span)}",
                )
            )
    return broken


def _clash(booked: Booking, session: Session) -> Span | None:
    """The first time the booking takes (its own, or a move's hold) that the session overlaps."""
    if not booked.move_holds:  # the common case, on every enrollment's check
        return booked.span if _overlaps(booked.span, session) else None
    return next((span for span in booked.spans if _overlaps(span, session)), None)


def _overlaps(span: Span, session: Session) -> bool:
    start, end, self_paced = span
    # Self-paced courses have a window, not a seat in a room: they clash with nothing.
    if self_paced or session.delivery is Delivery.SELF_PACED:
        return False
    assert session.start is not None and session.end is not None
    return start < session.end and session.start < end


def _described(booked: Booking, span: Span) -> str:
    times = f"{span[0].isoformat()} to {span[1].isoformat()}"
    if span == booked.span:
        return f"({times})"
    return f"(being moved to {times})"


def span_of(session: Session) -> Span:
    assert session.start is not None and session.end is not None
    return session.start, session.end, session.delivery is Delivery.SELF_PACED


def decide_book(
    learner: Learner, ctx: EnrollmentContext, key: str = "", *, now: datetime
) -> Learner | None:
    """The learner with the session booked by request `key` at `now`; None if request `key`
    booked it already at the session's time (a retry). Another request's booking of the
    session is taken over: the key is rewritten (booked_time kept), so that a reconciler
    releasing that request's booking (its enrollment never landed, flows.py) cannot free the
    time of an agent this request is about to seat. A booking held already is moved to the
    session's time if the session moved since (see _reused)."""
    held = learner.booking(ctx.session.session_id)
    if held is not None:
        return _reused(learner, held, ctx.session, key, now)
    broken = check_booking(learner, ctx)
    if broken:
        raise FailedPrecondition(broken)
    session = ctx.session
    assert session.start is not None and session.end is not None
    booking = Booking(
        session.session_id,
        ctx.course.course_id,
        session.start,
        session.end,
        session.delivery is Delivery.SELF_PACED,
        key,
        now,
        session_version=session.version,
    )
    return replace(learner, bookings=(*learner.bookings, booking))


def _reused(
    learner: Learner, held: Booking, session: Session, key: str, now: datetime
) -> Learner | None:
    """A booking of the session the agent holds already, used by request `key`: at the session's
    time now (it may have moved while the agent was not on its roster, so UpdateSession did not
    move the booking: the clash rules are checked again), and taken at `now` (key_time): over
    from another request that made it (booked_time stays: the place may be that request's,
    taken then, for a past due list), or over from an earlier attempt of request `key` that
    made or took it if the session (as this attempt sees it) does not hold the agent (a retry
    after a refusal or a cut-off, or one racing the first on another replica). The key time
    names the attempt holding the booking: an undo releases only the booking as its attempt
    made or took it (decide_undo), so a refused attempt never frees the time of an agent
    another attempt of its request is seating on that booking (and a refused attempt hands a
    booking it took over back, flows.py). A retry of a request that seated the agent changes
    nothing (an undo leaves a booking whose session holds the agent), nor does this attempt
    deciding again (the same `now`). A request deciding on an older copy of the session than
    the booking's leaves the time as it is (the session step then refuses it SESSION_MOVED)."""
    mine = _at_time_of(held, session)
    if mine != held:
        clashes = move_clashes(learner, session)
        if clashes:
            raise FailedPrecondition(clashes)
    if held.enrollment_key != key or (
        held.keyed_since != now and not session.holds(learner.agent_id)
    ):
        mine = replace(mine, enrollment_key=key, key_time=now)
    if mine == held:
        return None
    return _with_booking(learner, mine)


def _at_time_of(booking: Booking, session: Session) -> Booking:
    """The booking at the session's time, unless it holds a later version's time already: a
    booking never goes back to an older time of its session (a late step of an earlier move,
    or an enrollment deciding on a stale copy of the session, would otherwise leave it there
    while the session is elsewhere)."""
    assert session.start is not None and session.end is not None
    time = (session.start, session.end, session.delivery is Delivery.SELF_PACED)
    if session.version < booking.session_version or time == (
        booking.start,
        booking.end,
        booking.self_paced,
    ):
        return booking
    return replace(
        booking,
        start=session.start,
        end=session.end,
        self_paced=time[2],
        session_version=session.version,
    )


def decide_hand_back(
    learner: Learner, held: Booking, key: str, key_time: datetime | None
) -> Learner | None:
    """The learner with the booking request `key` took over (decide_book) at `key_time` handed
    back to the request that held it (`held`: its key and key_time then), because request `key`
    was refused and so changes nothing; None if the booking is no longer the one `key` took
    (released, taken over again since, or released and booked anew by another attempt of
    request `key`: that one is the other attempt's, which undoes or keeps it itself). Anything
    else about it (a move of the session since) stays."""
    booking = learner.booking(held.session_id)
    if booking is None or (booking.enrollment_key, booking.key_time) != (key, key_time):
        return None
    back = replace(booking, enrollment_key=held.enrollment_key, key_time=held.key_time)
    return _with_booking(learner, back)


def move_clashes(learner: Learner, session: Session) -> list[RuleViolation]:
    """The agent's other bookings the session, moved to its new time, would overlap."""
    subject = f"agents/{learner.agent_id}"
    return [
        RuleViolation(
            "OVERLAP",
            subject,
            f"the moved session would overlap session {b.session_id} {_described(b, span)}",
        )
        for b in learner.bookings
        if b.session_id != session.session_id and (span := _clash(b, session)) is not None
    ]


def decide_hold_move(
    learner: Learner, moved: Session, update_key: str, *, now: datetime
) -> Learner | None:
    """The learner with the session's new time (`moved`) held on its booking for request
    `update_key`, before the session moves; refused (OVERLAP) if another booking takes that
    time, or holds it for a move of its own. None if the learner holds no booking of the
    session (nothing moves), the booking is at that time already, or the request holds it."""
    booking = learner.booking(moved.session_id)
    span = span_of(moved)
    if booking is None or booking.span == span:
        return None
    held = booking.hold(update_key)
    if held is not None and held.span == span:
        return None
    clashes = move_clashes(learner, moved)
    if clashes:
        raise FailedPrecondition(clashes)
    hold = MoveHold(update_key, *span, now)
    others = tuple(h for h in booking.move_holds if h.update_key != update_key)
    return _with_booking(learner, replace(booking, move_holds=(*others, hold)))


def decide_drop_holds(
    learner: Learner, session_id: str, update_keys: set[str], follow: Session | None = None
) -> Learner | None:
    """The learner without the holds of requests `update_keys` on its booking of the session,
    and, given the session that holds the agent (`follow`), with the booking at its time if it
    holds an older version's (a move cut off before its booking step); None if nothing changes."""
    booking = learner.booking(session_id)
    if booking is None:
        return None
    kept = tuple(h for h in booking.move_holds if h.update_key not in update_keys)
    settled = replace(booking, move_holds=kept)
    if follow is not None and booking.session_version < follow.version:
        settled = replace(_at_time_of(settled, follow), session_version=follow.version)
    return None if settled == booking else _with_booking(learner, settled)


def decide_move_booking(learner: Learner, session: Session, update_key: str = "") -> Learner | None:
    """The learner's booking at the session's new time (and version), without request
    `update_key`'s hold; None if it holds none, or holds this version or a later one already
    (the move steps of two moves in quick succession may land in either order) and no hold of
    the request."""
    booking = learner.booking(session.session_id)
    if booking is None:
        return None
    moved = replace(
        booking, move_holds=tuple(h for h in booking.move_holds if h.update_key != update_key)
    )
    if booking.session_version < session.version:
        moved = replace(_at_time_of(moved, session), session_version=session.version)
    return None if moved == booking else _with_booking(learner, moved)


def _with_booking(learner: Learner, booking: Booking) -> Learner:
    """The learner with its booking of that session replaced by `booking`."""
    return replace(
        learner,
        bookings=tuple(
            booking if b.session_id == booking.session_id else b for b in learner.bookings
        ),
    )


def _without_booking(learner: Learner, session_id: str) -> Learner:
    return replace(
        learner, bookings=tuple(b for b in learner.bookings if b.session_id != session_id)
    )


def decide_release(
    learner: Learner, session_id: str, *, made_by: str | None = None
) -> Learner | None:
    """The learner without the booking; None if it holds none (nothing to do), or, with
    `made_by`, if another request made it (an undo releases only its own request's booking)."""
    booking = learner.booking(session_id)
    if booking is None or (made_by is not None and booking.enrollment_key != made_by):
        return None
    return _without_booking(learner, session_id)


def decide_undo(
    learner: Learner, session_id: str, key: str, since: datetime | None
) -> Learner | None:
    """The learner without the booking of the session as an attempt of request `key` made or
    took it at `since` (its keyed_since); None if the booking is no longer that one: released,
    or taken over by another request or another attempt of request `key` (decide_book), which
    hands it back if refused (flows.py)."""
    booking = learner.booking(session_id)
    if booking is None or (booking.enrollment_key, booking.keyed_since) != (key, since):
        return None
    return _without_booking(learner, session_id)


def attended_by_default(completion: Completion, course: Course) -> Completion:
    """A result given without attended minutes counts the course's credit minutes: training
    hours are the sum of attended minutes, and 0 would drop the class from them."""
    if completion.attended_minutes:
        return completion
    return replace(completion, attended_minutes=course.credit_minutes)


def completion_record(
    *,
    course: Course,
    session: Session,
    completion: Completion,
    agent_zone: str,
) -> CompletionRecord:
    expire = None
    if completion.passed and course.validity_days:
        expire = completion.completion_time + timedelta(days=course.validity_days)
    assert session.start is not None
    return CompletionRecord(
        course_id=course.course_id,
        session_id=session.session_id,
        course_title=course.title,
        session_start=session.start,
        completion_time=completion.completion_time,
        time_zone=agent_zone,
        attended_minutes=completion.attended_minutes,
        technical=course.technical,
        score=completion.score,
        passed=completion.passed,
        competency=course.competency if completion.passed else "",
        level=course.level if completion.passed else None,
        expire_time=expire,
        self_paced=session.delivery is Delivery.SELF_PACED,
    )


def recorded_result(session: Session, agent_id: str, sent: Completion) -> Completion:
    """The agent's result as the session recorded it, else `sent`: a retry replays the first
    attempt's session step, and its own request may differ from it (no completion_time: the
    retry's now), so the learner's record is built from what the session holds, never from
    the retry."""
    entry = session.enrollment(agent_id)
    return entry.completion if entry is not None and entry.completion is not None else sent


def decide_complete(learner: Learner, record: CompletionRecord) -> Learner | None:
    """Adds the completion (history is kept) and frees the booking; None if already recorded."""
    if any(c.session_id == record.session_id for c in learner.completions):
        return None
    bookings = tuple(b for b in learner.bookings if b.session_id != record.session_id)
    return replace(learner, bookings=bookings, completions=(*learner.completions, record))


def validate_completion(completion: Completion, v: Violations) -> None:
    v.check(
        EARLIEST_TRAINING <= completion.completion_time < LATEST_TRAINING,
        "completion_time",
        f"must be {TRAINING_YEARS}",
    )
    v.check(
        0 <= completion.attended_minutes <= MAX_SESSION_DAYS * 24 * 60,
        "attended_minutes",
        f"must be between 0 and {MAX_SESSION_DAYS * 24 * 60}",
    )
    v.check(0 <= completion.score <= MAX_SCORE, "score", f"must be between 0 and {MAX_SCORE}")


# --- transcript ----------------------------------------------------------------------------
@dataclass(frozen=True)
class HeldLevel:
    competency: str
    level: Level
    achieved: datetime
    evidence_course: str
    evidence_session: str


@dataclass(frozen=True)
class Certification:
    course_id: str
    course_title: str
    certified: datetime
    expires: datetime
    history: tuple[CompletionRecord, ...]  # every passed completion of the course, oldest first


class DueReason(Enum):
    REQUIRED = "REQUIRED"  # required for the client, never passed
    EXPIRING = "EXPIRING"  # certification expires within the window
    EXPIRED = "EXPIRED"


@dataclass(frozen=True)
class DueItem:
    agent_id: str
    course_id: str
    reason: DueReason
    due: datetime | None  # expiry for EXPIRING/EXPIRED; None for never-taken required courses
    booked_session: str = ""  # a session of the course the agent holds a place on already


@dataclass(frozen=True)
class PeriodTotals:
    period: str  # "YYYY-MM", the month of the session's start on the agent's clock
    training_minutes: int = 0
    technical_minutes: int = 0
    technical_completed: int = 0
    completed: int = 0


@dataclass(frozen=True)
class Transcript:
    agent_id: str
    completions: list[CompletionRecord]
    periods: list[PeriodTotals]
    totals: PeriodTotals
    levels: list[HeldLevel]
    certifications: list[Certification]
    due: list[DueItem] = field(default_factory=list)
    bookings: list[Booking] = field(default_factory=list)  # places held, by start


def competency_levels(learner: Learner) -> dict[str, HeldLevel]:
    """Highest level per competency, from passed completions; ties keep the earliest."""
    held: dict[str, HeldLevel] = {}
    for c in sorted(learner.completions, key=lambda c: c.completion_time):
        if not (c.passed and c.competency and c.level):
            continue
        best = held.get(c.competency)
        if best is None or c.level.value > best.level.value:
            held[c.competency] = HeldLevel(
                c.competency, c.level, c.completion_time, c.course_id, c.session_id
            )
    return held


def certifications(learner: Learner) -> list[Certification]:
    """Per course with a validity period: the latest passed completion decides the expiry.

    A latest pass without an expiry (the course stopped expiring) certifies for good: an
    older pass's expiry must not keep the course due, since no renewal could clear it."""
    by_course: dict[str, list[CompletionRecord]] = {}
    for c in sorted(learner.completions, key=lambda c: c.completion_time):
        if c.passed:
            by_course.setdefault(c.course_id, []).append(c)
    certs = []
    for course_id, passes in sorted(by_course.items()):
        latest = passes[-1]
        if latest.expire_time is None:
            continue
        history = [c for c in passes if c.expire_time is not None]
        certs.append(
            Certification(
                course_id,
                latest.course_title,
                latest.completion_time,
                latest.expire_time,
                tuple(history),
            )
        )
    return certs


def due_items(
    learner: Learner,
    required: list[Course],
    *,
    as_of: datetime,
    within_days: int,
) -> list[DueItem]:
    """Required courses not passed by `as_of`, and certifications expiring within N days of it
    or expired; each names the session of the course the agent is already booked on, if any
    (still due until passed, but no seat to find)."""
    horizon = _days_after(as_of, within_days)
    learner = record_as_of(learner, as_of)
    booked = {b.course_id: b.session_id for b in learner.bookings}
    items: list[DueItem] = []
    passed = {c.course_id for c in learner.completions if c.passed}

    def item(course_id: str, reason: DueReason, due: datetime | None) -> DueItem:
        return DueItem(learner.agent_id, course_id, reason, due, booked.get(course_id, ""))

    for course in sorted(required, key=lambda c: c.course_id):
        if course.course_id not in passed:
            items.append(item(course.course_id, DueReason.REQUIRED, None))
    for cert in certifications(learner):
        if cert.expires <= as_of:
            items.append(item(cert.course_id, DueReason.EXPIRED, cert.expires))
        elif cert.expires <= horizon:
            items.append(item(cert.course_id, DueReason.EXPIRING, cert.expires))
    return items


def _days_after(instant: datetime, days: int) -> datetime:
    """`instant` plus `days`, or the last instant a datetime holds: a window reaching past the
    year 9999 (a read as of then) takes in everything after `instant`."""
    try:
        return instant + timedelta(days=days)
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC)


def record_as_of(learner: Learner, instant: datetime) -> Learner:
    """The learner's record at `instant`: completions dated later do not count yet, nor places
    booked later, so what was due as of a past instant stays the same however much is recorded
    or booked since."""
    completions = tuple(c for c in learner.completions if c.completion_time <= instant)
    bookings = tuple(
        b for b in learner.bookings if b.booked_time is None or b.booked_time <= instant
    )
    return replace(learner, completions=completions, bookings=bookings)


def in_period(record: CompletionRecord, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or record.session_start >= start) and (
        end is None or record.session_start < end
    )


def period_totals(records: list[CompletionRecord], label: str) -> PeriodTotals:
    return PeriodTotals(
        period=label,
        training_minutes=sum(r.attended_minutes for r in records),
        technical_minutes=sum(r.attended_minutes for r in records if r.technical),
        technical_completed=sum(1 for r in records if r.technical and r.passed),
        completed=sum(1 for r in records if r.passed),
    )


def transcript(
    learner: Learner,
    *,
    agent_zone: str,
    start: datetime | None,
    end: datetime | None,
    required: list[Course],
    as_of: datetime,
    within_days: int,
) -> Transcript:
    """The agent's record; hours per month by the session's local start date in agent_zone."""
    zone = ZoneInfo(agent_zone) if agent_zone else None
    chosen = sorted(
        (c for c in learner.completions if in_period(c, start, end)),
        key=lambda c: (c.session_start, c.course_id),
    )
    months: dict[str, list[CompletionRecord]] = {}
    for record in chosen:
        local = record.session_start.astimezone(zone) if zone else record.session_start
        months.setdefault(local.strftime("%Y-%m"), []).append(record)
    return Transcript(
        agent_id=learner.agent_id,
        completions=chosen,
        periods=[period_totals(rs, m) for m, rs in sorted(months.items())],
        totals=period_totals(chosen, "total"),
        levels=sorted(competency_levels(learner).values(), key=lambda h: h.competency),
        certifications=certifications(learner),
        due=due_items(learner, required, as_of=as_of, within_days=within_days),
        bookings=sorted(learner.bookings, key=lambda b: (b.start, b.session_id)),
    )


@dataclass(frozen=True)
class TeamSummary:
    team_id: str
    agents: int
    training_minutes: int
    technical_minutes: int
    completions: int
    technical_completions: int
    passed: int
    failed: int

    @property
    def pass_rate(self) -> float:
        decided = self.passed + self.failed
        return self.passed / decided if decided else 0.0


def team_summary(
    team_id: str, learners: list[Learner], start: datetime | None, end: datetime | None
) -> TeamSummary:
    records = [c for lr in learners for c in lr.completions if in_period(c, start, end)]
    return TeamSummary(
        team_id=team_id,
        agents=len(learners),
        training_minutes=sum(r.attended_minutes for r in records),
        technical_minutes=sum(r.attended_minutes for r in records if r.technical),
        completions=len(records),
        technical_completions=sum(1 for r in records if r.technical and r.passed),
        passed=sum(1 for r in records if r.passed),
        failed=sum(1 for r in records if not r.passed),
    )


def _broken(kind: str, subject: str, description: str) -> FailedPrecondition:
    return FailedPrecondition([RuleViolation(kind, subject, description)])
