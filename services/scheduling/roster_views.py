"""Roster read views, projected from the schedule, site, pattern and coverage events.

- `rosters`: one document per agent: the schedule's latest event (full state: shifts from six
  weeks before its last change on, and leave) plus the teams it has shifts for. Serves an
  agent's roster by day, a team's roster by week, leave balances and coverage.
- `roster_history`: one document per schedule event (insert-only): every version ever.
- `coverage_agents`: one document per team and UTC date: each agent's productive seconds per
  15-minute UTC bucket with the schedule version they come from (see coverage.py), recomputed
  from the agent's latest state whenever its schedule changes (never incremented).
- `coverage`: the same team-days summed over agents (96 numbers each): what `GetCoverage` reads.
- `sites`, `shift_patterns`, `coverage_requirements`: the latest state of each; sites and
  patterns are listed from them in id (= name) order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from bson import Binary
from wfm.events.v1.envelope_pb2 import EventEnvelope
from wfm.scheduling.v1 import events_pb2

from services.scheduling import coverage, roster, roster_store
from services.scheduling.roster import Pattern, Requirement, Schedule, Site
from services.scheduling.roster_store import (
    COVERAGE,
    PATTERN,
    SCHEDULE,
    SITE,
    envelope_of,
    evolve_pattern,
    evolve_schedule,
    evolve_site,
    state_doc,
)
from wfm_runtime import mongo
from wfm_runtime.events import unpack
from wfm_runtime.timefmt import from_timestamp

WRITE_CONCURRENCY = 8
# Documents read per query when a listing filters after decoding (the filter is not a field of
# the view documents, so the query cannot apply it).
SCAN_BATCH = 200

T = TypeVar("T")


class RosterViews:
    def __init__(self, db: mongo.Database) -> None:
        self.store = roster_store.RosterStore(db)
        self.rosters = self.store.rosters
        self.history = db["roster_history"]
        self.coverage = db["coverage"]  # small documents that reads scan: totals only
        self.coverage_agents = db["coverage_agents"]  # the same team-days, per agent
        # The schedule versions the projection in this process has written (its own copy).
        self.projected: dict[tuple[str, str], int] = {}

    async def setup(self) -> None:
        await mongo.ensure_indexes(self.rosters, (["teams"], False))
        await mongo.ensure_indexes(self.coverage, (["team_id", "date"], False))
        await mongo.ensure_indexes(self.coverage_agents, (["team_id", "date"], False))
        await mongo.ensure_indexes(self.history, (["agent_id", "version"], False))
        await mongo.ensure_indexes(self.store.requirements, (["team_id"], False))

    async def team_schedules(self, team_id: str) -> list[Schedule]:
        docs = await mongo.find_all(self.rosters, {"teams": team_id}, sort=[("_id", 1)])
        return [evolve_schedule(Schedule(str(d["_id"])), envelope_of(d)) for d in docs]

    async def schedules_of(self, agent_ids: list[str]) -> list[Schedule]:
        if not agent_ids:
            return []
        docs = await mongo.find_all(self.rosters, {"_id": {"$in": agent_ids}}, sort=[("_id", 1)])
        return [evolve_schedule(Schedule(str(d["_id"])), envelope_of(d)) for d in docs]

    def coverage_views(self) -> tuple[mongo.Collection, mongo.Collection]:
        return self.coverage, self.coverage_agents

    async def coverage_totals(self, team_id: str, days: list[date]) -> dict[date, list[int]]:
        """The projected staffing of a team per UTC date: productive seconds per bucket."""
        docs = await mongo.find_all(self.coverage, {"_id": {"$in": _coverage_ids(team_id, days)}})
        found = {d: [0] * coverage.BUCKETS_PER_DAY for d in days}
        for doc in docs:
            found[date.fromisoformat(str(doc["date"]))] = [int(n) for n in doc["totals"]]
        return found

    async def staffing_by_agent(self, team_id: str, days: list[date]) -> dict[date, CoverageDay]:
        """The same per agent: agent -> (schedule version, {bucket: seconds})."""
        docs = await mongo.find_all(
            self.coverage_agents, {"_id": {"$in": _coverage_ids(team_id, days)}}
        )
        found: dict[date, CoverageDay] = {d: {} for d in days}
        for doc in docs:
            found[date.fromisoformat(str(doc["date"]))] = _agents_of(doc)
        return found

    async def past_shifts(
        self, agent_id: str, first: date, last: date, current: frozenset[str]
    ) -> list[roster.Shift]:
        """Shifts on [first, last] that the aggregate no longer holds (pruned from its window),
        each in the last state a `roster_history` version recorded for it."""
        docs = await mongo.find_all(self.history, {"agent_id": agent_id}, sort=[("version", -1)])
        seen = set(current)
        found = []
        for doc in docs:
            for shift in evolve_schedule(Schedule(agent_id), envelope_of(doc)).shifts:
                if shift.shift_id not in seen and first <= shift.roster_date <= last:
                    found.append(shift)
                seen.add(shift.shift_id)
        return found

    async def sites(self, after: str, limit: int) -> list[Site]:
        """Up to `limit` sites with ids after `after`, in id order."""
        return await _scan(
            self.store.sites, after, limit, lambda d: evolve_site(Site(d["_id"]), envelope_of(d))
        )

    async def patterns(
        self, after: str, limit: int, keep: Callable[[Pattern], bool] | None = None
    ) -> list[Pattern]:
        """Up to `limit` shift patterns with ids after `after` (and that `keep` accepts), in id
        order."""
        return await _scan(
            self.store.patterns,
            after,
            limit,
            lambda d: evolve_pattern(Pattern(d["_id"]), envelope_of(d)),
            keep,
        )

    async def requirements(self, team_id: str) -> dict[str, Requirement]:
        docs = await mongo.find_all(self.store.requirements, {"team_id": team_id})
        found = {}
        for doc in docs:
            initial = Requirement(team_id, str(doc["key"]))
            found[initial.key] = roster_store.evolve_requirement(initial, envelope_of(doc))
        return found


async def _scan(
    coll: mongo.Collection,
    after: str,
    limit: int,
    decode: Callable[[dict[str, Any]], T],
    keep: Callable[[T], bool] | None = None,
) -> list[T]:
    """The first `limit` states of a latest-state view with ids after `after`, in id order; with
    `keep`, only those it accepts, read batch by batch until `limit` are found or none are left."""
    if limit <= 0:
        return []
    batch = limit if keep is None else max(limit, SCAN_BATCH)
    found: list[T] = []
    while True:
        query = {"_id": {"$gt": after}} if after else {}
        docs = await mongo.find_all(coll, query, sort=[("_id", 1)], limit=batch)
        states = [decode(d) for d in docs]
        found += states if keep is None else [s for s in states if keep(s)]
        if len(found) >= limit or len(docs) < batch:
            return found[:limit]
        after = str(docs[-1]["_id"])


class RosterProjection:
    """Schedule / site / pattern / coverage events -> the roster views (latest version wins)."""

    name = "scheduling-roster"
    source = "scheduling"
    subjects = ">"

    def __init__(self, views: RosterViews) -> None:
        self._views = views
        # This projector is the only writer of these views, so its copy of versions is current.
        self._versions: dict[tuple[str, str], int] | None = None
        self._writes = asyncio.Semaphore(WRITE_CONCURRENCY)

    async def apply(self, envelopes: list[EventEnvelope]) -> None:
        ours = [e for e in envelopes if e.aggregate_type in _TARGETS]
        if not ours:
            return
        versions = await self._known_versions()
        schedules = [e for e in ours if e.aggregate_type == SCHEDULE]
        await mongo.insert_new(self._views.history, [_history_doc(e) for e in schedules])
        latest: dict[tuple[str, str], EventEnvelope] = {}
        for e in ours:
            key = (e.aggregate_type, e.aggregate_id)
            if key not in latest or e.aggregate_version > latest[key].aggregate_version:
                latest[key] = e
        fresh = [e for k, e in latest.items() if e.aggregate_version > versions.get(k, 0)]
        # Coverage first: if the batch is cut short, the rosters documents still hold the old
        # versions (and their days), so the redelivered batch recomputes the same days.
        days = await self._project_coverage([e for e in fresh if e.aggregate_type == SCHEDULE])
        await asyncio.gather(*(self._write(e, days.get(e.aggregate_id, [])) for e in fresh))
        for e in fresh:
            versions[(e.aggregate_type, e.aggregate_id)] = e.aggregate_version

    async def _known_versions(self) -> dict[tuple[str, str], int]:
        if self._versions is None:
            versions: dict[tuple[str, str], int] = {}
            for kind, coll in self._collections().items():
                for doc in await mongo.find_all(coll, {}):
                    versions[(kind, str(doc["_id"]))] = int(doc.get("version", 0))
            self._versions = versions
            self._views.projected = versions
        return self._versions

    async def _project_coverage(self, envelopes: list[EventEnvelope]) -> dict[str, list[str]]:
        """Replaces each changed agent's entry on every team-day its old or new state touches,
        and drops documents no agent staffs any more (so a rebuild writes the same documents)."""
        if not envelopes:
            return {}
        ids = [e.aggregate_id for e in envelopes]
        old_docs = await mongo.find_all(self._views.rosters, {"_id": {"$in": ids}})
        old_days = {str(d["_id"]): set(d.get("coverage_days", [])) for d in old_docs}
        changes, days = _coverage_changes(envelopes, old_days)
        current = {
            str(d["_id"]): _agents_of(d)
            for d in await mongo.find_all(
                self._views.coverage_agents, {"_id": {"$in": sorted(changes)}}
            )
        }
        empty: list[str] = []
        writes = []
        for doc_id, agents in changes.items():
            merged = {**current.get(doc_id, {}), **agents}
            kept = {a: entry for a, entry in merged.items() if entry[1]}
            if kept:
                writes.append(self._write_coverage(doc_id, kept))
            else:
                empty.append(doc_id)
        await asyncio.gather(*writes)
        if empty:
            await mongo.delete_ids(self._views.coverage, empty)
            await mongo.delete_ids(self._views.coverage_agents, empty)
        return days

    async def _write_coverage(self, doc_id: str, agents: CoverageDay) -> None:
        team_id, _, day = doc_id.rpartition("@")
        keys = {"team_id": team_id, "date": day}
        per_agent = {
            a: {"version": v, "cells": Binary(coverage.pack(cells))}
            for a, (v, cells) in sorted(agents.items())
        }
        totals = coverage.totals(cells for _, cells in agents.values())
        async with self._writes:
            await mongo.set_fields(
                self._views.coverage_agents, doc_id, {**keys, "agents": per_agent}
            )
            await mongo.set_fields(self._views.coverage, doc_id, {**keys, "totals": totals})

    def _collections(self) -> dict[str, mongo.Collection]:
        store = self._views.store
        return {
            SCHEDULE: store.rosters,
            SITE: store.sites,
            PATTERN: store.patterns,
            COVERAGE: store.requirements,
        }

    async def _write(self, envelope: EventEnvelope, coverage_days: list[str]) -> None:
        coll = self._collections()[envelope.aggregate_type]
        async with self._writes:
            await mongo.set_fields(coll, envelope.aggregate_id, _fields(envelope, coverage_days))

    async def reset(self) -> None:
        self._versions = None
        self._views.projected = {}
        for coll in (
            *self._collections().values(),
            self._views.history,
            *self._views.coverage_views(),
        ):
            await mongo.drop_collection(coll)
        await self._views.setup()


_TARGETS = frozenset({SCHEDULE, SITE, PATTERN, COVERAGE})


def _fields(envelope: EventEnvelope, coverage_days: list[str]) -> dict[str, Any]:
    if envelope.aggregate_type == SCHEDULE:
        event = unpack(envelope, events_pb2.ScheduleChanged)
        teams = sorted({s.team.removeprefix("teams/") for s in event.schedule.shifts})
        return state_doc(envelope, teams=teams, coverage_days=coverage_days)
    if envelope.aggregate_type == COVERAGE:
        team_id, _, key = envelope.aggregate_id.partition("@")
        return state_doc(envelope, team_id=team_id, key=key)
    return state_doc(envelope)


CoverageDay = dict[str, tuple[int, dict[int, int]]]


def _coverage_id(team_id: str, day: date) -> str:
    return f"{team_id}@{day.isoformat()}"


def _coverage_changes(
    envelopes: list[EventEnvelope], old_days: dict[str, set[str]]
) -> tuple[dict[str, CoverageDay], dict[str, list[str]]]:
    """Per team-day document, the new entries of the changed agents (empty where an agent no
    longer staffs it); and per agent, the team-days its new state staffs."""
    changes: dict[str, CoverageDay] = {}
    days: dict[str, list[str]] = {}
    for e in envelopes:
        cells = coverage.agent_buckets(evolve_schedule(Schedule(e.aggregate_id), e))
        new = {_coverage_id(team, day): found for (team, day), found in cells.items() if found}
        days[e.aggregate_id] = sorted(new)
        for doc_id in old_days.get(e.aggregate_id, set()) | set(new):
            changes.setdefault(doc_id, {})[e.aggregate_id] = (
                e.aggregate_version,
                new.get(doc_id, {}),
            )
    return changes, days


def _coverage_ids(team_id: str, days: list[date]) -> list[str]:
    return [_coverage_id(team_id, d) for d in days]


def _agents_of(doc: dict[str, Any]) -> CoverageDay:
    return {
        str(agent): (int(entry["version"]), coverage.unpack(bytes(entry["cells"])))
        for agent, entry in dict(doc.get("agents", {})).items()
    }


def _history_doc(envelope: EventEnvelope) -> dict[str, Any]:
    event = unpack(envelope, events_pb2.ScheduleChanged)
    return {
        "_id": f"{envelope.aggregate_id}/{envelope.aggregate_version:012d}",
        "agent_id": envelope.aggregate_id,
        "version": envelope.aggregate_version,
        "kind": int(event.kind),
        "shift_ids": list(event.shift_ids),
        "leave_ids": list(event.leave_ids),
        "at": from_timestamp(envelope.occurred_at),
        **state_doc(envelope),
    }


__all__ = ["RosterProjection", "RosterViews", "roster"]
