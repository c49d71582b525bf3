"""Performance read views, the projectors that keep them, and the queries on them.

Views (in the service's views database):
- `status_inputs`, `case_inputs`, `schedule_inputs`: every input an agent-day's figures come
  from, in documents per UTC date and agent hash bucket (store.py), keyed inside by agent, then
  by version, case id, shift id... so a repeated or late event lands once and in its place.
- `team_days`: one document per team and roster date with each agent's sums (store.py).
- `thresholds`: each team's red-flag thresholds; `directory_agents`, `directory_teams`.

A projector never increments a figure: it stores the inputs, then recomputes every agent-day
they can change from all the inputs stored for it (`DayBook.recompute`). Late, repeated or
out-of-order input therefore gives the same figures as a full rebuild.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from wfm.events.v1.envelope_pb2 import EventEnvelope
from wfm.scheduling.v1 import events_pb2 as scheduling_events
from wfm.training.v1 import events_pb2 as training_events

from services.availability.store import decode as decode_status_changed
from services.performance import domain, metrics, store
from services.scheduling import roster
from services.scheduling.roster_store import SCHEDULE as SCHEDULE_AGGREGATE
from services.scheduling.roster_store import schedule_from_proto
from wfm_runtime import logging as wlog
from wfm_runtime import mongo
from wfm_runtime.commands import Command, CommandRunner, fingerprint
from wfm_runtime.events import short_type, unpack
from wfm_runtime.periodic import repeat_forever
from wfm_runtime.timefmt import as_utc, epoch_ms, from_timestamp, utc_now

STATUS, CASES, SCHEDULE = "status_inputs", "case_inputs", "schedule_inputs"
TRAINING = "training_inputs"
MAX_CACHED_DOCS = 200_000
# Status and case events per projector batch when a consumer catches up (live, a batch is
# what the stream holds: usually one event). Batches share their input writes, and the
# figures are computed once per `DEFER_S` window, not per batch (see `DayBook.settle`).
CATCH_UP_BATCH = 10_000
# While a consumer catches up, figures are recomputed at most this often (or when this many
# agent-days wait), not after every batch: the lag of the figures while catching up.
DEFER_S = 20.0
# How often the red-flag watch checks again the agents with a day still going (figures so far
# change with time alone): a threshold broken by time is told within this.
SWEEP_S = 60.0
MAX_PENDING_DAYS = 100_000
MAX_LEAVE_DAYS = 400
INDEX_DATE = date(1, 1, 1)  # the slot of each agent's roster index (no day reads it)

AgentDay = tuple[str, date]
log = wlog.get("performance.views")


@dataclass(frozen=True)
class TeamEntry:
    version: int
    client_time_zone: str  # never changes after TeamCreated; "" in data projected before kept


def _team_entry(doc: dict[str, Any]) -> TeamEntry:
    return TeamEntry(int(doc["version"]), str(doc.get("client_time_zone", "")))


@dataclass(frozen=True)
class AgentEntry:
    agent_id: str
    team_id: str
    time_zone: str
    version: int


class Directory:
    """In-memory copy of the directory view (small, read on every request and recompute)."""

    def __init__(self, repo: store.Repository) -> None:
        self._repo = repo
        self.agents: dict[str, AgentEntry] = {}
        self.teams: dict[str, TeamEntry] = {}

    async def refresh(self) -> None:
        docs = await mongo.find_all(self._repo.agents, {})
        self.agents = {
            str(d["_id"]): AgentEntry(
                str(d["_id"]), d.get("team_id", ""), d.get("time_zone", ""), d["version"]
            )
            for d in docs
        }
        teams = await mongo.find_all(self._repo.teams, {})
        self.teams = {str(d["_id"]): _team_entry(d) for d in teams}

    async def agent(self, agent_id: str) -> AgentEntry | None:
        entry = self.agents.get(agent_id)
        if entry is None:  # registered moments ago, or by another replica's projector
            doc = await mongo.get(self._repo.agents, agent_id)
            if doc is not None:
                entry = AgentEntry(agent_id, doc["team_id"], doc["time_zone"], doc["version"])
                self.agents[agent_id] = entry
        return entry

    def zone_of(self, agent_id: str) -> str:
        """The agent's home zone (UTC when unknown)."""
        entry = self.agents.get(agent_id)
        return entry.time_zone if entry and entry.time_zone else "UTC"

    async def client_zone_of(self, team_id: str) -> str:
        """The zone of the client the team serves ("" when unknown, e.g. data projected before
        it was kept: `make rebuild-views` fills it)."""
        await self.has_team(team_id)
        entry = self.teams.get(team_id)
        return entry.client_time_zone if entry else ""

    def team_of(self, agent_id: str) -> str:
        entry = self.agents.get(agent_id)
        return entry.team_id if entry else ""

    def members(self, team_id: str) -> list[str]:
        return sorted(a.agent_id for a in self.agents.values() if a.team_id == team_id)

    async def has_team(self, team_id: str) -> bool:
        if team_id not in self.teams:
            doc = await mongo.get(self._repo.teams, team_id)
            if doc is not None:
                self.teams[team_id] = _team_entry(doc)
        return team_id in self.teams


class Certifications:
    """In-memory copy of the `certifications` view (agent -> competency -> expiry ms), kept by
    the training projection; the red-flag check reads it, without I/O, each time figures are
    computed."""

    def __init__(self, repo: store.Repository) -> None:
        self._repo = repo
        self.expiries: dict[str, dict[str, int]] = {}

    async def refresh(self) -> None:
        docs = await mongo.find_all(self._repo.certifications, {})
        self.expiries = {str(d["_id"]): dict(d.get("expiries", {})) for d in docs}

    def expired(self, agent_ids: list[str], by: datetime) -> dict[str, list[str]]:
        """Each agent's certifications that expired at or before `by`."""
        limit = epoch_ms(by)
        out: dict[str, list[str]] = {}
        for agent_id in agent_ids:
            gone = sorted(
                k for k, ms in self.expiries.get(agent_id, {}).items() if int(ms) <= limit
            )
            if gone:
                out[agent_id] = gone
        return out


@functools.lru_cache(maxsize=65_536)
def _day_slots(agent_id: str, day: date, zone: str) -> list[store.Slot]:
    """The input slots a day reads (cached: asked for every agent-day of every batch; the
    list is shared, so callers only read it)."""
    return sorted(set(store.buckets_for_day(agent_id, day, zone)))


@dataclass(frozen=True)
class _DayParts:
    """An agent-day's two sum parts and the parsed input slices each was computed from."""

    zone: str
    time_slices: list[store.Parsed]
    time_sums: metrics.Sums
    tail: metrics.Tail
    work_slices: list[store.Parsed]
    work_sums: metrics.Sums


def _same(old_zone: str, zone: str, old: list[store.Parsed], new: list[store.Parsed]) -> bool:
    """Same zone and the very same parsed slices (a changed slice is parsed anew, and the
    old ones are held in `_DayParts`, so an identity is never reused while compared)."""
    return (
        old_zone == zone
        and len(old) == len(new)
        and all(a is b for a, b in zip(old, new, strict=True))
    )


