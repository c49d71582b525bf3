"""Times for training sessions that tests check in (StartSession).

Check-in is open only from an hour before a session's scheduled start until its scheduled end
(services/training/domain.py, CHECK_IN_LEAD), so a test that starts a session schedules it
around the time the test runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from unittest import mock

from services.training import flows
from wfm_runtime.timefmt import utc_now


def starting_soon(minutes: int = 5) -> datetime:
    """A start `minutes` from now, on the whole minute (UTC): check-in is already open for it,
    and stays open until the session ends."""
    return utc_now().replace(second=0, microsecond=0) + timedelta(minutes=minutes)


@contextlib.contextmanager
def training_clock_at(instant: datetime) -> Iterator[None]:
    """The training service's commands read `instant` as now meanwhile (the services run in the
    test's process). Only for tests that replay a fixed calendar in the past, such as a week
    whose scorecards are computed by hand: the class is checked in at its own time, and the
    check-in rule still applies, at that time."""
    with mock.patch.object(flows, "utc_now", lambda: instant):
        yield
