"""CancelLeave over gRPC: who may withdraw which leave, and what it gives back."""

from __future__ import annotations

from datetime import date, timedelta

import grpc
import pytest
from wfm.scheduling.v1 import roster_service_pb2 as rpb

from tests import roster_helpers as h
from tests.conftest import System
from tests.integration.test_roster_api import _setup, _spec
from wfm_runtime.timefmt import utc_now

pytestmark = pytest.mark.integration


def _monday_ahead() -> date:
    """A Monday two months or more from today whose Tuesday is in the same year: leave an
    agent may still withdraw, whenever the suite runs (a fixed date would start one day)."""
    day = utc_now().date() + timedelta(days=60)
    day += timedelta(days=7 - day.weekday())
    return day if (day + timedelta(days=1)).year == day.year else day + timedelta(days=7)


def _days(agent: str, leave_id: str, first: str, last: str) -> rpb.RequestLeaveRequest:
    return rpb.RequestLeaveRequest(
        agent=f"agents/{agent}",
        leave_request_id=leave_id,
        leave_request=rpb.LeaveRequest(kind=rpb.LEAVE_KIND_ANNUAL, start_date=first, end_date=last),
        idempotency_key=f"ask-{agent}-{leave_id}",
    )


async def test_agents_withdraw_own_future_leave_and_schedulers_any(system: System) -> None:
    scheduler = await _setup(system, "asha", "ravi")
    monday = _monday_ahead()
    first, second = monday.isoformat(), (monday + timedelta(days=1)).isoformat()
    await scheduler.AssignShift(  # type: ignore[attr-defined]
        rpb.AssignShiftRequest(
            agent="agents/asha", shift_id="s1", shift=_spec(first), idempotency_key="k1"
        )
    )
    asha = h.roster_stub(system, "asha", "agent")
    balance = rpb.GetLeaveBalanceRequest(agent="agents/asha", year=monday.year)
    before = await asha.GetLeaveBalance(balance)
    await asha.RequestLeave(_days("asha", "l1", first, second))
    approved = await scheduler.ApproveLeave(  # type: ignore[attr-defined]
        rpb.ApproveLeaveRequest(
            name="agents/asha/leaveRequests/l1", reason="enjoy", idempotency_key="a1"
        )
    )
    assert (approved.state, approved.decision_reason) == (rpb.LEAVE_STATE_APPROVED, "enjoy")
    assert (await asha.GetLeaveBalance(balance)).taken_days == 2

    withdraw = rpb.CancelLeaveRequest(
        name="agents/asha/leaveRequests/l1", reason="plans changed", idempotency_key="w1"
    )
    code, _, _ = await h.refusal(h.roster_stub(system, "ravi", "agent").CancelLeave(withdraw))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    withdrawn = await asha.CancelLeave(withdraw)
    assert (withdrawn.state, withdrawn.decision_reason) == (
        rpb.LEAVE_STATE_CANCELLED,
        "plans changed",
    )
    after = await asha.GetLeaveBalance(balance)
    assert (after.taken_days, after.remaining_days) == (0, before.remaining_days)
    assert await asha.CancelLeave(withdraw) == withdrawn  # a retry answers the same
    # The shift the approval cancelled stays cancelled.
    roster = await scheduler.GetAgentRoster(  # type: ignore[attr-defined]
        rpb.GetAgentRosterRequest(agent="agents/asha", start_date=first, end_date=first)
    )
    assert [s.state for d in roster.days for s in d.shifts] == [rpb.SHIFT_STATE_CANCELLED]
    code, details, _ = await h.refusal(
        scheduler.ApproveLeave(  # type: ignore[attr-defined]
            rpb.ApproveLeaveRequest(name="agents/asha/leaveRequests/l1", idempotency_key="a2")
        )
    )
    assert (code, h.rule_types(details)) == (grpc.StatusCode.FAILED_PRECONDITION, ["LEAVE_DECIDED"])

    # Leave that has started: only a scheduler withdraws it. Denied leave: nobody.
    await asha.RequestLeave(_days("asha", "old", "2020-01-06", "2020-01-06"))
    past = rpb.CancelLeaveRequest(name="agents/asha/leaveRequests/old", idempotency_key="w2")
    code, details, _ = await h.refusal(asha.CancelLeave(past))
    assert (code, h.rule_types(details)) == (grpc.StatusCode.FAILED_PRECONDITION, ["LEAVE_STARTED"])
    assert (await scheduler.CancelLeave(past)).state == rpb.LEAVE_STATE_CANCELLED  # type: ignore[attr-defined]
    later = (_monday_ahead() + timedelta(days=14)).isoformat()  # a date that stays ahead
    await asha.RequestLeave(_days("asha", "l3", later, later))
    await scheduler.DenyLeave(  # type: ignore[attr-defined]
        rpb.DenyLeaveRequest(
            name="agents/asha/leaveRequests/l3", reason="peak", idempotency_key="d3"
        )
    )
    code, details, _ = await h.refusal(
        asha.CancelLeave(
            rpb.CancelLeaveRequest(name="agents/asha/leaveRequests/l3", idempotency_key="w3")
        )
    )
    assert (code, h.rule_types(details)) == (grpc.StatusCode.FAILED_PRECONDITION, ["LEAVE_DECIDED"])
    code, _, _ = await h.refusal(
        asha.CancelLeave(
            rpb.CancelLeaveRequest(
                name="agents/asha/leaveRequests/l1", reason="x" * 501, idempotency_key="w4"
            )
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
