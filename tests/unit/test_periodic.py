"""wfm_runtime.periodic: a timer's work survives a failing step and stops when cancelled."""

from __future__ import annotations

import asyncio

import pytest

from wfm_runtime.periodic import repeat_forever


async def test_a_failing_step_runs_again_next_time_and_cancel_stops_it() -> None:
    calls: list[float] = []
    loop = asyncio.get_running_loop()
    third = asyncio.Event()

    async def step() -> None:
        calls.append(loop.time())
        if len(calls) == 3:
            third.set()
        if len(calls) == 1:
            raise RuntimeError("store away")

    began = loop.time()
    task = asyncio.create_task(repeat_forever(step, 0.02, "step_failed", at_once=True))
    await asyncio.wait_for(third.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls[0] - began < 0.015  # at once
    assert calls[1] - calls[0] >= 0.019  # the failure waited for the next round


async def test_without_at_once_the_first_run_waits_an_interval() -> None:
    loop = asyncio.get_running_loop()
    ran = loop.create_future()

    async def step() -> None:
        if not ran.done():
            ran.set_result(loop.time())

    began = loop.time()
    task = asyncio.create_task(repeat_forever(step, 0.05, "step_failed"))
    first = await asyncio.wait_for(ran, 2)
    task.cancel()
    assert first - began >= 0.049
