"""wfm_sdk without servers: retries, idempotency keys, deadlines, error decoding, config."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from wfm.availability.v1 import availability_service_pb2 as availability_pb
from wfm.scheduling.v1 import directory_service_pb2 as directory_pb

from wfm_sdk import (
    ClientConfig,
    ConfigError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
    names,
)
from wfm_sdk.aio import AvailabilityClient, DirectoryClient
from wfm_sdk.calls import Caller, RetryPolicy, call_with_retries
from wfm_sdk.sync import Availability, Portal

FAST = ClientConfig(
    addresses={"availability": "x:1"}, token="tok", timeout_s=7, initial_backoff_s=0.001
)


def rpc_error(code: grpc.StatusCode, message: str, *details: Any) -> grpc.aio.AioRpcError:
    packed = []
    for detail in details:
        holder = any_pb2.Any()
        holder.Pack(detail)
        packed.append(holder)
    status = status_pb2.Status(code=code.value[0], message=message, details=packed)
    trailing = grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString()))
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details=message)


class FakeStub:
    """Answers each call with the next scripted outcome and records what it was sent."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []

    def __getattr__(self, method: str) -> Any:
        async def call(request: Any, **kwargs: Any) -> Any:
            self.calls.append((method, request, kwargs))
            outcome = self.outcomes.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome

        return call


def availability(stub: FakeStub, config: ClientConfig = FAST) -> AvailabilityClient:
    return AvailabilityClient(Caller(lambda: stub, config))


UNAVAILABLE = rpc_error(grpc.StatusCode.UNAVAILABLE, "the data store is unreachable")


async def test_unavailable_is_retried_with_the_same_generated_idempotency_key() -> None:
    reply = availability_pb.Availability(agent_id="a-1", version=3)
    stub = FakeStub(UNAVAILABLE, UNAVAILABLE, reply)
    result = await availability(stub).set_status("a-1", "break", reason_code="SCHEDULED_BREAK")
    assert result == reply
    keys = {request.idempotency_key for _, request, _ in stub.calls}
    assert len(stub.calls) == 3 and len(keys) == 1 and next(iter(keys)).startswith("sdk-")
    method, request, options = stub.calls[0]
    assert method == "SetStatus" and request.name == "agents/a-1/availability"
    assert request.status == availability_pb.AGENT_STATUS_BREAK
    assert not request.HasField("expected_version")
    assert options["timeout"] == 7  # a deadline on every call
    assert options["metadata"] == (("authorization", "Bearer tok"),)


async def test_each_change_gets_its_own_key_unless_one_is_given() -> None:
    stub = FakeStub(*[availability_pb.Availability()] * 3)
    client = availability(stub)
    await client.set_status("a-1", "lunch")
    await client.set_status("a-1", "lunch")
    await client.set_status("a-1", "lunch", idempotency_key="mine", expected_version=0)
    keys = [request.idempotency_key for _, request, _ in stub.calls]
    assert keys[0] != keys[1] and keys[2] == "mine"
    assert stub.calls[2][1].HasField("expected_version")


async def test_gives_up_after_max_attempts() -> None:
    stub = FakeStub(*[UNAVAILABLE] * 10)
    with pytest.raises(Unavailable) as raised:
        await availability(stub).get_availability("a-1")
    assert len(stub.calls) == FAST.max_attempts
    assert raised.value.code == grpc.StatusCode.UNAVAILABLE


async def test_client_errors_are_not_retried_and_carry_their_details() -> None:
    bad = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field="reason_code", description="A-Z")
        ]
    )
    info = error_details_pb2.ErrorInfo(reason="INVALID_ARGUMENT", domain="availability.wfm")
    stub = FakeStub(rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "invalid request", info, bad))
    with pytest.raises(InvalidArgument) as raised:
        await availability(stub).set_status("a-1", "break", reason_code="x y")
    assert len(stub.calls) == 1
    error = raised.value
    assert error.reason == "INVALID_ARGUMENT" and error.message == "invalid request"
    assert [(v.field, v.description) for v in error.field_violations] == [("reason_code", "A-Z")]
    assert str(error) == "INVALID_ARGUMENT: invalid request"


