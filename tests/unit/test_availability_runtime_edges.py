"""Edges of availability's pure logic and the shared runtime helpers it relies on."""

from __future__ import annotations

from google.protobuf import field_mask_pb2
from wfm.scheduling.v1 import directory_service_pb2 as directory_pb

from wfm_runtime.commands import command_for, fingerprint


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
