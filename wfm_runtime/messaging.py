"""NATS JetStream connection that survives the server being down at start or later."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from wfm_runtime import logging as wlog
from wfm_runtime.events import DEFAULT_NAMESPACE, stream_name, stream_subjects

log = wlog.get("messaging")

DUPLICATE_WINDOW_S = 120.0


class NotConnected(Exception):
    pass


def stream_config(producer: str, namespace: str = DEFAULT_NAMESPACE) -> StreamConfig:
    """One stream per producing service; the store keeps every event, the stream too."""
    return StreamConfig(
        name=stream_name(producer, namespace),
        subjects=stream_subjects(producer, namespace),
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        duplicate_window=DUPLICATE_WINDOW_S,
        num_replicas=1,
    )


class Bus:
    """Owns the NATS connection; keeps trying in the background until the server is there."""

    def __init__(
        self, url: str, name: str, streams: list[str], namespace: str = DEFAULT_NAMESPACE
    ) -> None:
        """`name`: the service; `streams`: the streams it owns and creates (its own)."""
        self._url = url
        self._name = name
        self._streams = streams
        self.namespace = namespace
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected and self._ready.is_set()

    @property
    def nc(self) -> NatsClient:
        if self._nc is None or not self._nc.is_connected:
            raise NotConnected("NATS is not connected")
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        if self._js is None or not self.connected:
            raise NotConnected("NATS is not connected")
        return self._js

    async def start(self, wait: float = 0.0) -> None:
        self._task = asyncio.create_task(self._connect_loop(), name=f"nats-connect-{self._name}")
        if wait:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), wait)

    async def wait_ready(self, timeout: float) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def _connect_loop(self) -> None:
        delay = 0.2
        while self._nc is None:
            try:
                self._nc = await nats.connect(
                    servers=[self._url],
                    name=f"wfm-{self._name}",
                    inbox_prefix=f"_INBOX_{self._name}",
                    connect_timeout=2,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                )
            except Exception as exc:
                log.warning("nats_connect_failed", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self._js = self._nc.jetstream(timeout=5.0)
        await self._ensure_streams_until_ok()

    async def _ensure_streams_until_ok(self) -> None:
        while True:
            try:
                await self.ensure_streams()
            except Exception as exc:
                log.warning("nats_streams_not_ready", error=str(exc))
                await asyncio.sleep(0.5)
                continue
            self._ready.set()
            log.info("nats_ready", url=self._url)
            return

    async def ensure_streams(self) -> None:
        assert self._js is not None
        for producer in self._streams:
            config = stream_config(producer, self.namespace)
            try:
                await self._js.add_stream(config)
            except BadRequestError:
                await self._js.update_stream(config)

    async def _on_error(self, exc: Exception) -> None:
        log.warning("nats_error", error=str(exc))

    async def _on_disconnected(self) -> None:
        log.warning("nats_disconnected")

    async def _on_reconnected(self) -> None:
        log.info("nats_reconnected")

    async def publish(self, subject: str, data: bytes, msg_id: str, timeout: float = 2.0) -> Any:
        return await self.js.publish(
            subject, data, timeout=timeout, headers={"Nats-Msg-Id": msg_id}
        )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._nc is not None:
            # drain() can wait up to its 30 s timeout for a server that went away: bound it.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.drain(), 2.0)
            with contextlib.suppress(Exception):
                await self._nc.close()


class PipelinedPublisher:
    """JetStream publishes sent back to back, their acks gathered by one subscription.

    nats-py's `js.publish` is a request: a new inbox entry, a future and a timer per message,
    awaited one by one. Here each message names its own reply subject under one wildcard
    subscription, so a burst of commits costs one buffered write each, and one callback per
    ack tells the owner which message was stored (`on_result(token, True)`), refused or not
    answered within `timeout_s` (`on_result(token, False)`, from `expire`).
    """

    def __init__(
        self, bus: Bus, on_result: Callable[[str, bool], None], timeout_s: float = 2.0
    ) -> None:
        self._bus = bus
        self._on_result = on_result
        self._timeout = timeout_s
        self._serial = itertools.count()
        self._waiting: dict[str, tuple[str, float]] = {}  # reply token -> (owner token, deadline)
        self._prefix = ""
        self._sub: Any = None

    async def send(self, messages: list[tuple[str, bytes, str, str]]) -> list[str]:
        """Publishes (subject, data, msg id, owner token) in order; returns the owner tokens
        that could not be sent (NATS down): nothing will be said of them."""
        try:
            if not self._bus.connected:
                raise NotConnected("NATS is not connected")
            nc = self._bus.nc
            if self._sub is None:
                self._prefix = nc.new_inbox()
                self._sub = await nc.subscribe(f"{self._prefix}.*", cb=self._on_ack)
        except Exception:
            return [token for *_, token in messages]
        deadline = asyncio.get_running_loop().time() + self._timeout
        for index, (subject, data, msg_id, token) in enumerate(messages):
            reply = str(next(self._serial))
            self._waiting[reply] = (token, deadline)
            try:
                await nc.publish(
                    subject, data, reply=f"{self._prefix}.{reply}", headers={"Nats-Msg-Id": msg_id}
                )
            except Exception:
                self._waiting.pop(reply, None)
                return [token for *_, token in messages[index:]]
        return []

    async def _on_ack(self, msg: Msg) -> None:
        entry = self._waiting.pop(msg.subject.rsplit(".", 1)[-1], None)
        if entry is not None:
            self._on_result(entry[0], _stored(msg))

    def expire(self) -> None:
        """Gives up on messages whose ack is overdue (the owner publishes them again)."""
        now = asyncio.get_running_loop().time()
        overdue = [reply for reply, (_, deadline) in self._waiting.items() if deadline <= now]
        for reply in overdue:
            token, _ = self._waiting.pop(reply)
            self._on_result(token, False)


def _stored(msg: Msg) -> bool:
    """True for a JetStream PubAck; a "no responders" status or an error reply is a refusal."""
    if msg.headers and msg.headers.get("Status"):
        return False
    try:
        ack = json.loads(msg.data)
    except ValueError:
        return False
    return isinstance(ack, dict) and "error" not in ack and "seq" in ack
