"""wfm_sdk and `wfm` failure edges: malformed error details, pagination that never ends,
server retry delays past any sensible wait."""

from __future__ import annotations

import asyncio
import io
import json
from contextlib import redirect_stderr
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
import typer
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from wfm.performance.v1 import performance_service_pb2 as performance_pb
from wfm.scheduling.v1 import directory_service_pb2 as directory_pb
from wfm.scheduling.v1 import roster_service_pb2 as roster_pb
from wfm.training.v1 import training_service_pb2 as training_pb

from tests.unit.test_sdk import FAST, FakeStub, rpc_error
from wfm_cli import exitcodes
from wfm_cli.commands.roster import _team_pages
from wfm_cli.context import handle_errors
from wfm_sdk import ClientConfig, Internal, InvalidArgument, ResourceExhausted
from wfm_sdk.aio import DirectoryClient
from wfm_sdk.calls import Caller, RetryPolicy, call_with_retries
from wfm_sdk.errors import decode_details, from_rpc_error
from wfm_sdk.services import PerformanceClient, TrainingClient


def _status_with(*details: any_pb2.Any) -> list[tuple[str, bytes]]:
    status = status_pb2.Status(code=3, message="invalid request", details=list(details))
    return [("grpc-status-details-bin", status.SerializeToString())]


def _packed(message: Any) -> any_pb2.Any:
    holder = any_pb2.Any()
    holder.Pack(message)
    return holder


def test_a_corrupt_detail_is_skipped_and_the_others_are_kept() -> None:
    corrupt = any_pb2.Any(type_url="type.googleapis.com/google.rpc.BadRequest", value=b"\xff\xff")
    info = error_details_pb2.ErrorInfo(reason="INVALID_ARGUMENT")
    details = decode_details(_status_with(corrupt, _packed(info)))
    assert details == [info]


def test_a_corrupt_detail_still_gives_the_typed_error() -> None:
    status = status_pb2.Status(
        code=3,
        message="bad",
        details=[any_pb2.Any(type_url="type.googleapis.com/google.rpc.BadRequest", value=b"\xff")],
    )
    trailing = grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString()))
    exc = grpc.aio.AioRpcError(
        grpc.StatusCode.INVALID_ARGUMENT, grpc.aio.Metadata(), trailing, details="bad"
    )
    error = from_rpc_error(exc)
    assert isinstance(error, InvalidArgument) and error.field_violations == []


def test_unknown_detail_types_are_ignored() -> None:
    unknown = any_pb2.Any(type_url="type.googleapis.com/acme.Mystery", value=b"\x08\x01")
    assert decode_details(_status_with(unknown)) == []


async def test_all_pages_refuses_a_server_that_repeats_its_page_token() -> None:
    page = directory_pb.ListTeamsResponse(
        teams=[directory_pb.Team(name="teams/a")], next_page_token="same"
    )
    stub = FakeStub(*[page] * 50)
    directory = DirectoryClient(Caller(lambda: stub, FAST))
    with pytest.raises(Internal, match="page token"):
        await asyncio.wait_for(directory.all_teams(), 5)
    assert len(stub.calls) <= 3


async def test_table_all_pages_refuses_a_repeated_page_token() -> None:
    page = training_pb.ListCoursesResponse(next_page_token="again")
    stub = FakeStub(*[page] * 50)
    training = TrainingClient(Caller(lambda: stub, FAST))
    with pytest.raises(Internal, match="page token"):
        await asyncio.wait_for(training.all_pages("list_courses", "courses"), 5)
    assert len(stub.calls) <= 3


async def test_all_pages_follows_distinct_tokens_to_the_end() -> None:
    def page(name: str, token: str) -> directory_pb.ListTeamsResponse:
        team = directory_pb.Team(name=name)
        return directory_pb.ListTeamsResponse(teams=[team], next_page_token=token)

    pages = [page("teams/a", "1"), page("teams/b", "2"), page("teams/c", "")]
    stub = FakeStub(*pages)
    teams = await DirectoryClient(Caller(lambda: stub, FAST)).all_teams()
    assert [t.name for t in teams] == ["teams/a", "teams/b", "teams/c"]


async def test_all_pages_refuses_tokens_that_cycle() -> None:
    def page(token: str) -> directory_pb.ListAgentsResponse:
        return directory_pb.ListAgentsResponse(next_page_token=token)

    stub = FakeStub(*[page("a"), page("b")] * 25)
    directory = DirectoryClient(Caller(lambda: stub, FAST))
    with pytest.raises(Internal, match="page token"):
        await asyncio.wait_for(directory.all_agents(team="t"), 5)
    assert len(stub.calls) == 3


