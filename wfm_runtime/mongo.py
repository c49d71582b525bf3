"""MongoDB helpers: the only place outside services' store modules that calls the driver.

Written to the subset that MongoDB 7 and FerretDB v1.24 share (docs/ferretdb.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorCollection, AsyncIOMotorDatabase
from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    ConnectionFailure,
    NetworkTimeout,
    OperationFailure,
    ServerSelectionTimeoutError,
)

DUPLICATE_KEY = 11000

Collection = AsyncIOMotorCollection[dict[str, Any]]
Database = AsyncIOMotorDatabase[dict[str, Any]]
Client = AsyncIOMotorClient[dict[str, Any]]

# Errors that mean "the store is not reachable right now": mapped to UNAVAILABLE.
UNREACHABLE = (ServerSelectionTimeoutError, AutoReconnect, NetworkTimeout, ConnectionFailure)


def connect(url: str, app_name: str, timeout_ms: int = 3000) -> Client:
    return AsyncIOMotorClient(
        url,
        appname=app_name,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=max(timeout_ms * 4, 15000),
        maxPoolSize=64,
    )


async def is_ferretdb(client: Client) -> bool:
    info = await client.admin.command("buildInfo")
    return "ferretdbVersion" in info


async def ensure_indexes(coll: Collection, *specs: tuple[list[str], bool]) -> None:
    """Creates single or compound indexes: (fields, unique). Idempotent.

    One index per call: FerretDB v1.24 drops the connection when one `createIndexes` names
    several indexes that already exist (docs/ferretdb.md, rule 12).
    """
    for fields, unique in specs:
        model = IndexModel([(f, ASCENDING) for f in fields], unique=unique, name="_".join(fields))
        await coll.create_indexes([model])


async def retire_indexes(coll: Collection, *names: str) -> None:
    """Drops indexes a newer version no longer uses, if they are there. Idempotent: a view
    created by an older release keeps paying for an unused index on every write otherwise."""
    present = await coll.index_information()
    for name in names:
        if name in present:
            with contextlib.suppress(OperationFailure):  # dropped meanwhile by another replica
                await coll.drop_index(name)


async def get(coll: Collection, doc_id: str) -> dict[str, Any] | None:
    # find_one sends LIMIT 1, which FerretDB's SQLite backend pushes down with the _id filter.
    result: dict[str, Any] | None = await coll.find_one({"_id": doc_id})
    return result


async def find_first(coll: Collection, query: dict[str, Any]) -> dict[str, Any] | None:
    """The first document matching a filter (on FerretDB a scan that stops at the match)."""
    result: dict[str, Any] | None = await coll.find_one(query)
    return result


async def find_all(
    coll: Collection,
    query: dict[str, Any],
    sort: list[tuple[str, int]] | None = None,
    limit: int = 0,
) -> list[dict[str, Any]]:
    cursor = coll.find(query)
    if sort:
        cursor = cursor.sort(sort)
    if limit:
        cursor = cursor.limit(limit)
    docs: list[dict[str, Any]] = await cursor.to_list(None)
    return docs


async def set_fields(
    coll: Collection, doc_id: str, fields: dict[str, Any], upsert: bool = True
) -> None:
    await coll.update_one({"_id": doc_id}, {"$set": fields}, upsert=upsert)


async def set_fields_many(coll: Collection, fields_by_id: dict[str, dict[str, Any]]) -> None:
    """`set_fields` (upsert) of several documents in one round trip (one `bulk_write` of
    updates only: rule 9 of docs/ferretdb.md)."""
    if not fields_by_id:
        return
    await coll.bulk_write(
        [UpdateOne({"_id": i}, {"$set": f}, upsert=True) for i, f in fields_by_id.items()],
        ordered=False,
    )


async def delete(coll: Collection, doc_id: str) -> None:
    await coll.delete_one({"_id": doc_id})


async def delete_ids(coll: Collection, doc_ids: list[str]) -> None:
    await coll.delete_many({"_id": {"$in": doc_ids}})


async def insert_new(coll: Collection, docs: list[dict[str, Any]]) -> int:
    """Inserts documents whose `_id` is new; existing ones are left as they are (idempotent)."""
    if not docs:
        return 0
    try:
        result = await coll.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        codes = {error.get("code") for error in exc.details.get("writeErrors", [])}
        if codes - {DUPLICATE_KEY}:
            raise
        return int(exc.details.get("nInserted", 0))
    return len(result.inserted_ids)


async def drop_collection(coll: Collection) -> None:
    await coll.drop()


class InsertBatcher:
    """Group commit: concurrent single-document inserts share one `insert_many`.

    Each document is still inserted on its own unique key, atomically, and each caller learns
    its own outcome (True, False for a duplicate key, or the error). While one batch is being
    written the next one gathers, so a lone insert waits for nothing and a busy service writes
    many documents per round trip (FerretDB commits each command in one SQLite transaction).
    """

    def __init__(self, coll: Collection, max_batch: int = 256) -> None:
        self._coll = coll
        self._max = max_batch
        self._queue: list[tuple[dict[str, Any], asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def insert(self, doc: dict[str, Any]) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((doc, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max], self._queue[self._max :]
            await self._write(batch)

    async def _write(self, batch: list[tuple[dict[str, Any], asyncio.Future[bool]]]) -> None:
        outcomes: dict[int, bool | BaseException] = {}
        try:
            await self._coll.insert_many([doc for doc, _ in batch], ordered=False)
        except BulkWriteError as exc:
            for error in exc.details.get("writeErrors", []):
                code = error.get("code")
                outcomes[int(error["index"])] = (
                    False
                    if code == DUPLICATE_KEY
                    else OperationFailure(error.get("errmsg", "write failed"), code)
                )
        except Exception as exc:
            outcomes = dict.fromkeys(range(len(batch)), exc)
        for index, (_, future) in enumerate(batch):
            if future.done():
                continue
            outcome = outcomes.get(index, True)
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
