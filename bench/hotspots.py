"""Summarises the service-side cProfile of a window of SetStatus calls into small tables.

Two profiles come from bench.server: the event-loop thread (`.loop`) and motor's worker
threads (`.threads`), where pymongo sends each store call and waits for its answer. Both use
cProfile's wall clock, so a C call that releases the GIL (socket I/O, os.urandom,
socket.settimeout) also counts the wait to get the GIL back from the other threads.
"""

from __future__ import annotations

import pstats
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

Key = tuple[str, int, str]  # (file, line, function) as pstats stores it
Entry = tuple[int, int, float, float, dict[Key, object]]  # cc, nc, tottime, cumtime, callers


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class ProfileSummary:
    calls: int
    loop_seconds: float
    thread_seconds: float
    layers: Table
    functions: Table
    store_ops: Table
    store_time: Table
    top: Table


def load(path: Path) -> dict[Key, Entry]:
    if not path.exists():
        return {}
    stats: dict[Key, Entry] = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    return stats


def _ms(seconds: float, calls: int) -> str:
    return f"{seconds * 1000 / max(1, calls):.2f}"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


# --- the event-loop thread: exclusive time by layer -------------------------------------------
LAYERS: list[tuple[str, Callable[[str, str], bool]]] = [
    ("idle: waiting in epoll for I/O", lambda f, n: "select.epoll" in n),
    (
        "loop-thread syscalls that release the GIL (socket send/recv, os.urandom)",
        lambda f, n: f == "~" and ("_socket.socket" in n or "urandom" in n),
    ),
    (
        "C/Cython callbacks run by asyncio (mostly grpc.aio's Cython server)",
        lambda f, n: "_contextvars.Context" in n,
    ),
    ("wfm code (services/, wfm_runtime/)", lambda f, n: "/services/" in f or "/wfm_runtime/" in f),
    (
        "PyJWT and cryptography (token checks)",
        lambda f, n: "/jwt/" in f or "cryptography" in f or "cryptography" in n,
    ),
    ("protobuf", lambda f, n: "protobuf" in f or "_upb" in n or "google" in n),
    ("motor (hand-off to its threads)", lambda f, n: "/motor/" in f),
    ("nats-py client", lambda f, n: "/nats/" in f),
    ("grpc Python layer", lambda f, n: "/grpc/" in f or "/grpc_" in f),
    ("structlog", lambda f, n: "/structlog/" in f),
    (
        "asyncio, futures, threads (stdlib)",
        lambda f, n: "/asyncio/" in f or "concurrent/futures" in f or "threading" in f,
    ),
]


def layer_of(key: Key) -> str:
    file, _, name = key
    for label, match in LAYERS:
        if match(file, name):
            return label
    return "other (stdlib, uuid, bson on the loop, ...)"


def layers_table(loop: dict[Key, Entry], calls: int) -> Table:
    totals: dict[str, float] = {}
    for key, entry in loop.items():
        totals[layer_of(key)] = totals.get(layer_of(key), 0.0) + entry[2]
    whole = sum(totals.values())
    table = Table(["event-loop thread, self time by layer", "ms per SetStatus", "share"])
    for label, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        table.rows.append([label, _ms(seconds, calls), _pct(seconds, whole)])
    return table


# --- the event-loop thread: cumulative time of our own functions ------------------------------
FUNCTIONS = [
    ("ErrorAndContextInterceptor wrapper", "wfm_runtime/grpcserver.py", "wrapper"),
    ("ErrorAndContextInterceptor._begin (request id, log context)", "grpcserver.py", "_begin"),
    ("Guard.admit (token, policy, rate limit)", "wfm_runtime/authz.py", "admit"),
    ("TokenVerifier.principal (JWT decode, ES256 verify)", "wfm_runtime/auth.py", "principal"),
    ("audit record of the call (log line + queue)", "wfm_runtime/grpcserver.py", "_audit_call"),
    ("AuditLog.flush (batched insert)", "wfm_runtime/audit.py", "flush"),
    ("AvailabilityApi.SetStatus", "services/availability/api.py", "SetStatus"),
    ("CommandRunner._execute_locked", "wfm_runtime/commands.py", "_execute_locked"),
    ("EventStore.append (event insert)", "wfm_runtime/eventstore.py", "append"),
    ("new_envelope (uuid4, Any.Pack)", "wfm_runtime/events.py", "new_envelope"),
    ("Relay._send_loop (fast-path JetStream publishes)", "wfm_runtime/relay.py", "_send_loop"),
    ("PipelinedPublisher._on_ack (JetStream acks)", "wfm_runtime/messaging.py", "_on_ack"),
    ("ProjectorRunner._step (fetch, apply, ack)", "wfm_runtime/projector.py", "_step"),
    ("BoardProjection.apply", "services/availability/views.py", "apply"),
]


