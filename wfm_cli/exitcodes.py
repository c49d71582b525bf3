"""Exit codes of `wfm` (documented in docs/cli.md): one per kind of failure, so scripts can
tell "fix your input" from "try again later"."""

from __future__ import annotations

import grpc

OK = 0
FAILED = 1  # anything not listed below (e.g. INTERNAL, UNKNOWN)
USAGE = 2  # bad command line: unknown option, missing argument, bad choice (typer's own)
INVALID_ARGUMENT = 3
NOT_FOUND = 4
ALREADY_EXISTS = 5
CONFLICT = 6  # ABORTED: someone changed it first (stale version)
FAILED_PRECONDITION = 7
UNAUTHENTICATED = 8
PERMISSION_DENIED = 9
UNAVAILABLE = 10  # UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED: try again later
CONFIG = 11  # no address, no token, unreadable config or certificate files

BY_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: INVALID_ARGUMENT,
    grpc.StatusCode.OUT_OF_RANGE: INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND: NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS: ALREADY_EXISTS,
    grpc.StatusCode.ABORTED: CONFLICT,
    grpc.StatusCode.FAILED_PRECONDITION: FAILED_PRECONDITION,
    grpc.StatusCode.UNAUTHENTICATED: UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED: PERMISSION_DENIED,
    grpc.StatusCode.UNAVAILABLE: UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED: UNAVAILABLE,
}


def for_status(code: grpc.StatusCode) -> int:
    return BY_STATUS.get(code, FAILED)
