"""TrainingService servicer: proto <-> domain; rules live in domain.py, two-step writes in
flows.py, read models in views.py."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeAlias

import grpc
from wfm.training.v1 import events_pb2 as ev
from wfm.training.v1 import training_service_pb2 as pb
from wfm.training.v1 import training_service_pb2_grpc as pb_grpc

from services.training import domain as d
from services.training import store
from services.training.flows import Flows, Request
from services.training.views import CalendarWindow, Directory, TrainingViews
from wfm_runtime import pagination
from wfm_runtime.auth import Role
from wfm_runtime.commands import CommandRunner, command_for, request_fingerprint
from wfm_runtime.errors import FailedPrecondition, NotFound, RuleViolation, Violations
from wfm_runtime.grpcserver import PRINCIPAL, request_id
from wfm_runtime.timefmt import localized, to_timestamp, utc_now
from wfm_runtime.validation import (
    check_id,
    check_idempotency_key,
    check_page_size,
    optional_instant,
    parse_name,
)

Ctx: TypeAlias = grpc.aio.ServicerContext
MANAGERS = frozenset({Role.HR, Role.TRAINER, Role.ADMIN})
DEFAULT_DUE_DAYS = 30
MAX_DUE_DAYS = d.MAX_VALIDITY_DAYS
COURSE_TTL = 5.0


class TrainingApi(pb_grpc.TrainingServiceServicer):
    def __init__(
        self,
        commands: CommandRunner,
        training: store.TrainingStore,
        views: TrainingViews,
        directory: Directory,
    ) -> None:
        self._commands = commands
        self._store = training
        self._views = views
        self._directory = directory
        self._flows = Flows(commands, training)
        self._courses = training.course_behaviour()
        self._sessions = training.session_behaviour()
        # course id -> (course, when read): courses change rarely; another replica's update is
        # seen within COURSE_TTL seconds (this replica's at once).
        self._known_courses: dict[str, tuple[d.Course, float]] = {}

    # --- courses ---------------------------------------------------------------------------
    async def CreateCourse(self, request: pb.CreateCourseRequest, context: Ctx) -> pb.Course:
        v = Violations()
        course = store.course_from_proto(request.course, request.course_id)
        _check_course_enums(v, request.course)
        d.validate_course(course, v)
        check_idempotency_key(v, request.idempotency_key)
        v.raise_if_any()
        outcome = await self._commands.execute(
            self._courses,
            command_for(store.COURSE, course.course_id, request),
            lambda current, version: ev.CourseCreated(
                course=store.course_to_proto(
                    replace(d.decide_create_course(current, course, utc_now()), version=version + 1)
                )
            ),
        )
        return store.course_to_proto(outcome.state)

    async def GetCourse(self, request: pb.GetCourseRequest, context: Ctx) -> pb.Course:
        v = Violations()
        course_id = parse_name(v, request.name, "name", "courses")
        v.raise_if_any()
        return store.course_to_proto(await self._course(course_id, request.name))

    async def ListCourses(
        self, request: pb.ListCoursesRequest, context: Ctx
    ) -> pb.ListCoursesResponse:
        v = Violations()
        page_size = check_page_size(v, request.page_size)
        v.raise_if_any()
        after = pagination.decode(request.page_token, "courses")
        courses = await self._views.list_courses(after, page_size + 1)
        return pb.ListCoursesResponse(
            courses=[store.course_to_proto(c) for c in courses[:page_size]],
            next_page_token=_next([c.course_id for c in courses], page_size, "courses"),
        )

    async def UpdateCourse(self, request: pb.UpdateCourseRequest, context: Ctx) -> pb.Course:
        v = Violations()
        course_id = parse_name(v, request.course.name, "course.name", "courses")
        paths = _mask(v, request.update_mask.paths, d.COURSE_FIELDS)
        _check_course_enums(v, request.course, set(paths))
        check_idempotency_key(v, request.idempotency_key)
        v.check(request.course.version >= 0, "course.version", "must not be negative")
        v.raise_if_any()
        requested = store.course_from_proto(request.course, course_id)
        outcome = await self._commands.execute(
            self._courses,
            command_for(
                store.COURSE, course_id, request, expected_version=request.course.version or None
            ),
            lambda current, version: _course_updated(current, version, requested, paths),
        )
        self._known_courses[course_id] = (outcome.state, time.monotonic())
        return store.course_to_proto(outcome.state)

    # --- sessions --------------------------------------------------------------------------
    async def CreateSession(self, request: pb.CreateSessionRequest, context: Ctx) -> pb.Session:
        v = Violations()
        session = store.session_from_proto(request.session, request.session_id)
        session = replace(
            session,
            start=optional_instant(v, request.session, "start_time"),
            end=optional_instant(v, request.session, "end_time"),
            roster=(),
        )
        _check_delivery(v, request.session.delivery)
        d.validate_session(session, v)
        check_idempotency_key(v, request.idempotency_key)
        v.raise_if_any()
        course = await self._latest_course(session.course_id)
        outcome = await self._commands.execute(
            self._sessions,
            command_for(store.SESSION, session.session_id, request),
            lambda current, version: ev.SessionScheduled(
                session=store.session_to_proto(
                    replace(
                        d.decide_create_session(current, session, course, utc_now()),
                        version=version + 1,
                    )
                )
            ),
        )
        return store.session_to_proto(outcome.state)

    async def GetSession(self, request: pb.GetSessionRequest, context: Ctx) -> pb.Session:
        v = Violations()
        session_id = parse_name(v, request.name, "name", "sessions")
        v.raise_if_any()
        return store.session_to_proto(await self._session(session_id, request.name))

    async def ListSessions(
        self, request: pb.ListSessionsRequest, context: Ctx
    ) -> pb.ListSessionsResponse:
        v = Violations()
        page_size = check_page_size(v, request.page_size)
        window = CalendarWindow(
            earliest=optional_instant(v, request, "earliest_start_time"),
            latest=optional_instant(v, request, "latest_start_time"),
            course_id=_optional_name(v, request.course, "course", "courses"),
            state=request.state,
        )
        _check_calendar_window(v, window)
        v.raise_if_any()
        filter_key = f"sessions|{window}"
        after = pagination.decode(request.page_token, filter_key)
        found = await self._views.list_sessions(window, after, page_size + 1)
        return pb.ListSessionsResponse(
            sessions=[store.session_to_proto(session) for session, _ in found[:page_size]],
            next_page_token=_next([key for _, key in found], page_size, filter_key),
        )

    async def UpdateSession(self, request: pb.UpdateSessionRequest, context: Ctx) -> pb.Session:
        v = Violations()
        session_id = parse_name(v, request.session.name, "session.name", "sessions")
        paths = _mask(v, request.update_mask.paths, d.SESSION_FIELDS)
        requested = store.session_from_proto(request.session, session_id)
        requested = replace(
            requested,
            start=optional_instant(v, request.session, "start_time")
            if "start_time" in paths
            else None,
            end=optional_instant(v, request.session, "end_time") if "end_time" in paths else None,
        )
        if "delivery" in paths:
            _check_delivery(v, request.session.delivery)
        check_idempotency_key(v, request.idempotency_key)
        v.check(request.session.version >= 0, "session.version", "must not be negative")
        v.raise_if_any()
        # Known here (NOT_FOUND otherwise). A move's clashes are decided by its holds on the
        # learners (Flows.update_session), on each learner's events, every clash listed.
        await self._session(session_id, request.session.name)
        req = Request(
            request.idempotency_key,
            request_fingerprint(request),
            request_id(),
            request.session.version or None,
        )
        session = await self._flows.update_session(req, session_id, requested, paths)
        return store.session_to_proto(session)

    async def CancelSession(self, request: pb.CancelSessionRequest, context: Ctx) -> pb.Session:
        v = Violations()
        session_id = parse_name(v, request.name, "name", "sessions")
        v.check(
            0 < len(request.reason) <= d.MAX_REASON,
            "reason",
            f"1-{d.MAX_REASON} characters required",
        )
        _check_write(v, request)
        v.raise_if_any()
        await self._session(session_id, request.name)
        session = await self._flows.cancel(_request(request), session_id, request.reason)
        return store.session_to_proto(session)

    # --- enrollments -----------------------------------------------------------------------
    async def EnrollAgents(
        self, request: pb.EnrollAgentsRequest, context: Ctx
    ) -> pb.EnrollAgentsResponse:
        v = Violations()
        session_id = parse_name(v, request.session, "session", "sessions")
        agents = _agent_ids(v, list(request.agents))
        _check_write(v, request)
        v.raise_if_any()
        # This process's copy when it has one (no read): the session step decides the seats on
        # the aggregate itself and refuses if the session moved since (SESSION_MOVED).
        session = self._commands.cached(store.SESSION, session_id) or await self._session(
            session_id, request.session
        )
        assert isinstance(session, d.Session)
        course = await self._course(session.course_id, f"courses/{session.course_id}")
        _require_self_enrollment(course)
        contexts = await self._contexts(agents, course, session)
        result = await self._flows.enroll(
            _request(request),
            contexts,
            session_id=session_id,
            refuse_if_full=request.refuse_if_full,
        )
        wanted = set(agents)
        return pb.EnrollAgentsResponse(
            enrollments=[
                store.enrollment_to_proto(result, e) for e in result.roster if e.agent_id in wanted
            ],
            session_version=result.version,
        )

    async def WithdrawEnrollment(
        self, request: pb.WithdrawEnrollmentRequest, context: Ctx
    ) -> pb.Enrollment:
        session_id, agent_id = self._enrollment_name(request)
        session = await self._flows.transition(
            _request(request),
            session_id=session_id,
            agent_id=agent_id,
            target=d.EnrollmentState.WITHDRAWN,
        )
        await self._flows.release(_request(request), agent_id, session_id)
        return _enrollment(session, agent_id)

    async def StartSession(self, request: pb.StartSessionRequest, context: Ctx) -> pb.Session:
        v = Violations()
        session_id = parse_name(v, request.name, "name", "sessions")
        _check_write(v, request)
        v.raise_if_any()
        await self._session(session_id, request.name)
        return store.session_to_proto(await self._flows.start(_request(request), session_id))

    async def MarkNoShow(self, request: pb.MarkNoShowRequest, context: Ctx) -> pb.Enrollment:
        session_id, agent_id = self._enrollment_name(request)
        session = await self._flows.transition(
            _request(request),
            session_id=session_id,
            agent_id=agent_id,
            target=d.EnrollmentState.NO_SHOW,
        )
        await self._flows.release(_request(request), agent_id, session_id)
        return _enrollment(session, agent_id)

    async def RecordCompletion(
        self, request: pb.RecordCompletionRequest, context: Ctx
    ) -> pb.Enrollment:
        v = Violations()
        completion = _completion(v, request)
        session_id, agent_id = self._enrollment_name(request, v)
        session = await self._session(session_id, f"sessions/{session_id}")
        course = await self._course(session.course_id, f"courses/{session.course_id}")
        completion = d.attended_by_default(completion, course)
        agent = await self._directory.agent(agent_id)
        session = await self._flows.transition(
            _request(request),
            session_id=session_id,
            agent_id=agent_id,
            target=d.EnrollmentState.COMPLETED if completion.passed else d.EnrollmentState.FAILED,
            completion=completion,
        )
        record = d.completion_record(
            course=course,
            session=session,
            completion=d.recorded_result(session, agent_id, completion),
            agent_zone=agent.time_zone if agent else "",
        )
        await self._flows.record_completion(_request(request), agent_id, record)
        return _enrollment(session, agent_id)

    async def RecordCompletions(
        self, request: pb.RecordCompletionsRequest, context: Ctx
    ) -> pb.RecordCompletionsResponse:
        v = Violations()
        session_id = parse_name(v, request.session, "session", "sessions")
        results = _results(v, request)
        _check_write(v, request)
        v.raise_if_any()
        session = await self._session(session_id, request.session)
        course = await self._course(session.course_id, f"courses/{session.course_id}")
        results = [(a, d.attended_by_default(c, course)) for a, c in results]
        session = await self._flows.record_results(_request(request), session_id, results)
        records = {}
        for agent_id, completion in results:
            agent = await self._directory.agent(agent_id)
            records[agent_id] = d.completion_record(
                course=course,
                session=session,
                completion=d.recorded_result(session, agent_id, completion),
                agent_zone=agent.time_zone if agent else "",
            )
        await self._flows.record_completions(_request(request), records)
        return pb.RecordCompletionsResponse(
            enrollments=[_enrollment(session, agent_id) for agent_id, _ in results],
            session_version=session.version,
        )

    async def ListEnrollments(
        self, request: pb.ListEnrollmentsRequest, context: Ctx
    ) -> pb.ListEnrollmentsResponse:
        v = Violations()
        page_size = check_page_size(v, request.page_size)
        filters = {
            "course_id": _optional_name(v, request.course, "course", "courses"),
            "session_id": _optional_name(v, request.session, "session", "sessions"),
            "agent_id": _optional_name(v, request.agent, "agent", "agents"),
            "state": _optional_state(v, request.state),
        }
        v.raise_if_any()
        filter_key = "enrollments|" + "|".join(f"{k}={x}" for k, x in sorted(filters.items()))
        after = pagination.decode(request.page_token, filter_key)
        found = await self._views.list_enrollments(filters, after, page_size + 1)
        return pb.ListEnrollmentsResponse(
            enrollments=found[:page_size],
            next_page_token=_next([e.name for e in found], page_size, filter_key),
        )

    # --- transcripts and reports -----------------------------------------------------------
    async def GetTranscript(self, request: pb.GetTranscriptRequest, context: Ctx) -> pb.Transcript:
        v = Violations()
        agent_id = parse_name(v, request.name, "name", "agents", "transcript")
        start, end = _period(v, request)
        as_of = optional_instant(v, request, "as_of_time") or utc_now()
        within = _due_days(v, request.due_within_days, "due_within_days")
        v.raise_if_any()
        agent = await self._directory.agent(agent_id)
        learner = await self._latest_learner(agent_id)
        if agent is None and learner is None:
            raise NotFound("agent", f"agents/{agent_id}")
        zone = agent.time_zone if agent else ""
        transcript = d.transcript(
            learner or d.Learner(agent_id),
            agent_zone=zone,
            start=start,
            end=end,
            required=await self._required_for_team(agent.team_id if agent else ""),
            as_of=as_of,
            within_days=within,
        )
        return _transcript_to_proto(transcript, zone, agent.team_id if agent else "")

    async def ListDue(self, request: pb.ListDueRequest, context: Ctx) -> pb.ListDueResponse:
        v = Violations()
        team_id = _optional_name(v, request.team, "team", "teams")
        v.check(
            bool(team_id or request.team) != bool(request.client),
            "team",
            "give exactly one of team and client",
        )
        v.check(len(request.client) <= 100, "client", "at most 100 characters")
        within = _due_days(v, request.within_days, "within_days")
        as_of = optional_instant(v, request, "as_of_time") or utc_now()
        page_size = check_page_size(v, request.page_size)
        v.raise_if_any()
        filter_key = f"due|{team_id}|{request.client}|{within}|{as_of.isoformat()}"
        after = pagination.decode(request.page_token, filter_key)
        items = [i for i in await self._due(team_id, request.client, as_of, within) if i[0] > after]
        return pb.ListDueResponse(
            due=[item for _, item in items[:page_size]],
            next_page_token=_next([k for k, _ in items], page_size, filter_key),
        )

    async def GetTeamTrainingSummary(
        self, request: pb.GetTeamTrainingSummaryRequest, context: Ctx
    ) -> pb.TeamTrainingSummary:
        v = Violations()
        team_id = parse_name(v, request.name, "name", "teams", "trainingSummary")
        start, end = _period(v, request)
        v.raise_if_any()
        if await self._directory.team(team_id) is None:
            raise NotFound("team", f"teams/{team_id}")
        members = [a.agent_id for a in self._directory.members({team_id})]
        learners = await self._views.learners_of(members)
        summary = d.team_summary(
            team_id, [learners.get(a) or d.Learner(a) for a in members], start, end
        )
        return _summary_to_proto(summary)

    # --- helpers ---------------------------------------------------------------------------
    async def _due(
        self, team_id: str, client: str, as_of: datetime, within: int
    ) -> list[tuple[str, pb.DueTraining]]:
        teams = {team_id} if team_id else self._directory.teams_serving(client)
        courses = await self._views.all_courses()
        members = self._directory.members(teams)
        learners = await self._views.learners_of([a.agent_id for a in members])
        items: list[tuple[str, pb.DueTraining]] = []
        for agent in members:
            team = self._directory.teams.get(agent.team_id)
            required = _required(courses, team.client if team else "")
            learner = learners.get(agent.agent_id) or d.Learner(agent.agent_id)
            for item in d.due_items(learner, required, as_of=as_of, within_days=within):
                key = f"{item.agent_id}/{item.course_id}/{item.reason.value}"
                items.append((key, _due_to_proto(item, agent.team_id)))
        return sorted(items, key=lambda kv: kv[0])

    async def _required_for_team(self, team_id: str) -> list[d.Course]:
        team = await self._directory.team(team_id) if team_id else None
        if team is None or not team.client:
            return []
        return _required(await self._views.all_courses(), team.client)

    async def _contexts(
        self, agents: list[str], course: d.Course, session: d.Session
    ) -> dict[str, d.EnrollmentContext]:
        contexts: dict[str, d.EnrollmentContext] = {}
        unknown: list[RuleViolation] = []
        for agent_id in agents:
            agent = await self._directory.agent(agent_id)
            if agent is None:
                unknown.append(
                    RuleViolation(
                        "AGENT_EXISTS", f"agents/{agent_id}", f"agent {agent_id} is not known"
                    )
                )
                continue
            team = await self._directory.team(agent.team_id)
            contexts[agent_id] = d.EnrollmentContext(team.client if team else "", course, session)
        if unknown:
            raise FailedPrecondition(unknown)
        return contexts

    def _enrollment_name(self, request: Any, v: Violations | None = None) -> tuple[str, str]:
        v = v or Violations()
        session_id, agent_id = _parse_enrollment(v, request.name)
        _check_write(v, request)
        v.raise_if_any()
        return session_id, agent_id

    async def _course(self, course_id: str, name: str) -> d.Course:
        course = await self._latest_course(course_id)
        if course is None:
            raise NotFound("course", name)
        return course

    async def _session(self, session_id: str, name: str) -> d.Session:
        """The newer of this process's last copy and the view (another replica may have
        written since); the event store only when neither knows the session."""
        session = _newest(
            self._commands.cached(store.SESSION, session_id),
            await self._store.session(session_id, events=False),
        )
        if session is None:
            session = await self._store.session(session_id)
        if session is None:
            raise NotFound("session", name)
        return session

    async def _latest_course(self, course_id: str) -> d.Course | None:
        known = self._known_courses.get(course_id)
        if known is not None and time.monotonic() - known[1] < COURSE_TTL:
            return known[0]
        course = _newest(
            self._commands.cached(store.COURSE, course_id), await self._store.course(course_id)
        )
        if course is not None:
            self._known_courses[course_id] = (course, time.monotonic())
        return course

    async def _latest_learner(self, agent_id: str) -> d.Learner | None:
        cached = self._commands.cached(store.LEARNER, agent_id)
        return _newest(cached, await self._store.learner(agent_id))


def _newest(cached: Any, viewed: Any) -> Any:
    """The later version of two copies of an aggregate (either may be missing)."""
    if cached is None or (viewed is not None and viewed.version >= cached.version):
        return viewed
    return cached


# --- request helpers -----------------------------------------------------------------------
def _request(request: Any) -> Request:
    return Request(
        request.idempotency_key,
        request_fingerprint(request),
        request_id(),
        request.session_version or None,
    )


def _check_write(v: Violations, request: Any) -> None:
    check_idempotency_key(v, request.idempotency_key)
    v.check(request.session_version >= 0, "session_version", "must not be negative")


def _require_self_enrollment(course: d.Course) -> None:
    principal = PRINCIPAL.get()
    if principal is None or principal.roles & MANAGERS or course.self_enrollment:
        return
    raise FailedPrecondition(
        [
            RuleViolation(
                "SELF_ENROLLMENT",
                f"courses/{course.course_id}",
                "this course does not allow self-enrollment: ask HR or the training team",
            )
        ]
    )


def _agent_ids(v: Violations, names: list[str]) -> list[str]:
    if not v.check(
        0 < len(names) <= d.MAX_ENROLL_BATCH, "agents", f"name 1-{d.MAX_ENROLL_BATCH} agents"
    ):
        return []
    ids = [parse_name(v, name, f"agents[{i}]", "agents") for i, name in enumerate(names)]
    v.check(len(set(ids)) == len(ids), "agents", "each agent at most once")
    return ids


def _parse_enrollment(v: Violations, name: str) -> tuple[str, str]:
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "sessions" or parts[2] != "enrollments":
        v.add("name", "must be in the form sessions/{session}/enrollments/{agent}")
        return "", ""
    ok = check_id(v, parts[1], "name", "session id") and check_id(v, parts[3], "name", "agent id")
    return (parts[1], parts[3]) if ok else ("", "")


def _optional_name(v: Violations, name: str, field_path: str, collection: str) -> str:
    return parse_name(v, name, field_path, collection) if name else ""


# A calendar window longer than this is refused: a year and a bit covers any planning view.
MAX_CALENDAR_DAYS = 400


def _check_calendar_window(v: Violations, window: CalendarWindow) -> None:
    v.check(window.state in pb.SessionState.values(), "state", "is not a known SESSION_STATE_*")
    if window.earliest is None or window.latest is None:
        return
    if v.check(window.earliest < window.latest, "latest_start_time", "must be after earliest"):
        v.check(
            window.latest - window.earliest <= timedelta(days=MAX_CALENDAR_DAYS),
            "latest_start_time",
            f"must be at most {MAX_CALENDAR_DAYS} days after earliest_start_time",
        )


def _optional_state(v: Violations, value: int) -> str:
    if value == 0:
        return ""
    state = store.state_from_proto(value)
    v.check(state is not None, "state", "is not an EnrollmentState")
    return state.value if state else ""


def _completion(v: Violations, request: pb.RecordCompletionRequest) -> d.Completion:
    v.check(request.HasField("completion"), "completion", "is required")
    return _checked_completion(v, request.completion, "completion")


def _checked_completion(v: Violations, message: pb.Completion, path: str) -> d.Completion:
    """The result, its violations named by their full path (`completion.score`)."""
    inner = Violations()
    when = optional_instant(inner, message, "completion_time") or utc_now()
    completion = d.Completion(when, message.attended_minutes, message.score, message.passed)
    d.validate_completion(completion, inner)
    for item in inner.items:
        v.add(f"{path}.{item.field}", item.description)
    return completion


def _results(v: Violations, request: pb.RecordCompletionsRequest) -> list[tuple[str, d.Completion]]:
    entries = list(request.completions)
    if not v.check(
        0 < len(entries) <= d.MAX_ENROLL_BATCH,
        "completions",
        f"give 1-{d.MAX_ENROLL_BATCH} results",
    ):
        return []
    results = []
    for i, entry in enumerate(entries):
        agent_id = parse_name(v, entry.agent, f"completions[{i}].agent", "agents")
        completion = _checked_completion(v, entry.completion, f"completions[{i}].completion")
        results.append((agent_id, completion))
    ids = [a for a, _ in results]
    v.check(len(set(ids)) == len(ids), "completions", "each agent at most once")
    return results


def _period(v: Violations, request: Any) -> tuple[datetime | None, datetime | None]:
    start = optional_instant(v, request, "start_time")
    end = optional_instant(v, request, "end_time")
    if start is not None and end is not None:
        v.check(start < end, "end_time", "must be after start_time")
    return start, end


def _due_days(v: Violations, days: int, field_path: str) -> int:
    v.check(0 <= days <= MAX_DUE_DAYS, field_path, f"must be between 0 and {MAX_DUE_DAYS}")
    return days if days > 0 else DEFAULT_DUE_DAYS


def _check_delivery(v: Violations, value: int) -> None:
    v.check(
        store.delivery_from_proto(value) is not None,
        "session.delivery",
        "must be DELIVERY_CLASSROOM, DELIVERY_VIRTUAL or DELIVERY_SELF_PACED",
    )


def _mask(v: Violations, paths: Any, fields: dict[str, str]) -> list[str]:
    """The update mask's paths (`*`: every field that may change); INVALID_ARGUMENT otherwise."""
    given = list(paths)
    if given == ["*"]:
        return list(fields)
    if not v.check(bool(given), "update_mask", "name the fields to change (or `*`)"):
        return []
    unknown = sorted(set(given) - set(fields))
    v.check(
        not unknown,
        "update_mask",
        f"cannot change {', '.join(unknown)}; paths: {', '.join(fields)} or `*`",
    )
    v.check(len(set(given)) == len(given), "update_mask", "each path at most once")
    return [p for p in fields if p in given] if not unknown else []


