"""Training read views and the projectors that keep them.

Views (in the service's views database), all derived from events and rebuildable:
- `courses`, `sessions` (with the roster: the session roster view), `learners` (bookings and
  completions: the transcript view): each aggregate's latest state as its serialized proto.
- The reconciler's sweep reads `learners` by `booked` (whether the learner holds a booking);
  documents written before the field was kept lack it and are read too (`BOOKED`).
- ListSessions (the training calendar) reads `sessions` by `calendar_key` (start, then id)
  with `course_id` and `state` beside it.
- ListEnrollments reads `sessions` too (by `_id`, `course_id` or `agent_ids`, every agent on
  the roster) and flattens the rosters: a separate document per enrollment would make every
  projector batch scan it on FerretDB (see TrainingProjection).
- `directory_agents`, `directory_teams`: the workforce directory, from scheduling's events.
The due list and team summaries are computed from `learners` + the directory + `courses` at
read time (FerretDB aggregates only with $sum/$count, and the inputs are small per team).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wfm.events.v1.envelope_pb2 import EventEnvelope
from wfm.scheduling.v1 import events_pb2 as scheduling_events
from wfm.training.v1 import training_service_pb2 as pb

from services.training import domain as d
from services.training import store
from wfm_runtime import mongo
from wfm_runtime.events import short_type, unpack


@dataclass(frozen=True)
class AgentEntry:
    agent_id: str
    team_id: str
    time_zone: str
    version: int


@dataclass(frozen=True)
class TeamEntry:
    team_id: str
    client: str
    client_time_zone: str
    version: int


# The learners the sweep reads: `booked` true, or missing (a document written before the field
# was kept, until its learner's next event or a rebuild rewrites it). `$ne` matches a missing
# field on MongoDB 7 and on FerretDB v1.24 (tests/integration/test_store_subset.py).
BOOKED: dict[str, Any] = {"booked": {"$ne": False}}


class TrainingViews:
    def __init__(self, db: mongo.Database) -> None:
        self.courses = db["courses"]
        self.sessions = db["sessions"]
        self.learners = db["learners"]
        self.agents = db["directory_agents"]
        self.teams = db["directory_teams"]

    async def setup(self) -> None:
        # One index per call: FerretDB v1.24 drops the connection when a createIndexes with
        # several indexes that already exist is sent again (a restart or a second replica).
        await mongo.ensure_indexes(self.sessions, (["course_id"], False))
        await mongo.ensure_indexes(self.sessions, (["agent_ids"], False))
        await mongo.ensure_indexes(self.sessions, (["calendar_key"], False))
        await mongo.ensure_indexes(self.learners, (["booked"], False))
        await mongo.ensure_indexes(self.agents, (["team_id"], False))

    async def all_courses(self) -> list[d.Course]:
        docs = await mongo.find_all(self.courses, {}, sort=[("_id", 1)])
        return [_course(doc) for doc in docs]

    async def list_courses(self, after: str, limit: int) -> list[d.Course]:
        docs = await mongo.find_all(self.courses, _after(after), sort=[("_id", 1)], limit=limit)
        return [_course(doc) for doc in docs]

    async def list_enrollments(
        self, filters: dict[str, str], after: str, limit: int
    ) -> list[pb.Enrollment]:
        """Enrollments in name order (`sessions/{s}/enrollments/{agent}`) after `after`."""
        query: dict[str, Any] = {}
        if filters.get("session_id"):
            query["_id"] = filters["session_id"]
        if filters.get("course_id"):
            query["course_id"] = filters["course_id"]
        if filters.get("agent_id"):
            query["agent_ids"] = filters["agent_id"]
        docs = await mongo.find_all(self.sessions, query)
        agent = f"agents/{filters['agent_id']}" if filters.get("agent_id") else ""
        state = (
            pb.EnrollmentState.Value(f"ENROLLMENT_STATE_{filters['state']}")
            if filters.get("state")
            else None
        )
        found = [
            e
            for doc in docs
            for e in store.decode_doc(doc, pb.Session).roster
            if e.name > after and (not agent or e.agent == agent) and state in (None, e.state)
        ]
        return sorted(found, key=lambda e: e.name)[:limit]

    async def list_sessions(
        self, window: CalendarWindow, after: str, limit: int
    ) -> list[tuple[d.Session, str]]:
        """Sessions in calendar order (start, then id) past the key `after`, each with its key:
        one indexed range of `calendar_key`, the other filters on the documents' own fields."""
        key_range: dict[str, str] = {}
        if window.earliest is not None:
            key_range["$gte"] = calendar_key(window.earliest, "")
        if after:
            key_range["$gt"] = after
        if window.latest is not None:
            key_range["$lt"] = calendar_key(window.latest, "")
        query: dict[str, Any] = {"calendar_key": key_range} if key_range else {}
        if window.course_id:
            query["course_id"] = window.course_id
        if window.state:
            query["state"] = window.state
        docs = await mongo.find_all(self.sessions, query, sort=[("calendar_key", 1)], limit=limit)
        return [
            (
                store.session_from_doc(doc),
                str(doc["calendar_key"]),
            )
            for doc in docs
        ]

    async def learners_of(self, agent_ids: list[str]) -> dict[str, d.Learner]:
        if not agent_ids:
            return {}
        docs = await mongo.find_all(self.learners, {"_id": {"$in": agent_ids}})
        return {str(doc["_id"]): store.learner_from_doc(doc) for doc in docs}

    async def learners_with_bookings(self) -> list[d.Learner]:
        """Every learner holding a booking (the reconciler's sweep), read by the indexed
        `booked`; a document written before the field was kept is read and filtered here."""
        docs = await mongo.find_all(self.learners, BOOKED)
        learners = [store.learner_from_doc(doc) for doc in docs]
        return [learner for learner in learners if learner.bookings]

    async def sessions_of(self, session_ids: list[str]) -> dict[str, d.Session]:
        if not session_ids:
            return {}
        docs = await mongo.find_all(self.sessions, {"_id": {"$in": session_ids}})
        return {str(doc["_id"]): store.session_from_doc(doc) for doc in docs}

    async def all_agents(self) -> list[AgentEntry]:
        return [_agent_entry(doc) for doc in await mongo.find_all(self.agents, {})]

    async def all_teams(self) -> list[TeamEntry]:
        return [_team_entry(doc) for doc in await mongo.find_all(self.teams, {})]

    async def agent(self, agent_id: str) -> AgentEntry | None:
        doc = await mongo.get(self.agents, agent_id)
        return _agent_entry(doc) if doc else None

    async def team(self, team_id: str) -> TeamEntry | None:
        doc = await mongo.get(self.teams, team_id)
        return _team_entry(doc) if doc else None


