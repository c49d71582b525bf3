"""Availability read views and the projectors that keep them.

Views (in the service's views database):
- `board`: every agent's current status and version, in `BOARD_BUCKETS` (2) bucket documents.
- `transitions`: one document per StatusChanged (insert-only), for history.
- `directory_agents`, `directory_teams`: what this service knows of the workforce directory,
  projected from the scheduling service's events.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.protobuf.message import DecodeError, Message
from wfm.events.v1.envelope_pb2 import EventEnvelope
from wfm.scheduling.v1 import events_pb2 as scheduling_events

from services.availability import domain
from services.availability.store import (
    AGGREGATE,
    ROW_VERSION,
    BucketRow,
    board_bucket,
    board_row,
    board_row_to_state,
    bucket_rows,
    decode,
    encode_bucket,
)
from wfm_runtime import logging as wlog
from wfm_runtime import mongo
from wfm_runtime.events import short_type, unpack
from wfm_runtime.messaging import Bus
from wfm_runtime.periodic import repeat_forever
from wfm_runtime.timefmt import as_utc

log = wlog.get("availability.views")

# How often an API worker reads the directory view again (it learns changes from events first).
REFRESH_S = 30.0


@dataclass(frozen=True)
class AgentEntry:
    agent_id: str
    team_id: str
    time_zone: str
    display_name: str
    version: int


@dataclass(frozen=True)
class TeamEntry:
    team_id: str
    client_time_zone: str
    display_name: str
    version: int


@dataclass(frozen=True)
class BoardRow:
    agent: AgentEntry
    team: TeamEntry | None
    state: domain.AgentAvailability


def _last_per_aggregate(envelopes: list[EventEnvelope]) -> dict[str, EventEnvelope]:
    latest: dict[str, EventEnvelope] = {}
    for envelope in envelopes:
        seen = latest.get(envelope.aggregate_id)
        if seen is None or envelope.aggregate_version > seen.aggregate_version:
            latest[envelope.aggregate_id] = envelope
    return latest


class AvailabilityViews:
    def __init__(self, db: mongo.Database) -> None:
        self.board = db["board"]
        self.transitions = db["transitions"]
        self.agents = db["directory_agents"]
        self.teams = db["directory_teams"]

    async def setup(self) -> None:
        # History reads an agent's transitions by instant: the one before a range and those in it.
        await mongo.ensure_indexes(self.transitions, (["agent_id", "at", "version"], False))
        # Its predecessor, which read an agent's whole past, is only a cost on every write now.
        await mongo.retire_indexes(self.transitions, "agent_id_version")
        await mongo.ensure_indexes(self.agents, (["team_id"], False))

    # --- directory ---------------------------------------------------------------------
    async def all_agents(self) -> list[AgentEntry]:
        return [_agent_entry(d) for d in await mongo.find_all(self.agents, {})]

    async def all_teams(self) -> list[TeamEntry]:
        return [_team_entry(d) for d in await mongo.find_all(self.teams, {})]

    async def agent(self, agent_id: str) -> AgentEntry | None:
        doc = await mongo.get(self.agents, agent_id)
        return _agent_entry(doc) if doc else None

    # --- board -------------------------------------------------------------------------
    async def states(self, agent_ids: list[str]) -> dict[str, domain.AgentAvailability]:
        buckets = sorted({board_bucket(a) for a in agent_ids})
        if not buckets:
            return {}
        if len(buckets) == 1:
            found = await mongo.get(self.board, buckets[0])
            docs = [found] if found else []
        else:
            docs = await mongo.find_all(self.board, {"_id": {"$in": buckets}})
        rows = {a: r for d in docs for a, r in bucket_rows(d).items()}
        return {a: board_row_to_state(a, rows[a]) for a in agent_ids if a in rows}

    async def transitions_of(
        self, agent_id: str, start: datetime, end: datetime
    ) -> list[domain.Transition]:
        """What a history of [start, end) needs: the last transition before `start` (the status
        the range opens in) and those inside it. An agent's earlier past is not read: a year of
        changes would make every history read slow."""
        # `at` never goes back from one version to the next (domain.decide_set_status), so the
        # latest instant before `start`, highest version first on a tie, is its last transition.
        opening = await mongo.find_all(
            self.transitions,
            {"agent_id": agent_id, "at": {"$lt": start}},
            sort=[("at", -1), ("version", -1)],
            limit=1,
        )
        inside = await mongo.find_all(
            self.transitions,
            {"agent_id": agent_id, "at": {"$gte": start, "$lt": end}},
            sort=[("at", 1), ("version", 1)],
        )
        return [_transition(d) for d in opening + inside]


class Directory:
    """In-memory copy of the directory view: it is small and read on every request."""

    def __init__(self, views: AvailabilityViews) -> None:
        self._views = views
        self.agents: dict[str, AgentEntry] = {}
        self.teams: dict[str, TeamEntry] = {}

    async def refresh(self) -> None:
        """Reads the view again; an entry this copy learned newer from an event stays."""
        for agent in await self._views.all_agents():
            self.learn(agent=agent)
        for team in await self._views.all_teams():
            self.learn(team=team)

    async def agent(self, agent_id: str) -> AgentEntry | None:
        entry = self.agents.get(agent_id)
        if entry is None:  # registered moments ago, or by another replica's projector
            entry = await self._views.agent(agent_id)
            if entry is not None:
                self.agents[agent_id] = entry
        return entry

    def members(self, team_id: str) -> list[str]:
        return sorted(
            a.agent_id for a in self.agents.values() if not team_id or a.team_id == team_id
        )

    def team_of(self, agent: AgentEntry) -> TeamEntry | None:
        return self.teams.get(agent.team_id)

    def learn(self, agent: AgentEntry | None = None, team: TeamEntry | None = None) -> None:
        """Keeps the newer of what it knew and this entry."""
        if agent is not None:
            known_agent = self.agents.get(agent.agent_id)
            if known_agent is None or known_agent.version < agent.version:
                self.agents[agent.agent_id] = agent
        if team is not None:
            known_team = self.teams.get(team.team_id)
            if known_team is None or known_team.version < team.version:
                self.teams[team.team_id] = team


class DirectoryFollower:
    """An API worker's directory (wfm_runtime.workers): learns scheduling's events as NATS
    delivers them, with no durable consumer (the primary's projector is the view's one writer),
    and reads the view again every `refresh_s`, for what it missed while disconnected."""

    def __init__(self, bus: Bus, directory: Directory, refresh_s: float = REFRESH_S) -> None:
        self._bus = bus
        self._directory = directory
        self._refresh_s = refresh_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name="directory-follower")

    async def _follow(self) -> None:
        while not self._bus.connected:
            with contextlib.suppress(TimeoutError):
                await self._bus.wait_ready(timeout=60)
        subscription = await self._bus.nc.subscribe(
            f"{self._bus.namespace}.scheduling.>", cb=self._on_message
        )
        try:
            await repeat_forever(
                self._directory.refresh, self._refresh_s, "directory_refresh_failed"
            )
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _on_message(self, msg: Any) -> None:
        try:
            envelope = EventEnvelope.FromString(msg.data)
            entry = directory_entry(envelope)
        except DecodeError:
            log.warning("directory_event_unreadable", subject=msg.subject)
            return
        if isinstance(entry, AgentEntry):
            self._directory.learn(agent=entry)
        elif isinstance(entry, TeamEntry):
            self._directory.learn(team=entry)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class BoardProjection:
    """StatusChanged -> `board` (latest state per agent) and `transitions` (every change)."""

    name = "availability-board"
    source = "availability"
    subjects = f"{AGGREGATE}.>"

    def __init__(self, views: AvailabilityViews) -> None:
        self._views = views
        # This projector is the board's only writer, so its copy of the buckets is current.
        self._buckets: dict[str, dict[str, BucketRow]] = {}

    async def apply(self, envelopes: list[EventEnvelope]) -> None:
        changes = [e for e in envelopes if short_type(e.event_type) == "StatusChanged"]
        decoded = {e.event_id: decode(e) for e in changes}
        await mongo.insert_new(
            self._views.transitions, [_transition_doc(e, decoded[e.event_id]) for e in changes]
        )
        changed: set[str] = set()
        for envelope in _last_per_aggregate(changes).values():
            bucket = await self._bucket(board_bucket(envelope.aggregate_id))
            known = bucket.get(envelope.aggregate_id)
            if known is not None and envelope.aggregate_version <= known[ROW_VERSION]:
                continue  # an older or repeated event: the board already has newer
            bucket[envelope.aggregate_id] = board_row(
                decoded[envelope.event_id], envelope.aggregate_version
            )
            changed.add(board_bucket(envelope.aggregate_id))
        # Every changed bucket in one round trip.
        await mongo.set_fields_many(
            self._views.board, {b: encode_bucket(self._buckets[b]) for b in sorted(changed)}
        )

    async def _bucket(self, bucket_id: str) -> dict[str, BucketRow]:
        if bucket_id not in self._buckets:
            self._buckets[bucket_id] = bucket_rows(await mongo.get(self._views.board, bucket_id))
        return self._buckets[bucket_id]

    async def reset(self) -> None:
        self._buckets.clear()
        await mongo.drop_collection(self._views.board)
        await mongo.drop_collection(self._views.transitions)
        await self._views.setup()


class DirectoryProjection:
    """Scheduling's TeamCreated / AgentRegistered / AgentUpdated -> directory views."""

    name = "availability-directory"
    source = "scheduling"
    subjects = ">"

    def __init__(self, views: AvailabilityViews, directory: Directory) -> None:
        self._views = views
        self._directory = directory

    async def apply(self, envelopes: list[EventEnvelope]) -> None:
        for envelope in _last_per_aggregate_and_type(envelopes):
            entry = directory_entry(envelope)
            if isinstance(entry, TeamEntry):
                if await self._newer(self._views.teams, entry.team_id, entry.version):
                    await mongo.set_fields(self._views.teams, entry.team_id, _team_doc(entry))
                    self._directory.learn(team=entry)
            elif isinstance(entry, AgentEntry) and await self._newer(
                self._views.agents, entry.agent_id, entry.version
            ):
                await mongo.set_fields(self._views.agents, entry.agent_id, _agent_doc(entry))
                self._directory.learn(agent=entry)

    async def _newer(self, coll: mongo.Collection, doc_id: str, version: int) -> bool:
        doc = await mongo.get(coll, doc_id)
        return doc is None or int(doc.get("version", 0)) < version

    async def reset(self) -> None:
        await mongo.drop_collection(self._views.agents)
        await mongo.drop_collection(self._views.teams)
        await self._views.setup()
        self._directory.agents.clear()
        self._directory.teams.clear()


