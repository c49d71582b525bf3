"""Shared validators (wfm_runtime/validation.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wfm_runtime.errors import InvalidArgument, Violations
from wfm_runtime.validation import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    check_id,
    check_idempotency_key,
    check_page_size,
    check_time_zone,
    parse_name,
)


def parse(
    name: str, collection: str = "agents", suffix: str = "availability"
) -> tuple[str, Violations]:
    v = Violations()
    return parse_name(v, name, "name", collection, suffix), v


# --- parse_name ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "collection", "suffix", "expected"),
    [
        ("agents/a1/availability", "agents", "availability", "a1"),
        ("agents/E-1001_x/availability", "agents", "availability", "E-1001_x"),
        ("teams/night", "teams", "", "night"),
        ("agents/" + "a" * 63, "agents", "", "a" * 63),
    ],
)
def test_parse_name_accepts(name: str, collection: str, suffix: str, expected: str) -> None:
    value, v = parse(name, collection, suffix)
    assert (value, v.items) == (expected, [])


def test_parse_name_required() -> None:
    value, v = parse("")
    assert value == ""
    [violation] = v.items
    assert violation.field == "name"
    assert "required" in violation.description
    assert "agents/{id}/availability" in violation.description


@pytest.mark.parametrize(
    "name",
    [
        "agents",
        "agents/a1",
        "agents/a1/",
        "agents/a1/availability/",
        "agents/a1/availability/x",
        "teams/a1/availability",
        "Agents/a1/availability",
        "agents/a1/Availability",
        "/agents/a1/availability",
        "a1",
    ],
)
def test_parse_name_wrong_form(name: str) -> None:
    value, v = parse(name)
    assert value == ""
    [violation] = v.items
    assert violation.field == "name"
    assert "must be in the form agents/{id}/availability" in violation.description


@pytest.mark.parametrize(
    "name",
    [
        "agents//availability",
        "agents/a b/availability",
        "agents/-a1/availability",
        "agents/a.1/availability",
        "agents/é/availability",
        "agents/" + "a" * 64 + "/availability",
    ],
)
def test_parse_name_bad_id(name: str) -> None:
    value, v = parse(name)
    assert value == ""
    assert [i.field for i in v.items] == ["name"]
    assert "id must be" in v.items[0].description


def test_parse_name_without_suffix_refuses_one() -> None:
    value, v = parse("teams/night/members", "teams", "")
    assert value == ""
    assert "teams/{id}" in v.items[0].description


def test_parse_name_quotes_at_most_80_characters_of_the_input() -> None:
    _, v = parse("x" * 10_000)
    assert len(v.items[0].description) < 200


@given(st.text(max_size=80))
def test_parse_name_never_raises(name: str) -> None:
    value, v = parse(name)
    assert (value == "") == bool(v.items)
    if value:
        assert name == f"agents/{value}/availability"


def test_parse_name_refuses_a_trailing_newline_in_the_id() -> None:
    value, v = parse("agents/a1\n/availability")
    assert value == ""
    assert [i.field for i in v.items] == ["name"]


# --- check_id ------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["a", "0", "a" * 63, "E-1001", "a_b-c", "ABC123"])
def test_check_id_accepts(value: str) -> None:
    v = Violations()
    assert check_id(v, value, "agent_id") is True
    assert v.items == []


@pytest.mark.parametrize("value", ["-a", "_a", "a" * 64, "a b", "a/b", "a.b", "é", "a\tb"])
def test_check_id_refuses(value: str) -> None:
    v = Violations()
    assert check_id(v, value, "agent_id", "agent id") is False
    assert [i.field for i in v.items] == ["agent_id"]
    assert v.items[0].description.startswith("agent id must be")


def test_check_id_required() -> None:
    v = Violations()
    assert check_id(v, "", "team_id", "team id") is False
    assert v.items[0].description == "team id is required"


def test_check_id_refuses_a_trailing_newline() -> None:
    v = Violations()
    assert check_id(v, "a1\n", "agent_id") is False


# --- idempotency keys ----------------------------------------------------------------------
@pytest.mark.parametrize("key", ["k", "k" * 128, "2026-03-08T13:00:00Z/a1/AVAILABLE", "!~"])
def test_idempotency_key_accepts(key: str) -> None:
    v = Violations()
    check_idempotency_key(v, key)
    assert v.items == []


@pytest.mark.parametrize("key", ["k" * 129, "a b", "a\tb", "ключ", "k\x7f", "\x00"])
def test_idempotency_key_refuses(key: str) -> None:
    v = Violations()
    check_idempotency_key(v, key, "request.idempotency_key")
    assert [i.field for i in v.items] == ["request.idempotency_key"]
    assert "printable ASCII" in v.items[0].description


def test_idempotency_key_required() -> None:
    v = Violations()
    check_idempotency_key(v, "")
    assert [i.field for i in v.items] == ["idempotency_key"]
    assert "required" in v.items[0].description


def test_idempotency_key_refuses_a_trailing_newline() -> None:
    v = Violations()
    check_idempotency_key(v, "k\n")
    assert [i.field for i in v.items] == ["idempotency_key"]


# --- page size -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("size", "expected"),
    [(0, DEFAULT_PAGE_SIZE), (1, 1), (50, 50), (MAX_PAGE_SIZE, MAX_PAGE_SIZE), (10**6, 1000)],
)
def test_page_size(size: int, expected: int) -> None:
    v = Violations()
    assert check_page_size(v, size) == expected
    assert v.items == []


@pytest.mark.parametrize("size", [-1, -(2**31)])
def test_negative_page_size(size: int) -> None:
    v = Violations()
    assert check_page_size(v, size) == DEFAULT_PAGE_SIZE
    assert [(i.field, i.description) for i in v.items] == [("page_size", "must not be negative")]


# --- time zones ----------------------------------------------------------------------------
@pytest.mark.parametrize("zone", ["Asia/Kolkata", "America/New_York", "UTC", "Europe/London"])
def test_time_zone_accepts(zone: str) -> None:
    v = Violations()
    assert check_time_zone(v, zone, "agent.time_zone") is True
    assert v.items == []


@pytest.mark.parametrize(
    "zone", ["", "asia/kolkata", "Asia/Kolkata ", "Mars/Base", "+05:30", "/etc/passwd", "z" * 500]
)
def test_time_zone_refuses(zone: str) -> None:
    v = Violations()
    assert check_time_zone(v, zone, "agent.time_zone") is False
    assert [i.field for i in v.items] == ["agent.time_zone"]
    assert len(v.items[0].description) < 150


# --- Violations ----------------------------------------------------------------------------
def test_violations_raise_together_in_order() -> None:
    v = Violations()
    assert v.check(True, "a", "fine") is True
    assert v.check(False, "b", "bad b") is False
    v.add("c", "bad c")
    with pytest.raises(InvalidArgument) as raised:
        v.raise_if_any()
    assert [(i.field, i.description) for i in raised.value.violations] == [
        ("b", "bad b"),
        ("c", "bad c"),
    ]
    assert raised.value.message == "invalid request: b: bad b; c: bad c"


def test_no_violations_no_error() -> None:
    Violations().raise_if_any()