async def test_rule_violations_and_resources_are_decoded() -> None:
    rules = error_details_pb2.PreconditionFailure(
        violations=[
            error_details_pb2.PreconditionFailure.Violation(
                type="TEAM_EXISTS", subject="teams/x", description="team teams/x does not exist"
            )
        ]
    )
    missing = error_details_pb2.ResourceInfo(resource_type="agent", resource_name="agents/zz")
    stub = FakeStub(
        rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "rule broken", rules),
        rpc_error(grpc.StatusCode.NOT_FOUND, "agent 'zz' not found", missing),
        rpc_error(grpc.StatusCode.PERMISSION_DENIED, "agent may not call GetAgent"),
    )
    directory = DirectoryClient(Caller(lambda: stub, FAST))
    with pytest.raises(FailedPrecondition) as broken:
        await directory.create_agent(
            "a-1", display_name="A", team="x", time_zone="UTC", weekly_minutes=60
        )
    assert [v.type for v in broken.value.rule_violations] == ["TEAM_EXISTS"]
    with pytest.raises(NotFound) as not_found:
        await directory.get_agent("zz")
    assert not_found.value.resource == ("agent", "agents/zz")
    with pytest.raises(PermissionDenied):
        await directory.get_agent("zz")


async def test_update_team_masks_only_the_fields_given_and_an_empty_list_clears() -> None:
    stub = FakeStub(directory_pb.Team(), directory_pb.Team())
    directory = DirectoryClient(Caller(lambda: stub, FAST))
    window = directory_pb.OperatingWindow(iso_weekday=1, open_local_time="08:00", length_minutes=60)
    await directory.update_team("night", operating_hours=[window], expected_version=4)
    await directory.update_team("teams/night", operating_hours=[], min_rest_minutes=0)
    (method, first, _), (_, second, _) = stub.calls
    assert method == "UpdateTeam" and first.team.name == second.team.name == "teams/night"
    assert list(first.update_mask.paths) == ["operating_hours"] and first.team.version == 4
    assert list(first.team.operating_hours) == [window]
    assert list(second.update_mask.paths) == ["operating_hours", "min_rest_minutes"]
    assert not second.team.operating_hours and second.team.version == 0
    with pytest.raises(ValueError, match="nothing to change"):
        await directory.update_team("night")


async def test_rate_limits_wait_at_least_the_servers_retry_delay() -> None:
    retry = error_details_pb2.RetryInfo(retry_delay={"seconds": 1, "nanos": 500_000_000})
    limited = rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", retry)
    outcomes: list[Any] = [limited, "done"]
    slept: list[float] = []

    async def attempt() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return str(outcome)

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    policy = RetryPolicy(max_attempts=3, initial_backoff_s=0.01)
    assert await call_with_retries(attempt, idempotent=True, policy=policy, sleep=sleep) == "done"
    assert slept and slept[0] >= 1.5

    too_big = rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "message larger than max")
    outcomes[:] = [too_big, "never"]
    with pytest.raises(ResourceExhausted):  # not a rate limit: it would only fail again
        await call_with_retries(attempt, idempotent=True, policy=policy, sleep=sleep)
    assert outcomes == ["never"]

    outcomes[:] = [limited, "never"]
    with pytest.raises(ResourceExhausted):
        await call_with_retries(attempt, idempotent=False, policy=policy, sleep=sleep)
    assert outcomes == ["never"]  # a non-idempotent call is tried once


def test_blocking_client_has_the_same_results_and_errors() -> None:
    reply = availability_pb.Availability(agent_id="a-1")
    stub = FakeStub(reply, rpc_error(grpc.StatusCode.NOT_FOUND, "agent 'a-2' not found"))
    portal = Portal()
    try:
        client = Availability(portal, availability(stub))
        assert client.get_availability("agents/a-1") == reply
        with pytest.raises(NotFound):
            client.get_availability("a-2")
    finally:
        portal.stop()
    assert stub.calls[0][1].name == "agents/a-1/availability"