# Scheduling's directory events: event name -> (message, the field holding the team or agent).
_DIRECTORY_EVENTS: dict[str, tuple[type[Message], str]] = {
    "TeamCreated": (scheduling_events.TeamCreated, "team"),
    "TeamUpdated": (scheduling_events.TeamUpdated, "team"),
    "AgentRegistered": (scheduling_events.AgentRegistered, "agent"),
    "AgentUpdated": (scheduling_events.AgentUpdated, "agent"),
}


def directory_entry(envelope: EventEnvelope) -> AgentEntry | TeamEntry | None:
    """What a scheduling event says about an agent or a team (None: nothing for this view)."""
    known = _DIRECTORY_EVENTS.get(short_type(envelope.event_type))
    if known is None:
        return None
    message_class, field = known
    item = getattr(unpack(envelope, message_class), field)
    version = envelope.aggregate_version
    if field == "team":
        return TeamEntry(
            item.name.removeprefix("teams/"), item.client_time_zone, item.display_name, version
        )
    return AgentEntry(
        item.name.removeprefix("agents/"),
        item.team.removeprefix("teams/"),
        item.time_zone,
        item.display_name,
        version,
    )


def _last_per_aggregate_and_type(envelopes: list[EventEnvelope]) -> list[EventEnvelope]:
    latest: dict[tuple[str, str], EventEnvelope] = {}
    for envelope in envelopes:
        key = (envelope.aggregate_type, envelope.aggregate_id)
        seen = latest.get(key)
        if seen is None or envelope.aggregate_version > seen.aggregate_version:
            latest[key] = envelope
    return list(latest.values())


