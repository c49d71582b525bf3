"""Request fingerprints (wfm_runtime/commands.fingerprint).

They are stored with idempotency claims, so they must not change between processes or
releases: a retry that lands on another replica, or after a deploy, must match its first try.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wfm.scheduling.v1 import directory_service_pb2 as directory_pb

from services.availability.domain import Status
from wfm_runtime.commands import fingerprint

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
from google.protobuf import field_mask_pb2
from wfm.scheduling.v1 import directory_service_pb2 as pb
from services.availability.domain import Status
from wfm_runtime.commands import fingerprint
request = pb.UpdateAgentRequest(
    agent=pb.Agent(name="agents/E1", site="pune", weekly_minutes=1200),
    update_mask=field_mask_pb2.FieldMask(paths=["site", "weekly_minutes"]),
    idempotency_key="k-1",
)
print(fingerprint("a1", Status.AVAILABLE, "COFFEE", None))
print(fingerprint(request.SerializeToString(deterministic=True)))
"""


def test_known_values_do_not_change() -> None:
    assert fingerprint("a1", Status.AVAILABLE, "COFFEE", None) == (
        "ece561b81dfa6b2afa8b45d79cf07f9f"
    )
    assert fingerprint("a1", Status.AVAILABLE, "COFFEE", 3) == "b42e3ab9e03e1b0a9bb66801ceb0f7a9"
    assert fingerprint(b"\x0a\x03abc") == "8d5f3b75156802745c4e0ebd41852c5d"
    assert fingerprint() == "2e38e77b22c314a449e91fafed92a438"


def test_same_in_every_process() -> None:
    outputs = set()
    for seed in ("0", "1", "4242"):
        env = {
            **os.environ,
            "PYTHONHASHSEED": seed,
            "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'gen' / 'python'}",
        }
        result = subprocess.run(
            [sys.executable, "-c", SCRIPT],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        outputs.add(result.stdout)
    assert len(outputs) == 1
    first, _ = outputs.pop().split()
    assert first == fingerprint("a1", Status.AVAILABLE, "COFFEE", None)


@given(st.lists(st.one_of(st.text(), st.integers(), st.none(), st.binary()), max_size=5))
def test_deterministic_and_short(parts: list[object]) -> None:
    digest = fingerprint(*parts)
    assert digest == fingerprint(*parts)
    assert len(digest) == 32
    assert set(digest) <= set("0123456789abcdef")


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (("ab", "c"), ("a", "bc")),
        (("a1", None), ("a1", "None")),
        (("a1", 0), ("a1", None)),
        (("a1", 1), ("a1", "1")),
        (("a1", Status.BREAK, ""), ("a1", Status.LUNCH, "")),
        (("a1", Status.BREAK, ""), ("a1", Status.BREAK, "COFFEE")),
        (("a1", Status.BREAK), (Status.BREAK, "a1")),
        ((b"x",), ("x",)),
    ],
)
def test_different_requests_differ(one: tuple[object, ...], other: tuple[object, ...]) -> None:
    assert fingerprint(*one) != fingerprint(*other)


def test_proto_requests_differ_by_any_field() -> None:
    base = directory_pb.UpdateAgentRequest(
        agent=directory_pb.Agent(name="agents/E1", site="pune"), idempotency_key="k"
    )
    changed = directory_pb.UpdateAgentRequest()
    changed.CopyFrom(base)
    changed.agent.site = "uk-wfh"
    same = directory_pb.UpdateAgentRequest.FromString(base.SerializeToString())
    digest = fingerprint(base.SerializeToString(deterministic=True))
    assert fingerprint(same.SerializeToString(deterministic=True)) == digest
    assert fingerprint(changed.SerializeToString(deterministic=True)) != digest