def test_the_cli_team_week_refuses_a_repeated_page_token() -> None:
    class Roster:
        calls = 0

        def get_team_roster(self, **_: Any) -> roster_pb.TeamRoster:
            Roster.calls += 1
            if Roster.calls > 20:
                raise AssertionError("still paging")
            return roster_pb.TeamRoster(next_page_token="same")

    wfm = SimpleNamespace(roster=Roster())
    with pytest.raises(Internal, match="page token"):
        _team_pages(wfm, team="teams/t", week="2026-11-23", page_size=10)


async def test_a_retry_delay_past_the_deadline_is_raised_not_slept() -> None:
    """A server asking to wait an hour: the caller hears "try again later" now, not in an
    hour (a wait is never longer than the call's own deadline)."""
    retry = error_details_pb2.RetryInfo(retry_delay={"seconds": 3600})
    limited = rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", retry)
    outcomes: list[Any] = [limited, "never"]
    slept: list[float] = []

    async def attempt() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return str(outcome)

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    policy = RetryPolicy.of(ClientConfig())
    with pytest.raises(ResourceExhausted) as raised:
        await call_with_retries(attempt, idempotent=True, policy=policy, sleep=sleep)
    assert slept == [] and outcomes == ["never"]
    assert raised.value.retry_delay_s == 3600


async def test_a_table_client_change_keeps_its_generated_key_across_retries() -> None:
    unavailable = rpc_error(grpc.StatusCode.UNAVAILABLE, "down")
    stub = FakeStub(unavailable, unavailable, training_pb.Course(name="courses/c"))
    training = TrainingClient(Caller(lambda: stub, FAST))
    await training.create_course(course_id="c", course={"title": "C"})
    keys = {request.idempotency_key for _, request, _ in stub.calls}
    assert len(stub.calls) == 3 and len(keys) == 1 and "" not in keys


def test_json_errors_carry_every_detail_and_stay_valid_json() -> None:
    bad = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field="a", description='quote " and\nline'),
            error_details_pb2.BadRequest.FieldViolation(field="b", description="ünïcode"),
        ]
    )
    rules = error_details_pb2.PreconditionFailure(
        violations=[error_details_pb2.PreconditionFailure.Violation(type="R", subject="s")]
    )
    error = from_rpc_error(rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "", bad, rules))

    @handle_errors
    def command(json_out: bool = False) -> None:
        raise error

    with pytest.raises(typer.Exit) as exited, redirect_stderr(io.StringIO()) as err:
        command(json_out=True)
    assert exited.value.exit_code == exitcodes.INVALID_ARGUMENT
    data = json.loads(err.getvalue())["error"]
    assert data["code"] == "INVALID_ARGUMENT" and data["message"] == "INVALID_ARGUMENT"
    assert [v["field"] for v in data["field_violations"]] == ["a", "b"]
    assert data["rule_violations"] == [{"type": "R", "subject": "s", "description": ""}]


async def test_a_reused_request_message_is_a_new_change_each_time_it_is_sent() -> None:
    unavailable = rpc_error(grpc.StatusCode.UNAVAILABLE, "down")
    course = training_pb.Course(name="courses/c")
    stub = FakeStub(unavailable, course, course)
    training = TrainingClient(Caller(lambda: stub, FAST))
    request = training_pb.UpdateCourseRequest(
        course=training_pb.Course(name="courses/c", title="First")
    )
    await training.update_course(request)
    request.course.title = "Second"  # the same message object, a different change
    await training.update_course(request)
    assert request.idempotency_key == ""  # the caller's message is left as given
    sent = [(r.course.title, r.idempotency_key) for _, r, _ in stub.calls]
    assert [title for title, _ in sent] == ["First", "First", "Second"]
    assert sent[0][1] == sent[1][1]  # the retry of the first change keeps its key
    assert sent[2][1] not in ("", sent[0][1])  # the second change has a key of its own


async def test_a_streamed_request_message_is_not_stamped_with_the_generated_key() -> None:
    class Streamed(FakeStub):
        def __getattr__(self, method: str) -> Any:
            async def call(requests: Any, **kwargs: Any) -> Any:
                self.calls += [(method, request, kwargs) async for request in requests]
                return performance_pb.RecordCasesResponse()

            return call

    stub = Streamed()
    performance = PerformanceClient(Caller(lambda: stub, FAST))
    request = performance_pb.RecordCasesRequest(case_id="c1")

    async def cases() -> Any:
        yield request

    await performance.record_cases(cases())
    assert request.idempotency_key == "" and stub.calls[0][1].idempotency_key