def _course_updated(
    current: d.Course, version: int, requested: d.Course, paths: list[str]
) -> ev.CourseUpdated | None:
    decided = d.decide_update_course(current, requested, paths)
    if decided is None:
        return None
    course, changed = decided
    return ev.CourseUpdated(
        course=store.course_to_proto(replace(course, version=version + 1)),
        changed_fields=changed,
    )


def _check_course_enums(v: Violations, course: pb.Course, paths: set[str] | None = None) -> None:
    def masked(path: str) -> bool:
        return paths is None or path in paths

    v.check(
        not masked("category") or store.category_from_proto(course.category) is not None,
        "course.category",
        "must be a COURSE_CATEGORY_ value other than UNSPECIFIED",
    )
    if course.competency_level and masked("competency_level"):
        v.check(
            store.level_from_proto(course.competency_level) is not None,
            "course.competency_level",
            "is not a CompetencyLevel",
        )
    for i, req in enumerate(course.prerequisite_competencies):
        v.check(
            store.level_from_proto(req.level) is not None,
            f"course.prerequisite_competencies[{i}].level",
            "must be a CompetencyLevel other than UNSPECIFIED",
        )
    for i, name in enumerate(course.prerequisite_courses[: d.MAX_PREREQUISITES]):
        v.check(
            name.startswith("courses/"), f"course.prerequisite_courses[{i}]", "courses/{course}"
        )


