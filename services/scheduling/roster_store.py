"""Roster persistence: proto codec of schedules, sites, patterns and requirements, and the
write model's state hints (read from the views; the event insert is the check)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from bson.binary import Binary
from wfm.events.v1.envelope_pb2 import EventEnvelope
from wfm.scheduling.v1 import events_pb2
from wfm.scheduling.v1 import roster_service_pb2 as pb

from services.scheduling import roster
from services.scheduling import rostertime as rt
from services.scheduling.roster import (
    Activity,
    ActivityKind,
    Anchor,
    Leave,
    LeaveKind,
    LeaveStatus,
    Pattern,
    Requirement,
    Schedule,
    Shift,
    ShiftStatus,
    Site,
)
from wfm_runtime import mongo
from wfm_runtime.commands import Behaviour
from wfm_runtime.events import unpack
from wfm_runtime.timefmt import from_timestamp, localized, to_timestamp

SCHEDULE = "schedule"
SITE = "site"
PATTERN = "shift_pattern"
COVERAGE = "coverage"


def requirement_id(team_id: str, key: str) -> str:
    return f"{team_id}@{key}"


# --- enums -----------------------------------------------------------------------------------
def _by_number(enum_pb: Any, prefix: str, cls: Any) -> dict[int, Any]:
    return {enum_pb.Value(f"{prefix}{member.value}"): member for member in cls}


# Decoding runs for every shift of every schedule a read touches: plain dict look-ups.
_ACTIVITY_KINDS = _by_number(pb.ActivityKind, "ACTIVITY_KIND_", ActivityKind)
_ANCHORS = _by_number(pb.Anchor, "ANCHOR_", Anchor)
_LEAVE_KINDS = _by_number(pb.LeaveKind, "LEAVE_KIND_", LeaveKind)
_SHIFT_STATES = _by_number(pb.ShiftState, "SHIFT_STATE_", ShiftStatus)
_LEAVE_STATES = _by_number(pb.LeaveState, "LEAVE_STATE_", LeaveStatus)


def activity_kind(value: int) -> ActivityKind | None:
    """The domain value of a proto enum number; None for 0 or an unknown number."""
    return _ACTIVITY_KINDS.get(value)


def anchor(value: int) -> Anchor | None:
    return _ANCHORS.get(value)


def leave_kind(value: int) -> LeaveKind | None:
    return _LEAVE_KINDS.get(value)


# --- activities, shifts, leave -----------------------------------------------------------------
def activity_to_proto(a: Activity) -> pb.Activity:
    return pb.Activity(
        kind=pb.ActivityKind.Value(f"ACTIVITY_KIND_{a.kind.value}"),
        offset_minutes=a.offset_minutes,
        length_minutes=a.length_minutes,
        paid=a.paid,
    )


def activity_from_proto(a: pb.Activity) -> Activity:
    return Activity(
        activity_kind(a.kind) or ActivityKind.BREAK, a.offset_minutes, a.length_minutes, a.paid
    )


def shift_to_proto(
    agent_id: str, s: Shift, agent_zone: str = "", client_zone: str = ""
) -> pb.Shift:
    message = pb.Shift(
        name=f"agents/{agent_id}/shifts/{s.shift_id}",
        team=f"teams/{s.team_id}",
        roster_date=s.roster_date.isoformat(),
        anchor_time_zone=s.zone,
        start_local_time=f"{s.start_local:%H:%M}",
        length_minutes=s.length_minutes,
        elapsed_minutes=s.elapsed_minutes,
        paid_minutes=s.paid_minutes,
        activities=[activity_to_proto(a) for a in s.activities],
        shift_pattern=f"shiftPatterns/{s.pattern_id}" if s.pattern_id else "",
        state=pb.ShiftState.Value(f"SHIFT_STATE_{s.status.value}"),
        overrides=sorted(s.overrides),
        cancel_reason=s.cancel_reason,
        published=s.published,
    )
    message.start_time.CopyFrom(to_timestamp(s.start))
    message.end_time.CopyFrom(to_timestamp(s.end))
    if agent_zone:
        message.start_agent_local.CopyFrom(localized(s.start, agent_zone))
        message.end_agent_local.CopyFrom(localized(s.end, agent_zone))
    if client_zone:
        message.start_client_local.CopyFrom(localized(s.start, client_zone))
        message.end_client_local.CopyFrom(localized(s.end, client_zone))
    return message


def shift_from_proto(m: pb.Shift) -> Shift:
    return Shift(
        shift_id=m.name.rsplit("/", 1)[-1],
        team_id=m.team.removeprefix("teams/"),
        roster_date=date.fromisoformat(m.roster_date),
        start=from_timestamp(m.start_time),
        end=from_timestamp(m.end_time),
        zone=m.anchor_time_zone,
        start_local=rt.parse_hhmm(m.start_local_time) or datetime.min.time(),
        length_minutes=m.length_minutes,
        activities=tuple(activity_from_proto(a) for a in m.activities),
        pattern_id=m.shift_pattern.removeprefix("shiftPatterns/"),
        status=_SHIFT_STATES.get(m.state, ShiftStatus.DRAFT),
        overrides=frozenset(m.overrides),
        cancel_reason=m.cancel_reason,
        published=m.published,
    )


def leave_to_proto(agent_id: str, item: Leave, agent_zone: str = "") -> pb.LeaveRequest:
    message = pb.LeaveRequest(
        name=f"agents/{agent_id}/leaveRequests/{item.leave_id}",
        kind=pb.LeaveKind.Value(f"LEAVE_KIND_{item.kind.value}"),
        start_date=item.start_date.isoformat() if item.full_days else "",
        end_date=item.end_date.isoformat() if item.full_days else "",
        note=item.note,
        state=pb.LeaveState.Value(f"LEAVE_STATE_{item.status.value}"),
        decision_reason=item.decision_reason,
        allowance_days=item.days,
        counted_working_days=sorted(item.working_days),
    )
    message.start_time.CopyFrom(to_timestamp(item.start))
    message.end_time.CopyFrom(to_timestamp(item.end))
    if agent_zone:
        message.start_agent_local.CopyFrom(localized(item.start, agent_zone))
        message.end_agent_local.CopyFrom(localized(item.end, agent_zone))
    return message


def leave_from_proto(m: pb.LeaveRequest) -> Leave:
    start, end = from_timestamp(m.start_time), from_timestamp(m.end_time)
    full_days = bool(m.start_date)
    return Leave(
        leave_id=m.name.rsplit("/", 1)[-1],
        kind=leave_kind(m.kind) or LeaveKind.OTHER,
        start=start,
        end=end,
        start_date=date.fromisoformat(m.start_date) if full_days else start.date(),
        end_date=date.fromisoformat(m.end_date) if full_days else end.date(),
        full_days=full_days,
        status=_LEAVE_STATES.get(m.state, LeaveStatus.REQUESTED),
        note=m.note,
        decision_reason=m.decision_reason,
        days=m.allowance_days,
        working_days=frozenset(m.counted_working_days),
    )


def schedule_to_proto(s: Schedule) -> events_pb2.AgentSchedule:
    return events_pb2.AgentSchedule(
        agent_id=s.agent_id,
        shifts=[shift_to_proto(s.agent_id, x) for x in s.shifts],
        leave_requests=[leave_to_proto(s.agent_id, x) for x in s.leave],
    )


def schedule_from_proto(m: events_pb2.AgentSchedule, version: int) -> Schedule:
    return Schedule(
        m.agent_id,
        tuple(shift_from_proto(x) for x in m.shifts),
        tuple(leave_from_proto(x) for x in m.leave_requests),
        version,
    )


def schedule_event(change: roster.Change, kind: int, version: int) -> events_pb2.ScheduleChanged:
    return events_pb2.ScheduleChanged(
        schedule=schedule_to_proto(change.schedule),
        kind=kind,  # type: ignore[arg-type]
        shift_ids=list(change.shift_ids),
        leave_ids=list(change.leave_ids),
    )


def evolve_schedule(state: Schedule, envelope: EventEnvelope) -> Schedule:
    event = unpack(envelope, events_pb2.ScheduleChanged)
    return schedule_from_proto(event.schedule, envelope.aggregate_version)


# --- sites, patterns, requirements ---------------------------------------------------------
def site_to_proto(s: Site) -> pb.Site:
    return pb.Site(
        name=f"sites/{s.site_id}",
        display_name=s.display_name,
        time_zone=s.time_zone,
        public_holidays=[
            pb.PublicHoliday(date=d.isoformat(), display_name=n) for d, n in s.holidays
        ],
        version=s.version,
    )


def site_from_proto(m: pb.Site, site_id: str) -> Site:
    holidays = tuple(
        sorted(
            (d, h.display_name)
            for h in m.public_holidays
            if (d := rt.parse_date(h.date)) is not None
        )
    )
    return Site(site_id, m.display_name, m.time_zone, holidays, m.version)


def evolve_site(state: Site, envelope: EventEnvelope) -> Site:
    site = unpack(envelope, events_pb2.SiteChanged).site
    return replace(site_from_proto(site, state.site_id), version=envelope.aggregate_version)


def pattern_to_proto(p: Pattern) -> pb.ShiftPattern:
    return pb.ShiftPattern(
        name=f"shiftPatterns/{p.pattern_id}",
        display_name=p.display_name,
        start_local_time=f"{p.start_local:%H:%M}",
        length_minutes=p.length_minutes,
        anchor=pb.Anchor.Value(f"ANCHOR_{p.anchor.value}"),
        activities=[activity_to_proto(a) for a in p.activities],
        iso_weekdays=sorted(p.iso_weekdays),
        version=p.version,
    )


def pattern_from_proto(m: pb.ShiftPattern, pattern_id: str) -> Pattern:
    return Pattern(
        pattern_id,
        m.display_name,
        rt.parse_hhmm(m.start_local_time) or datetime.min.time(),
        m.length_minutes,
        anchor(m.anchor) or Anchor.AGENT,
        tuple(activity_from_proto(a) for a in m.activities),
        frozenset(m.iso_weekdays),
        m.version,
    )


def evolve_pattern(state: Pattern, envelope: EventEnvelope) -> Pattern:
    pattern = unpack(envelope, events_pb2.ShiftPatternCreated).shift_pattern
    return replace(
        pattern_from_proto(pattern, state.pattern_id), version=envelope.aggregate_version
    )


def requirement_to_proto(r: Requirement) -> pb.CoverageRequirement:
    return pb.CoverageRequirement(
        name=f"teams/{r.team_id}/coverageRequirements/{r.key}",
        interval_minutes=r.interval_minutes,
        required=list(r.required),
        version=r.version,
    )


def evolve_requirement(state: Requirement, envelope: EventEnvelope) -> Requirement:
    m = unpack(envelope, events_pb2.CoverageRequirementSet).requirement
    return Requirement(
        state.team_id,
        state.key,
        m.interval_minutes,
        tuple(m.required),
        envelope.aggregate_version,
    )


# --- view documents --------------------------------------------------------------------------
def state_doc(envelope: EventEnvelope, **fields: Any) -> dict[str, Any]:
    """A view document: the event's payload (the full state) plus query fields."""
    return {
        "version": envelope.aggregate_version,
        "payload": Binary(envelope.SerializeToString()),
        **fields,
    }


