"""Edges of the performance figures beyond the day windows: case corrections, flags at the
limit, roll-ups (docs/metrics.md)."""

from __future__ import annotations

import asyncio
import collections
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.performance import domain, store, views
from wfm_runtime.errors import Violations

PUNE = "Asia/Kolkata"


class _EmptyRepo:
    """A repository with nothing stored (the book keeps what it reads and writes in memory)."""

    def __init__(self) -> None:
        self.inputs = type("Coll", (), {"database": collections.defaultdict(object)})()

    async def get_many(self, _coll: Any, _ids: list[str]) -> dict[str, dict[str, Any]]:
        return {}


def _book() -> views.DayBook:
    repo: Any = _EmptyRepo()
    directory = views.Directory(repo)
    directory.agents["a1"] = views.AgentEntry("a1", "t1", PUNE, 1)
    return views.DayBook(repo, directory)


def _case(resolved: datetime, version: int) -> domain.CaseRecord:
    return domain.CaseRecord(
        "c1", "a1", "CHAT", resolved - timedelta(minutes=5), resolved,
        60_000, 0, 0, True, None, False, 4, None, version,
    )  # fmt: skip


def test_a_correction_to_another_roster_date_of_the_same_utc_date_recomputes_the_old_one() -> None:
    # 17:00 UTC is 22:30 in Pune (the 10th), 19:00 UTC is 00:30 (the 11th): one input
    # document (UTC date), two roster dates. The 10th must be computed again without the case,
    # or a period over both days counts the case twice.
    first = datetime(2026, 11, 10, 17, tzinfo=UTC)
    corrected = datetime(2026, 11, 10, 19, tzinfo=UTC)
    assert store.bucket_id("a1", first) == store.bucket_id("a1", corrected)
    book = _book()

    async def run() -> set[tuple[str, date]]:
        await book.add_case(domain.CaseRecorded(_case(first, 1), "", None))
        return await book.add_case(domain.CaseRecorded(_case(corrected, 2), "a1", first))

    touched = asyncio.run(run())
    assert touched == {("a1", date(2026, 11, 10)), ("a1", date(2026, 11, 11))}


def test_a_case_resolved_before_any_readable_period_is_refused() -> None:
    # Year 1 passed every check, then the projector could not compute its roster date (the
    # day's window reaches before datetime.min) and failed on the event at each redelivery.
    resolved = datetime(1, 1, 1, 12, tzinfo=UTC)
    v = Violations()
    domain.validate_case(_case(resolved, 0), now=datetime(2026, 11, 10, tzinfo=UTC), v=v)
    assert [item.field for item in v.items] == ["case.resolve_time"]


def test_a_page_token_whose_offset_is_a_unicode_digit_is_refused() -> None:
    # Tokens are not signed: "²" passes str.isdigit() but not int(), which gave INTERNAL.
    from services.performance.api import _offset
    from wfm_runtime.errors import InvalidArgument

    assert _offset("40") == 40
    with pytest.raises(InvalidArgument):
        _offset("²")
