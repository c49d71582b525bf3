"""Edges of availability's pure logic and the shared runtime helpers it relies on."""

from __future__ import annotations

import base64
import json

import pytest
from google.protobuf import field_mask_pb2
from wfm.scheduling.v1 import directory_service_pb2 as directory_pb

from services.availability.api import board_filter_key
from services.availability.domain import Status
from wfm_runtime import pagination
from wfm_runtime.commands import command_for, fingerprint
from wfm_runtime.errors import InvalidArgument


# --- idempotency fingerprints --------------------------------------------------------------
def update_agent(paths: list[str], site: str = "pune") -> directory_pb.UpdateAgentRequest:
    return directory_pb.UpdateAgentRequest(
        agent=directory_pb.Agent(name="agents/E1", site=site, weekly_minutes=1200),
        update_mask=field_mask_pb2.FieldMask(paths=paths),
        idempotency_key="k-1",
    )


def test_a_retry_listing_the_mask_paths_in_another_order_is_the_same_request() -> None:
    # An update mask is a set of paths: a client that rebuilds its retry (another process,
    # a dict iterated in another order) must get its first result, not "key already used".
    first = command_for("agent", "E1", update_agent(["site", "weekly_minutes"]))
    retry = command_for("agent", "E1", update_agent(["weekly_minutes", "site"]))
    assert retry.fingerprint == first.fingerprint
    # A mask already in order keeps the fingerprint stored with claims before this rule.
    stored = fingerprint(
        update_agent(["site", "weekly_minutes"]).SerializeToString(deterministic=True)
    )
    assert first.fingerprint == stored


def test_a_mask_naming_other_paths_is_another_request() -> None:
    first = command_for("agent", "E1", update_agent(["site", "weekly_minutes"]))
    assert command_for("agent", "E1", update_agent(["site"])).fingerprint != first.fingerprint
    other_value = command_for("agent", "E1", update_agent(["site", "weekly_minutes"], "uk"))
    assert other_value.fingerprint != first.fingerprint


# --- page tokens ---------------------------------------------------------------------------
def test_a_token_from_the_directory_list_is_refused_by_the_board() -> None:
    # scheduling's ListAgents ties its tokens to f"agents|{team_id}"; team ids "None" and
    # "agents" are both valid, so the two lists' filter keys must not meet.
    agents_token = pagination.encode("E1001", "agents|None")
    with pytest.raises(InvalidArgument) as raised:
        pagination.decode(agents_token, board_filter_key("agents", None))
    assert [v.field for v in raised.value.violations] == ["page_token"]


@pytest.mark.parametrize("status", [None, *Status])
def test_a_board_token_is_tied_to_its_team_and_status(status: Status | None) -> None:
    token = pagination.encode("a-1", board_filter_key("night", status))
    assert pagination.decode(token, board_filter_key("night", status)) == "a-1"
    for team, other in [("day", status), ("night", Status.BREAK if status is None else None)]:
        with pytest.raises(InvalidArgument):
            pagination.decode(token, board_filter_key(team, other))


def forged_token(body: str) -> str:
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def test_a_token_whose_key_is_not_text_is_refused() -> None:
    # JSON can escape a lone surrogate: such a key is no resource id, and a list that queries
    # MongoDB with it failed in the BSON encoder (INTERNAL) instead of refusing the token.
    body = json.dumps({"k": "\ud800", "f": pagination._filter_hash("agents|")})
    assert "\\ud800" in body
    token = forged_token(body)
    with pytest.raises(InvalidArgument) as raised:
        pagination.decode(token, "agents|")
    assert [v.description for v in raised.value.violations] == ["is not a token from this API"]