def envelope_of(doc: dict[str, Any]) -> EventEnvelope:
    envelope = EventEnvelope()
    envelope.ParseFromString(bytes(doc["payload"]))
    return envelope


class RosterStore:
    """Loads aggregates' last known state from the views (a hint: the runner catches up)."""

    def __init__(self, db: mongo.Database) -> None:
        self.rosters = db["rosters"]
        self.sites = db["sites"]
        self.patterns = db["shift_patterns"]
        self.requirements = db["coverage_requirements"]
        # Write-side marks, not a view: `<team>/<week's Monday>/<agent>` for each agent a
        # change gave drafts of that team's week (note_drafts).
        self.week_drafts = db["week_drafts"]
        self._insert_mark = mongo.InsertBatcher(self.week_drafts).insert  # one bulk's marks share

    async def _doc_state(self, coll: mongo.Collection, doc_id: str) -> EventEnvelope | None:
        doc = await mongo.get(coll, doc_id)
        return envelope_of(doc) if doc else None

    async def schedule(self, agent_id: str) -> Schedule:
        envelope = await self._doc_state(self.rosters, agent_id)
        initial = Schedule(agent_id)
        return evolve_schedule(initial, envelope) if envelope else initial

    async def site(self, site_id: str) -> Site:
        envelope = await self._doc_state(self.sites, site_id)
        return evolve_site(Site(site_id), envelope) if envelope else Site(site_id)

    async def pattern(self, pattern_id: str) -> Pattern:
        envelope = await self._doc_state(self.patterns, pattern_id)
        return evolve_pattern(Pattern(pattern_id), envelope) if envelope else Pattern(pattern_id)

    async def requirement(self, aggregate_id: str) -> Requirement:
        team_id, _, key = aggregate_id.partition("@")
        envelope = await self._doc_state(self.requirements, aggregate_id)
        initial = Requirement(team_id, key)
        return evolve_requirement(initial, envelope) if envelope else initial

    async def note_drafts(self, agent_id: str, weeks: set[tuple[str, date]]) -> None:
        """Marks the agent as holding drafts of these teams' weeks, written by the process that
        committed them before it answers: PublishWeek on any process then reaches the agent,
        whatever its views show yet. Insert-only and idempotent (an atomic unique insert on
        MongoDB and FerretDB alike); a mark whose drafts are gone costs a no-change command."""
        marks = ({"_id": _draft_mark(team, monday, agent_id)} for team, monday in sorted(weeks))
        await asyncio.gather(*(self._insert_mark(mark) for mark in marks))

    async def drafted(self, team_id: str, monday: date) -> list[str]:
        """The agents marked as holding drafts of the team's week (note_drafts)."""
        prefix = _draft_mark(team_id, monday, "")
        # Ids hold no character below "0" after the prefix's last "/": "0" bounds the range.
        query = {"_id": {"$gte": prefix, "$lt": prefix[:-1] + "0"}}
        return [
            str(d["_id"]).removeprefix(prefix)
            for d in await mongo.find_all(self.week_drafts, query)
        ]

    def schedule_behaviour(self) -> Behaviour[Schedule]:
        async def load(agent_id: str) -> tuple[Schedule, int]:
            state = await self.schedule(agent_id)
            return state, state.version

        return Behaviour(SCHEDULE, Schedule, load, evolve_schedule)

    def site_behaviour(self) -> Behaviour[Site]:
        async def load(site_id: str) -> tuple[Site, int]:
            state = await self.site(site_id)
            return state, state.version

        return Behaviour(SITE, Site, load, evolve_site)

    def pattern_behaviour(self) -> Behaviour[Pattern]:
        async def load(pattern_id: str) -> tuple[Pattern, int]:
            state = await self.pattern(pattern_id)
            return state, state.version

        return Behaviour(PATTERN, Pattern, load, evolve_pattern)

    def requirement_behaviour(self) -> Behaviour[Requirement]:
        async def load(aggregate_id: str) -> tuple[Requirement, int]:
            state = await self.requirement(aggregate_id)
            return state, state.version

        def initial(aggregate_id: str) -> Requirement:
            team_id, _, key = aggregate_id.partition("@")
            return Requirement(team_id, key)

        return Behaviour(COVERAGE, initial, load, evolve_requirement)


def _draft_mark(team_id: str, monday: date, agent_id: str) -> str:
    return f"{team_id}/{monday.isoformat()}/{agent_id}"
