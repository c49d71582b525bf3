"""Training, for HR and trainers: `wfm courses create|list`, `wfm sessions create|get|list|start`,
`wfm enroll`, `wfm complete`, `wfm transcript`, `wfm due`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from google.protobuf.timestamp_pb2 import Timestamp
from rich.table import Table
from wfm.training.v1 import training_service_pb2 as training_pb

from wfm_cli.context import (
    JsonOption,
    client,
    console,
    handle_errors,
    options,
    print_json,
    to_dict,
    token_subject,
)
from wfm_cli.render import local_time
from wfm_sdk import names

courses_app = typer.Typer(help="Courses: what is taught and what it grants.", no_args_is_help=True)
sessions_app = typer.Typer(help="Sessions: scheduled runs of a course.", no_args_is_help=True)

KeyOption = Annotated[
    str, typer.Option(help="Reuse a key to retry the same change safely (default: new).")
]
CATEGORIES = ["product", "client-specific", "technical", "compliance", "soft-skills"]
LEVELS = ["foundation", "competent", "expert", "master"]
DELIVERIES = ["classroom", "virtual", "self-paced"]


def _enum(words: str, choices: list[str], option: str) -> int:
    if words not in choices:
        raise typer.BadParameter(f"{option}: one of {', '.join(choices)}")
    return choices.index(words) + 1  # the enums list the choices in this order, from 1


def _words(enum: Any, number: int, prefix: str) -> str:
    try:
        return str(enum.Name(number)).removeprefix(prefix).lower().replace("_", "-")
    except ValueError:
        return str(number)


def _session_name(session: str) -> str:
    return session if session.startswith("sessions/") else f"sessions/{session}"


def _course_name(course: str) -> str:
    return course if course.startswith("courses/") else f"courses/{course}"


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
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Create a course.

    Example: wfm courses create fibre-101 --title "Fibre basics" --hours 4 --technical
    --competency fibre --valid-days 365
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
            course.title,
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
        return local.replace(tzinfo=ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        raise typer.BadParameter(
            f"--zone: an IANA zone such as Asia/Kolkata, got {zone!r}"
        ) from None


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
    trainer: Annotated[str, typer.Option(help="Trainer.")] = "",
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
    course: Annotated[str, typer.Option(help="Course code.")],
    json_out: JsonOption = False,
) -> None:
    """The sessions of a course that have enrollments (the API lists enrollments, not sessions).

    Example: wfm sessions list --course fibre-101
    """
    with client(ctx) as wfm:
        enrollments = wfm.training.all_pages(
            "list_enrollments", "enrollments", course=_course_name(course)
        )
        found = [
            wfm.training.get_session(name=name) for name in sorted({e.session for e in enrollments})
        ]
    if json_out:
        print_json({"sessions": [to_dict(s) for s in found]})
        return
    table = Table()
    for column in ("session", "start (local)", "trainer", "seats", "waitlist", "state"):
        table.add_column(column, no_wrap=True)
    for item in found:
        table.add_row(
            item.name.removeprefix("sessions/"),
            local_time(item.start_local, with_date=True),
            item.trainer,
            f"{item.seats_taken}/{item.capacity}",
            str(item.waitlist_length),
            _words(training_pb.SessionState, item.state, "SESSION_STATE_"),
        )
    console().print(table)


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

    Example: wfm sessions start fibre-dec-01
    """
    with client(ctx) as wfm:
        found = wfm.training.start_session(
            name=_session_name(session), idempotency_key=idempotency_key
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
    hours: Annotated[float, typer.Option(help="Hours attended (default: the course's).")] = 0,
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
            name=f"{_session_name(session)}/enrollments/{names.agent_id(agent)}",
            completion=completion,
            idempotency_key=idempotency_key,
        )
    if json_out:
        print_json(to_dict(found))
        return
    _show_enrollments([found])


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
            item.course_title,
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
    for due in found.due:
        lines.append(f"due: {due.course.removeprefix('courses/')} ({_due_words(due)})")
    return "\n".join(lines)


def _due_words(due: training_pb.DueTraining) -> str:
    reason = _words(training_pb.DueReason, due.reason, "DUE_REASON_")
    if due.HasField("due_time"):
        return f"{reason}, by {due.due_time.ToDatetime(tzinfo=UTC):%Y-%m-%d}"
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
    """Training due: required courses not taken, certifications expiring or expired.

    Example: wfm due --team pune-night --within-days 60
    """
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
    typer.echo(f"{len(found)} due")


def register(app: typer.Typer) -> None:
    app.add_typer(courses_app, name="courses")
    app.add_typer(sessions_app, name="sessions")
    app.command("enroll")(enroll)
    app.command("complete")(complete)
    app.command("transcript")(transcript)
    app.command("due")(due)
