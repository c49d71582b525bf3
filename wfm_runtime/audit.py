"""Audit trail: every mutating RPC, as a structured log event and in an `audit` view.

Records are written behind the request (batched every 200 ms) so auditing adds no store round
trip to the hot path; a crash can lose at most the last batch of records, never a change.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wfm.audit.v1 import audit_service_pb2 as pb
from wfm.audit.v1 import audit_service_pb2_grpc as pb_grpc

from wfm_runtime import logging as wlog
from wfm_runtime import mongo, pagination
from wfm_runtime.errors import Violations
from wfm_runtime.timefmt import as_utc, to_timestamp, utc_now
from wfm_runtime.validation import check_page_size, optional_instant

log = wlog.get("audit")
FLUSH_EVERY_S = 0.2


@dataclass(frozen=True)
class AuditRecord:
    at: datetime
    subject: str
    roles: tuple[str, ...]
    method: str
    targets: tuple[str, ...]
    outcome: str
    request_id: str
    service: str


class AuditLog:
    def __init__(self, coll: mongo.Collection, service: str) -> None:
        self._coll = coll
        self._service = service
        self._pending: list[dict[str, Any]] = []
        # Ids: time, then this process's random prefix and a serial (no urandom per record).
        self._id_prefix = uuid.uuid4().hex[:8]
        self._serial = itertools.count()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._flush_loop(), name="audit-flush")

    def record(self, record: AuditRecord) -> None:
        log.info(
            "audit",
            subject=record.subject,
            roles=list(record.roles),
            method=record.method,
            targets=list(record.targets),
            outcome=record.outcome,
            audit_request_id=record.request_id,
        )
        self._pending.append(
            {
                "_id": f"{record.at.isoformat()}/{self._id_prefix}{next(self._serial):010d}",
                "at": record.at,
                "subject": record.subject,
                "roles": list(record.roles),
                "method": record.method,
                "targets": list(record.targets),
                "outcome": record.outcome,
                "request_id": record.request_id,
                "service": self._service,
            }
        )

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            try:
                await mongo.insert_new(self._coll, batch)
            except Exception:
                self._pending = batch + self._pending  # store down: keep them for next time
                raise

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            with contextlib.suppress(Exception):
                await self.flush()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.flush()

    async def query(
        self,
        *,
        subject: str,
        target: str,
        start: datetime | None,
        end: datetime | None,
        before: str,
        limit: int,
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {}
        if subject:
            query["subject"] = subject
        if target:
            query["targets"] = target
        window: dict[str, Any] = {}
        if start is not None:
            window["$gte"] = start
        if end is not None:
            window["$lt"] = end
        if window:
            query["at"] = window
        if before:
            query["_id"] = {"$lt": before}
        return await mongo.find_all(self._coll, query, sort=[("_id", -1)], limit=limit)


class AuditApi(pb_grpc.AuditServiceServicer):
    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit

    async def ListAuditRecords(
        self, request: pb.ListAuditRecordsRequest, context: Any
    ) -> pb.ListAuditRecordsResponse:
        v = Violations()
        page_size = check_page_size(v, request.page_size)
        start = optional_instant(v, request, "start_time")
        end = optional_instant(v, request, "end_time")
        v.raise_if_any()
        filter_key = f"{request.subject}|{request.target}|{start}|{end}"
        before = pagination.decode(request.page_token, filter_key)
        docs = await self._audit.query(
            subject=request.subject,
            target=request.target,
            start=start,
            end=end,
            before=before,
            limit=page_size + 1,
        )
        more = len(docs) > page_size
        docs = docs[:page_size]
        return pb.ListAuditRecordsResponse(
            records=[_record(d) for d in docs],
            next_page_token=pagination.encode(docs[-1]["_id"], filter_key) if more else "",
        )


def _record(doc: dict[str, Any]) -> pb.AuditRecord:
    return pb.AuditRecord(
        time=to_timestamp(as_utc(doc["at"])),
        subject=doc["subject"],
        roles=doc["roles"],
        method=doc["method"],
        targets=doc["targets"],
        outcome=doc["outcome"],
        request_id=doc["request_id"],
        service=doc["service"],
    )


def new_record(
    *,
    subject: str,
    roles: tuple[str, ...],
    method: str,
    targets: tuple[str, ...],
    outcome: str,
    request_id: str,
    service: str,
) -> AuditRecord:
    return AuditRecord(utc_now(), subject, roles, method, targets, outcome, request_id, service)
