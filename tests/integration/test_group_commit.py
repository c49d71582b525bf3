"""Group commit (mongo.InsertBatcher) keeps each insert's own unique-key outcome."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from motor.motor_asyncio import AsyncIOMotorClient

from wfm_runtime import mongo

pytestmark = pytest.mark.integration


async def test_concurrent_inserts_share_batches_but_keep_their_own_outcome(mongo_url: str) -> None:
    client: AsyncIOMotorClient = AsyncIOMotorClient(mongo_url)
    try:
        coll = client[f"gc_{uuid.uuid4().hex[:8]}"]["docs"]
        await coll.insert_one({"_id": "taken"})
        batcher = mongo.InsertBatcher(coll, max_batch=16)
        ids = [f"d{i}" for i in range(100)] + ["taken", "d7", "d7"]
        results = await asyncio.gather(*(batcher.insert({"_id": i}) for i in ids))
        outcome = dict.fromkeys(ids, 0)
        for doc_id, inserted in zip(ids, results, strict=True):
            outcome[doc_id] += int(inserted)
        assert outcome["taken"] == 0  # it was there before
        assert outcome["d7"] == 1  # asked three times, inserted exactly once
        assert all(outcome[f"d{i}"] == 1 for i in range(100))
        assert await coll.count_documents({}) == 101
    finally:
        client.close()