class Directory:
    """In-memory copy of the directory view (small, read on most requests)."""

    def __init__(self, views: TrainingViews) -> None:
        self._views = views
        self.agents: dict[str, AgentEntry] = {}
        self.teams: dict[str, TeamEntry] = {}

    async def refresh(self) -> None:
        self.agents = {a.agent_id: a for a in await self._views.all_agents()}
        self.teams = {t.team_id: t for t in await self._views.all_teams()}

    async def agent(self, agent_id: str) -> AgentEntry | None:
        entry = self.agents.get(agent_id)
        if entry is None:  # registered moments ago, or seen by another replica's projector
            entry = await self._views.agent(agent_id)
            if entry is not None:
                self.agents[agent_id] = entry
        return entry

    async def team(self, team_id: str) -> TeamEntry | None:
        entry = self.teams.get(team_id)
        if entry is None:
            entry = await self._views.team(team_id)
            if entry is not None:
                self.teams[team_id] = entry
        return entry

    def members(self, team_ids: set[str]) -> list[AgentEntry]:
        return sorted(
            (a for a in self.agents.values() if a.team_id in team_ids), key=lambda a: a.agent_id
        )

    def teams_serving(self, client: str) -> set[str]:
        return {t.team_id for t in self.teams.values() if t.client == client}

    def learn(self, agent: AgentEntry | None = None, team: TeamEntry | None = None) -> None:
        if agent is not None:
            self.agents[agent.agent_id] = agent
        if team is not None:
            self.teams[team.team_id] = team


