"""A coverage report over several days slices each day by its own requirement's interval
length (services/scheduling/roster.py `coverage_days`), and says which length each day has."""

from __future__ import annotations

from datetime import date

from services.scheduling import roster
from services.scheduling.roster import Requirement

MON, TUE, WED = date(2027, 3, 8), date(2027, 3, 9), date(2027, 3, 10)


def test_a_dated_15_minute_day_between_30_minute_templates_keeps_its_own_length() -> None:
    requirements = {
        "mon": Requirement("t", "mon", 30, (2,) * 48),
        "2027-03-09": Requirement("t", "2027-03-09", 15, (3,) * 96),
        "wed": Requirement("t", "wed", 30, (4,) * 48),
    }
    days = roster.coverage_days(requirements, MON, WED, "Asia/Kolkata")
    assert [(d.day, d.interval_minutes, len(d.slots)) for d in days] == [
        (MON, 30, 48),
        (TUE, 15, 96),
        (WED, 30, 48),
    ]
    assert [set(d.needs) for d in days] == [{2}, {3}, {4}]
    # Mixed lengths: the response's single field cannot describe every day.
    assert roster.common_interval(days) == 0
    assert roster.common_interval(days[:1]) == 30
    assert roster.common_interval(days[1:2]) == 15


def test_a_date_wins_over_its_weekday_template_and_no_requirement_is_30_minutes() -> None:
    requirements = {
        "tue": Requirement("t", "tue", 30, (1,) * 48),
        "2027-03-09": Requirement("t", "2027-03-09", 15, (5,) * 96),
    }
    tue, wed = roster.coverage_days(requirements, TUE, WED, "Europe/London")
    assert (tue.interval_minutes, set(tue.needs)) == (15, {5})
    assert (wed.interval_minutes, set(wed.needs), len(wed.slots)) == (30, {0}, 48)
