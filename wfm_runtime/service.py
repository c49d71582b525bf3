"""The pieces every service wires the same way: store, bus, relay, commands, projectors, gRPC."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import Any, Protocol

import grpc
from wfm.audit.v1 import audit_service_pb2, audit_service_pb2_grpc

from wfm_runtime import config, mongo, workers
from wfm_runtime import logging as wlog
from wfm_runtime.audit import AuditApi, AuditLog
from wfm_runtime.auth import Role, TokenVerifier
from wfm_runtime.authz import Grant, Guard, RateLimiter, Rule, TeamOf
from wfm_runtime.commands import CommandRunner
from wfm_runtime.config import Settings, auth_config
from wfm_runtime.events import DEFAULT_NAMESPACE
from wfm_runtime.eventstore import EventStore
from wfm_runtime.grpcserver import GrpcApp, Registrar, wait_for_termination_signal
from wfm_runtime.messaging import Bus
from wfm_runtime.projector import DEFAULT_BATCH, Projection, ProjectorRunner
from wfm_runtime.relay import Relay

log = wlog.get("service")


AUDIT_SERVICE = audit_service_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name
AUDIT_POLICY = {f"/{AUDIT_SERVICE}/ListAuditRecords": Rule((Grant(Role.ADMIN),))}


def control_subject(service: str, action: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    return f"{namespace}.control.{service}.{action}"


class ServiceRuntime:
    def __init__(self, settings: Settings, consumes: Iterable[str] = ()) -> None:
        self.settings = settings
        self.client = mongo.connect(settings.mongo_url, f"wfm-{settings.service}")
        self.db = self.client[settings.database]
        self.views_db = self.client[settings.views_database]
        self.store = EventStore(self.db)
        self.bus = Bus(settings.nats_url, settings.service, [settings.service], settings.namespace)
        self.relay = Relay(
            self.store, self.bus, recovery_interval_s=settings.relay_sweep_interval_s
        )
        self.commands = CommandRunner(settings.service, self.store, self.relay)
        self.projectors: list[ProjectorRunner] = []
        self.app: GrpcApp | None = None
        self.audit = AuditLog(self.views_db["audit"], settings.service)
        self._control_task: asyncio.Task[None] | None = None
        self._background: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    def add_projection(self, projection: Projection, batch: int = DEFAULT_BATCH) -> ProjectorRunner:
        runner = ProjectorRunner(self.bus, projection, batch)
        self.projectors.append(runner)
        return runner

    def add_background(self, name: str, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """A loop the primary process runs from `open` until `close` (a timer a projection
        needs, e.g. checks that time alone makes due)."""
        self._background[name] = loop

    async def open(self, nats_wait_s: float = 5.0) -> None:
        await self._setup_store_until_ok()
        await self.bus.start(wait=nats_wait_s)
        self.relay.start()
        self.audit.start()
        for runner in self.projectors:
            runner.start()
        if not self.settings.is_api_worker:  # the primary owns the views and their rebuild
            self._control_task = asyncio.create_task(self._serve_control())
            for name, loop in self._background.items():
                self._tasks.append(asyncio.create_task(loop(), name=name))

    async def _setup_store_until_ok(self) -> None:
        while True:
            try:
                await self.store.setup()
                await self.relay.register()
                return
            except mongo.UNREACHABLE as exc:
                log.warning("store_unreachable_at_start", error=str(exc))
                await asyncio.sleep(1.0)

    async def start_grpc(
        self,
        register: Registrar,
        port: int | None = None,
        *,
        policy: Mapping[str, Rule],
        team_of_agent: TeamOf,
    ) -> int:
        """Serves the service's RPCs plus the audit RPC, behind authentication and policy."""
        guard = self._guard(policy, team_of_agent)
        audit_api = AuditApi(self.audit)

        def register_all(server: grpc.aio.Server) -> list[str]:
            audit_service_pb2_grpc.add_AuditServiceServicer_to_server(audit_api, server)
            return [*register(server), AUDIT_SERVICE]

        self.app = GrpcApp(self.settings, register_all, guard, self.audit)
        return await self.app.start(port)

    def _guard(self, policy: Mapping[str, Rule], team_of_agent: TeamOf) -> Guard | None:
        config = auth_config(self.settings)
        if config is None:
            log.warning("auth_disabled", note="development flag WFM_AUTH=off is set")
            return None
        limiter = RateLimiter(self.settings.rate_limit_per_s, self.settings.rate_limit_burst)
        full_policy = {**policy, **AUDIT_POLICY}
        return Guard(TokenVerifier(config), full_policy, team_of_agent, limiter)

    async def rebuild_views(self) -> None:
        for runner in self.projectors:
            await runner.rebuild()
        for runner in self.projectors:
            await runner.wait_caught_up(timeout=120)
        for runner in self.projectors:  # an optional hook: every view has caught up
            rebuilt = getattr(runner.projection, "rebuilt", None)
            if rebuilt is not None:
                await rebuilt()

    async def _serve_control(self) -> None:
        await self.bus.wait_ready(timeout=3600)

        async def on_rebuild(msg: object) -> None:
            try:
                await self.rebuild_views()
                reply = {"ok": True, "projections": [r.projection.name for r in self.projectors]}
            except Exception as exc:
                reply = {"ok": False, "error": repr(exc)}
            await msg.respond(json.dumps(reply).encode())  # type: ignore[attr-defined]

        await self.bus.nc.subscribe(
            control_subject(self.settings.service, "rebuild-views", self.settings.namespace),
            cb=on_rebuild,
        )

    async def serve_forever(self) -> None:
        await wait_for_termination_signal()
        log.info("shutting_down")
        await self.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.app is not None:
            await self.app.stop()
        for task in [t for t in (self._control_task, *self._tasks) if t is not None]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for runner in self.projectors:
            await runner.close()
        await self.relay.close()
        await self.audit.close()
        await self.bus.close()
        self.client.close()


