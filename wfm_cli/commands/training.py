"""Training, for HR and trainers: `wfm courses create|get|list|update`,
`wfm sessions create|get|list|update|start|cancel`, `wfm enroll`, `wfm withdraw`, `wfm no-show`,
`wfm complete`, `wfm complete-all`, `wfm transcript`, `wfm due`, `wfm training summary`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from rich.markup import escape
from rich.table import Table
from wfm.training.v1 import training_service_pb2 as training_pb

from wfm_cli.context import (
    ExpectedVersionOption,
    JsonOption,
    KeyOption,
    client,
    console,
    handle_errors,
    options,
    print_json,
    read_file,
    to_dict,
    token_subject,
    token_team,
)
from wfm_cli.render import enum_words as _words
from wfm_cli.render import local_time
from wfm_cli.training_input import LEVELS, given, read_completions, requirement
from wfm_sdk import names

V = TypeVar("V")

courses_app = typer.Typer(help="Courses: what is taught and what it grants.", no_args_is_help=True)
sessions_app = typer.Typer(help="Sessions: scheduled runs of a course.", no_args_is_help=True)
training_app = typer.Typer(help="Training figures of a team.", no_args_is_help=True)

PrerequisiteOption = Annotated[
    list[str] | None,
    typer.Option(
        "--prerequisite", help="Course that must be passed first (repeatable).", metavar="COURSE"
    ),
]
RequiresOption = Annotated[
    list[str] | None,
    typer.Option(
        "--requires",
        help="Competency that must be held at a level or above (repeatable).",
        metavar="COMPETENCY=LEVEL",
    ),
]
RequiredForOption = Annotated[
    list[str] | None,
    typer.Option(
        "--required-for",
        help="Client whose agents must pass the course (repeatable; drives `wfm due`).",
        metavar="CLIENT",
    ),
]
CATEGORIES = ["product", "client-specific", "technical", "compliance", "soft-skills"]
DELIVERIES = ["classroom", "virtual", "self-paced"]


def _enum(words: str, choices: list[str], option: str) -> int:
    if words not in choices:
        raise typer.BadParameter(f"{option}: one of {', '.join(choices)}")
    return choices.index(words) + 1  # the enums list the choices in this order, from 1


def _session_name(session: str) -> str:
    return session if session.startswith("sessions/") else f"sessions/{session}"


def _course_name(course: str) -> str:
    return course if course.startswith("courses/") else f"courses/{course}"


def _course_names(courses: list[str] | None) -> list[str] | None:
    found = given(courses)
    return None if found is None else [_course_name(course) for course in found]


def _requirements(texts: list[str] | None) -> list[training_pb.CompetencyRequirement] | None:
    found = given(texts)
    if found is None:
        return None
    try:
        return [requirement(text) for text in found]
    except ValueError as exc:
        raise typer.BadParameter(f"--requires: {exc}") from None


# --- courses -------------------------------------------------------------------------------
@courses_app.command("create")
@handle_errors
def create_course(
    ctx: typer.Context,
    *,
    course_id: Annotated[str, typer.Argument(help="Course code, e.g. fibre-101.")],
    title: Annotated[str, typer.Option(help="Title.")],
    category: Annotated[str, typer.Option(help=", ".join(CATEGORIES) + ".")] = "technical",
    hours: Annotated[float, typer.Option(help="Credit hours.", min=0)] = 1.0,
    technical: Annotated[bool, typer.Option(help="Counts as technical training.")] = False,
    competency: Annotated[str, typer.Option(help="Competency granted.")] = "",
    level: Annotated[str, typer.Option(help=", ".join(LEVELS) + ".")] = "foundation",
    client_name: Annotated[str, typer.Option("--client", help="Client-specific course.")] = "",
    valid_days: Annotated[int, typer.Option(help="Certification validity (0: none).")] = 0,
    self_enrollment: Annotated[bool, typer.Option(help="Agents may enroll themselves.")] = False,
    prerequisites: PrerequisiteOption = None,
    requires: RequiresOption = None,
    required_for: RequiredForOption = None,
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Create a course.

    Example: wfm courses create fibre-201 --title "Fibre faults" --hours 4 --technical
    --competency fibre --level competent --valid-days 365 --prerequisite fibre-101
    --requires networking=foundation --required-for acme-telecom
    """
    course = training_pb.Course(
        title=title,
        category=_enum(category, CATEGORIES, "--category"),  # type: ignore[arg-type]
        credit_minutes=round(hours * 60),
        technical=technical,
        competency=competency,
        client=client_name,
        validity_days=valid_days,
        self_enrollment=self_enrollment,
        prerequisite_courses=_course_names(prerequisites) or [],
        prerequisite_competencies=_requirements(requires) or [],
        required_for_clients=given(required_for) or [],
    )
    if competency:
        course.competency_level = _enum(level, LEVELS, "--level")  # type: ignore[assignment]
    with client(ctx) as wfm:
        made = wfm.training.create_course(
            course_id=course_id, course=course, idempotency_key=idempotency_key
        )
    _show_courses([made], json_out, single=True)


