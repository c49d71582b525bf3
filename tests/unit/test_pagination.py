"""AIP-158 page tokens (wfm_runtime/pagination.py)."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wfm_runtime import pagination
from wfm_runtime.errors import InvalidArgument


def raw_token(body: bytes) -> str:
    return base64.urlsafe_b64encode(body).decode().rstrip("=")


def test_empty_token_is_the_first_page() -> None:
    assert pagination.decode("", "teams") == ""


def test_round_trip() -> None:
    token = pagination.encode("E1001", "agents|night")
    assert pagination.decode(token, "agents|night") == "E1001"


def test_token_is_url_safe_and_unpadded() -> None:
    token = pagination.encode("a?b/c+d" * 10, "f")
    assert "=" not in token
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


# Keys are resource ids (at most 63 characters); 60 characters of anything, each escaped by JSON
# to at most 12 bytes (a surrogate pair), still fit a token of MAX_TOKEN_LENGTH.
@given(st.text(max_size=60), st.text())
def test_round_trip_of_any_key_and_filter(last_key: str, filter_key: str) -> None:
    assert pagination.decode(pagination.encode(last_key, filter_key), filter_key) == last_key


# Keys as above: a longer one can make a token past MAX_TOKEN_LENGTH, refused for its length.
@given(st.text(max_size=60), st.text(), st.text())
def test_token_for_another_filter_is_refused(last_key: str, issued: str, used: str) -> None:
    token = pagination.encode(last_key, issued)
    if issued == used:
        assert pagination.decode(token, used) == last_key
    else:
        with pytest.raises(InvalidArgument) as raised:
            pagination.decode(token, used)
        [violation] = raised.value.violations
        assert violation.field == "page_token"
        assert "different filter" in violation.description


@pytest.mark.parametrize(
    "token",
    [
        "garbage!!",
        "a",
        "abcde",
        "%%%",
        "é",
        " ",
        raw_token(b"not json"),
        raw_token(b"\xff\xfe\x00"),
        raw_token(b"[]"),
        raw_token(b'"string"'),
        raw_token(b"42"),
        raw_token(b"null"),
        raw_token(b"{}"),
        raw_token(b'{"k": "a"}'),
        raw_token(b'{"f": "x"}'),
        raw_token(b'{"k": 1, "f": "x"}'),
        raw_token(b'{"k": null, "f": "x"}'),
        raw_token(b'{"k": ["a"], "f": "x"}'),
    ],
)
def test_garbage_is_refused_as_invalid_argument(token: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        pagination.decode(token, "teams", field_path="page_token")
    assert [v.field for v in raised.value.violations] == ["page_token"]


def test_forged_filter_hash_is_refused() -> None:
    token = raw_token(json.dumps({"k": "E1", "f": "000000000000"}).encode())
    with pytest.raises(InvalidArgument):
        pagination.decode(token, "teams")


def test_field_path_is_reported() -> None:
    with pytest.raises(InvalidArgument) as raised:
        pagination.decode("garbage!!", "teams", field_path="next.page_token")
    assert raised.value.violations[0].field == "next.page_token"


@given(st.text(max_size=200))
def test_any_text_is_a_key_or_invalid_argument(token: str) -> None:
    try:
        pagination.decode(token, "teams")
    except InvalidArgument as exc:
        assert exc.violations[0].field == "page_token"


def test_deeply_nested_token_is_invalid_argument() -> None:
    token = raw_token(b"[" * 100_000)
    with pytest.raises(InvalidArgument):
        pagination.decode(token, "teams")