def test_names_as_people_type_them() -> None:
    assert names.agent_name("agents/a-1/availability") == "agents/a-1"
    assert names.team_name("pune-night") == "teams/pune-night" and names.team_name("") == ""
    assert names.parse_status("acw") == availability_pb.AGENT_STATUS_AFTER_CONTACT_WORK
    assert names.parse_status("AGENT_STATUS_ON_CONTACT") == availability_pb.AGENT_STATUS_ON_CONTACT
    assert names.status_words(availability_pb.AGENT_STATUS_ON_CONTACT) == "on-contact"
    assert names.status_words(99) == "99"
    with pytest.raises(ValueError, match="unknown status 'napping'"):
        names.parse_status("napping")
    assert names.parse_contract("part_time") == 2


def _state_file(tmp_path: Path, pid: int) -> Path:
    data = tmp_path / "default"
    (data / "certs").mkdir(parents=True)
    (data / "certs" / "jwt.key").write_text("key")
    state = tmp_path / "current.json"
    ports = {"availability": 50061, "scheduling": 50062}
    state.write_text(json.dumps({"ports": ports, "pid": pid, "data_dir": str(data)}))
    return state


def test_config_layers(tmp_path: Path) -> None:
    file = tmp_path / "wfm.toml"
    file.write_text(
        'token = "from-file"\ntimeout_s = 3\n[addresses]\navailability = "file:1"\n'
        'scheduling = "file:2"\n[tls]\nca_file = "/ca.pem"\n'
    )
    env = {"WFM_AVAILABILITY_ADDR": "env:1", "WFM_TOKEN": "from-env", "WFM_CONFIG": str(file)}
    config = ClientConfig.load(
        overrides={"token": "from-arg", "addresses": {"availability": ""}, "plaintext": None},
        environ=env,
        devstack_state=_state_file(tmp_path, os.getpid()),
    )
    assert config.token == "from-arg"
    assert config.addresses == {"availability": "env:1", "scheduling": "file:2"}
    assert config.ca_file == "/ca.pem" and config.timeout_s == 3 and not config.plaintext
    assert config.devstack_dir == ""  # addresses were given: the running make run is not used


def test_config_falls_back_to_the_running_make_run(tmp_path: Path) -> None:
    state = _state_file(tmp_path, os.getpid())
    no_file = {"WFM_CONFIG": str(tmp_path / "none")}  # absent: skipped
    config = ClientConfig.load(environ=no_file, devstack_state=state)
    assert config.address("scheduling") == "127.0.0.1:50062"
    assert config.cert_file.endswith("default/certs/client.pem")
    assert config.dev_token_key is not None

    gone = _state_file(tmp_path / "old", 2**22 + 12345)  # no such process
    config = ClientConfig.load(environ=no_file, devstack_state=gone)
    with pytest.raises(ConfigError, match="WFM_AVAILABILITY_ADDR"):
        config.address("availability")


def test_bad_config_values_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="WFM_TIMEOUT_S"):
        ClientConfig.load(environ={"WFM_TIMEOUT_S": "soon", "WFM_CONFIG": str(tmp_path / "none")})
    broken = tmp_path / "broken.toml"
    broken.write_text("token = ")
    with pytest.raises(ConfigError, match="cannot read the config file"):
        ClientConfig.load(environ={}, config_file=broken)
    # A file named on purpose must exist (a typo fell back to the local system); the default
    # file, or WFM_CONFIG's, may be absent.
    with pytest.raises(ConfigError, match="does not exist"):
        ClientConfig.load(environ={}, config_file=tmp_path / "typo.toml")


def test_the_sdk_needs_neither_the_services_nor_the_server_runtime() -> None:
    import subprocess
    import sys

    probe = (
        "import sys, wfm_sdk, wfm_sdk.sync; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('services', 'wfm_runtime')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert loaded.stdout.strip() == "[]"
