"""`make bench`: echo baseline, raw inserts, SetStatus, view lag and a profile, on FerretDB with
its SQLite backend and (when PostgreSQL 15 is installed) its PostgreSQL backend.

Prints a summary table and writes docs/benchmarks.md. Every loop is bounded in count and time,
and the whole run in time (RUN_LIMIT_S). Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import grpc

from bench import cases, hotspots
from bench.cases import Plan
from bench.procs import (
    DISTURBED_CORES,
    OTHER,
    PG_BIN,
    RETRIES,
    PidSource,
    Postgres,
    machine_busy_seconds,
    postgres_missing,
    wait_quiet,
)
from bench.report import BackendResult, Report, render, summary
from wfm_runtime import localservers

ROOT = Path(__file__).resolve().parent.parent
RUN_LIMIT_S = 420.0


@dataclass
class Stack:
    """A store and a NATS server for one backend, with the pids to meter."""

    backend: str
    mongo_url: str
    nats_url: str
    groups: dict[str, PidSource] = field(default_factory=dict)


def _pid(process: localservers.ManagedProcess) -> PidSource:
    assert process.proc is not None
    return cases.pid_of(process.proc.pid)


@contextlib.contextmanager
def sqlite_stack(data_dir: Path) -> Iterator[Stack]:
    """A fresh nats-server, and FerretDB (SQLite) unless MONGO_URL names a server to use.

    NATS is always our own: streams and durable consumers are not namespaced by the database
    prefix, so a system started on a used NATS server would receive an earlier run's events.
    """
    processes: list[localservers.ManagedProcess] = []
    try:
        nats = localservers.nats_server(data_dir / "nats")
        nats.start()
        processes.append(nats)
        stack = Stack("MONGO_URL", os.environ.get("MONGO_URL", ""), f"nats://127.0.0.1:{nats.port}")
        stack.groups["nats"] = _pid(nats)
        if not stack.mongo_url:
            ferret = localservers.ferretdb(data_dir)
            ferret.start()
            processes.append(ferret)
            stack.backend, stack.mongo_url = "sqlite", f"mongodb://127.0.0.1:{ferret.port}/"
            stack.groups["ferretdb"] = _pid(ferret)
        yield stack
    finally:
        for process in processes:
            process.stop()


@contextlib.contextmanager
def postgres_stack(data_dir: Path) -> Iterator[Stack]:
    """A throwaway PostgreSQL 15, FerretDB on it, and a fresh nats-server."""
    postgres = Postgres()
    processes: list[localservers.ManagedProcess] = []
    try:
        url = postgres.start()
        data_dir.mkdir(parents=True, exist_ok=True)
        ferret = localservers.ferretdb(data_dir, backend=url)
        nats = localservers.nats_server(data_dir / "nats")
        for process in (ferret, nats):
            process.start()
            processes.append(process)
        groups = {"ferretdb": _pid(ferret), "nats": _pid(nats), "postgres": postgres.pids}
        mongo_url, nats_url = f"mongodb://127.0.0.1:{ferret.port}/", f"nats://127.0.0.1:{nats.port}"
        yield Stack("postgres", mongo_url, nats_url, groups)
    finally:
        for process in processes:
            process.stop()
        postgres.stop()


# --- one backend ---------------------------------------------------------------------------------
async def run_backend(stack: Stack, plan: Plan, log_dir: Path, profile: bool) -> BackendResult:
    shapes = sorted({1, plan.processes})  # availability's process counts measured
    systems: dict[int, cases.SystemRun] = {}
    extra: dict[str, Any] = {}
    try:
        for processes in shapes:
            systems[processes] = await start_system(stack, plan, log_dir, processes)
        echo, inserts, setstatus = await interleaved_rounds(stack, plan, systems, log_dir)
        extra["auth"] = systems[1].auth
        if profile:
            say(f"[{stack.backend}] profiling {plan.profile_calls} SetStatus calls on one process")
            base = log_dir / f"profile-{stack.backend}"
            stats = await systems[1].profile(plan, base)
            extra["profile"] = hotspots.summarise(base, stats.ok)
            extra["profile_rate"] = stats.rate
        # The view lag of each shape, the deployed one last and alone on the machine.
        lags: dict[int, list[cases.LagResult]] = {}
        for processes in sorted(systems, key=lambda p: p == plan.processes):
            system = systems.pop(processes)
            try:
                sustained = setstatus[processes].stats.rate
                lags[processes] = await measure_lags(system, plan, sustained, log_dir)
            finally:
                await system.stop()
    finally:
        for system in systems.values():
            await system.stop()
    if profile:  # once, on the default backend: the same SetStatus load with auth switched off
        extra["setstatus_without_auth"] = await without_auth(stack, plan, log_dir)
    return BackendResult(
        stack.backend,
        echo,
        inserts,
        setstatus[plan.processes],
        setstatus_one_process=setstatus[1] if plan.processes > 1 else None,
        lags=lags[plan.processes],
        lags_one_process=lags[1] if plan.processes > 1 else [],
        **extra,
    )


async def interleaved_rounds(
    stack: Stack, plan: Plan, systems: dict[int, cases.SystemRun], log_dir: Path
) -> tuple[cases.CaseResult, cases.CaseResult, dict[int, cases.CaseResult]]:
    """The echo, the raw insert, then SetStatus on each shape, `plan.rounds` times over; each
    case's rounds merged. Both baselines take turns with SetStatus so that the machine's drift
    in speed stays out of both ratios. The systems not measured at a moment sit idle (their
    CPU counts as `other`)."""
    one_round = replace(
        plan, duration=plan.duration / plan.rounds, total=max(1, plan.total // plan.rounds)
    )
    echoes: list[cases.CaseResult] = []
    inserts: list[cases.CaseResult] = []
    runs: dict[int, list[cases.CaseResult]] = {p: [] for p in systems}
    for number in range(1, plan.rounds + 1):
        say(f"[{stack.backend}] round {number}/{plan.rounds}: echo, raw insert_one, SetStatus")
        echoes.append(await cases.echo_case(one_round, log_dir))
        inserts.append(
            await cases.insert_case(one_round, stack.backend, stack.mongo_url, stack.groups)
        )
        for processes, system in systems.items():
            runs[processes].append(await system.throughput(one_round))
    echo = cases.merge_cases(echoes)
    echo.backend = f"none; {stack.backend} rounds"  # the echo uses no store
    merged_runs = {p: cases.merge_cases(r) for p, r in runs.items()}
    return echo, cases.merge_cases(inserts), merged_runs


async def start_system(stack: Stack, plan: Plan, log_dir: Path, processes: int) -> cases.SystemRun:
    say(
        f"[{stack.backend}] starting scheduling + availability ({processes} process(es)), "
        f"registering {plan.agents} agents"
    )
    return await cases.SystemRun.start(
        stack.backend,
        urls=(stack.mongo_url, stack.nats_url),
        plan=plan,
        groups=stack.groups,
        log_dir=log_dir,
        processes=processes,
    )


async def measure_lags(
    system: cases.SystemRun, plan: Plan, sustained: float, log_dir: Path
) -> list[cases.LagResult]:
    results = []
    for rate in lag_rates(plan, sustained):
        say(f"[{system.backend}] view lag at {rate:.0f} changes/s, {system.processes} process(es)")
        results.append(await lag_quietly(system, plan, rate, log_dir))
    return results


async def without_auth(stack: Stack, plan: Plan, log_dir: Path) -> cases.CaseResult:
    say(f"[{stack.backend}] SetStatus throughput without auth (WFM_AUTH=off)")
    system = await cases.SystemRun.start(
        f"{stack.backend}-noauth",
        urls=(stack.mongo_url, stack.nats_url),
        plan=plan,
        groups=stack.groups,
        log_dir=log_dir,
        env={"WFM_BENCH_AUTH": "off"},
    )
    try:
        measured = await system.throughput(plan)
    finally:
        await system.stop()
    measured.case = "SetStatus, auth off"
    return measured


async def lag_quietly(
    system: cases.SystemRun, plan: Plan, rate: float, log_dir: Path
) -> cases.LagResult:
    """The lag run, once more if other processes competed for the CPU during it."""
    result = await system.lag(plan, rate, log_dir)
    disturbed = result.cpu.get(OTHER, 0.0) >= DISTURBED_CORES
    if disturbed and RETRIES.allows(plan.lag_seconds + 25):
        say("  other processes competed for the CPU; waiting for quiet and measuring again")
        await wait_quiet()
        again = await system.lag(plan, rate, log_dir)
        if again.cpu.get(OTHER, 0.0) < result.cpu[OTHER]:
            result = again
    return result


def lag_rates(plan: Plan, sustained: float) -> list[float]:
    """The target rate, plus half the sustained rate when the target is near or above it."""
    rates = [plan.lag_rate]
    if sustained < plan.lag_rate * 1.25:
        rates.append(float(max(10, int(sustained * 0.5 / 10) * 10)))
    return rates


# --- the whole run -------------------------------------------------------------------------------
def say(message: str) -> None:
    print(f"bench: {message}", flush=True)


def version_of(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError as exc:
        return f"unknown ({exc})"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else ""


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info(backends: list[str]) -> dict[str, str]:
    ferretdb = localservers._binary("FERRETDB_BIN", "ferretdb")
    nats = localservers._binary("NATS_SERVER_BIN", "nats-server")
    info = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "CPU": cpu_model(),
        "kernel": platform.release(),
        "Python": platform.python_version(),
        "grpcio": grpc.__version__,
        "protobuf / motor / pymongo / nats-py": " / ".join(
            metadata.version(p) for p in ("protobuf", "motor", "pymongo", "nats-py")
        ),
        "FerretDB": version_of([ferretdb, "--version"]),
        "FerretDB backends measured": ", ".join(backends),
        "nats-server": version_of([nats, "--version"]),
    }
    if "postgres" in backends:
        info["PostgreSQL"] = version_of([str(PG_BIN / "postgres"), "--version"])
    return info


async def idle_check(seconds: float = 1.0) -> str:
    """A note if other processes keep the machine busy (they would disturb the figures)."""
    before = machine_busy_seconds()
    await asyncio.sleep(seconds)
    busy = (machine_busy_seconds() - before) / seconds
    if busy < 0.2:
        return ""
    return f"other processes used {busy:.2f} cores in the second before the run started"


async def run_all(plan: Plan, log_dir: Path, with_postgres: bool) -> Report:
    began = time.perf_counter()
    busy = await idle_check()
    report = Report({}, plan)
    if busy:
        report.notes.append(busy)
        say(f"warning: {busy}")
    with sqlite_stack(log_dir / "sqlite") as stack:
        report.backends.append(await run_backend(stack, plan, log_dir, profile=True))
    why_not = postgres_skip_reason(with_postgres)
    if why_not:
        report.notes.append(f"PostgreSQL backend skipped: {why_not}")
        say(f"PostgreSQL backend skipped: {why_not}")
    else:
        with postgres_stack(log_dir / "postgres") as stack:
            report.backends.append(await run_backend(stack, plan, log_dir, profile=False))
    report.meta = machine_info([b.backend for b in report.backends])
    report.wall_s = time.perf_counter() - began
    return report


def postgres_skip_reason(with_postgres: bool) -> str:
    if not with_postgres:
        return "--no-postgres was given"
    if os.environ.get("MONGO_URL"):
        return "MONGO_URL is set, so FerretDB is not started by the benchmark"
    if os.geteuid() != 0:
        return "needs root to run initdb as the postgres user (runuser)"
    return postgres_missing()


def parse(argv: list[str] | None) -> tuple[Plan, Path, bool]:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--workers", type=int, default=Plan.workers)
    parser.add_argument("--duration", type=float, default=Plan.duration)
    parser.add_argument("--lag-seconds", type=float, default=Plan.lag_seconds)
    parser.add_argument(
        "--processes", type=int, default=Plan.processes, help="availability's processes"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    plan = Plan(
        workers=args.workers,
        connections=args.workers,
        duration=args.duration,
        lag_seconds=args.lag_seconds,
        processes=args.processes,
    )
    return plan, args.out, not args.no_postgres


def main(argv: list[str] | None = None) -> int:
    plan, out, with_postgres = parse(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="wfm-bench-"))
    try:
        report = asyncio.run(asyncio.wait_for(run_all(plan, log_dir, with_postgres), RUN_LIMIT_S))
    except BaseException:
        print(f"bench: failed; server logs are in {log_dir}", file=sys.stderr)
        raise
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(report))
    print(summary(report))
    say(f"wrote {out} in {report.wall_s:.0f} s")
    shutil.rmtree(log_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
