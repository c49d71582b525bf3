"""Hostile requests to every RosterService RPC: a well-formed answer every time.

Each RPC gets a valid template (it must answer OK) and then generated requests: variants of the
template with fields cleared or made hostile at any depth, and wholly generated messages. Every
answer must be OK or a refusal that carries a google.rpc.Status with an ErrorInfo; never
INTERNAL, UNKNOWN, a hang or a dropped connection. And a refusal changes nothing: after each
refused request the scheduling event store holds exactly what it held before (every roster
change is one event, so a refusal that wrote one is a partial change). Uses the strategies and
the runner of tests/integration/test_fuzz.py.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from grpc_status import rpc_status
from hypothesis import strategies as st
from wfm.scheduling.v1 import roster_service_pb2 as rpb

from tests import roster_helpers as h
from tests.conftest import System
from tests.fuzz_strategies import messages, variants
from tests.integration.test_fuzz import REFUSALS, error_infos, fuzz, stored_events
from wfm_runtime.testing import channel

pytestmark = pytest.mark.integration

SERVICE = rpb.DESCRIPTOR.services_by_name["RosterService"]
TIMEOUT_S = 5.0
AGENT = "agents/asha"


def _spec(day: str) -> rpb.ShiftSpec:
    return rpb.ShiftSpec(
        roster_date=day,
        start_local_time="08:00",
        length_minutes=540,
        anchor=rpb.ANCHOR_CLIENT,
        activities=[h.BREAK, h.LUNCH],
    )


def _hours() -> rpb.LeaveRequest:
    leave = rpb.LeaveRequest(kind=rpb.LEAVE_KIND_SICK)
    leave.start_time.FromJsonString("2027-04-01T15:00:00Z")
    leave.end_time.FromJsonString("2027-04-01T16:00:00Z")
    return leave


TEAM = f"teams/{h.TEAM}"
VALID: dict[str, Message] = {
    "CreateSite": rpb.CreateSiteRequest(
        site_id="uk-wfh",
        site=rpb.Site(display_name="UK", time_zone="Europe/London"),
        idempotency_key="f-site",
    ),
    "GetSite": rpb.GetSiteRequest(name="sites/pune"),
    "ListSites": rpb.ListSitesRequest(page_size=1),
    "SetPublicHolidays": rpb.SetPublicHolidaysRequest(
        site="sites/pune",
        year=2028,
        public_holidays=[rpb.PublicHoliday(date="2028-01-26", display_name="Republic Day")],
        idempotency_key="f-hol",
    ),
    "CreateShiftPattern": rpb.CreateShiftPatternRequest(
        shift_pattern_id="early",
        shift_pattern=rpb.ShiftPattern(
            display_name="Early",
            start_local_time="08:00",
            length_minutes=480,
            anchor=rpb.ANCHOR_AGENT,
            iso_weekdays=[1, 2],
        ),
        idempotency_key="f-pat",
    ),
    "GetShiftPattern": rpb.GetShiftPatternRequest(name="shiftPatterns/us-day"),
    "ListShiftPatterns": rpb.ListShiftPatternsRequest(page_size=1, anchor=rpb.ANCHOR_CLIENT),
    "AssignShift": rpb.AssignShiftRequest(
        agent=AGENT, shift_id="f1", shift=_spec("2027-03-22"), idempotency_key="f-assign"
    ),
    "BulkAssignShifts": rpb.BulkAssignShiftsRequest(
        shift_pattern="shiftPatterns/us-day",
        agents=["agents/ravi"],
        start_date="2027-03-29",
        end_date="2027-04-04",
        idempotency_key="f-bulk",
    ),
    "UpdateShift": rpb.UpdateShiftRequest(
        name="agents/asha/shifts/s1", shift=_spec("2027-03-09"), idempotency_key="f-move"
    ),
    "CancelShift": rpb.CancelShiftRequest(
        name="agents/asha/shifts/s2", reason="swap", idempotency_key="f-cancel"
    ),
    "PublishWeek": rpb.PublishWeekRequest(
        team=TEAM, week_start="2027-03-08", idempotency_key="f-pub"
    ),
    "GetAgentRoster": rpb.GetAgentRosterRequest(
        agent=AGENT, start_date="2027-03-01", end_date="2027-03-31"
    ),
    "GetTeamRoster": rpb.GetTeamRosterRequest(team=TEAM, week_start="2027-03-08"),
    "RequestLeave": rpb.RequestLeaveRequest(
        agent=AGENT, leave_request_id="f-l", leave_request=_hours(), idempotency_key="f-leave"
    ),
    "ApproveLeave": rpb.ApproveLeaveRequest(
        name="agents/asha/leaveRequests/l1", idempotency_key="f-approve"
    ),
    "DenyLeave": rpb.DenyLeaveRequest(
        name="agents/asha/leaveRequests/l2", reason="peak", idempotency_key="f-deny"
    ),
    "CancelLeave": rpb.CancelLeaveRequest(
        name="agents/asha/leaveRequests/l2", reason="plans changed", idempotency_key="f-withdraw"
    ),
    "ListLeaveRequests": rpb.ListLeaveRequestsRequest(
        team=TEAM, state=rpb.LEAVE_STATE_REQUESTED, page_size=1
    ),
    "GetLeaveBalance": rpb.GetLeaveBalanceRequest(agent=AGENT, year=2027),
    "SetCoverageRequirement": rpb.SetCoverageRequirementRequest(
        team=TEAM,
        weekday="mon",
        interval_minutes=30,
        required=[1] * 48,
        idempotency_key="f-need",
    ),
    "GetCoverage": rpb.GetCoverageRequest(
        team=TEAM, start_date="2027-03-08", end_date="2027-03-09"
    ),
}
assert set(VALID) == {m.name for m in SERVICE.methods}

WORDS = [
    "asha", "ravi", "ghost", "pune", "us-day", "s1", "s2", "l1", AGENT, "agents/ravi", TEAM,
    "sites/pune", "shiftPatterns/us-day", "agents/asha/shifts/s1", "agents/asha/leaveRequests/l1",
    "2027-03-08", "2027-03-10", "2027-03-14", "2027-02-29", "0001-01-01", "9999-12-31",
    "08:00", "02:30", "23:59", "24:00", "mon", "sun", "PUBLIC_HOLIDAY", "APPROVED_LEAVE",
    "Asia/Kolkata", "America/New_York", "Factory", "../etc/passwd",
]  # fmt: skip


async def _world(system: System) -> Any:
    roster = h.roster_stub(system, "admin-1", "admin")
    await h.add_team(system)
    await h.add_site(roster, {"2027-03-10": "Holiday"})
    await h.add_night_pattern(roster)
    for agent in ("asha", "ravi"):
        await h.add_agent(system, agent)
    for n, day in ((1, "2027-03-08"), (2, "2027-03-11")):
        await roster.AssignShift(
            rpb.AssignShiftRequest(
                agent=AGENT, shift_id=f"s{n}", shift=_spec(day), idempotency_key=f"w-s{n}"
            )
        )
    for n in (1, 2):
        await roster.RequestLeave(
            rpb.RequestLeaveRequest(
                agent=AGENT,
                leave_request_id=f"l{n}",
                leave_request=rpb.LeaveRequest(
                    kind=rpb.LEAVE_KIND_ANNUAL, start_date=f"2027-05-0{n}", end_date=f"2027-05-0{n}"
                ),
                idempotency_key=f"w-l{n}",
            )
        )
    return roster


async def _answer(
    channel: grpc.aio.Channel, method: str, payload: bytes
) -> tuple[grpc.StatusCode, str | None]:
    """The answer's code, and None for a well-formed answer, else what is wrong with it."""
    call = channel.unary_unary(f"/{SERVICE.full_name}/{method}")
    try:
        await call(payload, timeout=TIMEOUT_S)
    except grpc.aio.AioRpcError as err:
        if err.code() not in REFUSALS:
            return err.code(), f"{method}: {err.code().name} {err.details()!r:.300}"
        try:
            status = rpc_status.from_call(err)
        except ValueError:
            return err.code(), f"{method}: malformed status details"
        if not error_infos(status):
            return err.code(), f"{method}: {err.code().name} without ErrorInfo"
    return grpc.StatusCode.OK, None


@pytest.mark.parametrize("method", list(VALID))
async def test_hostile_roster_requests_get_well_formed_answers(system: System, method: str) -> None:
    await _world(system)
    token = system.minter.token("admin-1", "admin")
    ch = channel(f"127.0.0.1:{system.scheduling.port}", token)
    system.channels.append(ch)
    descriptor = SERVICE.methods_by_name[method].input_type
    call = ch.unary_unary(f"/{SERVICE.full_name}/{method}")
    await call(VALID[method].SerializeToString(), timeout=TIMEOUT_S)  # the template is accepted
    problems: list[str] = []
    stored = [await stored_events(system.scheduling)]  # before the next case (cases run serially)

    async def check(request: Message) -> None:
        code, problem = await _answer(ch, method, request.SerializeToString())
        before, stored[0] = stored[0], await stored_events(system.scheduling)
        if problem is None and code is not grpc.StatusCode.OK and stored[0] != before:
            problem = f"{method}: {code.name} left {stored[0] - before:+} stored events"
        if problem:
            problems.append(f"{problem} for {request!r:.400}")

    requests = st.one_of(messages(descriptor, WORDS), variants(VALID[method], WORDS))
    await fuzz(requests, check, examples=40)
    assert not problems, problems[:5]
