"""Effective-dated working days: a contract change takes effect from the agent's next local day,
and the leave balance counts each public holiday on the working days in force on its date
(services/scheduling/domain.py `working_days_from`, roster.py `Context.working_days_on`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from wfm.events.v1.envelope_pb2 import EventEnvelope

from services.scheduling import domain, roster, store
from services.scheduling.roster import Context, Schedule
from wfm_runtime.events import new_envelope

MON_FRI = domain.Agent(
    "asha",
    display_name="Asha",
    team_id="day",
    site="pune",
    time_zone="Asia/Kolkata",
    weekly_minutes=40 * 60,
    annual_leave_days=29,
    version=1,
    create_time=datetime(2027, 1, 4, 4, 0, tzinfo=UTC),
)
SUN_THU = (1, 2, 3, 4, 7)
SAT_WED = (1, 2, 3, 6, 7)
EMPTY = Schedule("asha")


def changed(agent: domain.Agent, days: tuple[int, ...], at: datetime) -> domain.Agent:
    result = domain.decide_update_agent(
        agent, replace(agent, working_days=days), frozenset({"working_days"}), True, at
    )
    assert result is not None
    return replace(result[0], version=agent.version + 1)


def context(agent: domain.Agent, *holidays: date) -> Context:
    """What the scheduling service reads for the agent (roster_api `_facts`)."""
    return Context(
        agent_zone=agent.time_zone,
        client_zone=agent.time_zone,
        team_id=agent.team_id,
        weekly_minutes=agent.weekly_minutes,
        site=agent.site,
        annual_allowance_days=agent.annual_leave_days,
        holidays=frozenset(holidays),
        working_days=agent.working_weekdays,
        working_days_history=agent.working_weekdays_history,
    )


def test_a_change_takes_effect_from_the_agents_next_local_day() -> None:
    # Friday 11 June 2027, 10:00 IST: Monday-Friday becomes Sunday-Thursday from Saturday 12.
    agent = changed(MON_FRI, SUN_THU, datetime(2027, 6, 11, 4, 30, tzinfo=UTC))
    assert agent.working_days_history == ((date(2027, 1, 4), ()), (date(2027, 6, 12), SUN_THU))
    ctx = context(agent)
    assert ctx.working_days_on(date(2026, 7, 3)) == {1, 2, 3, 4, 5}  # before registration
    assert ctx.working_days_on(date(2027, 6, 11)) == {1, 2, 3, 4, 5}  # the day of the change
    assert ctx.working_days_on(date(2027, 6, 12)) == set(SUN_THU)
    assert ctx.working_days_on(date(2030, 1, 1)) == set(SUN_THU)
    # Without a history the current working days held all along (documents written before).
    assert context(MON_FRI).working_days_on(date(2027, 6, 12)) == {1, 2, 3, 4, 5}


def test_each_holiday_is_counted_on_the_working_days_in_force_on_its_date() -> None:
    agent = changed(MON_FRI, SUN_THU, datetime(2027, 6, 11, 4, 30, tzinfo=UTC))
    ctx = context(
        agent,
        date(2027, 3, 5),  # a Friday before the change: a working day then
        date(2027, 6, 11),  # a Friday, the day of the change: it began on Monday-Friday
        date(2027, 6, 13),  # a Sunday after: a working day now
        date(2027, 6, 18),  # a Friday after: a rest day now
    )
    bal = roster.balance(EMPTY, 2027, ctx)
    assert (bal.public_holidays, bal.remaining_days) == (3, 26.0)
    # Leave not yet approved is priced on the current contract: Friday the 18th costs nothing.
    week = roster.Leave(
        "l1",
        roster.LeaveKind.ANNUAL,
        datetime(2027, 6, 13, tzinfo=UTC),
        datetime(2027, 6, 19, tzinfo=UTC),
        date(2027, 6, 14),
        date(2027, 6, 18),
        full_days=True,
    )
    assert roster.request_leave(EMPTY, week, ctx).schedule.leave[0].days == 4.0


def test_a_change_on_new_years_eve_counts_from_the_next_day_on_the_agents_clock() -> None:
    # Friday 31 December 2027 is a holiday on Monday-Friday; Saturday 1 January 2028 on
    # Saturday-Wednesday. Both changes are made on 31 December UTC.
    holidays = (date(2027, 12, 31), date(2028, 1, 1))
    evening = changed(MON_FRI, SAT_WED, datetime(2027, 12, 31, 17, 0, tzinfo=UTC))  # 22:30 IST
    after_midnight = changed(MON_FRI, SAT_WED, datetime(2027, 12, 31, 20, 0, tzinfo=UTC))
    assert evening.working_days_history[-1][0] == date(2028, 1, 1)
    assert after_midnight.working_days_history[-1][0] == date(2028, 1, 2)  # 01:30 IST on the 1st
    for agent, new_years_day in ((evening, 1), (after_midnight, 0)):
        ctx = context(agent, *holidays)
        assert roster.balance(EMPTY, 2027, ctx).public_holidays == 1
        assert roster.balance(EMPTY, 2028, ctx).public_holidays == new_years_day


def test_changes_taking_effect_the_same_day_keep_the_last() -> None:
    morning = changed(MON_FRI, SUN_THU, datetime(2027, 6, 11, 4, 30, tzinfo=UTC))
    noon = changed(morning, SAT_WED, datetime(2027, 6, 11, 7, 0, tzinfo=UTC))
    assert noon.working_days_history == ((date(2027, 1, 4), ()), (date(2027, 6, 12), SAT_WED))
    back = changed(noon, (1, 2, 3, 4, 5), datetime(2027, 6, 11, 9, 0, tzinfo=UTC))
    assert back.working_days_history == ((date(2027, 1, 4), ()),)
    # Other fields changing keep the history; a later change adds a period.
    at = datetime(2027, 6, 12, 7, 0, tzinfo=UTC)
    renamed = domain.decide_update_agent(
        noon, replace(noon, display_name="A."), frozenset({"display_name"}), True, at
    )
    assert renamed is not None and renamed[0].working_days_history == noon.working_days_history
    later = changed(noon, SUN_THU, datetime(2027, 9, 1, 4, 0, tzinfo=UTC))
    assert [p[0] for p in later.working_days_history] == [
        date(2027, 1, 4),
        date(2027, 6, 12),
        date(2027, 9, 2),
    ]


def test_the_history_is_short() -> None:
    agent = MON_FRI
    for n in range(domain.MAX_WORKING_DAYS_PERIODS + 5):
        days = SUN_THU if n % 2 == 0 else (1, 2, 3, 4, 5)
        agent = changed(agent, days, datetime(2027, 1, 5, 4, 0, tzinfo=UTC) + timedelta(days=n))
    assert len(agent.working_days_history) == domain.MAX_WORKING_DAYS_PERIODS
    assert agent.working_days_history[-1] == (date(2027, 2, 11), SUN_THU)


def _event(agent: domain.Agent) -> EventEnvelope:
    return new_envelope(
        producer="scheduling",
        aggregate_type=store.AGENT,
        aggregate_id=agent.agent_id,
        version=agent.version,
        payload=store.agent_updated(agent, ["working_days"]),
        occurred_at=datetime(2027, 6, 11, 4, 30, tzinfo=UTC),
    )


def test_the_event_and_the_view_document_carry_the_history() -> None:
    # The event alone gives the full state (replays, the projection, a rebuild); the view
    # document is what the next command and the balance start from.
    agent = changed(MON_FRI, SUN_THU, datetime(2027, 6, 11, 4, 30, tzinfo=UTC))
    assert store.evolve_agent(domain.Agent("asha"), _event(agent)) == agent
    assert store.agent_doc_to_domain({"_id": "asha", **store.agent_doc(agent)}) == agent
    # A document written before the history was kept has none.
    old = store.agent_doc(MON_FRI)
    del old["working_days_history"]
    assert store.agent_doc_to_domain({"_id": "asha", **old}).working_days_history == ()