def _set_tail(doc: dict[str, Any], agent_id: str, packed: str | None) -> bool:
    """Sets or removes an agent's tail in a team-day document; whether that changed it."""
    tails: dict[str, str] = doc.get("tails", {})
    if tails.get(agent_id) == packed:
        return False
    if packed is None:
        del tails[agent_id]
    else:
        doc["tails"] = tails
        tails[agent_id] = packed
    return True


class DayBook:
    """Stored inputs per agent and the agent-day sums derived from them.

    The only writer of its collections (one per service deployment, like availability's
    board): it keeps what it read and wrote in memory and writes changed documents once per
    batch. Callers hold `lock` from the first change to `flush`.
    """

    def __init__(self, repo: store.Repository, directory: Directory) -> None:
        self._repo = repo
        self._directory = directory
        self._colls = {
            STATUS: repo.inputs.database[STATUS],
            CASES: repo.inputs.database[CASES],
            SCHEDULE: repo.inputs.database[SCHEDULE],
            TRAINING: repo.inputs.database[TRAINING],
        }
        self._cache: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in self._colls}
        self._dirty: dict[str, set[str]] = {k: set() for k in self._colls}
        # Parsed agent slices by (kind, document id, agent id): dropped when the slice is
        # handed out for change (`_doc`) or its documents are forgotten.
        self._parsed: dict[tuple[str, str, str], store.Parsed] = {}
        # A changed slice's last parse, until it is parsed again (`store.parse_slice` reuses
        # the entries that did not change).
        self._stale: dict[tuple[str, str, str], store.Parsed] = {}
        self._figures: dict[str, dict[str, Any]] = {}
        # Each team-month's rows as integers (month document id -> agent -> sums in
        # SUM_FIELDS order), kept beside `_figures` and forgotten with it.
        self._months: dict[str, dict[str, list[int]]] = {}
        self._day_parts: dict[AgentDay, _DayParts] = {}
        # Each agent and local date's shifts, with the parsed slices they were merged from.
        self._shifts_around: dict[
            AgentDay, tuple[str, list[store.Parsed], tuple[metrics.Shift, ...]]
        ] = {}
        self._dirty_figures: set[str] = set()
        # Agent-days whose inputs changed since their figures were computed, and the stored
        # marks that hold them until then (see `settle`).
        self._pending: set[AgentDay] = set()
        self._pending_marks: list[str] = []
        self._pending_since = 0.0
        self.lock = asyncio.Lock()
        self.watch: RedFlagWatch | None = None

    def zone_of(self, agent_id: str) -> str:
        return self._directory.zone_of(agent_id)

    # --- documents -----------------------------------------------------------------------
    async def _docs(
        self, kind: str, ids: list[str], *, keep: bool = True
    ) -> dict[str, dict[str, Any]]:
        """Documents by id; `keep=False` (queries) reads without touching the cache."""
        cache = self._cache[kind]
        missing = [i for i in ids if i not in cache]
        found = await self._repo.get_many(self._colls[kind], missing) if missing else {}
        found = {i: store.unpack_doc(d) for i, d in found.items()}
        out = {}
        for doc_id in ids:
            if doc_id in cache:
                out[doc_id] = cache[doc_id]
            elif keep:
                # setdefault: never replace what a projector put there while we waited
                out[doc_id] = cache.setdefault(doc_id, found.get(doc_id) or {"_id": doc_id})
            else:
                out[doc_id] = found.get(doc_id) or {"_id": doc_id}
        return out

    async def _doc(self, kind: str, slot: store.Slot) -> dict[str, Any]:
        """The agent's part of an input document, to change (the document is marked dirty)."""
        doc_id, agent_id = slot
        self._dirty[kind].add(doc_id)
        doc = (await self._docs(kind, [doc_id]))[doc_id]
        key = (kind, doc_id, agent_id)
        if key in self._parsed:  # parsed again when next read, from what it was
            self._stale[key] = self._parsed.pop(key)
        agents: dict[str, dict[str, Any]] = doc.setdefault("agents", {})
        return agents.setdefault(agent_id, {})

    async def _slices(
        self, kind: str, slots: list[store.Slot], *, keep: bool = True
    ) -> list[dict[str, Any]]:
        docs = await self._docs(kind, sorted({doc_id for doc_id, _ in slots}), keep=keep)
        return [docs[doc_id].get("agents", {}).get(agent_id, {}) for doc_id, agent_id in slots]

    async def inputs_for(
        self,
        agent_id: str,
        days: list[date],
        *,
        keep: bool = True,
        kinds: tuple[str, ...] = (),
    ) -> metrics.AgentInputs:
        """The agent's stored inputs around `days` (of `kinds`; all by default)."""
        if not keep:
            kinds = kinds or tuple(self._colls)
            return (await self.inputs_of_agents({agent_id: days}, kinds=kinds))[agent_id]
        zone = self._directory.zone_of(agent_id)
        slots = sorted({b for d in days for b in store.buckets_for_day(agent_id, d, zone)})
        parts: list[store.Parsed] = []
        for kind in kinds or tuple(self._colls):
            parts += await self._parsed_slices(kind, slots, keep=keep)
        return store.inputs_from_parsed(zone, parts)

    async def inputs_of_agents(
        self, days: dict[str, list[date]], *, kinds: tuple[str, ...]
    ) -> dict[str, metrics.AgentInputs]:
        """Several agents' stored inputs around their days (a query: nothing cached), each
        input document read once for all of them."""
        slots = {
            agent_id: sorted(
                {
                    slot
                    for day in agent_days
                    for slot in store.buckets_for_day(agent_id, day, self.zone_of(agent_id))
                }
            )
            for agent_id, agent_days in days.items()
        }
        parts: dict[str, list[store.Parsed]] = {agent_id: [] for agent_id in days}
        for kind in kinds:
            ids = sorted({doc_id for agent_slots in slots.values() for doc_id, _ in agent_slots})
            docs = await self._docs(kind, ids, keep=False)
            for agent_id, agent_slots in slots.items():
                for doc_id, _ in agent_slots:
                    part = docs.get(doc_id, {}).get("agents", {}).get(agent_id, {})
                    parts[agent_id].append(store.parse_slice(agent_id, part, None))
        return {
            agent_id: store.inputs_from_parsed(self.zone_of(agent_id), agent_parts)
            for agent_id, agent_parts in parts.items()
        }

    async def _parsed_slices(
        self, kind: str, slots: list[store.Slot], *, keep: bool
    ) -> list[store.Parsed]:
        """The slots' agent slices parsed (kept parsed between batches when `keep`)."""
        if keep:  # the usual case in a recompute: every slice already parsed
            known = [self._parsed.get((kind, doc_id, agent_id)) for doc_id, agent_id in slots]
            if None not in known:
                return known  # type: ignore[return-value]
        docs = await self._docs(kind, sorted({doc_id for doc_id, _ in slots}), keep=keep)
        out = []
        for doc_id, agent_id in slots:
            key = (kind, doc_id, agent_id)
            parsed = self._parsed.get(key) if keep else None
            if parsed is None:
                part = docs[doc_id].get("agents", {}).get(agent_id, {})
                before = self._stale.pop(key, None) if keep else None
                parsed = store.parse_slice(agent_id, part, before)
                if keep:
                    self._parsed[key] = parsed
            out.append(parsed)
        return out

    # --- inputs ----------------------------------------------------------------------------
    async def add_status_changes(
        self, agent_id: str, changes: list[metrics.StatusChange]
    ) -> set[AgentDay]:
        fresh = []
        for change in changes:
            doc = await self._doc(STATUS, store.bucket_id(agent_id, change.at))
            entries = doc.setdefault("changes", {})
            if str(change.version) not in entries:
                entries[str(change.version)] = store.change_entry(change)
                fresh.append(change)
        if not fresh:
            return set()
        zone = metrics.ZoneInfo(self._directory.zone_of(agent_id))
        earliest = min(c.at for c in fresh)
        latest = max(fresh, key=lambda c: (c.at, c.version))
        first = earliest.astimezone(zone).date()
        last = latest.at.astimezone(zone).date() + timedelta(days=1)
        # A change's reach needs the later changes; its roster dates, the shifts.
        inputs = await self.inputs_for(
            agent_id, list(metrics.dates(first, last)), kinds=(STATUS, SCHEDULE)
        )
        # Each change decides the time from it to the next change (or the carry's end), so
        # together they decide at most the time from the earliest to the latest one's reach
        # end: its roster dates are recomputed (a superset when the changes are far apart,
        # which costs only time: a recompute is the rule over everything stored).
        _, end = metrics.status_reach(inputs, latest)
        return {(agent_id, d) for d in metrics.roster_dates_between(inputs, earliest, end)}

    async def add_case(self, event: domain.CaseRecorded) -> set[AgentDay]:
        record = event.case
        touched: set[AgentDay] = set()
        previous = event.previous_resolved if event.previous_agent else None
        if previous is not None:
            old_slot = store.bucket_id(event.previous_agent, previous)
            if old_slot != store.bucket_id(record.agent_id, record.resolved):
                doc = await self._doc(CASES, old_slot)
                entry = doc.setdefault("cases", {}).get(record.case_id)
                if entry is None or entry["v"] < record.version:
                    # A tombstone, so a late copy of the old version cannot come back.
                    doc["cases"][record.case_id] = {"v": record.version, "moved": True}
                    touched |= await self._case_days(event.previous_agent, previous)
        doc = await self._doc(CASES, store.bucket_id(record.agent_id, record.resolved))
        entry = doc.setdefault("cases", {}).get(record.case_id)
        if entry is None or entry["v"] < record.version:
            doc["cases"][record.case_id] = store.case_entry(record)
            touched |= await self._case_days(record.agent_id, record.resolved)
            if previous is not None:
                # One input document holds a UTC date, which may span two roster dates
                # (22:30 and 00:30 in Pune): the old one loses the case, so compute it again.
                touched |= await self._case_days(event.previous_agent, previous)
        return touched

    async def _case_days(self, agent_id: str, resolved: datetime) -> set[AgentDay]:
        """The roster date of the instant a case was resolved."""
        shifts = await self._shifts_around_instant(agent_id, resolved)
        return {(agent_id, metrics.roster_date_at(shifts, resolved, self.zone_of(agent_id)))}

    async def _shifts_around_instant(
        self, agent_id: str, instant: datetime
    ) -> tuple[metrics.Shift, ...]:
        """The shifts stored around an instant's local date (one ask per case or training:
        the shifts around each local date are merged once and kept while their slices are
        unchanged)."""
        zone = self._directory.zone_of(agent_id)
        local = instant.astimezone(ZoneInfo(zone)).date()
        parts = await self._parsed_slices(SCHEDULE, _day_slots(agent_id, local, zone), keep=True)
        known = self._shifts_around.get((agent_id, local))
        if known is None or not _same(known[0], zone, known[1], parts):
            if len(self._shifts_around) >= MAX_CACHED_DOCS:
                self._shifts_around.clear()
            known = (zone, parts, store.inputs_from_parsed(zone, parts).shifts)
            self._shifts_around[(agent_id, local)] = known
        return known[2]

    async def record_schedule_for_day(
        self, agent_id: str, roster_date: date, shifts: list[metrics.Shift]
    ) -> set[AgentDay]:
        """Seam for scheduling's roster events: the agent's shifts of one roster date.

        Replaces the shifts stored for that roster date; returns the agent-days to recompute.
        """
        zone = self._directory.zone_of(agent_id)
        before = await self.inputs_for(agent_id, [roster_date])
        old = [s for s in before.shifts if s.roster_date == roster_date]
        touched: set[AgentDay] = {(agent_id, roster_date)}
        for shift in old:
            doc = await self._doc(SCHEDULE, store.bucket_id(agent_id, shift.start))
            doc.get("shifts", {}).pop(shift.shift_id, None)
            touched |= {(agent_id, d) for d in metrics.days_touched(shift.start, shift.end, zone)}
        for shift in shifts:
            doc = await self._doc(SCHEDULE, store.bucket_id(agent_id, shift.start))
            doc.setdefault("shifts", {})[shift.shift_id] = store.shift_entry(shift)
            touched |= {(agent_id, d) for d in metrics.days_touched(shift.start, shift.end, zone)}
        return touched

    async def record_leave(self, agent_id: str, leave: metrics.Leave) -> set[AgentDay]:
        """Seam for approved leave (a cancellation: `leave` with end == start)."""
        day = as_utc(leave.start).date()
        last = min(as_utc(leave.end).date(), day + timedelta(days=MAX_LEAVE_DAYS))
        while day <= last:
            doc = await self._doc(SCHEDULE, store.date_slot(agent_id, day))
            doc.setdefault("leave", {})[leave.leave_id] = store.leave_entry(leave)
            day += timedelta(days=1)
        zone = self._directory.zone_of(agent_id)
        return {(agent_id, d) for d in metrics.days_touched(leave.start, leave.end, zone)}

    async def record_training_completion(
        self, agent_id: str, training: metrics.TrainingCompletion
    ) -> set[AgentDay]:
        """Seam for training's completion events: filed by its instant, like a case, so the
        roster date is decided from the shifts whenever figures are computed (a shift
        change recomputes the days around it, this completion's included)."""
        assert training.at is not None  # a completion from an event always has its instant
        doc = await self._doc(TRAINING, store.bucket_id(agent_id, training.at))
        doc.setdefault("trainings", {})[training.completion_id] = store.training_entry(training)
        shifts = await self._shifts_around_instant(agent_id, training.at)
        day = metrics.training_roster_date(shifts, training, self.zone_of(agent_id))
        # Its local date in the zone it was recorded in too: where a copy stored before the
        # instant was kept is filed (a redelivered event), which this one now replaces.
        local = training.at.astimezone(ZoneInfo(training.zone)).date()
        return {(agent_id, day), (agent_id, local)}

    async def apply_schedule(self, schedule: roster.Schedule, kept_from: date) -> set[AgentDay]:
        """Scheduling's full new schedule of an agent -> its shifts per roster date and leave.

        Only published shifts count (a cancelled or draft one is not scheduled time). An index
        (agent's roster dates with shifts, approved leave ids, version) finds the dates a moved or
        cancelled shift left; dates before `kept_from` are pruned from the event, not removed.
        """
        agent_id = schedule.agent_id
        index = await self._doc(SCHEDULE, store.date_slot(agent_id, INDEX_DATE))
        if int(index.get("v", 0)) >= schedule.version:
            return set()  # a replayed or older copy
        by_date: dict[date, list[metrics.Shift]] = {}
        for shift in schedule.shifts:
            if shift.status is roster.ShiftStatus.PUBLISHED:
                by_date.setdefault(shift.roster_date, []).append(scheduled_shift(shift))
        old_dates = {date.fromisoformat(d) for d in index.get("dates", [])}
        left = {d for d in old_dates if d >= kept_from} - set(by_date)
        touched: set[AgentDay] = set()
        for day in sorted(set(by_date) | left):
            touched |= await self.record_schedule_for_day(agent_id, day, by_date.get(day, []))
        approved = {
            leave.leave_id: leave
            for leave in schedule.leave
            if leave.status is roster.LeaveStatus.APPROVED
        }
        worked = [s for s in schedule.shifts if s.status is roster.ShiftStatus.PUBLISHED]
        for leave in schedule.leave:
            if leave.leave_id in approved:
                interval = leave_interval(leave, worked)
            elif leave.leave_id in index.get("leave", []):
                interval = metrics.Leave(leave.leave_id, leave.start, leave.start)  # withdrawn
            else:
                continue
            touched |= await self.record_leave(agent_id, interval)
        index.update(
            v=schedule.version,
            dates=sorted(d.isoformat() for d in (old_dates - left) | set(by_date)),
            leave=sorted(approved),
        )
        return touched

    # --- figures ---------------------------------------------------------------------------
    async def recompute(self, touched: set[AgentDay]) -> None:
        by_team: dict[str, list[tuple[str, date, metrics.Sums]]] = {}
        tails: dict[AgentDay, metrics.Tail] = {}
        for agent_id, day in sorted(touched):
            sums, tails[agent_id, day] = await self._day_sums(agent_id, day)
            team = self._directory.team_of(agent_id)
            by_team.setdefault(team, []).append((agent_id, day, sums))
        ids = sorted({store.team_day_id(t, d) for t, rows in by_team.items() for _, d, _ in rows})
        await self._figure_docs(ids)
        # Month rows are derived from the day documents as they are before this batch, then
        # moved by exactly what each changed day row adds or takes away.
        for team, month in sorted(
            {(t, f"{d:%Y-%m}") for t, rows in by_team.items() for _, d, _ in rows}
        ):
            await self._month_rows(team, month)
        for team, rows in by_team.items():
            for agent_id, day, sums in rows:
                doc = self._figures[store.team_day_id(team, day)]
                doc.update(team_id=team, date=day.isoformat())
                agents = doc.setdefault("agents", {})
                packed = store.pack_sums(sums) if any(sums.values()) else None
                tail = tails[agent_id, day]
                if _set_tail(doc, agent_id, store.pack_tail(tail) if packed and tail else None):
                    self._dirty_figures.add(doc["_id"])
                old = agents.get(agent_id)
                if old == packed:
                    continue
                if packed is None:
                    agents.pop(agent_id, None)
                else:
                    agents[agent_id] = packed
                self._dirty_figures.add(doc["_id"])
                self._move_month_row(team, f"{day:%Y-%m}", agent_id, old, packed)

    async def _month_rows(self, team_id: str, month: str) -> dict[str, list[int]]:
        """The team-month's rows as integers, derived from its day documents when first asked
        for in this process (and then written whole, so a month document left behind by a
        crash between the two writes of a batch is made right again)."""
        month_id = store.team_month_id(team_id, month)
        rows = self._months.get(month_id)
        if rows is None:
            day_ids = [store.team_day_id(team_id, d) for d in store.month_days(month)]
            rows = store.sum_rows(
                d.get("agents", {}) for d in (await self._figure_docs(day_ids)).values()
            )
            self._months[month_id] = rows
            doc = (await self._figure_docs([month_id]))[month_id]
            doc.update(team_id=team_id, month=month, agents=store.pack_rows(rows))
            self._dirty_figures.add(month_id)
        return rows

    def _move_month_row(
        self, team_id: str, month: str, agent_id: str, old: str | None, new: str | None
    ) -> None:
        """One agent's month row after one of its day rows went from `old` to `new` (exact:
        integer sums)."""
        month_id = store.team_month_id(team_id, month)
        row = store.move_row(self._months[month_id].get(agent_id), old, new)
        agents = self._figures[month_id].setdefault("agents", {})
        if row is None:
            self._months[month_id].pop(agent_id, None)
            agents.pop(agent_id, None)
        else:
            self._months[month_id][agent_id] = row
            agents[agent_id] = store.pack_row(row)
        self._dirty_figures.add(month_id)

    async def _day_sums(self, agent_id: str, day: date) -> tuple[metrics.Sums, metrics.Tail]:
        """`metrics.day_sums` of the agent-day and its tail, reusing a part whose inputs are
        unchanged.

        A status batch leaves the cases as they were and a case batch the statuses, so the
        part each did not touch is taken from the last recompute (same parsed slices, held
        here, so `is` proves them unchanged).
        """
        zone = self._directory.zone_of(agent_id)
        slots = _day_slots(agent_id, day, zone)
        parts = {k: await self._parsed_slices(k, slots, keep=True) for k in self._colls}
        time_slices = [*parts[STATUS], *parts[SCHEDULE]]
        work_slices = [*parts[CASES], *parts[SCHEDULE], *parts[TRAINING]]
        known = self._day_parts.get((agent_id, day))
        # Each part's inputs hold only the kinds it reads (a kind fills its own fields).
        time_part, tail = (
            (known.time_sums, known.tail)
            if known and _same(known.zone, zone, known.time_slices, time_slices)
            else metrics.time_part(store.inputs_from_parsed(zone, time_slices), day)
        )
        work_part = (
            known.work_sums
            if known and _same(known.zone, zone, known.work_slices, work_slices)
            else metrics.work_sums(store.inputs_from_parsed(zone, work_slices), day)
        )
        if len(self._day_parts) >= MAX_CACHED_DOCS:
            self._day_parts.clear()
        self._day_parts[(agent_id, day)] = _DayParts(
            zone, time_slices, time_part, tail, work_slices, work_part
        )
        return metrics.combined_sums(time_part, work_part), tail

    async def roll_up(self, team_id: str, month: str) -> None:
        """Derives the team's month document anew from its day documents (after the day
        documents were written around the book, as the benchmark's synthetic days are)."""
        self._months.pop(store.team_month_id(team_id, month), None)
        await self._month_rows(team_id, month)

    async def _figure_docs(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Figure documents by id, from the book's cache or read once into it."""
        missing = [i for i in ids if i not in self._figures]
        found = await self._repo.get_many(self._repo.team_days, missing) if missing else {}
        for doc_id in missing:
            stored = found.get(doc_id)
            self._figures.setdefault(
                doc_id, store.unpack_doc(stored) if stored else {"_id": doc_id, "agents": {}}
            )
        return {i: self._figures[i] for i in ids}

    async def settle(self, touched: set[AgentDay]) -> None:
        """After a batch's inputs: marks the agent-days it touched as pending, then recomputes
        every pending day if the oldest pending mark is `DEFER_S` old (or too many wait);
        otherwise writes only the inputs (`caught_up` computes the rest).

        A consumer catching up on a backlog thus recomputes each agent-day once per few
        seconds instead of once per batch (the events of a floor interleave in time, so each
        batch touches most of its agents). The marks are stored before the inputs, and only
        removed once the figures of their days are written, so a crash at any point leaves
        the days marked and `recover` recomputes them (a redelivered batch finds its inputs
        already stored and touches nothing).
        """
        if touched:
            self._pending_marks.append(await self._repo.mark_pending(sorted(touched)))
            if not self._pending:
                self._pending_since = time.monotonic()
            self._pending |= touched
        due = self._pending and time.monotonic() - self._pending_since >= DEFER_S
        if due or len(self._pending) > MAX_PENDING_DAYS:
            await self._settle_pending()
        else:
            await self._write_inputs()

    async def _settle_pending(self) -> None:
        """Recomputes the pending agent-days, writes them, then checks them for new red flags.

        The changed inputs are written while the figures are recomputed: FerretDB works on the
        other core meanwhile.
        """
        touched, marks = self._pending, self._pending_marks
        self._pending, self._pending_marks = set(), []
        try:
            inputs_written = asyncio.ensure_future(self._write_inputs())
            await asyncio.sleep(0)  # lets the writes start before the CPU-bound recompute
            try:
                await self.recompute(touched)
            finally:
                await inputs_written
            await self.flush()
            await self._repo.clear_pending(marks)
        except BaseException:
            self._pending |= touched  # still marked: tried again with the next batch
            self._pending_marks += marks
            raise
        if self.watch is not None:
            await self.watch.check(touched)

    @contextlib.asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """Holds the book for one batch. On failure the book forgets what it holds, which may
        not be what was stored, and reads it again (a redelivered event whose input write
        failed is then fresh again); the pending days stay pending."""
        async with self.lock:
            try:
                yield
            except BaseException:
                self.forget()
                raise

    async def move_agent(self, entry: AgentEntry) -> None:
        """The agent now belongs to `entry.team_id`: its days leave its old team's documents
        and are computed under the new one.

        Figures follow an agent's current team, as a rebuild (which knows only the current
        team) computes them. The days are marked pending before anything moves, so a process
        that stops midway computes them again at start under the team it knows then, and the
        redelivered directory event moves them again.
        """
        async with self.batch():
            old_team = self._directory.team_of(entry.agent_id)
            docs = await self._figure_docs(await self._repo.team_day_ids(old_team))
            days = [
                date.fromisoformat(doc_id.rsplit("|", 1)[1])
                for doc_id, doc in docs.items()
                if entry.agent_id in doc.get("agents", {})
            ]
            if days:
                marked = sorted((entry.agent_id, d) for d in days)
                self._pending_marks.append(await self._repo.mark_pending(marked))
                for day in days:
                    await self._month_rows(old_team, f"{day:%Y-%m}")
            self._directory.agents[entry.agent_id] = entry
            for day in days:
                doc = self._figures[store.team_day_id(old_team, day)]
                old = doc["agents"].pop(entry.agent_id)
                _set_tail(doc, entry.agent_id, None)
                self._dirty_figures.add(doc["_id"])
                self._move_month_row(old_team, f"{day:%Y-%m}", entry.agent_id, old, None)
            self._pending |= {(entry.agent_id, d) for d in days}
            await self._settle_pending()

    async def recover(self) -> None:
        """At start: recomputes the agent-days a stopped process left marked pending."""
        marks, days = await self._repo.pending()
        self._pending |= days
        self._pending_marks += marks
        await self.caught_up()

    async def caught_up(self) -> None:
        """The consumer has no backlog: every pending day is recomputed before its ack."""
        async with self.batch():
            if self._pending:
                await self._settle_pending()

    async def sums_of(
        self, team_id: str, agent_id: str, days: list[date], now: datetime
    ) -> metrics.Sums:
        """An agent's summed figures over `days` as of `now`, from the figures this book
        keeps."""
        docs = await self._figure_docs([store.team_day_id(team_id, d) for d in days])
        now_ms = epoch_ms(now)
        total = store.row_of(None)
        for doc in docs.values():
            packed = doc.get("agents", {}).get(agent_id)
            if packed:
                tail = doc.get("tails", {}).get(agent_id)
                row = store.so_far_row(store.row_of(packed), tail, now_ms)
                total = [a + b for a, b in zip(total, row, strict=True)]
        return dict(zip(metrics.SUM_FIELDS, total, strict=True))

    async def days_going_since(self, since_ms: int, now: datetime) -> set[AgentDay]:
        """The agent-days up to tomorrow whose filed figures assume time after `since_ms`
        (their tails end after it): those whose figures so far changed since then."""
        teams = sorted({entry.team_id for entry in self._directory.agents.values()})
        days = list(metrics.dates(metrics.first_open_day(now), now.date() + timedelta(days=1)))
        ids = [store.team_day_id(team, day) for team in teams for day in days]
        going: set[AgentDay] = set()
        for doc_id, doc in (await self._figure_docs(ids)).items():
            day = date.fromisoformat(doc_id.rsplit("|", 1)[1])
            going.update(
                (agent_id, day)
                for agent_id, tail in doc.get("tails", {}).items()
                if not store.tail_over(tail, since_ms)
            )
        return going

    def _write_inputs(self) -> Awaitable[Any]:
        """Writes the changed input documents (packed now, so later changes wait for the next
        write) and marks them clean."""
        writes = [
            self._repo.put_many(
                self._colls[k], [store.pack_doc(self._cache[k][i]) for i in sorted(ids)]
            )
            for k, ids in self._dirty.items()
            if ids
        ]
        for ids in self._dirty.values():
            ids.clear()
        return asyncio.gather(*writes)

    async def flush(self) -> None:
        writes = [self._write_inputs()]
        writes.append(
            self._repo.put_many(
                self._repo.team_days,
                [store.pack_doc(self._figures[i]) for i in sorted(self._dirty_figures)],
            )
        )
        await asyncio.gather(*writes)
        self._dirty_figures.clear()
        if sum(len(c) for c in self._cache.values()) + len(self._figures) > MAX_CACHED_DOCS:
            self.forget()

    def forget(self, kind: str | None = None) -> None:
        """Drops cached documents (all, or one input kind) so they are read again."""
        for k in [kind] if kind else list(self._cache):
            self._cache[k].clear()
            self._dirty[k].clear()
        self._parsed = {key: p for key, p in self._parsed.items() if kind and key[0] != kind}
        self._stale = {key: p for key, p in self._stale.items() if kind and key[0] != kind}
        self._day_parts.clear()
        self._shifts_around.clear()
        if kind is None:
            self._figures.clear()
            self._months.clear()
            self._dirty_figures.clear()

    async def reset(self, kind: str) -> None:
        """Before a rebuild of one input kind: its documents go; figures follow the replay."""
        self.forget(kind)
        self._figures.clear()
        self._months.clear()
        self._dirty_figures.clear()
        await mongo.drop_collection(self._colls[kind])


class RedFlagWatch:
    """Each time figures are computed: a RedFlagRaised event for every threshold an agent's
    month-to-date figures break for the first time that month (once per agent, month and
    metric: the event store's unique insert is the check, so a rebuild or a second replica
    raises nothing twice).

    Figures so far also change with time alone: an absence grows while nobody logs in, and a
    shift without a log-in becomes a no-show when it ends. So every `SWEEP_S` the watch checks
    again the agents with a day still going (`sweep`), as no input may come to do it.
    """

    def __init__(
        self,
        repo: store.Repository,
        directory: Directory,
        book: DayBook,
        commands: CommandRunner,
        certifications: Certifications | None = None,
    ) -> None:
        self._repo = repo
        self._directory = directory
        self._book = book
        self._commands = commands
        self._certifications = certifications or Certifications(repo)
        self._behaviour = store.red_flag_behaviour()
        self._raised: set[str] = set()
        self._swept_ms = 0
        # Input kinds whose consumer is behind (a backlog, a rebuild): figures of partly
        # replayed inputs are no ground for a flag (a schedule replayed before the statuses of
        # its day reads as absence), so checks wait in `_unchecked` until none is behind.
        self._held: set[str] = set()
        self._unchecked: set[AgentDay] = set()

    @property
    def held(self) -> frozenset[str]:
        """The input kinds whose consumer is behind (checks wait while any is)."""
        return frozenset(self._held)

    def hold(self, kind: str) -> None:
        self._held.add(kind)

    async def release(self, kind: str | None = None) -> None:
        """`kind`'s consumer caught up (None: a rebuild of every view is done); once no
        consumer is behind, the checks that waited run."""
        if kind is None:
            self._held.clear()
        else:
            self._held.discard(kind)
        if not self._held and self._unchecked:
            touched, self._unchecked = self._unchecked, set()
            await self.check(touched)

    async def sweep(self, now: datetime) -> int:
        """Checks the agents whose filed figures assumed time since the last sweep (their
        tails end after it), as of `now`; returns how many agent-days it looked at."""
        if self._held:
            return 0  # the checks that wait cover these days too, once released
        async with self._book.batch():
            touched = await self._book.days_going_since(self._swept_ms, now)
            await self.check(touched, now)
        self._swept_ms = epoch_ms(now)
        return len(touched)

    async def sweep_forever(self, interval_s: float = SWEEP_S) -> None:
        await repeat_forever(lambda: self.sweep(utc_now()), interval_s, "red_flag_sweep_failed")

    async def check(self, touched: set[AgentDay], now: datetime | None = None) -> None:
        if self._held:
            self._unchecked |= touched
            return
        months: dict[tuple[str, date], set[str]] = {}
        for agent_id, day in touched:
            team_id = self._directory.team_of(agent_id)
            if team_id:
                months.setdefault((team_id, day.replace(day=1)), set()).add(agent_id)
        for (team_id, first), agents in sorted(months.items()):
            thresholds = await thresholds_of(self._repo, team_id)
            days = [
                d
                for d in metrics.dates(first, first + timedelta(days=30))
                if d.month == first.month
            ]
            flags: list[domain.RedFlag] = []
            for agent_id in sorted(agents) if thresholds.limits() else []:
                sums = await self._book.sums_of(team_id, agent_id, days, now or utc_now())
                figures = metrics.derive(sums)
                flags += domain.red_flags(agent_id, figures, thresholds)
            flags += certification_flags(
                self._certifications.expired(sorted(agents), period_end(days[-1]))
            )
            for flag in flags:
                await self._raise(flag, team_id, f"{first:%Y-%m}")

    async def _raise(self, flag: domain.RedFlag, team_id: str, month: str) -> None:
        flag_id = store.red_flag_id(flag, month)
        if flag_id in self._raised:
            return
        await self._commands.execute(
            self._behaviour,
            Command(store.RED_FLAG, flag_id, f"raise-{flag_id}", fingerprint(flag_id)),
            lambda raised, _version: (
                None if raised else store.encode_red_flag(flag, team_id, month)
            ),
        )
        self._raised.add(flag_id)


# --- projections ---------------------------------------------------------------------------
class _DayBookProjection:
    """Feeds one input kind into the day book. While its consumer is behind (from a batch
    that leaves a backlog, or a reset, until a batch empties it or the rebuild is done), the
    red-flag watch holds its checks."""

    kind = ""

    def __init__(self, book: DayBook) -> None:
        self._book = book

    async def apply(self, envelopes: list[EventEnvelope]) -> None:
        if self._book.watch is not None:
            self._book.watch.hold(self.kind)
        await self._apply(envelopes)

    async def _apply(self, envelopes: list[EventEnvelope]) -> None:
        raise NotImplementedError

    async def reset(self) -> None:
        if self._book.watch is not None:
            self._book.watch.hold(self.kind)
        async with self._book.batch():
            await self._book.reset(self.kind)

    async def caught_up(self) -> None:
        await self._book.caught_up()
        if self._book.watch is not None:
            async with self._book.batch():
                await self._book.watch.release(self.kind)

    async def rebuilt(self) -> None:
        """Every view of the service was rebuilt and has caught up."""
        if self._book.watch is not None:
            async with self._book.batch():
                await self._book.watch.release()


class StatusProjection(_DayBookProjection):
    """Availability's StatusChanged -> status inputs -> the agent-days they touch."""

    name = "performance-status"
    source = "availability"
    subjects = "agent_availability.>"
    kind = STATUS

    async def _apply(self, envelopes: list[EventEnvelope]) -> None:
        per_agent: dict[str, list[metrics.StatusChange]] = {}
        for envelope in envelopes:
            if short_type(envelope.event_type) != "StatusChanged":
                continue
            event = decode_status_changed(envelope)
            per_agent.setdefault(envelope.aggregate_id, []).append(
                metrics.StatusChange(
                    envelope.aggregate_version, event.since, event.status.value, event.reason_code
                )
            )
        async with self._book.batch():
            touched: set[AgentDay] = set()
            for agent_id, changes in per_agent.items():
                touched |= await self._book.add_status_changes(agent_id, changes)
            await self._book.settle(touched)


class ScheduleProjection(_DayBookProjection):
    """Scheduling's ScheduleChanged -> shifts per roster date and approved leave -> the
    agent-days they touch (a moved or cancelled shift recomputes the day it left)."""

    name = "performance-schedule"
    source = "scheduling"
    subjects = f"{SCHEDULE_AGGREGATE}.>"
    kind = SCHEDULE

    async def _apply(self, envelopes: list[EventEnvelope]) -> None:
        async with self._book.batch():
            touched: set[AgentDay] = set()
            for envelope in envelopes:
                if short_type(envelope.event_type) != "ScheduleChanged":
                    continue
                event = unpack(envelope, scheduling_events.ScheduleChanged)
                schedule = schedule_from_proto(event.schedule, envelope.aggregate_version)
                touched |= await self._book.apply_schedule(
                    schedule, kept_from(schedule, set(event.shift_ids))
                )
            await self._book.settle(touched)


def kept_from(schedule: roster.Schedule, changed: set[str]) -> date:
    """The first roster date the event's schedule holds every shift of (scheduling prunes
    shifts more than KEEP_DAYS before the earliest one a change touches)."""
    touched = [s.roster_date for s in schedule.shifts if s.shift_id in changed]
    every = [s.roster_date for s in schedule.shifts]
    if touched:
        return min(touched) - timedelta(days=roster.KEEP_DAYS)
    return min(every) if every else date.max


def leave_interval(leave: roster.Leave, worked: list[roster.Shift]) -> metrics.Leave:
    """Approved leave as an interval. Whole-day leave covers the shifts of its roster dates
    (as scheduling decides), so it is cut back from a worked shift of another roster date it
    overlaps (a night shift that ends on the morning of the day off)."""
    start, end = leave.start, leave.end
    for shift in worked if leave.full_days else []:
        if leave.start_date <= shift.roster_date <= leave.end_date:
            continue
        if shift.start < end and start < shift.end:
            if shift.roster_date < leave.start_date:
                start = max(start, shift.end)
            else:
                end = min(end, shift.start)
    return metrics.Leave(leave.leave_id, start, max(start, end))


def scheduled_shift(shift: roster.Shift) -> metrics.Shift:
    """A scheduling shift as the metrics see it: activities at their elapsed offsets; the rest
    of the shift is productive paid WORK."""
    return metrics.Shift(
        shift.shift_id,
        shift.roster_date,
        shift.start,
        shift.end,
        tuple(
            metrics.Activity(
                a.kind.value,
                shift.start + timedelta(minutes=a.offset_minutes),
                shift.start + timedelta(minutes=a.offset_minutes + a.length_minutes),
                a.paid,
                False,
            )
            for a in shift.activities
        ),
    )


class CaseProjection(_DayBookProjection):
    """CaseRecorded -> case inputs -> the agent-days of the case (and of its old place)."""

    name = "performance-cases"
    source = "performance"
    subjects = f"{store.CASE}.>"
    kind = CASES

    async def _apply(self, envelopes: list[EventEnvelope]) -> None:
        async with self._book.batch():
            touched: set[AgentDay] = set()
            for envelope in envelopes:
                if short_type(envelope.event_type) == "CaseRecorded":
                    touched |= await self._book.add_case(store.decode_case(envelope))
            await self._book.settle(touched)


class TrainingProjection(_DayBookProjection):
    """Training's CompletionRecorded -> training inputs (hours, technical, count) and the
    agent's certifications (latest expiry per competency, for the certification red flag)."""

    name = "performance-training"
    source = "training"
    subjects = "learner.>"
    kind = TRAINING

    def __init__(
        self, book: DayBook, repo: store.Repository, certifications: Certifications
    ) -> None:
        super().__init__(book)
        self._repo = repo
        self._certifications = certifications

    async def _apply(self, envelopes: list[EventEnvelope]) -> None:
        async with self._book.batch():
            touched: set[AgentDay] = set()
            for envelope in envelopes:
                if short_type(envelope.event_type) != "CompletionRecorded":
                    continue
                event = unpack(envelope, training_events.CompletionRecorded)
                agent_id = envelope.aggregate_id
                touched |= await self._book.record_training_completion(
                    agent_id, training_completion(event.completion, self._book.zone_of(agent_id))
                )
                await self._store_certifications(
                    agent_id, envelope.aggregate_version, event.learner
                )
            await self._book.settle(touched)

    async def _store_certifications(
        self, agent_id: str, version: int, learner: training_events.Learner
    ) -> None:
        """Each competency's latest certified completion (a renewal replaces an expiry)."""
        doc = await mongo.get(self._repo.certifications, agent_id)
        if doc is not None and int(doc.get("version", 0)) >= version:
            return
        latest: dict[str, tuple[datetime, datetime]] = {}
        for c in learner.completions:
            if not (c.passed and c.HasField("certification_expire_time")):
                continue
            key = c.competency or c.course
            done = from_timestamp(c.completion_time)
            if key not in latest or latest[key][0] <= done:
                latest[key] = (done, from_timestamp(c.certification_expire_time))
        expiries = {k: epoch_ms(expires) for k, (_, expires) in latest.items()}
        await mongo.set_fields(
            self._repo.certifications, agent_id, {"version": version, "expiries": expiries}
        )
        self._certifications.expiries[agent_id] = expiries

    async def reset(self) -> None:
        await super().reset()
        await mongo.drop_collection(self._repo.certifications)
        self._certifications.expiries.clear()


def training_completion(
    completion: training_events.TrainingCompletion, agent_zone: str
) -> metrics.TrainingCompletion:
    """A completion at its session's start (training sets it on every completion), or at its
    completion when the session is self-paced: its window (up to 31 days) says when the agent
    could train, the completion when they did. Completions recorded before training said
    which sessions were self-paced count at their window's start. When no
    shift covers that instant it counts on the agent's local date in the agent's zone when
    the day is computed (metrics.training_roster_date), like the day's cases; the zone it
    was recorded in (else the agent's now) is kept only to find a copy stored by date.

    Keyed by course and session: every completion has a session (`sessions/{id}`, required
    and unique), and training records at most one result per agent and session (final
    states, `ALREADY_LEFT`, domain.decide_complete), so an agent's completions never share
    a key, while a redelivered event replaces its own entry."""
    by_session = completion.HasField("session_start_time") and not completion.self_paced
    stamp = completion.session_start_time if by_session else completion.completion_time
    return metrics.TrainingCompletion(
        f"{completion.course}|{completion.session}",
        from_timestamp(stamp),
        completion.time_zone or agent_zone,
        max(0, completion.attended_minutes),
        completion.technical,
    )


def period_end(last_day: date) -> datetime:
    """What a period is judged at: the end of its last day (UTC), or now if that is later."""
    return min(metrics.local_midnight(last_day + timedelta(days=1), "UTC"), utc_now())


def certification_flags(expired: dict[str, list[str]]) -> list[domain.RedFlag]:
    """One `certification_expired` flag per agent: value = how many expired (limit 0)."""
    return [
        domain.RedFlag(agent_id, domain.CERTIFICATION_EXPIRED, float(len(gone)), 0.0, "max")
        for agent_id, gone in sorted(expired.items())
    ]


async def expired_certifications(
    repo: store.Repository, agent_ids: list[str], by: datetime
) -> dict[str, list[str]]:
    """Each agent's certifications (competency or course) that expired at or before `by`."""
    docs = await repo.get_many(repo.certifications, agent_ids)
    limit = epoch_ms(by)
    out: dict[str, list[str]] = {}
    for agent_id, doc in docs.items():
        gone = sorted(k for k, ms in doc.get("expiries", {}).items() if int(ms) <= limit)
        if gone:
            out[agent_id] = gone
    return out


class ThresholdsProjection:
    """RedFlagThresholdsSet -> `thresholds`; then the team's current month is checked again,
    so new limits flag what is already there (not only what arrives next)."""

    name = "performance-thresholds"
    source = "performance"
    subjects = f"{store.THRESHOLDS}.>"

    def __init__(
        self, repo: store.Repository, directory: Directory, watch: RedFlagWatch | None = None
    ) -> None:
        self._repo = repo
        self._directory = directory
        self._watch = watch

    async def apply(self, envelopes: list[EventEnvelope]) -> None:
        for envelope in envelopes:
            if short_type(envelope.event_type) != "RedFlagThresholdsSet":
                continue
            thresholds = store.decode_thresholds(envelope)
            doc = await mongo.get(self._repo.thresholds, thresholds.team_id)
            if doc is None or int(doc.get("version", 0)) < thresholds.version:
                await mongo.set_fields(
                    self._repo.thresholds, thresholds.team_id, store.thresholds_doc(thresholds)
                )
            if self._watch is not None:
                await self._watch.check(self._this_month(thresholds.team_id))

    def _this_month(self, team_id: str) -> set[AgentDay]:
        """Each member's local today and yesterday (so a month that just ended is seen too)."""
        now = utc_now()
        touched: set[AgentDay] = set()
        for agent_id in self._directory.members(team_id):
            today = now.astimezone(ZoneInfo(self._directory.zone_of(agent_id))).date()
            touched |= {(agent_id, today), (agent_id, today - timedelta(days=1))}
        return touched

    async def reset(self) -> None:
        await mongo.drop_collection(self._repo.thresholds)


class DirectoryProjection:
    """Scheduling's TeamCreated / AgentRegistered / AgentUpdated -> directory views."""

    name = "performance-directory"
    source = "scheduling"
    subjects = ">"

    def __init__(
        self, repo: store.Repository, directory: Directory, book: DayBook | None = None
    ) -> None:
        self._repo = repo
        self._directory = directory
        self._book = book

    async def apply(self, envelopes: list[EventEnvelope]) -> None:
        for envelope in envelopes:
            kind = short_type(envelope.event_type)
            version = envelope.aggregate_version
            if kind == "TeamCreated":
                team = unpack(envelope, scheduling_events.TeamCreated).team
                team_id = team.name.removeprefix("teams/")
                known_team = self._directory.teams.get(team_id)
                if known_team is None or known_team.version < version:
                    fields = {"version": version, "client_time_zone": team.client_time_zone}
                    await mongo.set_fields(self._repo.teams, team_id, fields)
                    self._directory.teams[team_id] = TeamEntry(version, team.client_time_zone)
            elif kind in ("AgentRegistered", "AgentUpdated"):
                cls = (
                    scheduling_events.AgentRegistered
                    if kind == "AgentRegistered"
                    else scheduling_events.AgentUpdated
                )
                agent = unpack(envelope, cls).agent  # type: ignore[attr-defined]
                entry = AgentEntry(
                    agent.name.removeprefix("agents/"),
                    agent.team.removeprefix("teams/"),
                    agent.time_zone,
                    version,
                )
                known = self._directory.agents.get(entry.agent_id)
                if known is None or known.version < version:
                    if known and known.team_id != entry.team_id and self._book is not None:
                        # Before the directory is stored: a redelivery moves them again.
                        await self._book.move_agent(entry)
                    await mongo.set_fields(
                        self._repo.agents,
                        entry.agent_id,
                        {
                            "team_id": entry.team_id,
                            "time_zone": entry.time_zone,
                            "version": version,
                        },
                    )
                    self._directory.agents[entry.agent_id] = entry

    async def reset(self) -> None:
        await self._repo.drop_directory()
        self._directory.agents.clear()
        self._directory.teams.clear()


# --- queries -------------------------------------------------------------------------------
async def team_period_sums(
    repo: store.Repository, team_id: str, period: domain.Period, now: datetime
) -> dict[str, metrics.Sums]:
    """Each agent's summed sums over the period's roster dates as of `now`: a whole calendar
    month inside the period from its roll-up document, the other days from the team-day
    documents, then the days still going taken back to now (`metrics.so_far`)."""
    figures, going = await _period_docs(repo, team_id, period, now)
    # A 1,000-agent team's 31 days are 31,000 rows of 26 numbers: gathered per agent, parsed
    # at once, then added column by column.
    packed_rows: dict[str, list[str]] = {}
    for doc in figures:
        for agent_id, packed in doc.get("agents", {}).items():
            packed_rows.setdefault(agent_id, []).append(packed)
    rows = {agent_id: store.rows_of(packed) for agent_id, packed in packed_rows.items()}
    now_ms = epoch_ms(now)
    for doc in going:
        for agent_id, tail in doc.get("tails", {}).items():
            delta = _so_far_delta(doc["agents"].get(agent_id), tail, now_ms)
            if delta is not None:
                rows.setdefault(agent_id, []).append(delta)
    return {a: _column_sums(r) for a, r in rows.items()}


async def agent_period_sums(
    repo: store.Repository, team_id: str, agent_id: str, period: domain.Period, now: datetime
) -> metrics.Sums:
    figures, going = await _period_docs(repo, team_id, period, now)
    rows = [store.row_of(None)]
    for doc in figures:
        packed = doc.get("agents", {}).get(agent_id)
        if packed:
            rows.append(store.row_of(packed))
    now_ms = epoch_ms(now)
    for doc in going:
        delta = _so_far_delta(
            doc["agents"].get(agent_id), doc.get("tails", {}).get(agent_id), now_ms
        )
        if delta is not None:
            rows.append(delta)
    return _column_sums(rows)


def _column_sums(rows: list[list[int]]) -> metrics.Sums:
    return dict(zip(metrics.SUM_FIELDS, map(sum, zip(*rows, strict=True)), strict=True))


async def _period_docs(
    repo: store.Repository, team_id: str, period: domain.Period, now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The figure documents that make up the period, and the team-day documents of its dates
    that may still be going at `now` (whose tails matter), read at once."""
    figure_ids = _figure_ids(team_id, period)
    first_going = max(period.start, metrics.first_open_day(now))
    going_ids = [store.team_day_id(team_id, d) for d in metrics.dates(first_going, period.end)]
    stored = await repo.get_many(repo.team_days, list(dict.fromkeys(figure_ids + going_ids)))
    docs = {doc_id: store.unpack_doc(doc) for doc_id, doc in stored.items()}
    return (
        [docs[i] for i in figure_ids if i in docs],
        [docs[i] for i in going_ids if i in docs],
    )


def _so_far_delta(packed: str | None, tail: str | None, now_ms: int) -> list[int] | None:
    """What a day row changes by when taken back to `now_ms` (None: nothing)."""
    if not packed or tail is None or store.tail_over(tail, now_ms):
        return None
    row = store.row_of(packed)
    adjusted = store.so_far_row(row, tail, now_ms)
    delta = [b - a for a, b in zip(row, adjusted, strict=True)]
    return delta if any(delta) else None


def _figure_ids(team_id: str, period: domain.Period) -> list[str]:
    """The figure documents that make up a period: month roll-ups, then single days."""
    months, days = store.period_parts(period.start, period.end)
    return [store.team_month_id(team_id, m) for m in months] + [
        store.team_day_id(team_id, d) for d in days
    ]


async def thresholds_of(repo: store.Repository, team_id: str) -> domain.Thresholds:
    return store.thresholds_from_doc(team_id, await mongo.get(repo.thresholds, team_id))


async def case_records(
    book: DayBook, agent_id: str, day: date, case_ids: set[str]
) -> list[domain.CaseRecord]:
    """The full records of the agent's cases named, from the inputs around `day`."""
    zone = book._directory.zone_of(agent_id)
    parts = await book._slices(CASES, store.buckets_for_day(agent_id, day, zone), keep=False)
    records = [
        store.case_record_from_entry(agent_id, case_id, entry)
        for part in parts
        for case_id, entry in part.get("cases", {}).items()
        if case_id in case_ids and not entry.get("moved")
    ]
    return sorted(records, key=lambda r: (r.resolved, r.case_id))
