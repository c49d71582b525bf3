"""Helpers for tests and benchmarks that run the real services in-process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

from wfm_runtime import config
from wfm_runtime.config import Settings

T = TypeVar("T")


def isolated_settings(service: str, mongo_url: str, nats_url: str, prefix: str = "") -> Settings:
    """Settings on real servers with a database prefix of their own and a free gRPC port."""
    base = config.load(service)
    return replace(
        base,
        mongo_url=mongo_url,
        nats_url=nats_url,
        grpc_port=0,
        database_prefix=prefix or f"t{uuid.uuid4().hex[:10]}_",
        relay_sweep_interval_s=0.5,
        shutdown_grace_s=0.5,
    )


async def eventually(
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], bool] = bool,
    timeout: float = 15.0,
    interval: float = 0.05,
) -> T:
    """Polls `probe` until `until(result)` holds; the last result is returned or reported."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await probe()
        if until(result):
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {result!r}")
        await asyncio.sleep(interval)
