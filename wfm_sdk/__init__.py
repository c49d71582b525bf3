"""wfm_sdk: typed Python clients for the wfm services, async (`AsyncWfm`) and blocking (`Wfm`).

    from wfm_sdk import Wfm
    with Wfm() as wfm:                       # configured from the environment, a config file,
        wfm.availability.set_status("a-1001", "break")   # or the running `make run`

See wfm_sdk.config for configuration, wfm_sdk.errors for the exceptions. The SDK depends only
on the generated stubs (gen/python) and grpc, never on the services or the server runtime.
"""

from wfm_sdk.aio import AsyncWfm, AuditClient, AvailabilityClient, DirectoryClient
from wfm_sdk.calls import new_idempotency_key
from wfm_sdk.config import ClientConfig, ConfigError
from wfm_sdk.errors import (
    Aborted,
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    RuleViolation,
    Unauthenticated,
    Unavailable,
    WfmError,
)
from wfm_sdk.services import PerformanceClient, RosterClient, TrainingClient
from wfm_sdk.sync import Wfm

__all__ = [
    "Aborted",
    "AlreadyExists",
    "AsyncWfm",
    "AuditClient",
    "AvailabilityClient",
    "ClientConfig",
    "ConfigError",
    "DeadlineExceeded",
    "DirectoryClient",
    "FailedPrecondition",
    "FieldViolation",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "PerformanceClient",
    "PermissionDenied",
    "ResourceExhausted",
    "RosterClient",
    "RuleViolation",
    "TrainingClient",
    "Unauthenticated",
    "Unavailable",
    "Wfm",
    "WfmError",
    "new_idempotency_key",
]
