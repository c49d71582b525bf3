"""Renders the results: docs/benchmarks.md and the summary table printed to stdout."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from bench.cases import CaseResult, LagResult, Plan
from bench.hotspots import ProfileSummary, Table
from bench.load import quantile
from bench.procs import DISTURBED_CORES, OTHER

TARGET_VS_INSERT = 0.40
TARGET_VS_ECHO = 0.25
TARGET_LAG_P99_MS = 100.0
CLIENT = "client"
# The store's processes: FerretDB and, on that backend, PostgreSQL.
STORE_GROUPS = ("ferretdb", "postgres")


@dataclass
class BackendResult:
    backend: str
    echo: CaseResult  # the bare gRPC echo, in rounds taken in turn with this store's cases
    insert: CaseResult
    setstatus: CaseResult  # in the deployed shape: Plan.processes availability processes
    # On one process, when that shape has more (the profile and auth runs use one).
    setstatus_one_process: CaseResult | None = None
    lags: list[LagResult] = field(default_factory=list)  # in the deployed shape
    lags_one_process: list[LagResult] = field(default_factory=list)
    profile: ProfileSummary | None = None
    profile_rate: float = 0.0
    auth: bool = False
    setstatus_without_auth: CaseResult | None = None

    def insert_rate(self) -> float:
        return self.insert.stats.rate

    def insert_text(self) -> str:
        rounds = self.insert.round_rates
        if len(rounds) < 2:
            return f"{self.insert_rate():.0f}/s"
        each = ", ".join(f"{r:.0f}" for r in rounds)
        return f"{self.insert_rate():.0f}/s over {len(rounds)} rounds: {each}/s"

    def echo_rate(self) -> float:
        return self.echo.stats.rate

    def round_ratios(self, result: CaseResult, baseline: CaseResult | None = None) -> str:
        """SetStatus / baseline (raw insert unless given) of each interleaved round, e.g.
        `41%, 39%, 44%`."""
        base = baseline or self.insert
        pairs = zip(result.round_rates, base.round_rates, strict=False)
        return ", ".join(pct(s / max(1e-9, i)) for s, i in pairs)


@dataclass
class Report:
    meta: dict[str, str]
    plan: Plan
    backends: list[BackendResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0


# --- small helpers -------------------------------------------------------------------------------
def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def render_table(table: Table) -> str:
    return md_table(table.header, table.rows)


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def cores(result: CaseResult) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in result.cpu.items() if k != CLIENT or v)


def cpu_ms_per_op(result: CaseResult, group: str) -> float:
    ok = max(1, result.stats.ok)
    return result.cpu.get(group, 0.0) * result.stats.elapsed / ok * 1000.0


def server_cpu_ms(result: CaseResult) -> str:
    parts = [
        f"{name} {cpu_ms_per_op(result, name):.2f}"
        for name in result.cpu
        if name not in (CLIENT, OTHER) and result.cpu[name] >= 0.01
    ]
    return ", ".join(parts)


def service_group(result: CaseResult) -> str:
    return "server" if "server" in result.cpu else "services"


PYTHON_PROCESSES = ("client", "server", "services")
DAGGER = (
    f"† other processes on the machine used {DISTURBED_CORES} cores or more during this "
    "measurement (retried once, budget permitting, keeping the quieter run); treat it with care."
)


def bottleneck(result: CaseResult) -> str:
    """A one-line reading of the CPU figures: machine-bound, one process saturated, or waiting.

    A Python process whose threads share one GIL rarely shows more than ~0.8 core of Python
    work (grpc's C threads can add to it), so 0.7 counts as close to its ceiling.
    """
    nproc = os.cpu_count() or 1
    total = sum(result.cpu.values())
    ours = {k: v for k, v in result.cpu.items() if k != OTHER}
    name, busiest = max(ours.items(), key=lambda kv: kv[1])
    machine = f"{total:.2f} of {nproc} cores busy"
    other = result.cpu.get(OTHER, 0.0)
    disturbed = (
        f"; {other:.2f} cores went to processes outside the benchmark" if other >= 0.2 else ""
    )
    if total >= 0.85 * nproc:
        return f"CPU-bound: {machine} (busiest: {name}, {busiest:.2f}){disturbed}"
    if name == "services" and busiest >= 1.0:  # API workers: more than one process
        return f"the services processes used {busiest:.2f} cores; {machine}{disturbed}"
    if busiest >= 0.9 or (name in PYTHON_PROCESSES and busiest >= 0.7):
        return (
            f"the {name} process is near what one process gets ({busiest:.2f} cores); "
            f"{machine}{disturbed}"
        )
    return f"waiting more than computing: no process used a full core ({machine}){disturbed}"


def ms(value_s: float) -> str:
    return f"{value_s * 1000:.1f}"


def spread(result: CaseResult) -> str:
    seconds = sorted(result.stats.per_second())
    if not seconds:
        return "-"
    return f"{seconds[0]:,} / {seconds[len(seconds) // 2]:,} / {seconds[-1]:,}"


def mark(label: str, cpu: dict[str, float]) -> str:
    """Flags a measurement during which other processes competed for the CPU."""
    return f"{label} †" if cpu.get(OTHER, 0.0) >= DISTURBED_CORES else label


def dagger(rows: list[list[str]]) -> list[str]:
    return [DAGGER, ""] if any(row[0].endswith("†") for row in rows) else []


def stat_row(result: CaseResult) -> list[str]:
    s = result.stats
    return [
        mark(result.case, result.cpu),
        result.backend,
        f"{s.rate:,.0f}",
        spread(result),
        f"{s.quantile_ms(0.5):.2f}",
        f"{s.quantile_ms(0.99):.2f}",
        f"{s.ok:,}",
        str(s.errors),
        cores(result),
        server_cpu_ms(result),
    ]


# --- sections ------------------------------------------------------------------------------------
def machine_section(report: Report) -> str:
    rows = [[k, v] for k, v in report.meta.items()]
    return "## Machine\n\n" + md_table(["", ""], rows)


def method_section(report: Report) -> str:
    p = report.plan
    return f"""## Method

- One load generator for every case: a Python asyncio process with {p.workers} concurrent
  workers in a closed loop (each sends its next call when the last one returned), after a
  warm-up of {p.warmup} calls, for at most {p.total:,} calls or {p.duration:.0f} s, whichever
  comes first. gRPC cases open one `grpc.aio` channel per worker, each on its own TCP
  connection, as separate clients would (an agent always calls over the same one); the insert
  case uses one motor client
  (`wfm_runtime.mongo.connect`, the services' pool settings). On each store the bare echo, the
  raw insert loop and SetStatus (on one process, then on {p.processes}) take turns in
  {p.rounds} rounds of
  {p.duration / p.rounds:.0f} s each (each with its own warm-up; the systems not being measured
  sit idle), and each case's rounds are added up: the shared machine's speed drifts by 10-50%
  over minutes, and interleaving keeps that drift out of the ratios (the ratio of each round
  is in the targets table; each store's ratios use the echo of its own rounds). Latency is
  measured around each await with `perf_counter`; p50/p99 are nearest-rank over the successful
  calls.
- Message size: the echo request and reply are {p.size} bytes; the raw insert writes a
  {p.size}-byte BSON document with a string `_id`. SetStatus messages are what the API takes
  (their sizes are in the notes under the throughput table).
- Servers run in their own processes, so the load generator does not take their CPU: the echo
  server, and scheduling + availability together (as `tests/conftest.py` `start_system`
  wires them, with the relay sweep at 0.5 s), are `python -m bench.server` subprocesses.
  SetStatus is measured on one availability process, then in the shape `deploy/` runs:
  {p.processes} processes on one port (`AVAILABILITY_WORKERS={p.processes}`: the primary, which
  also runs the projectors, and API workers, docs/workers.md; "services" CPU is all of them).
  The view lag is measured on both (one process first, the deployed shape last and alone on
  the machine); the profile and the auth comparison on one process;
  FerretDB, nats-server and PostgreSQL are the real servers started by
  `wfm_runtime.localservers` and by `bench/procs.py`. Everything is on loopback. "CPU cores"
  is user+system CPU time from `/proc/<pid>/stat` over the measured window divided by its wall
  time, per process (PostgreSQL: the postmaster and its backends); `other` is the rest of the
  machine (from `/proc/stat`), which should be about 0.
- SetStatus: {p.agents} agents in one team are registered through
  `DirectoryService.CreateAgent`, and the run starts only once availability knows all of them.
  Every call has a unique idempotency key; each worker owns its own agents (no two workers
  write one agent at once), and each agent's status rotates through all eight statuses, so
  every call records an event. {_auth_text(report)} gRPC is plaintext on loopback (the
  development flag, as in the tests): TLS is not measured. Service logs go to a file at the
  production level (info). Each store backend gets a fresh nats-server.
- View lag: SetStatus at a fixed rate (open loop: calls start on schedule whatever the
  latency), {p.lag_seconds:.0f} s per rate. The client notes `time.monotonic()` when each call
  returns OK; a listener on the availability service's board `ProjectorRunner` notes
  `time.monotonic()` when the batch holding that (agent, version) has been written to the
  board (the same clock for both processes). Lag = applied - acknowledged; an event applied
  before the client saw the OK counts as 0. Afterwards GetAvailability of some agents is
  checked against their last acknowledged version.
- SetStatus/echo "with the store taken out": the issue asks for 25% of the echo where the
  store is not the bottleneck. Here it is: every call commits through FerretDB, whose raw
  insert loop alone is near or under 25% of the echo, and FerretDB takes its share of the same
  two cores. No store on this machine is fast enough to take out of the way, so the bench
  computes the rate the same cores would carry if the store's work ran elsewhere. Both cases
  are CPU-bound (see "where each case's time went"), so each rate is the busy cores over the
  CPU per call. The ratio compares the echo's CPU per call (load generator and echo server)
  with SetStatus's minus the store's (load generator, services and nats-server). The load
  generator is counted on both sides because it shares the cores in both measured runs, as
  in the "as measured" ratio. The servers-only ratio next to it leaves the load generator
  out of both, as if the clients ran on other machines.
- Profile: cProfile in the service process over {p.profile_calls} SetStatus calls at the same
  concurrency and the background work they cause (relay, projections), on the event-loop
  thread and, separately, in motor's worker threads where pymongo runs every store call."""


def _auth_text(report: Report) -> str:
    if report.backends and all(b.auth for b in report.backends):
        return (
            "Each agent calls with its own ES256 bearer token (role agent, minted as "
            "`tests/conftest.py` does), so every call pays what it pays in production: token "
            "verification, the policy check, the per-caller rate limit (production setting; "
            "it never binds at under 2 calls/s per agent) and the audit record."
        )
    return "The services ran without authentication (no token on the calls)."


def results_section(report: Report) -> str:
    header = [
        "Case",
        "Store",
        "ops/s",
        "ops in each second: min / median / max",
        "p50 ms",
        "p99 ms",
        "calls",
        "errors",
        "CPU cores used",
        "server-side CPU ms per op",
    ]
    rows = []
    for backend in report.backends:
        rows += [stat_row(c) for c in _setstatus_cases(backend, with_baselines=True)]
    readings = [f"- {r.case} ({r.backend}): {bottleneck(r)}." for r in _all_cases(report)]
    notes = [
        f"- {r.case} ({r.backend}): {'; '.join(n)}."
        for r in _all_cases(report)
        if (n := _case_notes(r))
    ]
    errors = [
        f"- {r.case} ({r.backend}) first error: `{r.stats.first_error}`"
        for r in _all_cases(report)
        if r.stats.errors
    ]
    return "\n".join(
        [
            "## Throughput and latency",
            "",
            md_table(header, rows),
            "",
            *dagger(rows),
            "Where each case's time went, from the CPU figures:",
            "",
            *readings,
            *notes,
            *errors,
        ]
    )


def _case_notes(result: CaseResult) -> list[str]:
    if not result.caught_up_s:
        return result.notes
    rounds = "the run" if len(result.caught_up_s) == 1 else "each round"
    caught_up = (
        f"the relay and projections caught up at most {max(result.caught_up_s):.2f} s "
        f"after {rounds}"
    )
    return [*result.notes, caught_up]


def _all_cases(report: Report) -> list[CaseResult]:
    cases = []
    for backend in report.backends:
        cases += _setstatus_cases(backend, with_baselines=True)
        if backend.setstatus_without_auth is not None:
            cases.append(backend.setstatus_without_auth)
    return cases


def _setstatus_cases(backend: BackendResult, with_baselines: bool = False) -> list[CaseResult]:
    one = [backend.setstatus_one_process] if backend.setstatus_one_process is not None else []
    baselines = [backend.echo, backend.insert] if with_baselines else []
    return [*baselines, *one, backend.setstatus]


def one_process(backend: BackendResult) -> CaseResult:
    """SetStatus on one availability process (the auth comparison's and profile's shape)."""
    return backend.setstatus_one_process or backend.setstatus


def cpu_ms_without_store(result: CaseResult) -> float:
    """CPU per call of every metered process but the store's: the load generator, the servers
    and NATS."""
    return sum(cpu_ms_per_op(result, g) for g in result.cpu if g not in (*STORE_GROUPS, OTHER))


def store_free_ratio(backend: BackendResult) -> float:
    """SetStatus/echo on the same cores with the store's work done elsewhere. Both cases are
    CPU-bound, so each rate is the cores over its CPU per call. The load generator is counted
    on both sides, as it is in the measured ratio: it shares the cores in both runs."""
    setstatus = cpu_ms_without_store(backend.setstatus)
    echo = cpu_ms_without_store(backend.echo)
    return echo / setstatus if setstatus else 0.0


def servers_only_ratio(backend: BackendResult) -> float:
    """The same with the load generator left out as well: echo server / services CPU per call
    (as if the clients ran on other machines)."""
    setstatus = cpu_ms_per_op(backend.setstatus, "services")
    echo = cpu_ms_per_op(backend.echo, "server")
    return echo / setstatus if setstatus else 0.0


def lag_at(lags: list[LagResult], rate: float) -> LagResult | None:
    return next((lag for lag in lags if lag.rate == rate), None)


def lag_p99_ms(lag: LagResult) -> float:
    return quantile(lag.lags, 0.99) * 1000.0


def target_row(label: str, value: float, target: float) -> list[str]:
    return [label, pct(value), f">= {target * 100:.0f}%", met(value >= target)]


def targets_section(report: Report) -> str:
    rows = []
    for b in report.backends:
        vs_insert = b.setstatus.stats.rate / max(1e-9, b.insert_rate())
        vs_echo = b.setstatus.stats.rate / max(1e-9, b.echo_rate())
        free = store_free_ratio(b)
        rows.append(
            target_row(
                f"{b.setstatus.case} / raw insert_one ({b.backend}; rounds: "
                f"{b.round_ratios(b.setstatus)})",
                vs_insert,
                TARGET_VS_INSERT,
            )
        )
        if b.setstatus_one_process is not None:
            single = b.setstatus_one_process
            rows.append(
                [
                    f"SetStatus on one process / raw insert_one ({b.backend}; rounds: "
                    f"{b.round_ratios(single)})",
                    pct(single.stats.rate / max(1e-9, b.insert_rate())),
                    "(reported)",
                    "-",
                ]
            )
        rows.append(
            target_row(
                f"{b.setstatus.case} / echo, as measured ({b.backend}; rounds: "
                f"{b.round_ratios(b.setstatus, b.echo)})",
                vs_echo,
                TARGET_VS_ECHO,
            )
        )
        label = (
            f"{b.setstatus.case} / echo with the store taken out ({b.backend}): CPU per echo "
            "(client + server) / CPU per SetStatus without the store's (client + services + "
            "NATS)"
        )
        rows.append(target_row(label, free, TARGET_VS_ECHO))
        label = (
            f"the same, servers only ({b.backend}): echo server CPU per call / services CPU "
            "per SetStatus"
        )
        rows.append([label, pct(servers_only_ratio(b)), "(reported)", "-"])
        if b.setstatus_without_auth is not None:
            bare = b.setstatus_without_auth.stats.rate
            rows.append(
                [
                    f"SetStatus with auth / without auth ({b.backend}): the cost of token checks, "
                    "policy, rate limit and audit",
                    pct(one_process(b).stats.rate / max(1e-9, bare)),
                    "(reported)",
                    "-",
                ]
            )
        lag = lag_at(b.lags, report.plan.lag_rate)
        if lag is not None:
            p99 = lag_p99_ms(lag)
            ok = p99 < TARGET_LAG_P99_MS and not lag.missing
            label = (
                f"view lag p99 at {lag.rate:.0f} changes/s ({b.backend}, "
                f"{lag.processes} process(es))"
            )
            rows.append([label, f"{p99:.1f} ms", "< 100 ms", met(ok)])
        single_lag = lag_at(b.lags_one_process, report.plan.lag_rate)
        if single_lag is not None:
            label = f"view lag p99 at {single_lag.rate:.0f} changes/s ({b.backend}, 1 process)"
            rows.append([label, f"{lag_p99_ms(single_lag):.1f} ms", "(reported)", "-"])
    return "## Ratios against the targets\n\n" + md_table(
        ["Measure", "Value", "Target", "Met"], rows
    )


def lag_section(report: Report) -> str:
    header = [
        "Store",
        "processes",
        "rate asked",
        "SetStatus OK",
        "errors",
        "skipped",
        "RPC p50 / p99 ms",
        "lag p50 ms",
        "lag p99 ms",
        "lag max ms",
        "never applied",
        "CPU cores used",
    ]
    rows = []
    checks = []
    for b in report.backends:
        for lag in [*b.lags_one_process, *b.lags]:
            s = lag.stats
            rows.append(
                [
                    mark(b.backend, lag.cpu),
                    str(lag.processes),
                    f"{lag.rate:.0f}/s",
                    f"{s.ok:,} ({s.ok / max(1e-9, s.elapsed):.0f}/s)",
                    str(s.errors),
                    str(lag.skipped),
                    f"{s.quantile_ms(0.5):.1f} / {s.quantile_ms(0.99):.1f}",
                    ms(quantile(lag.lags, 0.5)),
                    ms(quantile(lag.lags, 0.99)),
                    ms(max(lag.lags, default=0.0)),
                    str(lag.missing),
                    ", ".join(f"{k} {v:.2f}" for k, v in lag.cpu.items()),
                ]
            )
            checks.append(
                f"- {b.backend} at {lag.rate:.0f}/s on {lag.processes} process(es): "
                f"{lag.board_check}; {lag.before_ok} events "
                "were on the board before the client had the OK."
            )
    intro = (
        "Event -> view lag: from SetStatus returning OK to the board projection having written "
        "that version. A second, lower rate is run when the first is close to or above what "
        "the closed-loop run sustained, so that the lag of a system that keeps up is known too."
    )
    return "\n".join(
        ["## Event -> view lag", "", intro, "", md_table(header, rows), "", *dagger(rows), *checks]
    )


def backend_compare_section(report: Report) -> str:
    by_name = {b.backend: b for b in report.backends}
    sqlite, postgres = by_name.get("sqlite"), by_name.get("postgres")
    if sqlite is None or postgres is None:
        missing = "; ".join(report.notes) or "only one backend was measured"
        return f"## FerretDB: SQLite vs PostgreSQL backend\n\nNot compared: {missing}."
    rows = []
    for label, pick in (("raw insert_one", "insert"), ("SetStatus", "setstatus")):
        a: CaseResult = getattr(sqlite, pick)
        b: CaseResult = getattr(postgres, pick)
        rows.append(
            [
                f"{label} ops/s",
                f"{a.stats.rate:,.0f}",
                f"{b.stats.rate:,.0f}",
                f"{b.stats.rate / max(1e-9, a.stats.rate):.2f}x",
            ]
        )
        for q in (0.5, 0.99):
            rows.append(
                [
                    f"{label} p{int(q * 100)} ms",
                    f"{a.stats.quantile_ms(q):.2f}",
                    f"{b.stats.quantile_ms(q):.2f}",
                    f"{b.stats.quantile_ms(q) / max(1e-9, a.stats.quantile_ms(q)):.2f}x",
                ]
            )
        rows.append([f"{label} store CPU ms per op", *_store_cpu(a, b)])
    lag_a = lag_at(sqlite.lags, report.plan.lag_rate)
    lag_b = lag_at(postgres.lags, report.plan.lag_rate)
    if lag_a and lag_b:
        rows.append(
            [
                f"view lag p99 at {report.plan.lag_rate:.0f}/s, ms",
                f"{lag_p99_ms(lag_a):.1f}",
                f"{lag_p99_ms(lag_b):.1f}",
                f"{lag_p99_ms(lag_b) / max(1e-9, lag_p99_ms(lag_a)):.2f}x",
            ]
        )
    table = md_table(["", "SQLite", "PostgreSQL 15", "PostgreSQL / SQLite"], rows)
    return (
        "## FerretDB: SQLite vs PostgreSQL backend\n\n"
        + table
        + "\n\n"
        + recommendation(sqlite, postgres)
    )


def _store_cpu(a: CaseResult, b: CaseResult) -> list[str]:
    def store(r: CaseResult) -> float:
        return cpu_ms_per_op(r, "ferretdb") + cpu_ms_per_op(r, "postgres")

    return [f"{store(a):.2f}", f"{store(b):.2f}", f"{store(b) / max(1e-9, store(a)):.2f}x"]


def recommendation(sqlite: BackendResult, postgres: BackendResult) -> str:
    gain = postgres.setstatus.stats.rate / max(1e-9, sqlite.setstatus.stats.rate)
    tails = [
        (r.case, a.stats.quantile_ms(0.99), r.stats.quantile_ms(0.99))
        for a, r in ((sqlite.insert, postgres.insert), (sqlite.setstatus, postgres.setstatus))
    ]
    tail_text = "; ".join(f"{case} p99 {a:.0f} ms vs {b:.0f} ms" for case, a, b in tails)
    if gain >= 1.3:
        verdict = (
            f"**Recommendation: PostgreSQL** wherever the store carries load (shared dev or "
            f"demo environments, load tests): SetStatus ran {gain:.2f}x as fast ({tail_text}). "
            "Keep SQLite as the zero-setup default of `make run` and `make test`."
        )
    else:
        verdict = (
            f"**Recommendation: keep SQLite** as the backend of `make run`, `make test` and "
            f"`make bench`: PostgreSQL ran SetStatus at {gain:.2f}x the SQLite rate, less than "
            "the 1.3x that would pay for running, initialising and cleaning up a second "
            f"server. Tail latency is the reason to choose PostgreSQL where it matters "
            f"({tail_text}, SQLite vs PostgreSQL)."
        )
    return (
        verdict + " Either way this only concerns local and test runs: production runs MongoDB 7, "
        "where an update or delete by `_id` uses the index instead of a scan (docs/ferretdb.md), "
        "so these store figures do not carry over."
    )


def profile_section(report: Report) -> str:
    for b in report.backends:
        if b.profile is not None:
            return _profile_text(b, b.profile, report.plan)
    return "## Where the time goes in one SetStatus\n\nNo profile was taken."


def _profile_text(b: BackendResult, p: ProfileSummary, plan: Plan) -> str:
    intro = (
        f"cProfile of the (one) service process over {p.calls} SetStatus calls ({plan.workers} "
        f"workers, {b.backend} backend; {b.profile_rate:.0f} calls/s while profiled) and the "
        "background work they caused (relay, projections), until the relay and projections "
        "had caught up. Figures are per SetStatus. cProfile uses the wall clock: a C call that "
        "releases the GIL is charged with the wait to get it back, which is why socket calls "
        "and `os.urandom` look slow. On the event-loop thread, a coroutine's cumulative time "
        "is its on-CPU time only (time spent awaiting is not counted)."
    )
    thread_note = (
        f"motor runs every pymongo call in a worker thread: {p.thread_seconds:.1f} s of "
        f"thread wall time over the window vs {p.loop_seconds:.1f} s on the event loop, i.e. "
        f"{p.thread_seconds / max(1e-9, p.loop_seconds):.1f} store calls in flight on "
        "average. On the request path a SetStatus writes one document (the event, which also "
        "spends the idempotency key), in insert_many batches shared with concurrent calls; the "
        "other calls are background work it causes: the relay writing its horizon every "
        "0.2 s, the board projection's writes (one bulk_write of the changed board buckets and "
        "one bulk insert of transitions per batch) and the audit records' batched insert."
    )
    return "\n\n".join(
        [
            "## Where the time goes in one SetStatus",
            intro,
            render_table(p.store_ops),
            thread_note,
            render_table(p.store_time),
            render_table(p.layers),
            render_table(p.functions),
            render_table(p.top),
        ]
    )


def summary_section(report: Report) -> str:
    lines = ["## Summary", ""]
    for b in report.backends:
        s = b.setstatus.stats
        echo = b.echo_rate()
        lines.append(
            f"- {b.backend}: SetStatus sustained {s.rate:.0f}/s on {report.plan.processes} "
            f"availability process(es) at {report.plan.workers} workers, "
            f"{pct(s.rate / max(1e-9, b.insert_rate()))} of the raw insert_one loop "
            f"({b.insert_text()}) and {pct(s.rate / max(1e-9, echo))} of the "
            f"bare gRPC echo ({echo:.0f}/s in the same rounds). The services spent "
            f"{cpu_ms_per_op(b.setstatus, 'services'):.1f} ms of CPU per SetStatus, the echo "
            f"server {cpu_ms_per_op(b.echo, 'server'):.2f} ms per echo."
        )
        lines.append(
            f"  - The raw insert_one loop alone reaches "
            f"{pct(b.insert_rate() / max(1e-9, echo))} of the echo. With the store's CPU taken "
            f"out, SetStatus would run at {pct(store_free_ratio(b))} of the echo on the same "
            f"cores ({cpu_ms_without_store(b.setstatus):.2f} ms of CPU per SetStatus for the "
            f"load generator, services and NATS, {cpu_ms_without_store(b.echo):.2f} ms per "
            "echo for the load generator and echo server)."
        )
        if b.setstatus_one_process is not None:
            one = b.setstatus_one_process
            lines.append(
                f"  - On one process: {one.stats.rate:.0f}/s, "
                f"{pct(one.stats.rate / max(1e-9, b.insert_rate()))} of the raw insert_one loop "
                f"and {pct(one.stats.rate / max(1e-9, echo))} of the echo "
                f"({cpu_ms_per_op(one, 'services'):.1f} ms of CPU per SetStatus)."
            )
        lines += [f"  - {_lag_sentence(lag, s.rate)}" for lag in b.lags]
        if b.setstatus_one_process is not None:
            single_rate = b.setstatus_one_process.stats.rate
            for lag in b.lags_one_process:
                sentence = _lag_sentence(lag, single_rate)
                lines.append(f"  - On one process, {sentence[0].lower()}{sentence[1:]}")
    for b in report.backends:
        if b.profile is not None:
            per = sum(float(row[2]) for row in b.profile.store_ops.rows)
            lines.append(
                f"- Each SetStatus made {per:.1f} store calls ({b.backend} profile: "
                + ", ".join(f"{row[2]} {row[0]}" for row in b.profile.store_ops.rows)
                + "); the raw loop makes one. The tables below say where the rest goes."
            )
    return "\n".join(lines)


def _lag_sentence(lag: LagResult, sustained: float) -> str:
    achieved = lag.stats.ok / max(1e-9, lag.stats.elapsed)
    p99 = lag_p99_ms(lag)
    verdict = "meets" if p99 < TARGET_LAG_P99_MS and not lag.missing else "misses"
    keeps_up = "keeps up" if achieved >= 0.95 * lag.rate and p99 < 1000 else "does not keep up"
    return (
        f"At {lag.rate:.0f} changes/s it {keeps_up} (acknowledged {achieved:.0f}/s; closed-loop "
        f"capacity {sustained:.0f}/s): view lag p50 {quantile(lag.lags, 0.5) * 1000:.0f} ms, "
        f"p99 {p99:.0f} ms, which {verdict} the 100 ms target."
    )


def render(report: Report) -> str:
    title = (
        "# Benchmarks\n\n"
        f"Generated by `make bench` (`bench/run.py`) on {report.meta.get('date', '?')}, "
        f"in {report.wall_s:.0f} s. Rerun it to refresh; do not edit by hand."
    )
    sections = [
        title,
        summary_section(report),
        machine_section(report),
        results_section(report),
        targets_section(report),
        lag_section(report),
        backend_compare_section(report),
        profile_section(report),
        method_section(report),
    ]
    if report.notes:
        sections.append("## Notes\n\n" + "\n".join(f"- {n}" for n in report.notes))
    return "\n\n".join(sections) + "\n"


# --- stdout --------------------------------------------------------------------------------------
def summary(report: Report) -> str:
    lines = [f"{'case':<34}{'store':<14}{'ops/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"]
    for r in _all_cases(report):
        s = r.stats
        lines.append(
            f"{r.case:<34}{r.backend:<14}{s.rate:>9.0f}{s.quantile_ms(0.5):>9.2f}"
            f"{s.quantile_ms(0.99):>9.2f}{s.errors:>8}"
        )
    for b in report.backends:
        for lag in [*b.lags_one_process, *b.lags]:
            name = f"view lag @ {lag.rate:.0f}/s, {lag.processes} process(es)"
            lines.append(
                f"{name:<34}{b.backend:<14}"
                f"{lag.stats.ok / max(1e-9, lag.stats.elapsed):>9.0f}"
                f"{quantile(lag.lags, 0.5) * 1000:>9.2f}{lag_p99_ms(lag):>9.2f}"
                f"{lag.stats.errors + lag.missing:>8}"
            )
    for b in report.backends:
        lines.append(
            f"{b.setstatus.case}/raw insert ({b.backend}): "
            f"{pct(b.setstatus.stats.rate / max(1e-9, b.insert_rate()))}; "
            f"SetStatus/echo: {pct(b.setstatus.stats.rate / max(1e-9, b.echo_rate()))}"
        )
    lines += [f"note: {n}" for n in report.notes]
    return "\n".join(lines)
