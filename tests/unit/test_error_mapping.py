"""Domain errors -> google.rpc.Status (wfm_runtime/grpcserver.status_for, AIP-193)."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from wfm_runtime import errors
from wfm_runtime.grpcserver import _as_domain_error, status_for
from wfm_runtime.testing import unpack_details

DOMAIN = "availability.wfm"


def error_info(status: status_pb2.Status) -> error_details_pb2.ErrorInfo:
    first = unpack_details(status)[0]
    assert isinstance(first, error_details_pb2.ErrorInfo)
    return first


def test_invalid_argument_lists_every_field_violation() -> None:
    err = errors.InvalidArgument(
        [
            errors.FieldViolation("name", "is required"),
            errors.FieldViolation("status", "must be one of AVAILABLE, ..."),
        ]
    )
    status = status_for(err, DOMAIN)
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert (
        status.message
        == err.message
        == ("invalid request: name: is required; status: must be one of AVAILABLE, ...")
    )
    info, bad_request = unpack_details(status)
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert (info.reason, info.domain) == ("INVALID_ARGUMENT", DOMAIN)
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("name", "is required"),
        ("status", "must be one of AVAILABLE, ..."),
    ]


def test_failed_precondition_lists_rule_violations() -> None:
    err = errors.FailedPrecondition(
        [errors.RuleViolation("TEAM_EXISTS", "teams/ghost", "team 'ghost' does not exist")]
    )
    status = status_for(err, "scheduling.wfm")
    assert status.code == code_pb2.FAILED_PRECONDITION
    info, failure = unpack_details(status)
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert info.reason == "FAILED_PRECONDITION"
    assert isinstance(failure, error_details_pb2.PreconditionFailure)
    assert [(v.type, v.subject, v.description) for v in failure.violations] == [
        ("TEAM_EXISTS", "teams/ghost", "team 'ghost' does not exist")
    ]


@pytest.mark.parametrize(
    ("err", "code", "reason"),
    [
        (errors.NotFound("agent", "agents/ghost"), code_pb2.NOT_FOUND, "NOT_FOUND"),
        (errors.AlreadyExists("agent", "agents/ghost"), code_pb2.ALREADY_EXISTS, "ALREADY_EXISTS"),
    ],
)
def test_missing_or_existing_resources_name_the_resource(
    err: errors.DomainError, code: int, reason: str
) -> None:
    status = status_for(err, DOMAIN)
    assert status.code == code
    info, resource = unpack_details(status)
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert info.reason == reason
    assert isinstance(resource, error_details_pb2.ResourceInfo)
    assert (resource.resource_type, resource.resource_name) == ("agent", "agents/ghost")


def test_not_found_keeps_a_custom_message() -> None:
    err = errors.NotFound("agent", "agents/x", "agent 'x' is not in the directory")
    assert status_for(err, DOMAIN).message == "agent 'x' is not in the directory"


@pytest.mark.parametrize(
    ("err", "code"),
    [
        (errors.Aborted("version is 3, not 2", current_version="3"), code_pb2.ABORTED),
        (errors.Unavailable("store unreachable"), code_pb2.UNAVAILABLE),
    ],
)
def test_retryable_errors_carry_retry_info(err: errors.DomainError, code: int) -> None:
    status = status_for(err, DOMAIN)
    assert status.code == code
    info, retry = unpack_details(status)
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert info.reason == err.reason
    assert dict(info.metadata) == err.metadata
    assert isinstance(retry, error_details_pb2.RetryInfo)
    assert retry.retry_delay.ToMilliseconds() == 200


def test_error_metadata_reaches_error_info() -> None:
    err = errors.Aborted("conflict", current_version="7")
    assert dict(error_info(status_for(err, DOMAIN)).metadata) == {"current_version": "7"}


def test_unclassified_domain_error_is_unknown_with_error_info_only() -> None:
    err = errors.DomainError("odd", reason="ODD")
    status = status_for(err, DOMAIN)
    assert status.code == code_pb2.UNKNOWN
    assert len(status.details) == 1
    assert error_info(status).reason == "ODD"


@pytest.mark.parametrize(
    "err",
    [
        errors.InvalidArgument([errors.FieldViolation("f", "d")]),
        errors.NotFound("t", "n"),
        errors.AlreadyExists("t", "n"),
        errors.FailedPrecondition([errors.RuleViolation("T", "s", "d")]),
        errors.Aborted("a"),
        errors.Unavailable("u"),
        errors.DomainError("x"),
    ],
)
def test_error_info_always_comes_first_and_survives_the_wire(err: errors.DomainError) -> None:
    status = status_for(err, DOMAIN)
    info = error_info(status)
    assert (info.reason, info.domain) == (err.reason, DOMAIN)
    # What the server sends: code, message and the details in the trailing metadata.
    wire = rpc_status.to_status(status)
    assert wire.code.value[0] == status.code
    assert wire.details == status.message
    [(key, value)] = wire.trailing_metadata
    assert key == "grpc-status-details-bin"
    assert status_pb2.Status.FromString(value) == status


def test_infrastructure_failures_become_unavailable() -> None:
    mapped = _as_domain_error(TimeoutError())
    assert isinstance(mapped, errors.Unavailable)
    domain_error = errors.NotFound("a", "b")
    assert _as_domain_error(domain_error) is domain_error
    assert _as_domain_error(RuntimeError("boom")) is None
    assert _as_domain_error(ValueError("bad")) is None


def test_grpc_code_names_line_up() -> None:
    assert grpc.StatusCode.INVALID_ARGUMENT.value[0] == code_pb2.INVALID_ARGUMENT
    assert grpc.StatusCode.FAILED_PRECONDITION.value[0] == code_pb2.FAILED_PRECONDITION


# grpc's trailers: grpc-message percent-encodes every byte outside printable ASCII (three
# characters each), grpc-status-details-bin goes base64. Clients refuse trailers over 16 KiB
# (8 KiB soft, refused at random), and the refusal would become RESOURCE_EXHAUSTED.
def _trailer_bytes(status: status_pb2.Status) -> int:
    message = sum(1 if 0x20 <= b < 0x7F and b != 0x25 else 3 for b in status.message.encode())
    return message + (status.ByteSize() + 2) // 3 * 4


@pytest.mark.parametrize("unit", ["x", "é", "😀", "\x00"])
def test_huge_echoed_values_keep_the_trailers_small_in_any_script(unit: str) -> None:
    huge = unit * 10_000
    invalid = errors.InvalidArgument(
        [errors.FieldViolation(f"paths[{i}]", f"cannot change {huge}") for i in range(30)]
    )
    broken = errors.FailedPrecondition(
        [errors.RuleViolation("OVERLAP", huge, huge) for _ in range(30)]
    )
    for err in (invalid, broken, errors.NotFound("course", huge)):
        status = status_for(err, DOMAIN)
        assert _trailer_bytes(status) < 8 * 1024, (type(err).__name__, _trailer_bytes(status))
        assert len(unpack_details(status)) == 2  # still ErrorInfo and what was wrong
        assert status.message.endswith("…")


def test_clipped_text_ends_on_a_whole_character() -> None:
    err = errors.InvalidArgument([errors.FieldViolation("name", "x" + "😀" * 1000)])
    (violation,) = unpack_details(status_for(err, DOMAIN))[1].field_violations
    assert violation.description.startswith("x😀") and violation.description.endswith("😀…")
    assert len(violation.description.encode()) <= 300