@courses_app.command("list")
@handle_errors
def list_courses(ctx: typer.Context, *, json_out: JsonOption = False) -> None:
    """Every course. Example: wfm courses list --json"""
    with client(ctx) as wfm:
        found = wfm.training.all_pages("list_courses", "courses")
    _show_courses(found, json_out)


@courses_app.command("get")
@handle_errors
def get_course(
    ctx: typer.Context,
    *,
    course: Annotated[str, typer.Argument(help="Course code.")],
    json_out: JsonOption = False,
) -> None:
    """Every field of a course. Example: wfm courses get fibre-101"""
    with client(ctx) as wfm:
        found = wfm.training.get_course(name=_course_name(course))
    _show_course(found, json_out)


@courses_app.command("update")
@handle_errors
def update_course(
    ctx: typer.Context,
    *,
    course: Annotated[str, typer.Argument(help="Course code.")],
    title: Annotated[str | None, typer.Option(help="Title.")] = None,
    category: Annotated[str | None, typer.Option(help=", ".join(CATEGORIES) + ".")] = None,
    hours: Annotated[float | None, typer.Option(help="Credit hours.", min=0)] = None,
    technical: Annotated[
        bool | None, typer.Option("--technical/--no-technical", help="Technical training.")
    ] = None,
    competency: Annotated[
        str | None, typer.Option(help="Competency granted ('' clears it and its level).")
    ] = None,
    level: Annotated[str | None, typer.Option(help=", ".join(LEVELS) + ".")] = None,
    client_name: Annotated[
        str | None, typer.Option("--client", help="Client of a client-specific course.")
    ] = None,
    prerequisites: PrerequisiteOption = None,
    requires: RequiresOption = None,
    required_for: RequiredForOption = None,
    valid_days: Annotated[int | None, typer.Option(help="Validity (0: none).", min=0)] = None,
    self_enrollment: Annotated[
        bool | None,
        typer.Option("--self-enrollment/--no-self-enrollment", help="Agents may enroll."),
    ] = None,
    version: ExpectedVersionOption = 0,
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Change only the fields given. A list option replaces the whole list; give it once
    empty to clear it (--required-for ''). A stale --version exits 6.

    Example: wfm courses update fibre-101 --hours 5 --required-for acme-telecom --version 2
    """
    changes = {
        "title": title,
        "category": _maybe(category, lambda words: _enum(words, CATEGORIES, "--category")),
        "credit_minutes": _maybe(hours, lambda value: round(value * 60)),
        "technical": technical,
        "competency": competency,
        "competency_level": _level_change(competency, level),
        "client": client_name,
        "prerequisite_courses": _course_names(prerequisites),
        "prerequisite_competencies": _requirements(requires),
        "validity_days": valid_days,
        "required_for_clients": given(required_for),
        "self_enrollment": self_enrollment,
    }
    fields = {path: value for path, value in changes.items() if value is not None}
    if not fields:
        raise typer.BadParameter("nothing to change: give at least one of the field options")
    with client(ctx) as wfm:
        found = wfm.training.update_course(
            course=training_pb.Course(name=_course_name(course), version=version, **fields),
            update_mask=FieldMask(paths=list(fields)),
            idempotency_key=idempotency_key,
        )
    _show_course(found, json_out)


def _maybe(value: V | None, convert: Callable[[V], Any]) -> Any:
    return None if value is None else convert(value)


def _level_change(competency: str | None, level: str | None) -> int | None:
    if level is not None:
        return _enum(level, LEVELS, "--level")
    # The service keeps a competency and its level together: clearing one clears both.
    return 0 if competency == "" else None


def _show_course(course: training_pb.Course, json_out: bool) -> None:
    if json_out:
        print_json(to_dict(course))
        return
    table = Table(show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value")
    for field, value in _course_fields(course):
        table.add_row(field, value or "-")
    console().print(table)


def _course_fields(course: training_pb.Course) -> list[tuple[str, str]]:
    return [
        ("course", course.name.removeprefix("courses/")),
        ("title", course.title),
        ("category", _words(training_pb.CourseCategory, course.category, "COURSE_CATEGORY_")),
        ("client", course.client),
        ("hours", f"{course.credit_minutes / 60:g}"),
        ("technical", "yes" if course.technical else "no"),
        ("competency", _competency(course)),
        (
            "prerequisites",
            ", ".join(c.removeprefix("courses/") for c in course.prerequisite_courses),
        ),
        ("requires", ", ".join(_requirement_words(r) for r in course.prerequisite_competencies)),
        ("valid", f"{course.validity_days} days" if course.validity_days else "never expires"),
        ("required for", ", ".join(course.required_for_clients)),
        ("self-enrollment", "yes" if course.self_enrollment else "no"),
        ("version", str(course.version)),
        ("created", f"{course.create_time.ToDatetime(tzinfo=UTC):%Y-%m-%d %H:%M UTC}"),
    ]


def _requirement_words(required: training_pb.CompetencyRequirement) -> str:
    level = _words(training_pb.CompetencyLevel, required.level, "COMPETENCY_LEVEL_")
    return f"{required.competency} ({level})"


def _show_courses(found: list[training_pb.Course], json_out: bool, single: bool = False) -> None:
    if json_out:
        print_json(to_dict(found[0]) if single else {"courses": [to_dict(c) for c in found]})
        return
    table = Table()
    for column in ("course", "title", "category", "hours", "technical", "competency", "valid"):
        table.add_column(column, no_wrap=True)
    for course in found:
        table.add_row(
            course.name.removeprefix("courses/"),
            escape(course.title),
            _words(training_pb.CourseCategory, course.category, "COURSE_CATEGORY_"),
            f"{course.credit_minutes / 60:g}",
            "yes" if course.technical else "",
            _competency(course),
            f"{course.validity_days} days" if course.validity_days else "",
        )
    console().print(table)


def _competency(course: training_pb.Course) -> str:
    if not course.competency:
        return ""
    level = _words(training_pb.CompetencyLevel, course.competency_level, "COMPETENCY_LEVEL_")
    return f"{course.competency} ({level})"


# --- sessions ------------------------------------------------------------------------------
def _instant(value: str, zone: str) -> datetime:
    try:
        local = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"--start: a local time YYYY-MM-DDTHH:MM, got {value!r}") from None
    if local.tzinfo is not None:
        return local
    try:
        aware = local.replace(tzinfo=ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        raise typer.BadParameter(
            f"--zone: an IANA zone such as Asia/Kolkata, got {zone!r}"
        ) from None
    if aware.astimezone(UTC).astimezone(aware.tzinfo).replace(tzinfo=None) != local:
        # A wall time the clocks jump over would silently move an hour: say so instead. (One
        # that happens twice, when they go back, is the first of the two.)
        raise typer.BadParameter(
            f"--start: {local:%Y-%m-%d %H:%M} does not exist in {zone}: the clocks jump past it"
        )
    return aware


def _stamp(when: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(when.astimezone(UTC))
    return stamp


@sessions_app.command("create")
@handle_errors
def create_session(
    ctx: typer.Context,
    *,
    session_id: Annotated[str, typer.Argument(help="Session id, e.g. fibre-101-dec-01.")],
    course: Annotated[str, typer.Option(help="Course code.")],
    start: Annotated[str, typer.Option(help="Local start YYYY-MM-DDTHH:MM in --zone.")],
    zone: Annotated[str, typer.Option(help="IANA zone the session is held in.")],
    hours: Annotated[float, typer.Option(help="Length in hours.", min=0.25, max=24 * 14)] = 4,
    trainer: Annotated[str, typer.Option(help="Trainer (the service needs one).")],
    capacity: Annotated[int, typer.Option(help="Seats.", min=1)] = 12,
    delivery: Annotated[str, typer.Option(help=", ".join(DELIVERIES) + ".")] = "classroom",
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Schedule a session of a course.

    Example: wfm sessions create fibre-dec-01 --course fibre-101 --start 2026-12-01T10:00
    --zone Asia/Kolkata --hours 4 --trainer Ravi --capacity 12
    """
    begin = _instant(start, zone)
    session = training_pb.Session(
        course=_course_name(course),
        start_time=_stamp(begin),
        end_time=_stamp(begin + timedelta(hours=hours)),
        time_zone=zone,
        trainer=trainer,
        capacity=capacity,
        delivery=_enum(delivery, DELIVERIES, "--delivery"),  # type: ignore[arg-type]
    )
    with client(ctx) as wfm:
        made = wfm.training.create_session(
            session_id=session_id, session=session, idempotency_key=idempotency_key
        )
    _show_session(made, json_out)


@sessions_app.command("get")
@handle_errors
def get_session(
    ctx: typer.Context,
    *,
    session: Annotated[str, typer.Argument(help="Session id.")],
    json_out: JsonOption = False,
) -> None:
    """A session and its roster. Example: wfm sessions get fibre-dec-01"""
    with client(ctx) as wfm:
        found = wfm.training.get_session(name=_session_name(session))
    _show_session(found, json_out)


@sessions_app.command("list")
@handle_errors
def list_sessions(
    ctx: typer.Context,
    *,
    course: Annotated[str, typer.Option(help="Only this course's sessions.")] = "",
    start: Annotated[
        str, typer.Option("--from", help="First day YYYY-MM-DD, UTC (default: today).")
    ] = "",
    end: Annotated[str, typer.Option("--to", help="Last day (default: --from + 30 days).")] = "",
    state: Annotated[str, typer.Option(help="scheduled, started or cancelled.")] = "",
    json_out: JsonOption = False,
) -> None:
    """The training calendar: sessions starting in a window of days, in start order, with
    seats taken and the waitlist.

    Example: wfm sessions list --course fibre-101 --from 2026-12-01 --to 2026-12-31
    """
    first = (
        _utc_day(start, "--from") if start else _utc_day(datetime.now(UTC).date().isoformat(), "")
    )
    last = _utc_day(end, "--to") if end else first + timedelta(days=30)
    if state and state.upper() not in {"SCHEDULED", "STARTED", "CANCELLED"}:
        raise typer.BadParameter("--state: scheduled, started or cancelled")
    with client(ctx) as wfm:
        found = wfm.training.all_pages(
            "list_sessions",
            "sessions",
            course=_course_name(course) if course else "",
            earliest_start_time=_stamp(first),
            latest_start_time=_stamp(last + timedelta(days=1)),
            state=training_pb.SessionState.Value(f"SESSION_STATE_{state.upper()}") if state else 0,
        )
    if json_out:
        print_json({"sessions": [to_dict(s) for s in found]})
        return
    table = Table()
    columns = ("session", "course", "start (session time)", "trainer", "delivery", "seats")
    for column in (*columns, "waitlist", "state"):
        table.add_column(column, no_wrap=True)
    for item in found:
        table.add_row(
            item.name.removeprefix("sessions/"),
            item.course.removeprefix("courses/"),
            local_time(item.start_local, with_date=True),
            escape(item.trainer),
            _words(training_pb.Delivery, item.delivery, "DELIVERY_"),
            f"{item.seats_taken}/{item.capacity}",
            str(item.waitlist_length),
            _words(training_pb.SessionState, item.state, "SESSION_STATE_"),
        )
    console().print(table)
    typer.echo(f"{len(found)} sessions from {first:%Y-%m-%d} to {last:%Y-%m-%d} (UTC days)")


@sessions_app.command("start")
@handle_errors
def start_session(
    ctx: typer.Context,
    *,
    session: Annotated[str, typer.Argument(help="Session id.")],
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Check-in: the session starts and its enrolled agents are in progress.

    Open from an hour before the session's start until 14 days after its end (a class that
    met is recorded after the fact): earlier or later exits 7 (CHECK_IN_NOT_OPEN, with the
    time it opens; SESSION_ENDED).

    Example: wfm sessions start fibre-dec-01
    """
    with client(ctx) as wfm:
        found = wfm.training.start_session(
            name=_session_name(session), idempotency_key=idempotency_key
        )
    _show_session(found, json_out)


@sessions_app.command("update")
@handle_errors
def update_session(
    ctx: typer.Context,
    *,
    session: Annotated[str, typer.Argument(help="Session id.")],
    start: Annotated[
        str | None, typer.Option(help="New local start YYYY-MM-DDTHH:MM (keeps the length).")
    ] = None,
    zone: Annotated[
        str | None,
        typer.Option(
            help="IANA zone of --start (default: the session's); alone: the zone the session "
            "is held in (its times stay)."
        ),
    ] = None,
    hours: Annotated[
        float | None, typer.Option(help="New length in hours.", min=0.25, max=24 * 14)
    ] = None,
    trainer: Annotated[str | None, typer.Option(help="Trainer.")] = None,
    capacity: Annotated[
        int | None, typer.Option(help="Seats (more promote the waitlist).", min=1)
    ] = None,
    delivery: Annotated[str | None, typer.Option(help=", ".join(DELIVERIES) + ".")] = None,
    version: ExpectedVersionOption = 0,
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Move or resize a scheduled session: only the fields given change. --start and --hours
    are reckoned from the session as read: give --version to refuse (exit 6) if it changed.

    Example: wfm sessions update fibre-dec-01 --start 2026-12-02T10:00 --capacity 16
    """
    fields: dict[str, Any] = {
        path: value
        for path, value in {
            "time_zone": zone,
            "trainer": trainer,
            "capacity": capacity,
            "delivery": _maybe(delivery, lambda words: _enum(words, DELIVERIES, "--delivery")),
        }.items()
        if value is not None
    }
    moves = start is not None or hours is not None
    if not fields and not moves:
        raise typer.BadParameter("nothing to change: give at least one of the field options")
    name = _session_name(session)
    with client(ctx) as wfm:
        if moves:
            # The new times are reckoned from the session as read. Its version is not sent
            # unless given: a retry with the same --idempotency-key must send the same request
            # to be answered with the first result, and after the move the version differs.
            fields |= _new_times(wfm.training.get_session(name=name), start, zone, hours)
        found = wfm.training.update_session(
            session=training_pb.Session(name=name, version=version, **fields),
            update_mask=FieldMask(paths=list(fields)),
            idempotency_key=idempotency_key,
        )
    _show_session(found, json_out)


def _new_times(
    current: training_pb.Session, start: str | None, zone: str | None, hours: float | None
) -> dict[str, Timestamp]:
    """`end_time`, and `start_time` when moved: a move keeps the length unless --hours is given,
    --hours alone keeps the start."""
    begin = current.start_time.ToDatetime(tzinfo=UTC)
    length = current.end_time.ToDatetime(tzinfo=UTC) - begin
    if hours is not None:
        length = timedelta(hours=hours)
    if start is None:
        return {"end_time": _stamp(begin + length)}
    begin = _instant(start, zone or current.time_zone)
    return {"start_time": _stamp(begin), "end_time": _stamp(begin + length)}


@sessions_app.command("cancel")
@handle_errors
def cancel_session(
    ctx: typer.Context,
    *,
    session: Annotated[str, typer.Argument(help="Session id.")],
    reason: Annotated[str, typer.Option(help="Why (1-500 characters), shown to everyone on it.")],
    version: ExpectedVersionOption = 0,
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Cancel a session: everyone on it is withdrawn with the reason (results recorded stay).

    Example: wfm sessions cancel fibre-dec-01 --reason "trainer ill"
    """
    with client(ctx) as wfm:
        found = wfm.training.cancel_session(
            name=_session_name(session),
            reason=reason,
            session_version=version,
            idempotency_key=idempotency_key,
        )
    _show_session(found, json_out)


def _show_session(session: training_pb.Session, json_out: bool) -> None:
    if json_out:
        print_json(to_dict(session))
        return
    typer.echo(
        f"{session.name}: {session.course.removeprefix('courses/')}, "
        f"{local_time(session.start_local, with_date=True)}-{local_time(session.end_local)}, "
        f"{_words(training_pb.Delivery, session.delivery, 'DELIVERY_')}, trainer "
        f"{session.trainer or '-'}, {session.seats_taken}/{session.capacity} seats, "
        f"{session.waitlist_length} waitlisted, "
        f"{_words(training_pb.SessionState, session.state, 'SESSION_STATE_')}"
    )
    if session.cancel_reason:
        typer.echo(f"cancelled: {session.cancel_reason}")
    if session.roster:
        _show_enrollments(list(session.roster))


def _show_enrollments(found: list[training_pb.Enrollment]) -> None:
    table = Table()
    for column in ("agent", "session", "state", "waitlist", "score"):
        table.add_column(column, no_wrap=True)
    for item in found:
        done = item.HasField("completion")
        table.add_row(
            item.agent.removeprefix("agents/"),
            item.session.removeprefix("sessions/"),
            _words(training_pb.EnrollmentState, item.state, "ENROLLMENT_STATE_"),
            str(item.waitlist_position or ""),
            str(item.completion.score) if done else "",
        )
    console().print(table)


# --- enroll, complete ----------------------------------------------------------------------
@handle_errors
def enroll(
    ctx: typer.Context,
    *,
    session: Annotated[str, typer.Argument(help="Session id.")],
    agents: Annotated[list[str], typer.Argument(help="Agent ids (1-500).")],
    refuse_if_full: Annotated[
        bool, typer.Option(help="Refuse rather than waitlist when the seats are taken.")
    ] = False,
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Enroll agents into a session: seats first, then the waitlist (all or nothing).

    Example: wfm enroll fibre-dec-01 a-1001 a-1002 a-1003
    """
    with client(ctx) as wfm:
        reply = wfm.training.enroll_agents(
            session=_session_name(session),
            agents=[names.agent_name(a) for a in agents],
            refuse_if_full=refuse_if_full,
            idempotency_key=idempotency_key,
        )
    if json_out:
        print_json(to_dict(reply))
        return
    _show_enrollments(list(reply.enrollments))


@handle_errors
def complete(
    ctx: typer.Context,
    *,
    session: Annotated[str, typer.Argument(help="Session id.")],
    agent: Annotated[str, typer.Argument(help="Agent id.")],
    score: Annotated[int, typer.Option(help="Score 0-100.", min=0, max=100)],
    passed: Annotated[bool, typer.Option("--passed/--failed", help="The outcome.")] = True,
    hours: Annotated[
        float, typer.Option(help="Hours attended (default: the course's credit hours).", min=0)
    ] = 0,
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Record an agent's result in a started session.

    Example: wfm complete fibre-dec-01 a-1001 --score 88 --passed --hours 4
    """
    completion = training_pb.Completion(
        score=score, passed=passed, attended_minutes=round(hours * 60)
    )
    with client(ctx) as wfm:
        found = wfm.training.record_completion(
            name=_enrollment_name(session, agent),
            completion=completion,
            idempotency_key=idempotency_key,
        )
    _show_enrollment(found, json_out)


AgentArgument = Annotated[str, typer.Argument(help="Agent id.")]
SessionArgument = Annotated[str, typer.Argument(help="Session id.")]


@handle_errors
def withdraw(
    ctx: typer.Context,
    *,
    session: SessionArgument,
    agent: AgentArgument,
    version: ExpectedVersionOption = 0,
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Withdraw an enrolled or waitlisted agent; a freed seat goes to the first waitlisted.

    Example: wfm withdraw fibre-dec-01 a-1002
    """
    name = _enrollment_name(session, agent)
    found = _end_enrollment(ctx, "withdraw_enrollment", name, version, idempotency_key)
    _show_enrollment(found, json_out)


@handle_errors
def no_show(
    ctx: typer.Context,
    *,
    session: SessionArgument,
    agent: AgentArgument,
    version: ExpectedVersionOption = 0,
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Mark an agent of a started session as not having come.

    Example: wfm no-show fibre-dec-01 a-1003
    """
    name = _enrollment_name(session, agent)
    found = _end_enrollment(ctx, "mark_no_show", name, version, idempotency_key)
    _show_enrollment(found, json_out)


def _end_enrollment(
    ctx: typer.Context, rpc: str, name: str, version: int | None, idempotency_key: str
) -> training_pb.Enrollment:
    """Withdrawal and no-show take the same request: the enrollment, a version, a key."""
    with client(ctx) as wfm:
        found: training_pb.Enrollment = getattr(wfm.training, rpc)(
            name=name, session_version=version, idempotency_key=idempotency_key
        )
    return found


def _enrollment_name(session: str, agent: str) -> str:
    return f"{_session_name(session)}/enrollments/{names.agent_id(agent)}"


def _show_enrollment(found: training_pb.Enrollment, json_out: bool) -> None:
    if json_out:
        print_json(to_dict(found))
        return
    _show_enrollments([found])


@handle_errors
def complete_all(
    ctx: typer.Context,
    *,
    session: SessionArgument,
    file: Annotated[
        Path,
        typer.Option(
            help="CSV lines agent,score,passed[,hours] (column names optional; no hours: the "
            "course's).",
            exists=True,
            dir_okay=False,
        ),
    ],
    version: ExpectedVersionOption = 0,
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Record a whole class's results at once, all or nothing. The file is checked first:
    every bad line is listed with its number and nothing is sent (exit 3).

    Example: wfm complete-all fibre-dec-01 --file results.csv, with lines such as
    a-1001,88,passed,4
    """
    entries = read_completions(read_file(file, "--file"), str(file))
    with client(ctx) as wfm:
        reply = wfm.training.record_completions(
            session=_session_name(session),
            completions=entries,
            session_version=version,
            idempotency_key=idempotency_key,
        )
    if json_out:
        print_json(to_dict(reply))
        return
    _show_enrollments(list(reply.enrollments))


# --- transcript, due -----------------------------------------------------------------------
@handle_errors
def transcript(
    ctx: typer.Context,
    *,
    agent: Annotated[str, typer.Argument(help="Agent id (default: you).")] = "",
    json_out: JsonOption = False,
) -> None:
    """An agent's training record: completions, hours per month, competencies, what is due.

    Example: wfm --as a-1001 transcript
    """
    who = agent or options(ctx).as_subject or token_subject(options(ctx).config().token)
    if not who:
        raise typer.BadParameter("give an agent id (the token names no one)")
    with client(ctx) as wfm:
        found = wfm.training.get_transcript(name=f"{names.agent_name(who)}/transcript")
    if json_out:
        print_json(to_dict(found))
        return
    _print_transcript(found)


def _print_transcript(found: training_pb.Transcript) -> None:
    console().print(transcript_table(found))


def transcript_table(found: training_pb.Transcript) -> Table:
    """Completions, then totals, competencies and what is due under the table."""
    table = Table(
        title=f"transcript of {found.name.removesuffix('/transcript')} ({found.agent_time_zone})",
        title_justify="left",
        caption=_transcript_caption(found),
        caption_justify="left",
    )
    for column in ("course", "title", "session (agent time)", "hours", "score", "result"):
        table.add_column(column, no_wrap=True)
    for item in found.completions:
        table.add_row(
            item.course.removeprefix("courses/"),
            escape(item.course_title),
            local_time(item.session_start_agent_local, with_date=True),
            f"{item.attended_minutes / 60:g}",
            str(item.score),
            "[green]passed[/]" if item.passed else "[red]failed[/]",
        )
    return table


def _transcript_caption(found: training_pb.Transcript) -> str:
    totals = found.totals
    lines = [
        f"{totals.training_minutes / 60:g} h training ({totals.technical_minutes / 60:g} h "
        f"technical), {totals.courses_completed} courses completed"
    ]
    for held in found.competencies:
        level = _words(training_pb.CompetencyLevel, held.level, "COMPETENCY_LEVEL_")
        lines.append(f"competency: {held.competency} ({level})")
    for booked in found.bookings:
        when = "self-paced" if booked.self_paced else "at"
        lines.append(
            f"booked: {booked.course.removeprefix('courses/')}, session "
            f"{booked.session.removeprefix('sessions/')} {when} "
            f"{local_time(booked.start_agent_local, with_date=True)}"
        )
    for due in found.due:
        lines.append(f"due: {due.course.removeprefix('courses/')} ({_due_words(due)})")
    return "\n".join(lines)


def _due_words(due: training_pb.DueTraining) -> str:
    reason = _words(training_pb.DueReason, due.reason, "DUE_REASON_")
    if due.HasField("due_time"):
        reason = f"{reason}, by {due.due_time.ToDatetime(tzinfo=UTC):%Y-%m-%d}"
    if due.booked_session:
        reason = f"{reason}; booked on {due.booked_session.removeprefix('sessions/')}"
    return reason


@handle_errors
def due(
    ctx: typer.Context,
    *,
    team: Annotated[str, typer.Option(help="Team id.")] = "",
    client_name: Annotated[str, typer.Option("--client", help="Client.")] = "",
    within_days: Annotated[int, typer.Option(help="Expiring within this many days.", min=0)] = 30,
    json_out: JsonOption = False,
) -> None:
    """Training due: required courses not taken, certifications expiring or expired. Without
    --team or --client: the team your token names (a team leader's own).

    Example: wfm due --team pune-night --within-days 60
    """
    if not team and not client_name:
        team = token_team(options(ctx).config().token)
        if not team:
            raise typer.BadParameter("give --team or --client (your token names no one team)")
    with client(ctx) as wfm:
        found = wfm.training.all_pages(
            "list_due",
            "due",
            team=names.team_name(team),
            client=client_name,
            within_days=within_days,
        )
    if json_out:
        print_json({"due": [to_dict(d) for d in found]})
        return
    table = Table()
    for column in ("agent", "team", "course", "why"):
        table.add_column(column, no_wrap=True)
    for item in found:
        table.add_row(
            item.agent.removeprefix("agents/"),
            item.team.removeprefix("teams/"),
            item.course.removeprefix("courses/"),
            _due_words(item),
        )
    console().print(table)
    unbooked = sum(1 for item in found if not item.booked_session)
    typer.echo(f"{len(found)} due, {unbooked} not booked on a session")


# --- training summary ----------------------------------------------------------------------
@training_app.command("summary")
@handle_errors
def summary(
    ctx: typer.Context,
    *,
    team: Annotated[str, typer.Option(help="Team id.")],
    start: Annotated[
        str, typer.Option("--from", help="First day YYYY-MM-DD (UTC; default: all time).")
    ] = "",
    end: Annotated[str, typer.Option("--to", help="Last day YYYY-MM-DD (UTC).")] = "",
    json_out: JsonOption = False,
) -> None:
    """A team's training: agents, hours, technical hours, completions, passes and failures,
    by the sessions' start.

    Example: wfm training summary --team pune-night --from 2026-11-01 --to 2026-11-30
    """
    period: dict[str, Timestamp] = {}
    if start:
        period["start_time"] = _stamp(_utc_day(start, "--from"))
    if end:
        period["end_time"] = _stamp(_utc_day(end, "--to") + timedelta(days=1))
    with client(ctx) as wfm:
        found = wfm.training.get_team_training_summary(
            name=f"{names.team_name(team)}/trainingSummary", **period
        )
    if json_out:
        print_json(to_dict(found))
        return
    console().print(summary_table(found))


def _utc_day(value: str, option: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
    except ValueError:
        raise typer.BadParameter(f"{option}: a date YYYY-MM-DD, got {value!r}") from None


def summary_table(found: training_pb.TeamTrainingSummary) -> Table:
    table = Table()
    columns = ("team", "agents", "training h", "technical h", "completions", "technical passed")
    for column in (*columns, "passed", "failed", "pass rate"):
        table.add_column(column, no_wrap=True)
    judged = found.passed + found.failed
    table.add_row(
        found.name.removeprefix("teams/").removesuffix("/trainingSummary"),
        str(found.agents),
        f"{found.training_minutes / 60:g}",
        f"{found.technical_minutes / 60:g}",
        str(found.completions),
        str(found.technical_completions),
        str(found.passed),
        str(found.failed),
        f"{found.pass_rate:.0%}" if judged else "-",
    )
    return table


def register(app: typer.Typer) -> None:
    app.add_typer(courses_app, name="courses")
    app.add_typer(sessions_app, name="sessions")
    app.add_typer(training_app, name="training")
    app.command("enroll")(enroll)
    app.command("withdraw")(withdraw)
    app.command("no-show")(no_show)
    app.command("complete")(complete)
    app.command("complete-all")(complete_all)
    app.command("transcript")(transcript)
    app.command("due")(due)
