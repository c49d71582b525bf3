"""Availability rules (services/availability/domain.py): validation, decisions, history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.availability.domain import (
    AgentAvailability,
    SetStatus,
    Status,
    StatusChanged,
    Transition,
    build_history,
    decide_set_status,
    evolve,
    validate_range,
    validate_set_status,
)
from wfm_runtime.errors import InvalidArgument, Violations

T0 = datetime(2026, 3, 9, 0, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def validate(
    *,
    agent_id: str = "a1",
    status_name: str | None = "AVAILABLE",
    reason_code: str = "",
    idempotency_key: str = "k-1",
    expected_version: int | None = None,
) -> tuple[SetStatus | None, Violations]:
    v = Violations()
    command = validate_set_status(
        agent_id=agent_id,
        status_name=status_name,
        reason_code=reason_code,
        idempotency_key=idempotency_key,
        expected_version=expected_version,
        v=v,
    )
    return command, v


def fields(v: Violations) -> list[str]:
    return [item.field for item in v.items]


# --- validate_set_status -----------------------------------------------------------------
class TestValidateSetStatus:
    def test_valid_request_becomes_a_command(self) -> None:
        command, v = validate(status_name="BREAK", reason_code="COFFEE_2", expected_version=3)
        assert v.items == []
        assert command == SetStatus("a1", Status.BREAK, "COFFEE_2")

    @pytest.mark.parametrize("status", list(Status))
    def test_every_status_is_accepted(self, status: Status) -> None:
        command, v = validate(status_name=status.value)
        assert v.items == []
        assert command is not None and command.status is status

    def test_missing_status_is_a_violation_listing_the_choices(self) -> None:
        command, v = validate(status_name=None)
        assert command is None
        assert fields(v) == ["status"]
        for status in Status:
            assert status.value in v.items[0].description

    @pytest.mark.parametrize(
        "reason_code",
        [
            "A" * 65,
            "coffee",
            "COFFEE BREAK",
            "COFFEE-BREAK",
            "CAFÉ",
            "SYSTEM.ISSUE",
            "X" * 500,
        ],
    )
    def test_bad_reason_code(self, reason_code: str) -> None:
        command, v = validate(reason_code=reason_code)
        assert command is None
        assert fields(v) == ["reason_code"]
        assert "64" in v.items[0].description

    @pytest.mark.parametrize("reason_code", ["", "A", "SYSTEM_ISSUE", "A" * 64, "0123_ABC"])
    def test_good_reason_code(self, reason_code: str) -> None:
        command, v = validate(reason_code=reason_code)
        assert v.items == []
        assert command is not None and command.reason_code == reason_code

    def test_reason_code_with_trailing_newline_is_rejected(self) -> None:
        command, v = validate(reason_code="COFFEE\n")
        assert fields(v) == ["reason_code"]
        assert command is None

    def test_missing_idempotency_key(self) -> None:
        command, v = validate(idempotency_key="")
        assert command is None
        assert fields(v) == ["idempotency_key"]
        assert "required" in v.items[0].description

    @pytest.mark.parametrize("key", ["k" * 129, "has space", "tab\there", "é-key", "k\x00"])
    def test_bad_idempotency_key(self, key: str) -> None:
        command, v = validate(idempotency_key=key)
        assert command is None
        assert fields(v) == ["idempotency_key"]
        assert "1-128" in v.items[0].description

    def test_idempotency_key_of_128_printable_characters_is_fine(self) -> None:
        command, v = validate(idempotency_key="~!" * 64)
        assert v.items == []
        assert command is not None

    @pytest.mark.parametrize("expected", [-1, -(2**63)])
    def test_negative_expected_version(self, expected: int) -> None:
        command, v = validate(expected_version=expected)
        assert command is None
        assert fields(v) == ["expected_version"]

    @pytest.mark.parametrize("expected", [None, 0, 1, 2**62])
    def test_absent_or_non_negative_expected_version(self, expected: int | None) -> None:
        command, v = validate(expected_version=expected)
        assert v.items == []
        assert command is not None

    def test_violations_are_collected_together(self) -> None:
        command, v = validate(
            status_name=None, reason_code="bad code", idempotency_key="", expected_version=-5
        )
        assert command is None
        assert fields(v) == ["status", "reason_code", "idempotency_key", "expected_version"]
        with pytest.raises(InvalidArgument) as raised:
            v.raise_if_any()
        assert [x.field for x in raised.value.violations] == fields(v)

    def test_violations_already_present_block_the_command(self) -> None:
        v = Violations()
        v.add("name", "bad name")
        command = validate_set_status(
            agent_id="a1",
            status_name="AVAILABLE",
            reason_code="",
            idempotency_key="k",
            expected_version=None,
            v=v,
        )
        assert command is None
        assert fields(v) == ["name"]

    def test_empty_agent_id_gives_no_command_and_no_extra_violation(self) -> None:
        # The caller reports the bad name; the domain only refuses to build a command.
        command, v = validate(agent_id="")
        assert command is None
        assert v.items == []

    def test_unknown_status_name_is_a_violation(self) -> None:
        command, v = validate(status_name="SLEEPING")
        assert command is None
        assert fields(v) == ["status"]


# --- decide_set_status / evolve ----------------------------------------------------------
class TestDecideSetStatus:
    def test_first_status_is_recorded_even_when_it_equals_the_default(self) -> None:
        current = AgentAvailability("a1")  # version 0: shown as OFFLINE, never set
        change = decide_set_status(current, SetStatus("a1", Status.OFFLINE, ""), "night", at(1))
        assert change == StatusChanged(
            agent_id="a1",
            team="night",
            status=Status.OFFLINE,
            reason_code="",
            since=at(1),
            previous_status=Status.OFFLINE,
            previous_since=None,
            previous_reason_code="",
        )

    def test_same_status_and_reason_is_a_no_op(self) -> None:
        current = AgentAvailability("a1", Status.BREAK, "COFFEE", at(1), version=4)
        assert (
            decide_set_status(current, SetStatus("a1", Status.BREAK, "COFFEE"), "t", at(2)) is None
        )

    def test_same_status_other_reason_is_a_change(self) -> None:
        current = AgentAvailability("a1", Status.BREAK, "COFFEE", at(1), version=4)
        change = decide_set_status(current, SetStatus("a1", Status.BREAK, "TEA"), "t", at(2))
        assert change is not None
        assert (change.status, change.reason_code, change.since) == (Status.BREAK, "TEA", at(2))
        assert change.previous_reason_code == "COFFEE"

    def test_previous_fields_describe_the_state_left(self) -> None:
        current = AgentAvailability("a1", Status.ON_CONTACT, "VIP", at(1), version=7)
        change = decide_set_status(
            current, SetStatus("a1", Status.AFTER_CONTACT_WORK, ""), "day", at(1.5)
        )
        assert change is not None
        assert change.previous_status is Status.ON_CONTACT
        assert change.previous_since == at(1)
        assert change.previous_reason_code == "VIP"
        assert change.team == "day"
        assert change.since == at(1.5)

    def test_since_never_goes_backwards_when_the_clock_does(self) -> None:
        current = AgentAvailability("a1", Status.AVAILABLE, "", at(5), version=2)
        change = decide_set_status(current, SetStatus("a1", Status.LUNCH, ""), "t", at(4))
        assert change is not None
        assert change.since == at(5)

    def test_since_equal_to_now_is_kept(self) -> None:
        current = AgentAvailability("a1", Status.AVAILABLE, "", at(5), version=2)
        change = decide_set_status(current, SetStatus("a1", Status.LUNCH, ""), "t", at(5))
        assert change is not None
        assert change.since == at(5)

    def test_evolve_applies_the_change_and_version(self) -> None:
        current = AgentAvailability("a1", Status.AVAILABLE, "", at(1), version=2)
        change = decide_set_status(current, SetStatus("a1", Status.MEETING, "1ON1"), "t", at(3))
        assert change is not None
        state = evolve(current, change, 3)
        assert state == AgentAvailability("a1", Status.MEETING, "1ON1", at(3), 3)

    def test_evolve_then_same_command_is_a_no_op(self) -> None:
        state = AgentAvailability("a1")
        command = SetStatus("a1", Status.TRAINING, "LMS")
        change = decide_set_status(state, command, "t", at(1))
        assert change is not None
        state = evolve(state, change, 1)
        assert decide_set_status(state, command, "t", at(2)) is None

    def test_productive_statuses(self) -> None:
        assert {s for s in Status if s.productive} == {
            Status.AVAILABLE,
            Status.ON_CONTACT,
            Status.AFTER_CONTACT_WORK,
        }


# --- validate_range ----------------------------------------------------------------------
class TestValidateRange:
    def check(self, start: datetime | None, end: datetime | None) -> list[str]:
        v = Violations()
        validate_range(start, end, v)
        return fields(v)

    def test_valid_range(self) -> None:
        assert self.check(at(0), at(24)) == []

    def test_missing_start(self) -> None:
        assert self.check(None, at(1)) == ["start_time"]

    def test_missing_end(self) -> None:
        assert self.check(at(1), None) == ["end_time"]

    def test_both_missing(self) -> None:
        assert self.check(None, None) == ["start_time", "end_time"]

    def test_inverted(self) -> None:
        assert self.check(at(2), at(1)) == ["end_time"]

    def test_empty(self) -> None:
        assert self.check(at(2), at(2)) == ["end_time"]

    def test_exactly_31_days_is_allowed(self) -> None:
        assert self.check(at(0), at(0) + timedelta(days=31)) == []

    def test_more_than_31_days(self) -> None:
        v = Violations()
        validate_range(at(0), at(0) + timedelta(days=31, microseconds=1), v)
        assert fields(v) == ["end_time"]
        assert "31 days" in v.items[0].description


# --- build_history: hand-computed examples ------------------------------------------------
def tr(version: int, status: Status, hours: float, reason: str = "") -> Transition:
    return Transition(version, status, reason, at(hours))


DAY = [
    tr(1, Status.AVAILABLE, 8),
    tr(2, Status.BREAK, 10, "COFFEE"),
    tr(3, Status.ON_CONTACT, 10.25),
    tr(4, Status.AFTER_CONTACT_WORK, 11),
    tr(5, Status.LUNCH, 12),
    tr(6, Status.AVAILABLE, 13),
]


class TestBuildHistory:
    def test_working_day_clipped_to_range(self) -> None:
        history = build_history(DAY, at(9), at(17), now=at(20))
        assert [(s.status, s.reason_code, s.start, s.end, s.ongoing) for s in history.segments] == [
            (Status.AVAILABLE, "", at(9), at(10), False),
            (Status.BREAK, "COFFEE", at(10), at(10.25), False),
            (Status.ON_CONTACT, "", at(10.25), at(11), False),
            (Status.AFTER_CONTACT_WORK, "", at(11), at(12), False),
            (Status.LUNCH, "", at(12), at(13), False),
            (Status.AVAILABLE, "", at(13), at(17), False),
        ]
        assert history.totals == {
            Status.AVAILABLE: timedelta(hours=5),
            Status.BREAK: timedelta(minutes=15),
            Status.ON_CONTACT: timedelta(minutes=45),
            Status.AFTER_CONTACT_WORK: timedelta(hours=1),
            Status.LUNCH: timedelta(hours=1),
        }
        assert history.productive == timedelta(hours=6, minutes=45)
        assert history.covered == timedelta(hours=8)

    def test_ongoing_last_segment_runs_until_now(self) -> None:
        history = build_history(DAY, at(9), at(17), now=at(14.5))
        last = history.segments[-1]
        assert (last.status, last.start, last.end, last.ongoing) == (
            Status.AVAILABLE,
            at(13),
            at(14.5),
            True,
        )
        assert all(not s.ongoing for s in history.segments[:-1])
        assert history.covered == timedelta(hours=5.5)
        assert history.totals[Status.AVAILABLE] == timedelta(hours=2.5)
        assert history.productive == timedelta(hours=4.25)

    def test_now_exactly_at_end_is_not_ongoing(self) -> None:
        history = build_history(DAY, at(9), at(17), now=at(17))
        assert history.segments[-1].end == at(17)
        assert history.segments[-1].ongoing is False

    def test_time_before_the_first_status_is_not_covered(self) -> None:
        history = build_history([tr(1, Status.ON_CONTACT, 11)], at(9), at(17), now=at(20))
        assert [(s.start, s.end) for s in history.segments] == [(at(11), at(17))]
        assert history.covered == timedelta(hours=6)
        assert history.productive == timedelta(hours=6)

    def test_status_set_long_before_covers_the_whole_range(self) -> None:
        history = build_history([tr(1, Status.OFFLINE, -100)], at(9), at(17), now=at(20))
        assert [(s.status, s.start, s.end) for s in history.segments] == [
            (Status.OFFLINE, at(9), at(17))
        ]
        assert history.productive == timedelta()
        assert history.covered == timedelta(hours=8)

    def test_no_transitions(self) -> None:
        history = build_history([], at(9), at(17), now=at(20))
        assert history.segments == []
        assert history.totals == {}
        assert history.productive == timedelta()
        assert history.covered == timedelta()

    def test_range_entirely_in_the_future(self) -> None:
        history = build_history(DAY, at(30), at(40), now=at(20))
        assert history.segments == []
        assert history.covered == timedelta()

    def test_transitions_are_ordered_by_version_not_input_order(self) -> None:
        history = build_history(list(reversed(DAY)), at(9), at(17), now=at(20))
        assert history == build_history(DAY, at(9), at(17), now=at(20))

    def test_instant_transitions_leave_no_empty_segment(self) -> None:
        transitions = [
            tr(1, Status.AVAILABLE, 9),
            tr(2, Status.ON_CONTACT, 10),
            tr(3, Status.AFTER_CONTACT_WORK, 10),  # same instant: zero-length ON_CONTACT
            tr(4, Status.AVAILABLE, 10.5),
        ]
        history = build_history(transitions, at(9), at(12), now=at(20))
        assert [s.status for s in history.segments] == [
            Status.AVAILABLE,
            Status.AFTER_CONTACT_WORK,
            Status.AVAILABLE,
        ]
        assert Status.ON_CONTACT not in history.totals
        assert all(s.duration > timedelta() for s in history.segments)

    def test_a_status_left_and_taken_again_in_one_instant_is_one_segment(self) -> None:
        transitions = [
            tr(1, Status.AVAILABLE, 9),
            tr(2, Status.LUNCH, 10),  # overtaken in the same millisecond
            tr(3, Status.AVAILABLE, 10),
            tr(4, Status.BREAK, 11),
        ]
        history = build_history(transitions, at(9), at(12), now=at(11.5))
        assert [(s.status, s.start, s.end, s.ongoing) for s in history.segments] == [
            (Status.AVAILABLE, at(9), at(11), False),
            (Status.BREAK, at(11), at(11.5), True),
        ]
        assert history.totals == {
            Status.AVAILABLE: timedelta(hours=2),
            Status.BREAK: timedelta(hours=0.5),
        }
        assert history.productive == timedelta(hours=2)
        assert history.covered == timedelta(hours=2.5)

    def test_the_same_status_set_again_continues_its_segment_up_to_now(self) -> None:
        transitions = [tr(1, Status.BREAK, 9, "COFFEE"), tr(2, Status.BREAK, 10, "COFFEE")]
        history = build_history(transitions, at(8), at(12), now=at(11))
        assert [(s.status, s.start, s.end, s.ongoing) for s in history.segments] == [
            (Status.BREAK, at(9), at(11), True)
        ]
        assert history.totals == {Status.BREAK: timedelta(hours=2)}

    def test_a_new_reason_in_the_same_status_stays_a_segment_of_its_own(self) -> None:
        transitions = [
            tr(1, Status.AVAILABLE, 9),
            tr(2, Status.AVAILABLE, 10, "VIP_QUEUE"),
            tr(3, Status.BREAK, 10.5, "COFFEE"),
            tr(4, Status.BREAK, 10.75),
        ]
        history = build_history(transitions, at(9), at(11), now=at(20))
        assert [(s.status, s.reason_code, s.start, s.end) for s in history.segments] == [
            (Status.AVAILABLE, "", at(9), at(10)),
            (Status.AVAILABLE, "VIP_QUEUE", at(10), at(10.5)),
            (Status.BREAK, "COFFEE", at(10.5), at(10.75)),
            (Status.BREAK, "", at(10.75), at(11)),
        ]
        assert history.totals == {
            Status.AVAILABLE: timedelta(hours=1.5),
            Status.BREAK: timedelta(hours=0.5),
        }

    def test_segment_across_a_dst_gap_counts_real_time(self) -> None:
        # New York springs forward on 2026-03-08 at 02:00 EST (07:00Z): 01:30 EST -> 03:30 EDT
        # is two wall-clock hours but one real hour.
        start = datetime(2026, 3, 8, 5, 0, tzinfo=UTC)
        transitions = [
            Transition(1, Status.AVAILABLE, "", datetime(2026, 3, 8, 6, 30, tzinfo=UTC)),
            Transition(2, Status.BREAK, "", datetime(2026, 3, 8, 7, 30, tzinfo=UTC)),
        ]
        history = build_history(transitions, start, start + timedelta(hours=5), now=at(100))
        assert history.segments[0].duration == timedelta(hours=1)
        assert history.totals[Status.AVAILABLE] == timedelta(hours=1)
        assert history.covered == timedelta(hours=3, minutes=30)

    def test_segments_are_clipped_to_end_even_with_later_transitions(self) -> None:
        transitions = [tr(1, Status.AVAILABLE, 8), tr(2, Status.BREAK, 18)]
        history = build_history(transitions, at(9), at(17), now=at(20))
        assert [(s.start, s.end) for s in history.segments] == [(at(9), at(17))]
        assert history.covered == timedelta(hours=8)