def _required(courses: list[d.Course], client: str) -> list[d.Course]:
    return [c for c in courses if client and client in c.required_for_clients]


def _next(keys: list[str], page_size: int, filter_key: str) -> str:
    if len(keys) <= page_size:
        return ""
    return pagination.encode(keys[page_size - 1], filter_key)


# --- response builders ---------------------------------------------------------------------
def _enrollment(session: d.Session, agent_id: str) -> pb.Enrollment:
    entry = session.enrollment(agent_id)
    assert entry is not None  # the transition just succeeded on this roster
    return store.enrollment_to_proto(session, entry)


def _transcript_to_proto(t: d.Transcript, zone: str, team_id: str) -> pb.Transcript:
    message = pb.Transcript(
        name=f"agents/{t.agent_id}/transcript",
        agent_time_zone=zone,
        completions=[_completed_to_proto(c, zone) for c in t.completions],
        periods=[_totals(p) for p in t.periods],
        totals=_totals(t.totals),
        competencies=[
            pb.HeldCompetency(
                competency=h.competency,
                level=store.level_to_proto(h.level),
                achieve_time=to_timestamp(h.achieved),
                evidence_course=f"courses/{h.evidence_course}",
                evidence_session=f"sessions/{h.evidence_session}",
            )
            for h in t.levels
        ],
        certifications=[
            pb.Certification(
                course=f"courses/{c.course_id}",
                course_title=c.course_title,
                certify_time=to_timestamp(c.certified),
                expire_time=to_timestamp(c.expires),
                expire_agent_local=localized(c.expires, zone),
                history=[to_timestamp(h.completion_time) for h in c.history],
            )
            for c in t.certifications
        ],
        due=[_due_to_proto(i, team_id) for i in t.due],
        bookings=[
            pb.BookedSession(
                session=f"sessions/{b.session_id}",
                course=f"courses/{b.course_id}",
                start_time=to_timestamp(b.start),
                end_time=to_timestamp(b.end),
                start_agent_local=localized(b.start, zone),
                self_paced=b.self_paced,
            )
            for b in t.bookings
        ],
    )
    return message