def _latest(envelopes: list[EventEnvelope]) -> list[EventEnvelope]:
    latest: dict[tuple[str, str], EventEnvelope] = {}
    for envelope in envelopes:
        key = (envelope.aggregate_type, envelope.aggregate_id)
        seen = latest.get(key)
        if seen is None or envelope.aggregate_version > seen.aggregate_version:
            latest[key] = envelope
    return list(latest.values())


class TrainingProjection:
    """The service's own events -> `courses`, `sessions` (with rosters), `learners`.

    A batch is written with one delete_many and one insert_many per collection. The projector
    remembers the version it last wrote per document (it is the views' only writer), so it
    reads a document only the first time it meets it past version 1, to learn whether a
    redelivered event is older.
    """

    name = "training-views"
    source = "training"
    subjects = ">"

    def __init__(self, views: TrainingViews) -> None:
        self._views = views
        self._versions: dict[tuple[str, str], int] = {}

    async def apply(self, envelopes: list[EventEnvelope]) -> None:
        writes: dict[str, dict[str, dict[str, Any]]] = {
            "courses": {},
            "sessions": {},
            "learners": {},
        }
        # Version 1 of an entity this projector has not met is inserted, not replaced: if the
        # document exists it is as new or newer, and no read of a missing _id (a scan) is made.
        firsts: set[tuple[str, str]] = set()
        for envelope in _latest(envelopes):
            kind, entity_id = envelope.aggregate_type, envelope.aggregate_id
            version = envelope.aggregate_version
            if kind not in (store.COURSE, store.SESSION, store.LEARNER):
                continue
            if (kind, entity_id) not in self._versions and version == 1:
                firsts.add((kind, entity_id))
            elif not await self._is_newer(kind, entity_id, version):
                continue
            # The event carries the aggregate's full state as the view stores it: copied
            # through without decoding it into the domain and encoding it again.
            message = store.event_state(envelope)
            message.version = version
            if kind == store.SESSION:
                writes["sessions"][entity_id] = store.state_doc(
                    message,
                    version,
                    course_id=message.course.removeprefix("courses/"),
                    agent_ids=[e.agent.removeprefix("agents/") for e in message.roster],
                    calendar_key=calendar_key(message.start_time.ToDatetime(UTC), entity_id),
                    state=message.state,
                )
            elif kind == store.LEARNER:
                writes["learners"][entity_id] = store.state_doc(
                    message, version, booked=bool(message.bookings)
                )
            else:
                writes["courses"][entity_id] = store.state_doc(message, version)
            self._versions[(kind, entity_id)] = version
        for kind, name in (
            (store.COURSE, "courses"),
            (store.SESSION, "sessions"),
            (store.LEARNER, "learners"),
        ):
            docs = writes[name]
            new = {k: v for k, v in docs.items() if (kind, k) in firsts}
            coll = getattr(self._views, name)
            await mongo.insert_new(coll, [{"_id": k, **v} for k, v in new.items()])
            await store.replace_many(coll, {k: v for k, v in docs.items() if k not in new})

    async def _is_newer(self, kind: str, entity_id: str, version: int) -> bool:
        known = self._versions.get((kind, entity_id))
        if known is None:
            coll = {
                store.COURSE: self._views.courses,
                store.SESSION: self._views.sessions,
                store.LEARNER: self._views.learners,
            }.get(kind)
            if coll is None:
                return False
            doc = await mongo.get(coll, entity_id)
            known = int(doc.get("version", 0)) if doc else 0
            self._versions[(kind, entity_id)] = known
        return version > known

    async def reset(self) -> None:
        self._versions.clear()
        for coll in (
            self._views.courses,
            self._views.sessions,
            self._views.learners,
        ):
            await mongo.drop_collection(coll)
        await self._views.setup()


