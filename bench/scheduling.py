"""`python -m bench.scheduling`: a 4-week roster for 500 agents, bulk-assigned and validated,
then every agent's roster read and one team's coverage; with a bare baseline on the same store.

Starts its own nats-server and FerretDB (SQLite) unless MONGO_URL is set, runs the scheduling
service in-process (authentication off, as the development flag allows), and writes
docs/bench/scheduling.md. Bounded: every phase has a deadline; the whole run takes well under
3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bson.binary import Binary
from wfm.scheduling.v1 import directory_service_pb2 as dpb
from wfm.scheduling.v1 import directory_service_pb2_grpc as dpb_grpc
from wfm.scheduling.v1 import roster_service_pb2 as rpb
from wfm.scheduling.v1 import roster_service_pb2_grpc as rpb_grpc

from bench.load import quantile
from bench.run import sqlite_stack
from services.scheduling import main as scheduling_main
from wfm_runtime import mongo
from wfm_runtime.testing import channel, isolated_settings

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "bench" / "scheduling.md"
TEAM = "bench-night"
START, END = "2027-03-01", "2027-03-28"  # four weeks, Monday to Sunday
READ_CONCURRENCY = 16
BULK_CHUNK = 100


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    count: int = 0

    def ms(self, q: float) -> float:
        return quantile(self.latencies, q) * 1000.0


async def _timed(phase: Phase, call: Any) -> Any:
    begin = time.perf_counter()
    result = await call
    phase.latencies.append(time.perf_counter() - begin)
    return result


async def _setup(directory: Any, roster: Any, agents: int) -> None:
    windows = [
        dpb.OperatingWindow(iso_weekday=d, open_local_time="08:00", length_minutes=540)
        for d in range(1, 8)
    ]
    await directory.CreateTeam(
        dpb.CreateTeamRequest(
            team_id=TEAM,
            idempotency_key="team",
            team=dpb.Team(
                display_name="Bench night",
                client_time_zone="America/New_York",
                operating_hours=windows,
            ),
        )
    )
    await roster.CreateSite(
        rpb.CreateSiteRequest(
            site_id="pune",
            idempotency_key="site",
            site=rpb.Site(display_name="Pune", time_zone="Asia/Kolkata"),
        )
    )
    await roster.CreateShiftPattern(
        rpb.CreateShiftPatternRequest(
            shift_pattern_id="us-day",
            idempotency_key="pattern",
            shift_pattern=rpb.ShiftPattern(
                display_name="US day",
                start_local_time="08:00",
                length_minutes=540,
                anchor=rpb.ANCHOR_CLIENT,
                activities=[
                    rpb.Activity(
                        kind=rpb.ACTIVITY_KIND_BREAK,
                        offset_minutes=120,
                        length_minutes=15,
                        paid=True,
                    ),
                    rpb.Activity(
                        kind=rpb.ACTIVITY_KIND_LUNCH, offset_minutes=240, length_minutes=30
                    ),
                ],
                iso_weekdays=[1, 2, 3, 4, 5],
            ),
        )
    )
    limit = asyncio.Semaphore(32)

    async def register(n: int) -> None:
        async with limit:
            await directory.CreateAgent(
                dpb.CreateAgentRequest(
                    agent_id=f"a{n:04d}",
                    idempotency_key=f"agent-{n}",
                    agent=dpb.Agent(
                        display_name=f"Agent {n}",
                        team=f"teams/{TEAM}",
                        site="pune",
                        time_zone="Asia/Kolkata",
                        contract_type=dpb.CONTRACT_TYPE_FULL_TIME,
                        weekly_minutes=45 * 60,
                        annual_leave_days=29,
                    ),
                )
            )

    await asyncio.gather(*(register(n) for n in range(agents)))


async def _bulk(roster: Any, agents: int, phase: Phase) -> int:
    names = [f"agents/a{n:04d}" for n in range(agents)]
    chunks = [names[i : i + BULK_CHUNK] for i in range(0, len(names), BULK_CHUNK)]
    begin = time.perf_counter()
    results = await asyncio.gather(
        *(
            _timed(
                phase,
                roster.BulkAssignShifts(
                    rpb.BulkAssignShiftsRequest(
                        shift_pattern="shiftPatterns/us-day",
                        agents=chunk,
                        start_date=START,
                        end_date=END,
                        idempotency_key=f"bulk-{n}",
                    ),
                    timeout=120,
                ),
            )
            for n, chunk in enumerate(chunks)
        )
    )
    phase.seconds = time.perf_counter() - begin
    phase.count = sum(r.assigned_shifts for r in results)
    refused = sum(r.refused_agents for r in results)
    if refused:
        raise RuntimeError(f"{refused} agents refused: {results[0].assignments[0]}")
    return phase.count


async def _reads(roster: Any, agents: int, phase: Phase) -> None:
    limit = asyncio.Semaphore(READ_CONCURRENCY)

    async def read(n: int) -> None:
        async with limit:
            got = await _timed(
                phase,
                roster.GetAgentRoster(
                    rpb.GetAgentRosterRequest(
                        agent=f"agents/a{n:04d}", start_date=START, end_date=END
                    )
                ),
            )
            if sum(len(d.shifts) for d in got.days) != 20:
                raise RuntimeError(f"agent a{n:04d} has {len(got.days)} days")

    begin = time.perf_counter()
    await asyncio.gather(*(read(n) for n in range(agents)))
    phase.seconds = time.perf_counter() - begin
    phase.count = agents


async def _coverage(roster: Any, phase: Phase, rounds: int = 5) -> int:
    begin = time.perf_counter()
    intervals = 0
    for _ in range(rounds):
        got = await _timed(
            phase,
            roster.GetCoverage(
                rpb.GetCoverageRequest(
                    team=f"teams/{TEAM}", start_date=START, end_date="2027-03-07"
                )
            ),
        )
        intervals = len(got.intervals)
        if max(c.scheduled for c in got.intervals) < 1:
            raise RuntimeError("coverage shows nobody scheduled")
    phase.seconds = time.perf_counter() - begin
    phase.count = rounds
    return intervals


async def _baseline(service: scheduling_main.SchedulingService, agents: int) -> tuple[Phase, Phase]:
    """Raw insert_many of the same events' documents, and raw find_one of the roster docs."""
    events = service.runtime.db["events"]
    sample = await mongo.find_all(events, {"aggregate_type": "schedule"}, limit=agents)
    scratch = service.runtime.db["bench_raw"]
    docs = [
        {**d, "_id": f"raw/{d['_id']}", "envelope": Binary(bytes(d["envelope"]))} for d in sample
    ]
    insert = Phase("raw insert_many of the schedule events")
    begin = time.perf_counter()
    for i in range(0, len(docs), 256):
        await _timed(insert, mongo.insert_new(scratch, docs[i : i + 256]))
    insert.seconds = time.perf_counter() - begin
    insert.count = len(docs)
    reads = Phase("raw find_one of a roster view document")
    rosters = service.roster_views.rosters
    limit = asyncio.Semaphore(READ_CONCURRENCY)

    async def read(n: int) -> None:
        async with limit:
            await _timed(reads, mongo.get(rosters, f"a{n:04d}"))

    begin = time.perf_counter()
    await asyncio.gather(*(read(n) for n in range(agents)))
    reads.seconds = time.perf_counter() - begin
    reads.count = agents
    await mongo.drop_collection(scratch)
    return insert, reads