def _transition_doc(envelope: EventEnvelope, event: domain.StatusChanged) -> dict[str, Any]:
    return {
        "_id": f"{envelope.aggregate_id}/{envelope.aggregate_version:012d}",
        "agent_id": envelope.aggregate_id,
        "version": envelope.aggregate_version,
        "status": event.status.value,
        "reason_code": event.reason_code,
        "at": event.since,
    }


def _transition(doc: dict[str, Any]) -> domain.Transition:
    return domain.Transition(
        int(doc["version"]),
        domain.Status(doc["status"]),
        doc.get("reason_code", ""),
        as_utc(doc["at"]),
    )


def _agent_doc(entry: AgentEntry) -> dict[str, Any]:
    return {
        "team_id": entry.team_id,
        "time_zone": entry.time_zone,
        "display_name": entry.display_name,
        "version": entry.version,
    }


def _team_doc(entry: TeamEntry) -> dict[str, Any]:
    return {
        "client_time_zone": entry.client_time_zone,
        "display_name": entry.display_name,
        "version": entry.version,
    }


def _agent_entry(doc: dict[str, Any]) -> AgentEntry:
    return AgentEntry(
        str(doc["_id"]),
        doc.get("team_id", ""),
        doc.get("time_zone", ""),
        doc.get("display_name", ""),
        int(doc.get("version", 0)),
    )


def _team_entry(doc: dict[str, Any]) -> TeamEntry:
    return TeamEntry(
        str(doc["_id"]),
        doc.get("client_time_zone", ""),
        doc.get("display_name", ""),
        int(doc.get("version", 0)),
    )


# --- queries -------------------------------------------------------------------------------
async def board_page(
    views: AvailabilityViews,
    directory: Directory,
    *,
    team_id: str,
    status: domain.Status | None,
    after: str,
    page_size: int,
) -> tuple[list[BoardRow], str]:
    """One page of the board in agent-id order; returns the rows and the last key if more."""
    candidates = [a for a in directory.members(team_id) if a > after]
    rows: list[BoardRow] = []
    chunk = max(page_size, 100)
    for start in range(0, len(candidates), chunk):
        ids = candidates[start : start + chunk]
        states = await views.states(ids)
        for agent_id in ids:
            state = states.get(agent_id) or domain.AgentAvailability(agent_id)
            if status is not None and state.status != status:
                continue
            agent = directory.agents[agent_id]
            rows.append(BoardRow(agent, directory.team_of(agent), state))
            if len(rows) == page_size:
                more = agent_id != candidates[-1]
                return rows, agent_id if more else ""
    return rows, ""


async def whole_board(
    views: AvailabilityViews, directory: Directory, team_id: str
) -> list[BoardRow]:
    rows, after = await board_page(
        views, directory, team_id=team_id, status=None, after="", page_size=10_000
    )
    while after:
        more, after = await board_page(
            views, directory, team_id=team_id, status=None, after=after, page_size=10_000
        )
        rows.extend(more)
    return rows