class DirectoryProjection:
    """Scheduling's TeamCreated / AgentRegistered / AgentUpdated -> directory views."""

    name = "training-directory"
    source = "scheduling"
    subjects = ">"

    def __init__(self, views: TrainingViews, directory: Directory) -> None:
        self._views = views
        self._directory = directory

    async def apply(self, envelopes: list[EventEnvelope]) -> None:
        for envelope in _latest(envelopes):
            kind = short_type(envelope.event_type)
            if kind == "TeamCreated":
                team = unpack(envelope, scheduling_events.TeamCreated).team
                entry = TeamEntry(
                    team.name.removeprefix("teams/"),
                    team.client,
                    team.client_time_zone,
                    envelope.aggregate_version,
                )
                if await _newer(self._views.teams, entry.team_id, entry.version):
                    await mongo.set_fields(self._views.teams, entry.team_id, _team_doc(entry))
                    self._directory.learn(team=entry)
            elif kind in ("AgentRegistered", "AgentUpdated"):
                cls: Any = (
                    scheduling_events.AgentRegistered
                    if kind == "AgentRegistered"
                    else scheduling_events.AgentUpdated
                )
                agent = unpack(envelope, cls).agent
                a_entry = AgentEntry(
                    agent.name.removeprefix("agents/"),
                    agent.team.removeprefix("teams/"),
                    agent.time_zone,
                    envelope.aggregate_version,
                )
                if await _newer(self._views.agents, a_entry.agent_id, a_entry.version):
                    await mongo.set_fields(
                        self._views.agents, a_entry.agent_id, _agent_doc(a_entry)
                    )
                    self._directory.learn(agent=a_entry)

    async def reset(self) -> None:
        await mongo.drop_collection(self._views.agents)
        await mongo.drop_collection(self._views.teams)
        await self._views.setup()
        self._directory.agents.clear()
        self._directory.teams.clear()


async def _newer(coll: mongo.Collection, doc_id: str, version: int) -> bool:
    doc = await mongo.get(coll, doc_id)
    return doc is None or int(doc.get("version", 0)) < version


@dataclass(frozen=True)
class CalendarWindow:
    """Which sessions a calendar lists: start in [earliest, latest), a course, a state."""

    earliest: datetime | None = None
    latest: datetime | None = None
    course_id: str = ""
    state: int = 0  # pb.SessionState; 0: any


def calendar_key(start: datetime, session_id: str) -> str:
    """Sorts sessions by start then id as plain strings (fixed-width epoch seconds; sessions
    start after 1970), so one indexed string range serves the order, the window and the page
    token alike."""
    return f"{int(start.timestamp()):012d}|{session_id}"


def _after(after: str) -> dict[str, Any]:
    return {"_id": {"$gt": after}} if after else {}


def _course(doc: dict[str, Any]) -> d.Course:
    return store.course_from_proto(store.decode_doc(doc, pb.Course), str(doc["_id"]))


def _agent_doc(entry: AgentEntry) -> dict[str, Any]:
    return {"team_id": entry.team_id, "time_zone": entry.time_zone, "version": entry.version}


def _team_doc(entry: TeamEntry) -> dict[str, Any]:
    return {
        "client": entry.client,
        "client_time_zone": entry.client_time_zone,
        "version": entry.version,
    }


def _agent_entry(doc: dict[str, Any]) -> AgentEntry:
    return AgentEntry(
        str(doc["_id"]),
        doc.get("team_id", ""),
        doc.get("time_zone", ""),
        int(doc.get("version", 0)),
    )


def _team_entry(doc: dict[str, Any]) -> TeamEntry:
    return TeamEntry(
        str(doc["_id"]),
        doc.get("client", ""),
        doc.get("client_time_zone", ""),
        int(doc.get("version", 0)),
    )