async def run(agents: int) -> str:
    with (
        tempfile.TemporaryDirectory(prefix="bench-sched-") as scratch,
        sqlite_stack(Path(scratch)) as stack,
    ):
        settings = isolated_settings("scheduling", stack.mongo_url, stack.nats_url)
        service = await scheduling_main.start(settings, port=0)
        ch = channel(f"127.0.0.1:{service.port}")
        try:
            return await _measure(service, ch, agents, stack.backend)
        finally:
            await ch.close()
            await service.stop()


async def _measure(
    service: scheduling_main.SchedulingService, ch: Any, agents: int, backend: str
) -> str:
    directory = dpb_grpc.DirectoryServiceStub(ch)
    roster = rpb_grpc.RosterServiceStub(ch)
    await _setup(directory, roster, agents)
    for runner in service.runtime.projectors:
        await runner.wait_caught_up(timeout=60)
    bulk = Phase("bulk assign")
    shifts = await asyncio.wait_for(_bulk(roster, agents, bulk), timeout=120)
    begin = time.perf_counter()
    for runner in service.runtime.projectors:
        await runner.wait_caught_up(timeout=120)
    view_lag = time.perf_counter() - begin
    reads = Phase("GetAgentRoster")
    await asyncio.wait_for(_reads(roster, agents, reads), timeout=60)
    coverage = Phase("GetCoverage")
    intervals = await asyncio.wait_for(_coverage(roster, coverage), timeout=60)
    raw_insert, raw_reads = await _baseline(service, agents)
    return _report(
        agents=agents,
        shifts=shifts,
        bulk=bulk,
        view_lag=view_lag,
        reads=reads,
        coverage=coverage,
        intervals=intervals,
        raw_insert=raw_insert,
        raw_reads=raw_reads,
        backend=backend,
    )


