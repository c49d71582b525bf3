"""RosterService servicer: proto <-> domain; the rules live in roster.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol, TypeAlias, TypeVar

import grpc
from google.protobuf.message import Message
from wfm.scheduling.v1 import events_pb2
from wfm.scheduling.v1 import roster_service_pb2 as pb
from wfm.scheduling.v1 import roster_service_pb2_grpc as pb_grpc

from services.scheduling import coverage, domain, roster, roster_store
from services.scheduling import roster_request as req
from services.scheduling import rostertime as rt
from services.scheduling.api import DirectoryApi
from services.scheduling.roster import Context, OperatingWindow, Schedule
from services.scheduling.roster_store import COVERAGE, PATTERN, SCHEDULE, SITE, RosterStore
from services.scheduling.roster_views import RosterViews
from wfm_runtime import pagination
from wfm_runtime.auth import Role
from wfm_runtime.commands import CommandRunner, command_for
from wfm_runtime.errors import DomainError, FailedPrecondition, NotFound, Violations
from wfm_runtime.events import unpack
from wfm_runtime.grpcserver import PRINCIPAL, bind
from wfm_runtime.timefmt import localized, to_timestamp
from wfm_runtime.validation import (
    ID_PATTERN,
    check_id,
    check_idempotency_key,
    check_page_size,
    check_time_zone,
    parse_name,
)


class _Versioned(Protocol):  # a schedule, site, pattern or requirement: a state with a version
    @property
    def version(self) -> int: ...


V = TypeVar("V", bound=_Versioned)

Ctx: TypeAlias = grpc.aio.ServicerContext
Kind = events_pb2.ScheduleChangeKind
BULK_CONCURRENCY = 64
_LEAVE_STATES = {
    pb.LEAVE_STATE_REQUESTED: roster.LeaveStatus.REQUESTED,
    pb.LEAVE_STATE_APPROVED: roster.LeaveStatus.APPROVED,
    pb.LEAVE_STATE_DENIED: roster.LeaveStatus.DENIED,
    pb.LEAVE_STATE_CANCELLED: roster.LeaveStatus.CANCELLED,
}


@dataclass(frozen=True)
class AgentFacts:
    agent: domain.Agent
    ctx: Context


class RosterApi(pb_grpc.RosterServiceServicer):
    def __init__(
        self,
        commands: CommandRunner,
        store: RosterStore,
        views: RosterViews,
        directory: DirectoryApi,
    ) -> None:
        self._commands = commands
        self._store = store
        self._views = views
        self._directory = directory
        self._schedules = store.schedule_behaviour()
        self._sites = store.site_behaviour()
        self._patterns = store.pattern_behaviour()
        self._requirements = store.requirement_behaviour()
        # Schedules and coverage requirements this process committed that the views may not
        # show yet: reads overlay them, so a scheduler sees their own change at once.
        self._unprojected: set[str] = set()
        self._unprojected_requirements: set[str] = set()
        # The same for sites and patterns, which List reads as Get does (see _listed).
        self._unprojected_sites: set[str] = set()
        self._unprojected_patterns: set[str] = set()

    # --- sites ---------------------------------------------------------------------------
    async def CreateSite(self, request: pb.CreateSiteRequest, context: Ctx) -> pb.Site:
        v = Violations()
        check_id(v, request.site_id, "site_id", "site id")
        v.check(0 < len(request.site.display_name) <= 200, "site.display_name", "1-200 characters")
        check_time_zone(v, request.site.time_zone, "site.time_zone")
        site = roster_store.site_from_proto(request.site, request.site_id)
        v.check(
            len(site.holidays) == len(request.site.public_holidays) <= 400,
            "site.public_holidays",
            "dates YYYY-MM-DD, at most 400",
        )
        check_idempotency_key(v, request.idempotency_key)
        v.raise_if_any()
        outcome = await self._commands.execute(
            self._sites,
            command_for(SITE, site.site_id, request),
            lambda current, version: events_pb2.SiteChanged(
                site=roster_store.site_to_proto(roster.create_site(current, site))
            ),
        )
        if outcome.event is not None:
            self._unprojected_sites.add(site.site_id)
        return roster_store.site_to_proto(outcome.state)

    async def GetSite(self, request: pb.GetSiteRequest, context: Ctx) -> pb.Site:
        v = Violations()
        site_id = parse_name(v, request.name, "name", "sites")
        v.raise_if_any()
        site = await self._site(site_id)
        if not site.version:
            raise NotFound("site", request.name)
        return roster_store.site_to_proto(site)

    async def ListSites(self, request: pb.ListSitesRequest, context: Ctx) -> pb.ListSitesResponse:
        v = Violations()
        page_size = check_page_size(v, request.page_size)
        v.raise_if_any()
        filter_key = "sites"
        after = pagination.decode(request.page_token, filter_key)
        pending = self._pending(SITE, self._unprojected_sites, roster.Site)
        sites = _listed(
            pending,
            await self._views.sites(after, page_size + 1 + len(pending)),
            after,
            page_size + 1,
            key=lambda s: s.site_id,
        )
        return pb.ListSitesResponse(
            sites=[roster_store.site_to_proto(s) for s in sites[:page_size]],
            next_page_token=_next_token(sites, page_size, filter_key, lambda s: s.site_id),
        )

    async def SetPublicHolidays(
        self, request: pb.SetPublicHolidaysRequest, context: Ctx
    ) -> pb.Site:
        v = Violations()
        site_id = parse_name(v, request.site, "site", "sites")
        v.check(1900 <= request.year <= 2199, "year", "must be 1900 to 2199")
        days = [req.check_date(v, h.date, "public_holidays.date") for h in request.public_holidays]
        v.check(len(days) <= 60, "public_holidays", "at most 60 a year")
        v.check(
            all(d is None or d.year == request.year for d in days),
            "public_holidays.date",
            "must be in the given year",
        )
        check_idempotency_key(v, request.idempotency_key)
        v.raise_if_any()
        holidays = tuple(
            sorted(
                (d, h.display_name[:200])
                for d, h in zip(days, request.public_holidays, strict=True)
                if d
            )
        )
        command = command_for(
            SITE, site_id, request, expected_version=request.expected_version or None
        )

        def decide(current: roster.Site, version: int) -> Message | None:
            site = roster.set_holidays(current, request.year, holidays)
            return events_pb2.SiteChanged(site=roster_store.site_to_proto(site)) if site else None

        outcome = await self._commands.execute(self._sites, command, decide)
        if outcome.event is not None:
            self._unprojected_sites.add(site_id)
        return roster_store.site_to_proto(outcome.state)

    # --- patterns ------------------------------------------------------------------------
    async def CreateShiftPattern(
        self, request: pb.CreateShiftPatternRequest, context: Ctx
    ) -> pb.ShiftPattern:
        v = Violations()
        pattern = req.check_pattern(v, request.shift_pattern, request.shift_pattern_id)
        check_idempotency_key(v, request.idempotency_key)
        v.raise_if_any()
        outcome = await self._commands.execute(
            self._patterns,
            command_for(PATTERN, pattern.pattern_id, request),
            lambda current, version: events_pb2.ShiftPatternCreated(
                shift_pattern=roster_store.pattern_to_proto(roster.create_pattern(current, pattern))
            ),
        )
        if outcome.event is not None:
            self._unprojected_patterns.add(pattern.pattern_id)
        return roster_store.pattern_to_proto(outcome.state)

    async def GetShiftPattern(
        self, request: pb.GetShiftPatternRequest, context: Ctx
    ) -> pb.ShiftPattern:
        v = Violations()
        pattern_id = parse_name(v, request.name, "name", "shiftPatterns")
        v.raise_if_any()
        return roster_store.pattern_to_proto(await self._pattern(pattern_id, request.name))

    async def ListShiftPatterns(
        self, request: pb.ListShiftPatternsRequest, context: Ctx
    ) -> pb.ListShiftPatternsResponse:
        v = Violations()
        page_size = check_page_size(v, request.page_size)
        anchor = roster_store.anchor(request.anchor)
        v.check(
            request.anchor == 0 or anchor is not None,
            "anchor",
            "must be ANCHOR_AGENT, ANCHOR_CLIENT or unspecified (every pattern)",
        )
        v.raise_if_any()
        filter_key = f"shiftPatterns|{request.anchor}"
        after = pagination.decode(request.page_token, filter_key)

        def keep(p: roster.Pattern) -> bool:
            return anchor is None or p.anchor is anchor

        pending = self._pending(PATTERN, self._unprojected_patterns, roster.Pattern)
        viewed = await self._views.patterns(
            after, page_size + 1 + len(pending), keep if anchor else None
        )
        patterns = _listed(
            pending, viewed, after, page_size + 1, key=lambda p: p.pattern_id, keep=keep
        )
        return pb.ListShiftPatternsResponse(
            shift_patterns=[roster_store.pattern_to_proto(p) for p in patterns[:page_size]],
            next_page_token=_next_token(patterns, page_size, filter_key, lambda p: p.pattern_id),
        )

    # --- shifts --------------------------------------------------------------------------
    async def AssignShift(self, request: pb.AssignShiftRequest, context: Ctx) -> pb.ShiftChange:
        v = Violations()
        agent_id = parse_name(v, request.agent, "agent", "agents")
        check_id(v, request.shift_id, "shift_id", "shift id")
        fields = req.check_spec(v, request.shift, "shift")
        check_idempotency_key(v, request.idempotency_key)
        v.raise_if_any()
        bind(agent_id=agent_id)
        facts = await self._facts(agent_id)
        plan = req.plan_of(fields, await self._pattern_of(fields), "shift")

        def change(current: Schedule) -> roster.Change:
            shift = roster.build_shift(request.shift_id, plan, facts.ctx)
            return roster.assign(current, [shift], facts.ctx, dry_run=request.dry_run)

        return await self._shift_change(
            facts, request, Kind.SCHEDULE_CHANGE_KIND_SHIFTS_ASSIGNED, change
        )

    async def UpdateShift(self, request: pb.UpdateShiftRequest, context: Ctx) -> pb.ShiftChange:
        v = Violations()
        agent_id, shift_id = req.parse_child(v, request.name, "name", "shifts")
        fields = req.check_spec(v, request.shift, "shift")
        check_idempotency_key(v, request.idempotency_key)
        v.raise_if_any()
        bind(agent_id=agent_id)
        # The shift keeps the team it was planned for (the agent may have moved since): its
        # client clock and operating hours are that team's.
        team_id = await self._team_of_shift(agent_id, shift_id)
        facts = await self._facts(agent_id, team_id)
        plan = req.plan_of(fields, await self._pattern_of(fields), "shift")

        def change(current: Schedule) -> roster.Change:
            moved = roster.build_shift(shift_id, plan, facts.ctx)
            return roster.change_shift(current, shift_id, moved, facts.ctx, dry_run=request.dry_run)

        return await self._shift_change(
            facts, request, Kind.SCHEDULE_CHANGE_KIND_SHIFT_UPDATED, change
        )

    async def CancelShift(self, request: pb.CancelShiftRequest, context: Ctx) -> pb.Shift:
        v = Violations()
        agent_id, shift_id = req.parse_child(v, request.name, "name", "shifts")
        v.check(len(request.reason) <= 200, "reason", "at most 200 characters")
        check_idempotency_key(v, request.idempotency_key)
        v.raise_if_any()
        facts = await self._facts(agent_id)
        outcome = await self._schedule_command(
            agent_id,
            request,
            Kind.SCHEDULE_CHANGE_KIND_SHIFT_CANCELLED,
            lambda current: roster.cancel_shift(current, shift_id, request.reason),
        )
        return await self._shift_proto(facts, outcome.state.shift(shift_id))

    async def BulkAssignShifts(
        self, request: pb.BulkAssignShiftsRequest, context: Ctx
    ) -> pb.BulkAssignShiftsResponse:
        v = Violations()
        pattern_id = parse_name(v, request.shift_pattern, "shift_pattern", "shiftPatterns")
        span = req.check_range(v, request.start_date, request.end_date, "", req.MAX_ROSTER_DAYS)
        v.check(
            0 < len(request.agents) <= req.MAX_BULK_AGENTS,
            "agents",
            f"name 1 to {req.MAX_BULK_AGENTS} agents",
        )
        agent_ids = [parse_name(v, a, "agents", "agents") for a in request.agents[:1000]]
        v.check(len(set(agent_ids)) == len(agent_ids), "agents", "each agent at most once")
        overrides = req.check_overrides(v, list(request.overrides), "overrides")
        check_idempotency_key(v, request.idempotency_key)
        v.raise_if_any()
        assert span is not None
        pattern = await self._pattern(pattern_id, request.shift_pattern)
        days = roster.pattern_dates(pattern, *span)
        if not request.dry_run:
            await self._spend_request_key(request, pattern_id)
        limit = asyncio.Semaphore(BULK_CONCURRENCY)

        async def one(agent_id: str) -> pb.AgentAssignment:
            async with limit:
                return await self._assign_pattern(request, agent_id, pattern, days, overrides)

        results = await asyncio.gather(*(one(a) for a in agent_ids))
        return pb.BulkAssignShiftsResponse(
            assignments=results,
            assigned_shifts=sum(len(r.shifts) for r in results if not r.violations and not r.error),
            refused_agents=sum(1 for r in results if r.violations or r.error),
        )

    async def _assign_pattern(
        self,
        request: pb.BulkAssignShiftsRequest,
        agent_id: str,
        pattern: roster.Pattern,
        days: list[date],
        overrides: frozenset[str],
    ) -> pb.AgentAssignment:
        name = f"agents/{agent_id}"
        plans = [
            roster.ShiftPlan(
                d,
                pattern.start_local,
                pattern.length_minutes,
                pattern.anchor,
                pattern.activities,
                pattern.pattern_id,
                overrides,
            )
            for d in days
        ]
        ids = [f"{pattern.pattern_id}-{d:%Y%m%d}" for d in days]
        try:
            facts = await self._facts(agent_id)

            def change(current: Schedule) -> roster.Change:
                shifts = [
                    roster.build_shift(i, p, facts.ctx) for i, p in zip(ids, plans, strict=True)
                ]
                return roster.assign(current, shifts, facts.ctx, dry_run=request.dry_run)

            if request.dry_run:
                decided = change(await self._latest_schedule(agent_id))
                return pb.AgentAssignment(
                    agent=name, shifts=ids, violations=_rules(decided.violations)
                )
            await self._schedule_command(
                agent_id,
                request,
                Kind.SCHEDULE_CHANGE_KIND_SHIFTS_ASSIGNED,
                change,
                key=agent_key(request.idempotency_key, agent_id),
            )
            return pb.AgentAssignment(agent=name, shifts=ids)
        except FailedPrecondition as exc:
            return pb.AgentAssignment(agent=name, violations=_rules(exc.violations))
        except DomainError as exc:
            return pb.AgentAssignment(agent=name, error=exc.message[:500])

    async def PublishWeek(
        self, request: pb.PublishWeekRequest, context: Ctx
    ) -> pb.PublishWeekResponse:
        v = Violations()
        team_id = parse_name(v, request.team, "team", "teams")
        monday = req.check_monday(v, request.week_start, "week_start")
        check_idempotency_key(v, request.idempotency_key)
        v.raise_if_any()
        assert monday is not None
        if await self._directory.latest_team(team_id) is None:
            raise NotFound("team", request.team)
        found = {a.agent_id for a in await self._directory.team_members(team_id)}
        found |= {s.agent_id for s in await self._team_schedules(team_id)}
        # Drafts another process committed that neither view shows yet (an agent moved away).
        found |= set(await self._store.drafted(team_id, monday))
        # A retry also goes to every agent its first attempt found (it answers them again).
        members = found | set(await self._spend_request_key(request, team_id, sorted(found)))
        limit = asyncio.Semaphore(BULK_CONCURRENCY)

        async def one(agent_id: str) -> int:
            async with limit:
                outcome = await self._schedule_command(
                    agent_id,
                    request,
                    Kind.SCHEDULE_CHANGE_KIND_WEEK_PUBLISHED,
                    lambda current: roster.publish(current, team_id, monday),
                    key=agent_key(request.idempotency_key, agent_id),
                )
                return _published(outcome.event)

        counts = await asyncio.gather(*(one(a) for a in sorted(members)))
        return pb.PublishWeekResponse(
            published_shifts=sum(counts),
            agents=[f"agents/{a}" for a, n in zip(sorted(members), counts, strict=True) if n],
        )

    # --- rosters -------------------------------------------------------------------------
    async def GetAgentRoster(
        self, request: pb.GetAgentRosterRequest, context: Ctx
    ) -> pb.AgentRoster:
        v = Violations()
        agent_id = parse_name(v, request.agent, "agent", "agents")
        span = req.check_range(v, request.start_date, request.end_date, "", req.MAX_ROSTER_DAYS)
        v.raise_if_any()
        assert span is not None
        facts = await self._facts(agent_id)
        schedule = await self._latest_schedule(agent_id)
        drafts = _sees_drafts()
        held = list(schedule.shifts)
        if _before_window(schedule, span[0]):
            ids = frozenset(s.shift_id for s in held)
            past = await self._views.past_shifts(agent_id, span[0], span[1], ids)
            held = sorted(held + past, key=lambda s: s.start)
        shifts = [
            s for s in held if span[0] <= s.roster_date <= span[1] and (drafts or s.published)
        ]
        days = sorted({s.roster_date for s in shifts})
        first = rt.day_bounds(span[0], facts.ctx.agent_zone)[0]
        last = rt.day_bounds(span[1], facts.ctx.agent_zone)[1]
        return pb.AgentRoster(
            agent=request.agent,
            days=[
                pb.RosterDay(
                    roster_date=d.isoformat(),
                    shifts=[
                        await self._shift_proto(facts, s) for s in shifts if s.roster_date == d
                    ],
                )
                for d in days
            ],
            leave_requests=[
                roster_store.leave_to_proto(agent_id, item, facts.ctx.agent_zone)
                for item in schedule.leave
                if item.start < last and first < item.end
            ],
            paid_minutes=sum(s.paid_minutes for s in shifts if s.active),
            schedule_version=schedule.version,
        )

    async def GetTeamRoster(self, request: pb.GetTeamRosterRequest, context: Ctx) -> pb.TeamRoster:
        v = Violations()
        team_id = parse_name(v, request.team, "team", "teams")
        monday = req.check_monday(v, request.week_start, "week_start")
        page_size = check_page_size(v, request.page_size)
        v.raise_if_any()
        assert monday is not None
        filter_key = f"teamRoster|{team_id}|{request.week_start}"
        after = pagination.decode(request.page_token, filter_key)
        team = await self._directory.latest_team(team_id)
        if team is None:
            raise NotFound("team", request.team)
        members = {a.agent_id: a for a in await self._directory.team_members(team_id)}
        schedules = {s.agent_id: s for s in await self._team_schedules(team_id)}
        weeks: list[pb.AgentWeek] = []
        # Every member, with or without shifts (a scheduler looks for who is not yet
        # scheduled), and anyone else with shifts for the team that week (e.g. moved away since).
        for agent_id in sorted(members.keys() | schedules.keys()):
            if agent_id <= after:
                continue
            week = await self._agent_week(
                agent_id, members.get(agent_id), schedules.get(agent_id), team, monday
            )
            if week is None:
                continue
            if len(weeks) == page_size:
                last = weeks[-1].agent.removeprefix("agents/")
                return pb.TeamRoster(
                    team=request.team,
                    week_start=request.week_start,
                    agents=weeks,
                    next_page_token=pagination.encode(last, filter_key),
                )
            weeks.append(week)
        return pb.TeamRoster(team=request.team, week_start=request.week_start, agents=weeks)

    async def _agent_week(
        self,
        agent_id: str,
        member: domain.Agent | None,
        schedule: Schedule | None,
        team: domain.Team,
        monday: date,
    ) -> pb.AgentWeek | None:
        """One agent's shifts for the team in the week; None for a former member without any."""
        shifts = [
            s
            for s in (schedule.shifts if schedule else [])
            if s.team_id == team.team_id and rt.week_start(s.roster_date) == monday
        ]
        agent = member
        if agent is None and shifts:
            agent = await self._directory.latest_agent(agent_id)
        if agent is None:
            return None
        return pb.AgentWeek(
            agent=f"agents/{agent_id}",
            shifts=[
                roster_store.shift_to_proto(agent_id, s, agent.time_zone, team.client_time_zone)
                for s in sorted(shifts, key=lambda s: s.start)
            ],
            paid_minutes=sum(s.paid_minutes for s in shifts if s.active),
            weekly_minutes=agent.weekly_minutes,
        )

    # --- leave ---------------------------------------------------------------------------
    async def RequestLeave(self, request: pb.RequestLeaveRequest, context: Ctx) -> pb.LeaveRequest:
        v = Violations()
        agent_id = parse_name(v, request.agent, "agent", "agents")
        check_idempotency_key(v, request.idempotency_key)
        v.raise_if_any()
        facts = await self._facts(agent_id)
        leave = req.check_leave(
            v, request.leave_request, request.leave_request_id, facts.ctx.agent_zone
        )
        v.raise_if_any()
        assert leave is not None
        outcome = await self._schedule_command(
            agent_id,
            request,
            Kind.SCHEDULE_CHANGE_KIND_LEAVE_REQUESTED,
            lambda current: roster.request_leave(current, leave, facts.ctx),
        )
        item = outcome.state.leave_request(leave.leave_id)
        return roster_store.leave_to_proto(agent_id, item, facts.ctx.agent_zone)

    async def ApproveLeave(self, request: pb.ApproveLeaveRequest, context: Ctx) -> pb.LeaveRequest:
        v = Violations()
        v.check(len(request.reason) <= 500, "reason", "at most 500 characters")
        v.raise_if_any()
        return await self._decide_leave(
            request,
            Kind.SCHEDULE_CHANGE_KIND_LEAVE_APPROVED,
            lambda current, leave_id, ctx: roster.approve_leave(
                current, leave_id, ctx, request.reason
            ),
        )

    async def CancelLeave(self, request: pb.CancelLeaveRequest, context: Ctx) -> pb.LeaveRequest:
        v = Violations()
        v.check(len(request.reason) <= 500, "reason", "at most 500 characters")
        v.raise_if_any()
        own = not _plans()
        now = datetime.now(UTC)
        return await self._decide_leave(
            request,
            Kind.SCHEDULE_CHANGE_KIND_LEAVE_CANCELLED,
            lambda current, leave_id, ctx: roster.cancel_leave(
                current, leave_id, request.reason, now=now, own=own
            ),
        )

    async def DenyLeave(self, request: pb.DenyLeaveRequest, context: Ctx) -> pb.LeaveRequest:
        v = Violations()
        v.check(0 < len(request.reason) <= 500, "reason", "1-500 characters required")
        v.raise_if_any()
        return await self._decide_leave(
            request,
            Kind.SCHEDULE_CHANGE_KIND_LEAVE_DENIED,
            lambda current, leave_id, ctx: roster.deny_leave(current, leave_id, request.reason),
        )

    async def _decide_leave(
        self,
        request: Any,
        kind: int,
        decide: Callable[[Schedule, str, Context], roster.Change],
    ) -> pb.LeaveRequest:
        v = Violations()
        agent_id, leave_id = req.parse_child(v, request.name, "name", "leaveRequests")
        check_idempotency_key(v, request.idempotency_key)
        v.raise_if_any()
        facts = await self._facts(agent_id)

        def change(current: Schedule) -> roster.Change | None:
            decided = decide(current, leave_id, facts.ctx)
            return decided if decided.schedule != current else None

        outcome = await self._schedule_command(agent_id, request, kind, change)
        item = outcome.state.leave_request(leave_id)
        return roster_store.leave_to_proto(agent_id, item, facts.ctx.agent_zone)

    async def ListLeaveRequests(
        self, request: pb.ListLeaveRequestsRequest, context: Ctx
    ) -> pb.ListLeaveRequestsResponse:
        v = Violations()
        team_id, agent_id = _team_or_agent(v, request)
        page_size = check_page_size(v, request.page_size)
        state = _LEAVE_STATES.get(request.state)
        v.check(request.state == 0 or state is not None, "state", "must be a known LEAVE_STATE_*")
        v.raise_if_any()
        filter_key = f"leave|{team_id}|{agent_id}|{request.state}"
        after = pagination.decode(request.page_token, filter_key)
        zones = await self._agent_zones(team_id, agent_id)
        found = [
            (f"agents/{s.agent_id}/leaveRequests/{item.leave_id}", s.agent_id, item)
            for s in await self._schedules_of(sorted(zones))
            for item in s.leave
            if state is None or item.status is state
        ]
        page = sorted((f for f in found if f[0] > after), key=lambda f: f[0])[: page_size + 1]
        return pb.ListLeaveRequestsResponse(
            leave_requests=[
                roster_store.leave_to_proto(agent_id, item, zones[agent_id])
                for _, agent_id, item in page[:page_size]
            ],
            next_page_token=(
                pagination.encode(page[page_size - 1][0], filter_key)
                if len(page) > page_size
                else ""
            ),
        )

    async def GetLeaveBalance(
        self, request: pb.GetLeaveBalanceRequest, context: Ctx
    ) -> pb.LeaveBalance:
        v = Violations()
        agent_id = parse_name(v, request.agent, "agent", "agents")
        v.check(1900 <= request.year <= 2199, "year", "must be 1900 to 2199")
        v.raise_if_any()
        facts = await self._facts(agent_id)
        bal = roster.balance(await self._latest_schedule(agent_id), request.year, facts.ctx)
        return pb.LeaveBalance(
            agent=request.agent,
            year=bal.year,
            allowance_days=bal.allowance_days,
            public_holidays=bal.public_holidays,
            taken_days=bal.taken_days,
            pending_days=bal.pending_days,
            remaining_days=bal.remaining_days,
        )

    # --- coverage ------------------------------------------------------------------------
    async def SetCoverageRequirement(
        self, request: pb.SetCoverageRequirementRequest, context: Ctx
    ) -> pb.CoverageRequirement:
        v = Violations()
        team_id = parse_name(v, request.team, "team", "teams")
        key, step, required = req.check_requirement(v, request)
        check_idempotency_key(v, request.idempotency_key)
        v.raise_if_any()
        if await self._directory.latest_team(team_id) is None:
            raise NotFound("team", request.team)
        wanted = roster.Requirement(team_id, key, step, required)

        def decide(current: roster.Requirement, version: int) -> Message | None:
            if (current.interval_minutes, current.required) == (step, required) and version:
                return None
            return events_pb2.CoverageRequirementSet(
                requirement=roster_store.requirement_to_proto(wanted)
            )

        requirement_id = roster_store.requirement_id(team_id, key)
        outcome = await self._commands.execute(
            self._requirements, command_for(COVERAGE, requirement_id, request), decide
        )
        if outcome.event is not None:
            self._unprojected_requirements.add(requirement_id)
        return roster_store.requirement_to_proto(outcome.state)

    async def GetCoverage(
        self, request: pb.GetCoverageRequest, context: Ctx
    ) -> pb.GetCoverageResponse:
        v = Violations()
        team_id = parse_name(v, request.team, "team", "teams")
        span = req.check_range(v, request.start_date, request.end_date, "", req.MAX_COVERAGE_DAYS)
        v.raise_if_any()
        assert span is not None
        team = await self._directory.latest_team(team_id)
        if team is None:
            raise NotFound("team", request.team)
        zone = team.client_time_zone
        requirements = await self._team_requirements(team_id)
        days = roster.coverage_days(requirements, span[0], span[1], zone)
        slots = [slot for d in days for slot in d.slots]
        needs = [need for d in days for need in d.needs]
        lengths = [d.interval_minutes for d in days for _ in d.slots]
        if coverage.aligned(slots):
            totals = await self._staffing(team_id, coverage.utc_dates(slots))
            cells = coverage.intervals(slots, needs, totals)
        else:  # a historical local-mean-time offset: off the view's grid, computed here
            cells = roster.coverage(slots, needs, await self._spans(team_id, slots))
        return pb.GetCoverageResponse(
            team=request.team,
            interval_minutes=roster.common_interval(days),
            intervals=[_interval_proto(c, zone, m) for c, m in zip(cells, lengths, strict=True)],
        )

    async def _staffing(self, team_id: str, days: list[date]) -> dict[date, list[int]]:
        """The coverage view's staffing per UTC date; the entries of agents whose schedule this
        process committed but the projection has not written yet are replaced from that state."""
        pending = self._pending_schedules()
        if not pending:
            return await self._views.coverage_totals(team_id, days)
        viewed = await self._views.staffing_by_agent(team_id, days)
        for schedule in pending:
            mine = coverage.agent_buckets(schedule)
            for day, agents in viewed.items():
                agents[schedule.agent_id] = (schedule.version, mine.get((team_id, day), {}))
        return {
            day: coverage.totals(c for _, c in agents.values()) for day, agents in viewed.items()
        }

    def _pending_schedules(self) -> list[Schedule]:
        """Schedules this process committed that its projection has not written yet."""
        return self._pending(SCHEDULE, self._unprojected, Schedule)

    def _pending(self, kind: str, unprojected: set[str], state: type[V]) -> list[V]:
        """The states of `kind` this process committed that its projection has not written yet;
        the ids it has written since leave `unprojected`."""
        pending = []
        for aggregate_id in sorted(unprojected):
            cached = self._commands.cached(kind, aggregate_id)
            projected = self._views.projected.get((kind, aggregate_id), 0)
            if isinstance(cached, state) and cached.version > projected:
                pending.append(cached)
            else:
                unprojected.discard(aggregate_id)
        return pending

    async def _team_requirements(self, team_id: str) -> dict[str, roster.Requirement]:
        """The team's coverage requirements by key (date or weekday) from the view, each
        replaced by this process's newer commit."""
        # Asked before the view is read, as in _team_schedules.
        pending = [
            r
            for r in self._pending(COVERAGE, self._unprojected_requirements, roster.Requirement)
            if r.team_id == team_id
        ]
        requirements = await self._views.requirements(team_id)
        for mine in pending:
            viewed = requirements.get(mine.key)
            if viewed is None or viewed.version < mine.version:
                requirements[mine.key] = mine
        return requirements

    async def _spans(
        self, team_id: str, slots: list[tuple[datetime, datetime, int]]
    ) -> list[tuple[datetime, datetime]]:
        first, last = slots[0][0], slots[-1][1]
        return [
            part
            for schedule in await self._team_schedules(team_id)
            for shift in schedule.shifts
            if shift.active
            and shift.team_id == team_id
            and shift.start < last
            and first < shift.end
            for part in roster.productive_spans(shift, schedule.leave)
        ]

    # --- helpers -------------------------------------------------------------------------
    async def _agent_zones(self, team_id: str, agent_id: str) -> dict[str, str]:
        """Each agent's home zone: the team's current members, or the one agent named."""
        if agent_id:
            return {agent_id: (await self._facts(agent_id)).ctx.agent_zone}
        members = await self._directory.team_members(team_id)
        return {a.agent_id: a.time_zone for a in members}

    async def _facts(self, agent_id: str, team_id: str = "") -> AgentFacts:
        """The agent's contract and site with the rules of `team_id` (default: their team)."""
        agent = await self._directory.latest_agent(agent_id)
        if agent is None:
            raise NotFound("agent", f"agents/{agent_id}")
        team_id = team_id or agent.team_id
        team = await self._directory.latest_team(team_id)
        site = await self._site(agent.site) if ID_PATTERN.fullmatch(agent.site) else None
        ctx = Context(
            agent_zone=agent.time_zone,
            client_zone=team.client_time_zone if team else agent.time_zone,
            team_id=team_id,
            weekly_minutes=agent.weekly_minutes,
            min_rest_minutes=(team.min_rest_minutes if team else 0)
            or roster.DEFAULT_MIN_REST_MINUTES,
            operating_hours=_windows(team),
            holidays=site.holiday_dates if site else frozenset(),
            site=agent.site,
            annual_allowance_days=agent.annual_leave_days,
            working_days=agent.working_weekdays,
            today=datetime.now(UTC).date(),
            working_days_history=agent.working_weekdays_history,
        )
        return AgentFacts(agent, ctx)

    async def _team_of_shift(self, agent_id: str, shift_id: str) -> str:
        """The team a shift of the agent's schedule was planned for; "" when it has no such
        shift (the change then refuses it)."""
        for shift in (await self._latest_schedule(agent_id)).shifts:
            if shift.shift_id == shift_id:
                return shift.team_id
        # Assigned through another process a moment ago, perhaps: look in the newer events.
        await self._commands.refresh(self._schedules, agent_id)
        for shift in (await self._latest_schedule(agent_id)).shifts:
            if shift.shift_id == shift_id:
                return shift.team_id
        return ""

    async def _site(self, site_id: str) -> roster.Site:
        cached = self._commands.cached(SITE, site_id)
        return cached if isinstance(cached, roster.Site) else await self._store.site(site_id)

    async def _pattern(self, pattern_id: str, name: str) -> roster.Pattern:
        cached = self._commands.cached(PATTERN, pattern_id)
        pattern = (
            cached if isinstance(cached, roster.Pattern) else await self._store.pattern(pattern_id)
        )
        if not pattern.version:
            raise NotFound("shift pattern", name)
        return pattern

    async def _pattern_of(self, fields: req.SpecFields) -> roster.Pattern | None:
        if not fields.pattern_id:
            return None
        return await self._pattern(fields.pattern_id, f"shiftPatterns/{fields.pattern_id}")

    async def _schedules_of(self, agent_ids: list[str]) -> list[Schedule]:
        """The agents' schedules from the view, each replaced by this process's newer commit
        (also one the view does not show yet), as GetAgentRoster and GetLeaveBalance read them."""
        wanted = set(agent_ids)
        # Asked before the view is read, as in _team_schedules.
        pending = [s for s in self._pending_schedules() if s.agent_id in wanted]
        latest = {s.agent_id: s for s in await self._views.schedules_of(sorted(wanted))}
        for mine in pending:
            seen = latest.get(mine.agent_id)
            if seen is None or seen.version < mine.version:
                latest[mine.agent_id] = mine
        return [latest[a] for a in sorted(latest)]

    async def _team_schedules(self, team_id: str) -> list[Schedule]:
        """The team's schedules from the view, each replaced by this process's newer commit."""
        # Which commits are pending is asked before the view is read: asked after, a schedule
        # the projection wrote in between would be in neither (read too early, no longer pending).
        pending = self._pending_schedules()
        schedules: dict[str, Schedule] = {}
        for viewed in await self._views.team_schedules(team_id):
            cached = self._commands.cached(SCHEDULE, viewed.agent_id)
            newer = isinstance(cached, Schedule) and cached.version > viewed.version
            schedules[viewed.agent_id] = (
                cached if newer and isinstance(cached, Schedule) else viewed
            )
        for cached in pending:  # e.g. an agent's first shifts for the team
            if cached.agent_id not in schedules and any(
                s.team_id == team_id for s in cached.shifts
            ):
                schedules[cached.agent_id] = cached
        return [schedules[a] for a in sorted(schedules)]

    async def _latest_schedule(self, agent_id: str) -> Schedule:
        viewed = await self._store.schedule(agent_id)
        cached = self._commands.cached(SCHEDULE, agent_id)
        if isinstance(cached, Schedule) and cached.version > viewed.version:
            return cached
        return viewed

    async def _spend_request_key(
        self, request: Any, scope: str, agents: list[str] | None = None
    ) -> tuple[str, ...]:
        """Spends the key of a request that changes many agents' schedules, one command each
        under `<key> <agent>` (agent_key), before the first of them: a key spent by a different
        request is refused while nothing has changed (an agent it did not reach has a fresh key
        of its own). In the schedules' key space, so another roster change's key is refused too.
        `agents`: whom the request sets out to change when it does not name them; returns the
        ones its first attempt named (CommandRunner.spend_key)."""
        return await self._commands.spend_key(command_for(SCHEDULE, scope, request), agents or ())

    async def _schedule_command(
        self,
        agent_id: str,
        request: Any,
        kind: int,
        change: Callable[[Schedule], roster.Change | None],
        key: str = "",
    ) -> Any:
        def decide(current: Schedule, version: int) -> Message | None:
            decided = change(current)
            return roster_store.schedule_event(decided, kind, version) if decided else None

        expected = getattr(request, "expected_version", 0) or None
        command = command_for(
            SCHEDULE,
            agent_id,
            request,
            key=key or request.idempotency_key,
            expected_version=expected,
            extra=(agent_id,),
        )
        # Another process may have moved the schedule on from this one's copy: a refusal is
        # judged again on the newer events.
        outcome = await self._commands.execute_rechecked(self._schedules, command, decide)
        if outcome.event is not None:
            self._unprojected.add(agent_id)
            # Before the answer, a replay's too (its first attempt may have died in between).
            changed = _changed_ids(outcome.event)
            await self._store.note_drafts(agent_id, roster.drafted_weeks(outcome.state, changed))
        return outcome

    async def _shift_change(
        self,
        facts: AgentFacts,
        request: Any,
        kind: int,
        change: Callable[[Schedule], roster.Change],
    ) -> pb.ShiftChange:
        agent_id = facts.agent.agent_id
        if request.dry_run:
            current = await self._latest_schedule(agent_id)
            decided = change(current)
            shifts = [decided.schedule.shift(i) for i in decided.shift_ids]
            return pb.ShiftChange(
                shifts=[await self._shift_proto(facts, s) for s in shifts],
                violations=_rules(decided.violations),
                dry_run=True,
                schedule_version=current.version,
            )
        outcome = await self._schedule_command(agent_id, request, kind, change)
        event = outcome.event
        ids = _changed_ids(event) if event is not None else []
        return pb.ShiftChange(
            shifts=[await self._shift_proto(facts, outcome.state.shift(i)) for i in ids],
            schedule_version=outcome.version,
        )

    async def _shift_proto(self, facts: AgentFacts, shift: roster.Shift) -> pb.Shift:
        """A shift with its times on the agent's clock and on the client's clock of the team it
        was planned for (an agent who moved team keeps shifts of the old team's client)."""
        client_zone = facts.ctx.client_zone
        if shift.team_id and shift.team_id != facts.ctx.team_id:
            team = await self._directory.latest_team(shift.team_id)
            client_zone = team.client_time_zone if team else client_zone
        return roster_store.shift_to_proto(
            facts.agent.agent_id, shift, facts.ctx.agent_zone, client_zone
        )


