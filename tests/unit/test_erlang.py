"""Erlang C requirement derivation (services/scheduling/erlang.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.scheduling import erlang


def test_textbook_case_ten_erlangs_eighty_twenty() -> None:
    # 100 contacts in 30 minutes at 180 s each = 10 Erlangs; 80% answered in 20 s needs 14.
    assert erlang.agents_needed(100, 1800, 180, 0.8, 20) == 14
    assert erlang.service_level(13, 10.0, 180, 20) < 0.8 <= erlang.service_level(14, 10.0, 180, 20)


def test_no_contacts_no_agents_and_overload_always_waits() -> None:
    assert erlang.agents_needed(0, 1800, 300, 0.9, 30) == 0
    assert erlang.erlang_c(5, 5.0) == 1.0


@given(
    contacts=st.integers(min_value=1, max_value=2000),
    handle=st.integers(min_value=10, max_value=1800),
    target=st.floats(min_value=0.5, max_value=0.95),
    answer=st.integers(min_value=5, max_value=120),
)
def test_the_answer_is_the_smallest_that_meets_the_target(
    contacts: int, handle: int, target: float, answer: int
) -> None:
    needed = erlang.agents_needed(contacts, 1800, handle, target, answer)
    traffic = contacts * handle / 1800
    assert needed > traffic
    assert erlang.service_level(needed, traffic, handle, answer) >= target
    if needed - 1 > traffic:
        assert erlang.service_level(needed - 1, traffic, handle, answer) < target
    more = erlang.agents_needed(contacts + 50, 1800, handle, target, answer)
    assert more >= needed  # more contacts never need fewer agents
