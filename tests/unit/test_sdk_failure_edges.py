"""wfm_sdk and `wfm` failure edges: malformed error details, pagination that never ends,
server retry delays past any sensible wait."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from wfm_sdk import InvalidArgument
from wfm_sdk.errors import decode_details, from_rpc_error


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
