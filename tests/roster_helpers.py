"""Helpers for roster tests: a RosterService stub per caller, and a Pune US-night setup."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import grpc
from grpc_status import rpc_status
from wfm.scheduling.v1 import directory_service_pb2 as dpb
from wfm.scheduling.v1 import roster_service_pb2 as rpb
from wfm.scheduling.v1 import roster_service_pb2_grpc as rpb_grpc

from tests.conftest import System
from wfm_runtime.testing import channel, unpack_details

TEAM = "pune-us-night"
# US Eastern business hours, every day: the Pune night shift is 08:00-17:00 New York time.
NY_DAY = [
    dpb.OperatingWindow(iso_weekday=d, open_local_time="08:00", length_minutes=9 * 60)
    for d in range(1, 8)
]
LUNCH = rpb.Activity(
    kind=rpb.ACTIVITY_KIND_LUNCH, offset_minutes=240, length_minutes=30, paid=False
)
BREAK = rpb.Activity(kind=rpb.ACTIVITY_KIND_BREAK, offset_minutes=120, length_minutes=15, paid=True)


def roster_stub(system: System, subject: str = "", *roles: str, teams: tuple[str, ...] = ()) -> Any:
    token = system.minter.token(subject or "sched-1", *(roles or ("scheduler",)), teams=teams)
    ch = channel(f"127.0.0.1:{system.scheduling.port}", token)
    system.channels.append(ch)
    return rpb_grpc.RosterServiceStub(ch)


async def add_team(system: System, team: str = TEAM, **fields: Any) -> None:
    await system.directory.CreateTeam(
        dpb.CreateTeamRequest(
            team_id=team,
            idempotency_key=f"team-{team}",
            team=dpb.Team(
                display_name="Pune US night",
                client_time_zone="America/New_York",
                client="acme",
                operating_hours=NY_DAY,
                **fields,
            ),
        )
    )


async def add_agent(
    system: System,
    agent_id: str,
    team: str = TEAM,
    *,
    weekly_minutes: int = 45 * 60,
    part_time: bool = False,
    leave_days: int = 29,
) -> None:
    await system.directory.CreateAgent(
        dpb.CreateAgentRequest(
            agent_id=agent_id,
            idempotency_key=f"agent-{agent_id}",
            agent=dpb.Agent(
                display_name=agent_id,
                team=f"teams/{team}",
                site="pune",
                time_zone="Asia/Kolkata",
                contract_type=dpb.CONTRACT_TYPE_PART_TIME
                if part_time
                else dpb.CONTRACT_TYPE_FULL_TIME,
                weekly_minutes=weekly_minutes,
                annual_leave_days=leave_days,
            ),
        )
    )


async def add_site(roster: Any, holidays: dict[str, str]) -> None:
    await roster.CreateSite(
        rpb.CreateSiteRequest(
            site_id="pune",
            idempotency_key="site-pune",
            site=rpb.Site(
                display_name="Pune",
                time_zone="Asia/Kolkata",
                public_holidays=[
                    rpb.PublicHoliday(date=d, display_name=n) for d, n in holidays.items()
                ],
            ),
        )
    )


async def add_night_pattern(roster: Any, weekdays: tuple[int, ...] = (1, 2, 3, 4, 5)) -> None:
    await roster.CreateShiftPattern(
        rpb.CreateShiftPatternRequest(
            shift_pattern_id="us-day",
            idempotency_key="pattern-us-day",
            shift_pattern=rpb.ShiftPattern(
                display_name="US day (Pune night)",
                start_local_time="08:00",
                length_minutes=9 * 60,
                anchor=rpb.ANCHOR_CLIENT,
                activities=[BREAK, LUNCH],
                iso_weekdays=list(weekdays),
            ),
        )
    )


async def assign_us_day_week(
    roster: Any, *agents: str, week_start: str = "2027-03-01", key: str = "b"
) -> Any:
    """The us-day pattern (add_night_pattern) for the agents over the week from `week_start`
    (a Monday); returns the BulkAssignShifts response."""
    end = date.fromisoformat(week_start) + timedelta(days=6)
    return await roster.BulkAssignShifts(
        rpb.BulkAssignShiftsRequest(
            shift_pattern="shiftPatterns/us-day",
            agents=[f"agents/{a}" for a in agents],
            start_date=week_start,
            end_date=end.isoformat(),
            idempotency_key=key,
        )
    )


async def refusal(call: Any) -> tuple[grpc.StatusCode, list[Any], str]:
    """The code, the google.rpc details and the message of a call that must fail."""
    try:
        await call
    except grpc.aio.AioRpcError as err:
        status = rpc_status.from_call(err)
        return err.code(), unpack_details(status) if status else [], err.details() or ""
    raise AssertionError("the call was accepted")


def rule_types(details: list[Any]) -> list[str]:
    from google.rpc import error_details_pb2

    return sorted(
        v.type
        for d in details
        if isinstance(d, error_details_pb2.PreconditionFailure)
        for v in d.violations
    )