__all__ = ["ServiceRuntime", "grpc"]


class Started(Protocol):
    runtime: ServiceRuntime


# CPython starts a young collection every 700 net allocations by default. A service makes
# millions of short-lived objects a second (decoded events, parsed inputs), which reference
# counting frees, so those collections find almost nothing, while the older ones walk the
# projectors' caches. Measured on the performance projector: 6.4 s of a 73 s run in 5,370
# collections by default, 1.0 s in 52 with these thresholds (docs/bench/performance.md).
GC_THRESHOLDS = (50_000, 20, 20)


def tune_gc() -> None:
    """Fewer collections, and none over what start-up built (modules, config, protos)."""
    gc.set_threshold(*GC_THRESHOLDS)
    gc.freeze()


def run_main(
    service: str,
    start: Callable[[Settings], Awaitable[Started]],
    *,
    api_workers: bool = False,
) -> None:
    """The `python -m services.<name>.main` entry point: configure, start, serve until SIGTERM.

    `api_workers`: the service can serve from several processes (`<SERVICE>_WORKERS`), its
    `start` starting no projector when `settings.is_api_worker`."""

    async def main() -> None:
        settings = config.load(service)
        wlog.configure(settings.log_level, service)
        if settings.workers > 1 and not api_workers:
            raise ValueError(f"{service} serves from one process: set {service.upper()}_WORKERS=1")
        started = await start(settings)
        tune_gc()
        runtime = started.runtime
        if settings.is_api_worker:
            workers.announce_ready()
            watch = asyncio.create_task(workers.stop_with_parent())
            await runtime.serve_forever()
            watch.cancel()
            return
        pool = None
        try:
            pool = await _start_workers(settings, runtime)
            await wait_for_termination_signal()
            log.info("shutting_down")
        finally:
            stopping = [runtime.close()]
            if pool is not None:
                stopping.append(pool.stop(settings.shutdown_grace_s))
            await asyncio.gather(*stopping)

    asyncio.run(main())


async def _start_workers(settings: Settings, runtime: ServiceRuntime) -> workers.ApiWorkers | None:
    if settings.workers <= 1 or runtime.app is None:
        return None
    module = f"services.{settings.service}.main"
    pool = workers.ApiWorkers(module, settings, runtime.app.port)
    await pool.start()
    return pool