def _report(
    *,
    agents: int,
    shifts: int,
    bulk: Phase,
    view_lag: float,
    reads: Phase,
    coverage: Phase,
    intervals: int,
    raw_insert: Phase,
    raw_reads: Phase,
    backend: str,
) -> str:
    checked = shifts / bulk.seconds
    raw_rate = raw_insert.count / raw_insert.seconds
    agents_per_s = agents / bulk.seconds
    lines = [
        "# Scheduling benchmark",
        "",
        f"`python -m bench.scheduling` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()}, {os.cpu_count()} cores, FerretDB v1.24.2 ({backend}) and "
        "nats-server started by the run; the scheduling service in-process, authentication off; "
        f"load average at the end {os.getloadavg()[0]:.1f} (the 2 cores are shared with other "
        "work, so figures vary from run to run).",
        "",
        f"Workload: {agents} agents of one team (client America/New_York, agents Asia/Kolkata), "
        f"pattern Monday-Friday 08:00 New York, 9 h with a break and an unpaid lunch, "
        f"{START} to {END} (four weeks, {shifts} shifts). `BulkAssignShifts` in "
        f"{(agents + BULK_CHUNK - 1) // BULK_CHUNK} concurrent requests of {BULK_CHUNK} agents; "
        "each agent's four weeks are one command (validated against every rule, then committed "
        "as one event). Then every agent's 4-week roster is read (16 concurrent), and one "
        "week of the team's coverage in 30-minute intervals.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| whole roster validated and stored (events committed) | **{bulk.seconds:.2f} s** "
        f"(target < 30 s) |",
        f"| assignments checked per second | {checked:,.0f} shifts/s "
        f"({agents_per_s:,.0f} agents/s) |",
        f"| bulk request latency p50 / p99 ({BULK_CHUNK} agents each) | "
        f"{bulk.ms(0.5):.0f} / {bulk.ms(0.99):.0f} ms |",
        f"| views caught up after the last bulk answer | {view_lag:.2f} s |",
        f"| GetAgentRoster p50 / p99 (4 weeks, 20 shifts) | {reads.ms(0.5):.1f} / "
        f"{reads.ms(0.99):.1f} ms, {reads.count / reads.seconds:,.0f} reads/s |",
        f"| GetCoverage p50 / p99 (7 days, {intervals} intervals, {agents} agents) | "
        f"{coverage.ms(0.5):.0f} / {coverage.ms(0.99):.0f} ms |",
        "",
        "Bare baseline on the same FerretDB in the same run:",
        "",
        "| baseline | value | ratio |",
        "|---|---|---|",
        f"| raw `insert_many` of the {raw_insert.count} schedule event documents (batches of 256) "
        f"| {raw_rate:,.0f} docs/s | bulk assign commits {agents_per_s / raw_rate:.1%} of that "
        "rate (agents/s vs documents/s) |",
        f"| raw `find_one` of a roster view document (16 concurrent) | p50 {raw_reads.ms(0.5):.1f} "
        f"/ p99 {raw_reads.ms(0.99):.1f} ms | GetAgentRoster p50 is "
        f"{reads.ms(0.5) / max(raw_reads.ms(0.5), 1e-6):.1f}x |",
        "",
        "Each agent's change writes its event, which spends the idempotency key (one insert, "
        "grouped across concurrent commands), plus the projector's view upsert; the baseline "
        "writes only the event documents.",
        "",
        "GetCoverage reads the `coverage` view (one small document per team and UTC date: "
        "productive seconds per 15-minute bucket). Before that view (round 1: computed at read "
        "time from the 500 agents' roster documents) the same read measured p50 487 / p99 572 ms "
        "(2026-11-23 23:33 UTC run). Keeping the view adds work to the projection: the views' "
        "catch-up after the bulk took 4.5 s in that run and 4.7 to 9.2 s in five runs since on "
        "the same shared machine (its load varies).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    text = asyncio.run(asyncio.wait_for(run(args.agents), timeout=170))
    print(text)
    if not args.no_write:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