def agent_key(key: str, agent_id: str) -> str:
    """The key of one agent's command in a request made of many (BulkAssignShifts,
    PublishWeek): `<key> <agent>`. A client's key holds no space, so none of its own requests
    can have spent it (`<key>/<agent>` was a key a client could send, e.g. `p/k1` to cancel one
    of k1's shifts, and then request `p`'s command for k1 was refused as a different request)."""
    return f"{key} {agent_id}"


def _listed(
    pending: list[V],
    viewed: list[V],
    after: str,
    limit: int,
    *,
    key: Callable[[V], str],
    keep: Callable[[V], bool] = lambda _state: True,
) -> list[V]:
    """The first `limit` states after `after` in id order that `keep` accepts, as Get reads them:
    the view's, each replaced by this process's newer commit, and this process's commits the
    view does not show yet. `viewed` must be the view's first `limit + len(pending)` accepted
    ones (a pending state may take the place of a viewed one), read after `pending` was taken
    (see _team_schedules)."""
    latest = {key(s): s for s in viewed}
    for mine in pending:
        seen = latest.get(key(mine))
        if key(mine) > after and (seen is None or seen.version < mine.version):
            latest[key(mine)] = mine
    return [latest[k] for k in sorted(latest) if keep(latest[k])][:limit]