def functions_table(loop: dict[Key, Entry], calls: int) -> Table:
    table = Table(["function (event-loop thread, on-CPU part)", "cumulative ms per SetStatus"])
    for label, file, name in FUNCTIONS:
        found = [e for k, e in loop.items() if k[0].endswith(file) and k[2] == name]
        if found:
            table.rows.append([label, _ms(sum(e[3] for e in found), calls)])
    return table


# --- motor's threads: the store calls ------------------------------------------------------------
COLLECTION_FILE = "synchronous/collection.py"
CURSOR_FILE = "synchronous/cursor.py"
ROUND_TRIP_S = 200e-6  # a store call takes at least this; attribute lookups far less


def _external_calls(entry: Entry) -> int:
    """Calls made by motor, not by pymongo itself (Collection.find_one calls find, for one).

    A call that motor handed to the worker thread is the first frame profiled there, so it
    has no caller at all, or pymongo's timeout decorator (`_csot`) as its only caller.
    """
    callers: dict[Key, tuple[int, ...]] = entry[4]  # type: ignore[assignment]
    if not callers:
        return entry[0]
    return sum(c[0] for k, c in callers.items() if "/pymongo/synchronous/" not in k[0])


def store_ops_table(threads: dict[Key, Entry], calls: int) -> Table:
    """Every public pymongo Collection method called from outside (motor's threads)."""
    table = Table(["store call (pymongo)", "calls", "per SetStatus", "mean wall ms"])
    ops = [
        (key[2], _external_calls(entry), entry)
        for key, entry in threads.items()
        if key[0].endswith(COLLECTION_FILE) and not key[2].startswith("_")
    ]
    ops += [
        ("cursor batch (find ... to_list)", _external_calls(entry), entry)
        for key, entry in threads.items()
        if key[0].endswith(CURSOR_FILE) and key[2] == "_refresh"
    ]
    for name, ncalls, entry in sorted(ops, key=lambda op: -op[1]):
        if ncalls and entry[3] / max(1, entry[0]) >= ROUND_TRIP_S:  # not a property
            per = f"{ncalls / max(1, calls):.2f}"
            table.rows.append([name, str(ncalls), per, _ms(entry[3], entry[0])])
    return table


def store_time_table(threads: dict[Key, Entry], calls: int) -> Table:
    buckets = {
        "recv_into: waiting for the store's answer (and for the GIL)": 0.0,
        "sendall: sending the command": 0.0,
        "socket.settimeout (releases and re-takes the GIL)": 0.0,
        "pymongo, bson and the rest": 0.0,
    }
    labels = list(buckets)
    for key, entry in threads.items():
        name = key[2]
        index = (
            0 if "recv" in name else 1 if "sendall" in name else 2 if "settimeout" in name else 3
        )
        buckets[labels[index]] += entry[2]
    whole = sum(buckets.values())
    table = Table(["motor worker threads, self time", "ms per SetStatus", "share"])
    for label, seconds in buckets.items():
        table.rows.append([label, _ms(seconds, calls), _pct(seconds, whole)])
    return table


# --- top cumulative entries ----------------------------------------------------------------------
NOISE = ("/asyncio/", "selectors.py", "cProfile", "threading.py", "concurrent/futures", "bench/")


def short(key: Key) -> str:
    file, line, name = key
    if file == "~":
        return name
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{file}:{line}({name})"


def top_table(loop: dict[Key, Entry], calls: int, count: int = 15) -> Table:
    table = Table(
        ["top cumulative, event-loop thread", "calls (coroutine: resumes)", "cum. ms per SetStatus"]
    )
    ranked = sorted(loop.items(), key=lambda kv: -kv[1][3])
    picked = [
        (k, e)
        for k, e in ranked
        if k[0] != "~" and not any(n in k[0] for n in NOISE) and k[2] != "<module>"
    ]
    for key, entry in picked[:count]:
        table.rows.append([f"`{short(key)}`", str(entry[1]), _ms(entry[3], calls)])
    return table


def summarise(base: Path, calls: int) -> ProfileSummary:
    loop = load(Path(f"{base}.loop"))
    threads = load(Path(f"{base}.threads"))
    return ProfileSummary(
        calls=calls,
        loop_seconds=sum(e[2] for e in loop.values()),
        thread_seconds=sum(e[2] for e in threads.values()),
        layers=layers_table(loop, calls),
        functions=functions_table(loop, calls),
        store_ops=store_ops_table(threads, calls),
        store_time=store_time_table(threads, calls),
        top=top_table(loop, calls),
    )
