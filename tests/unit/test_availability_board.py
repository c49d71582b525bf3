"""The board's bucket codec (services/availability/store.py): rows survive the round trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import bson
from hypothesis import given
from hypothesis import strategies as st

from services.availability.domain import AgentAvailability, Status, StatusChanged
from services.availability.store import (
    board_row,
    board_row_to_state,
    bucket_rows,
    encode_bucket,
)

instants = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


def changed(agent: str, status: Status, reason: str, since: datetime) -> StatusChanged:
    return StatusChanged(agent, "t1", status, reason, since, Status.OFFLINE, None, "")


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=12),
        st.tuples(st.sampled_from(Status), st.text(max_size=20), instants, st.integers(1, 10**9)),
        max_size=30,
    )
)
def test_a_bucket_gives_back_each_agents_state_at_millisecond_precision(
    agents: dict[str, tuple[Status, str, datetime, int]],
) -> None:
    rows = {a: board_row(changed(a, s, r, t), v) for a, (s, r, t, v) in agents.items()}
    # Through BSON, as the store keeps it.
    doc = bson.decode(bson.encode({"_id": "bucket-00", **encode_bucket(rows)}))
    decoded = bucket_rows(doc)
    assert set(decoded) == set(agents)
    for agent, (status, reason, since, version) in agents.items():
        floor_ms = since - timedelta(microseconds=since.microsecond % 1000)
        assert board_row_to_state(agent, decoded[agent]) == AgentAvailability(
            agent, status, reason, floor_ms, version
        )


def test_a_missing_bucket_or_one_without_rows_is_empty() -> None:
    assert bucket_rows(None) == {}
    assert bucket_rows({"_id": "bucket-01"}) == {}