def _next_token(items: list[V], page_size: int, filter_key: str, key: Callable[[V], str]) -> str:
    """A token for the page after `items[:page_size]` when `items` holds one more."""
    if len(items) <= page_size:
        return ""
    return pagination.encode(key(items[page_size - 1]), filter_key)


def _windows(team: domain.Team | None) -> tuple[OperatingWindow, ...]:
    if team is None:
        return ()
    return tuple(
        OperatingWindow(day - 1, rt.parse_hhmm(opens) or time(), minutes)
        for day, opens, minutes in team.operating_hours
    )


def _rules(found: Any) -> list[pb.RuleBroken]:
    return [pb.RuleBroken(type=r.type, subject=r.subject, description=r.description) for r in found]


def _changed_ids(envelope: Any) -> list[str]:
    return list(unpack(envelope, events_pb2.ScheduleChanged).shift_ids)


def _published(envelope: Any) -> int:
    return len(_changed_ids(envelope)) if envelope is not None else 0


def _sees_drafts() -> bool:
    """Agents see only published shifts; everyone else who may read a roster sees drafts."""
    principal = PRINCIPAL.get()
    if principal is None:
        return True  # authentication is off (development flag)
    return any(principal.has(role) for role in Role if role is not Role.AGENT)


def _before_window(schedule: Schedule, first: date) -> bool:
    """Whether shifts on or after `first` may have been pruned from the aggregate: a change
    prunes shifts more than KEEP_DAYS before the dates it touches, which stay in the schedule."""
    dates = [s.roster_date for s in schedule.shifts]
    if not dates:
        return schedule.version > 0
    return first < min(dates) or first < max(dates) - timedelta(days=roster.KEEP_DAYS)


def _plans() -> bool:
    """Whether the caller is a scheduler or an admin (who may withdraw leave that started)."""
    principal = PRINCIPAL.get()
    if principal is None:
        return True  # authentication is off (development flag)
    return principal.has(Role.SCHEDULER) or principal.has(Role.ADMIN)


def _interval_proto(cell: roster.Interval, zone: str, length: int) -> pb.CoverageInterval:
    return pb.CoverageInterval(
        interval_minutes=length,
        start_time=to_timestamp(cell.start),
        end_time=to_timestamp(cell.end),
        start_client_local=localized(cell.start, zone),
        required=cell.required,
        scheduled=cell.staffed,
        gap=cell.gap,
    )


def _team_or_agent(v: Violations, request: pb.ListLeaveRequestsRequest) -> tuple[str, str]:
    """(team id, agent id) of a leave listing: exactly one of the two is given."""
    if request.team and request.agent:
        v.add("agent", "give team or agent, not both")
        return "", ""
    if request.agent:
        return "", parse_name(v, request.agent, "agent", "agents")
    if not request.team:
        v.add("team", "give team (a team's requests) or agent (one agent's)")
        return "", ""
    return parse_name(v, request.team, "team", "teams"), ""
