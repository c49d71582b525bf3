"""Work a service repeats on a timer (a sweep, a refresh), surviving a store or NATS outage."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from wfm_runtime import logging as wlog

log = wlog.get("periodic")


async def repeat_forever(
    step: Callable[[], Awaitable[object]],
    interval_s: float,
    failure_event: str,
    *,
    at_once: bool = False,
) -> None:
    """Runs `step` every `interval_s` seconds (the first time at once if `at_once`) until
    cancelled. A step that fails is logged as `failure_event` and simply runs again next time:
    what it reads (the store, NATS) may be away for a while."""
    if not at_once:
        await asyncio.sleep(interval_s)
    while True:
        try:
            await step()
        except Exception as exc:  # not CancelledError: that ends the loop
            log.warning(failure_event, error=repr(exc))
        await asyncio.sleep(interval_s)