def _completed_to_proto(c: d.CompletionRecord, zone: str) -> pb.CompletedCourse:
    message = pb.CompletedCourse(
        course=f"courses/{c.course_id}",
        session=f"sessions/{c.session_id}",
        course_title=c.course_title,
        session_start_time=to_timestamp(c.session_start),
        session_start_agent_local=localized(c.session_start, zone),
        completion_time=to_timestamp(c.completion_time),
        completion_agent_local=localized(c.completion_time, zone),
        attended_minutes=c.attended_minutes,
        technical=c.technical,
        score=c.score,
        passed=c.passed,
        competency=c.competency,
        competency_level=store.level_to_proto(c.level),
    )
    if c.expire_time is not None:
        message.certification_expire_time.CopyFrom(to_timestamp(c.expire_time))
    return message


def _totals(p: d.PeriodTotals) -> pb.TrainingTotals:
    return pb.TrainingTotals(
        period=p.period,
        training_minutes=p.training_minutes,
        technical_minutes=p.technical_minutes,
        technical_trainings_completed=p.technical_completed,
        courses_completed=p.completed,
    )


def _due_to_proto(item: d.DueItem, team_id: str) -> pb.DueTraining:
    message = pb.DueTraining(
        agent=f"agents/{item.agent_id}",
        course=f"courses/{item.course_id}",
        reason=pb.DueReason.Value(f"DUE_REASON_{item.reason.value}"),
        team=f"teams/{team_id}" if team_id else "",
        booked_session=f"sessions/{item.booked_session}" if item.booked_session else "",
    )
    if item.due is not None:
        message.due_time.CopyFrom(to_timestamp(item.due))
    return message


def _summary_to_proto(s: d.TeamSummary) -> pb.TeamTrainingSummary:
    return pb.TeamTrainingSummary(
        name=f"teams/{s.team_id}/trainingSummary",
        agents=s.agents,
        training_minutes=s.training_minutes,
        technical_minutes=s.technical_minutes,
        completions=s.completions,
        technical_completions=s.technical_completions,
        passed=s.passed,
        failed=s.failed,
        pass_rate=s.pass_rate,
    )


__all__ = ["TrainingApi"]
