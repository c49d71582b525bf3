"""Runs one change to one aggregate: idempotency, optimistic concurrency, commit, publish.

Every service's mutating RPC goes through `CommandRunner.execute`. The service supplies three
pure-ish callables: `load` (last known state, a cheap hint), `decide` (the domain rule: the
event to record, None for no change, or a DomainError) and `evolve` (state after an event).
Events carry the entity's full new state, so `evolve(initial, event)` rebuilds the result of any
event on its own: that is how a retried request returns its first result.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message
from wfm.events.v1.envelope_pb2 import EventEnvelope

from wfm_runtime.errors import (
    Aborted,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from wfm_runtime.events import new_envelope
from wfm_runtime.eventstore import Claim, EventStore
from wfm_runtime.grpcserver import request_id
from wfm_runtime.relay import Relay
from wfm_runtime.timefmt import utc_now

S = TypeVar("S")

MAX_CATCH_UP = 1000


def fingerprint(*parts: object) -> str:
    """Stable digest of a request's meaningful fields, to spot a key reused for another change."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Command:
    aggregate_type: str
    aggregate_id: str
    idempotency_key: str
    fingerprint: str
    expected_version: int | None = None
    request_id: str = ""
    # A key made for this one attempt (a random suffix): nothing can send it again, so a
    # decision that changes nothing spends no key (no record for a retry that cannot come).
    one_off: bool = False


def request_fingerprint(request: Message, *extra: object) -> str:
    """The fingerprint of everything a request message says (plus `extra`)."""
    return fingerprint(_canonical_bytes(request), *extra)


def _canonical_bytes(request: Message) -> bytes:
    """The request's bytes with its update masks' paths sorted: a mask is a set of paths, so a
    retry that lists them in another order is the same request. Sorted masks keep their bytes,
    so fingerprints already stored with claims stay valid."""
    masks = [field.name for field, value in request.ListFields() if isinstance(value, FieldMask)]
    if not masks:
        return request.SerializeToString(deterministic=True)
    canonical = type(request)()
    canonical.CopyFrom(request)
    for name in masks:
        paths = getattr(canonical, name).paths
        paths[:] = sorted(paths)
    return canonical.SerializeToString(deterministic=True)


def command_for(
    aggregate_type: str,
    aggregate_id: str,
    request: Any,
    *,
    key: str | None = None,
    expected_version: int | None = None,
    extra: tuple[object, ...] = (),
) -> Command:
    """The command a gRPC request (a message with `idempotency_key`) asks for: its key (unless
    `key` is given), a fingerprint of everything it says (plus `extra`), the request id."""
    digest = request_fingerprint(request, *extra)
    idempotency_key = key if key is not None else str(request.idempotency_key)
    return Command(
        aggregate_type, aggregate_id, idempotency_key, digest, expected_version, request_id()
    )


@dataclass(frozen=True)
class Outcome(Generic[S]):
    state: S
    version: int
    event: EventEnvelope | None  # None when the command changed nothing
    replayed: bool = False


@dataclass(frozen=True)
class Behaviour(Generic[S]):
    """What a service tells the runner about one kind of aggregate."""

    aggregate_type: str
    initial: Callable[[str], S]
    load: Callable[[str], Awaitable[tuple[S, int]]]
    evolve: Callable[[S, EventEnvelope], S]


class CommandRunner:
    def __init__(self, producer: str, store: EventStore, relay: Relay) -> None:
        self._producer = producer
        self._store = store
        self._relay = relay
        self._cache: dict[tuple[str, str], tuple[object, int]] = {}
        self._locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def cached(self, aggregate_type: str, aggregate_id: str) -> object | None:
        """The state this process last committed or read for the aggregate, if any."""
        entry = self._cache.get((aggregate_type, aggregate_id))
        return entry[0] if entry is not None and entry[1] > 0 else None

    def forget(self, aggregate_type: str, aggregate_id: str) -> None:
        self._cache.pop((aggregate_type, aggregate_id), None)

    async def execute(
        self,
        behaviour: Behaviour[S],
        command: Command,
        decide: Callable[[S, int], Message | None],
    ) -> Outcome[S]:
        # One writer per aggregate in this process: no self-inflicted conflicts.
        async with self._lock(behaviour.aggregate_type, command.aggregate_id):
            # Shielded: a client that cancels or times out must not interrupt a commit halfway.
            return await asyncio.shield(self._execute_locked(behaviour, command, decide))

    async def execute_rechecked(
        self,
        behaviour: Behaviour[S],
        command: Command,
        decide: Callable[[S, int], Message | None],
    ) -> Outcome[S]:
        """`execute`, with a refusal (FAILED_PRECONDITION, NOT_FOUND) judged once more on the
        aggregate as its events say. The runner decides on this process's copy (or on a view
        that may lag) and catches up only when its event insert loses; a refusal never reaches
        the insert, so another replica's change (a shift cancelled, an agent enrolled) could
        otherwise leave it refused on stale state. Refusals are rare: the extra read is cheap
        overall. Always once, not only when the copy was behind: with no copy, the view may
        have caught up between the two loads."""
        try:
            return await self.execute(behaviour, command, decide)
        except (FailedPrecondition, NotFound):
            await self.refresh(behaviour, command.aggregate_id)
            return await self.execute(behaviour, command, decide)

    async def refresh(self, behaviour: Behaviour[S], aggregate_id: str) -> None:
        """Reads the aggregate's events past this process's copy of it (or past its load, a
        view that may lag) into the copy. A decision is made on the copy and checked only by
        its event insert, so a refusal may have been judged on a state another process has
        moved on from: a caller can refresh and decide again."""
        async with self._lock(behaviour.aggregate_type, aggregate_id):
            state, version = await self._copy(behaviour, aggregate_id)
            await self._catch_up(behaviour, aggregate_id, state, version)

    def _lock(self, aggregate_type: str, aggregate_id: str) -> asyncio.Lock:
        key = (aggregate_type, aggregate_id)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def _copy(self, behaviour: Behaviour[S], aggregate_id: str) -> tuple[S, int]:
        """This process's copy of the aggregate, else its load (the view: a hint)."""
        cached = self._cache.get((behaviour.aggregate_type, aggregate_id))
        if cached is None:
            return await behaviour.load(aggregate_id)
        return cached  # type: ignore[return-value]

    async def _execute_locked(
        self, behaviour: Behaviour[S], command: Command, decide: Callable[[S, int], Message | None]
    ) -> Outcome[S]:
        state, version = await self._current(behaviour, command)
        for _ in range(MAX_CATCH_UP):
            try:
                _check_expected(command, version)
                payload = decide(state, version)
            except DomainError:
                # A refused request writes nothing. But a retry of one that went through before
                # is refused by the state it made itself: it gets its first result instead.
                claim = await self._claim_of(behaviour, command)
                if claim is not None:
                    return await self._replay(behaviour, command, claim)
                raise
            if payload is None:
                # "No change" is only true of the latest version: make sure nobody moved on.
                fresh_state, fresh_version = await self._catch_up(
                    behaviour, command.aggregate_id, state, version
                )
                if fresh_version != version:
                    state, version = fresh_state, fresh_version
                    continue
                if command.one_off:
                    return Outcome(state, version, None)
                if await self._record_noop(behaviour, command, version):
                    return Outcome(state, version, None)
                return await self._replay(behaviour, command)
            envelope = new_envelope(
                producer=self._producer,
                aggregate_type=behaviour.aggregate_type,
                aggregate_id=command.aggregate_id,
                version=version + 1,
                payload=payload,
                occurred_at=utc_now(),
                idempotency_key=command.idempotency_key,
                request_id=command.request_id,
            )
            await self._relay.open(envelope)
            try:
                appended = await self._store.append(envelope, command.fingerprint)
            except BaseException:
                self._relay.maybe_committed(envelope)
                raise
            if appended:
                new_state = behaviour.evolve(state, envelope)
                self._cache[(behaviour.aggregate_type, command.aggregate_id)] = (
                    new_state,
                    version + 1,
                )
                self._relay.committed(envelope)
                return Outcome(new_state, version + 1, envelope)
            self._relay.not_committed(envelope)
            # The version was taken, or the key was spent before (unique index on the key).
            taken = await self._store.get(
                behaviour.aggregate_type, command.aggregate_id, version + 1
            )
            if taken is None or taken.idempotency_key == command.idempotency_key:
                return await self._replay(behaviour, command)
            # Another writer took this version: read what it wrote and decide again.
            state, version = await self._catch_up(behaviour, command.aggregate_id, state, version)
        raise Aborted(f"{behaviour.aggregate_type} {command.aggregate_id} is changing too fast")

    async def spend_key(self, command: Command, reach: Sequence[str] = ()) -> tuple[str, ...]:
        """Spends the key of a request made of many commands (one per agent, each under a key
        derived from this one) before any of them runs. Their own keys are fresh for whatever
        the first request did not reach, so only this catches a key reused for a different
        request while nothing has changed yet (INVALID_ARGUMENT). A retry of the same request
        goes on: its commands replay what its first attempt did and run the rest.

        `reach` names the aggregates the request sets out to change when the request does not
        list them itself (PublishWeek: the team's agents as this process finds them). Returns
        the first attempt's: a retry that finds fewer (another process, whose views lag) still
        goes to each of them, so it answers at least what the first attempt did."""
        spent = await self._store.record_noop(
            command.aggregate_type,
            command.idempotency_key,
            command.fingerprint,
            command.aggregate_id,
            0,
            reach=tuple(reach),
        )
        if spent:
            return tuple(reach)
        claim = await self._store.claim_of(command.aggregate_type, command.idempotency_key)
        if claim is None:  # only a store that lost documents gets here
            raise Aborted("the idempotency key's first request cannot be read; retry later")
        _check_same_request(claim, command)
        return claim.reach

    async def _record_noop(self, behaviour: Behaviour[S], command: Command, version: int) -> bool:
        """Spends the key of a request that changed nothing, so a late retry cannot apply it."""
        return await self._store.record_noop(
            behaviour.aggregate_type,
            command.idempotency_key,
            command.fingerprint,
            command.aggregate_id,
            version,
        )

    async def _current(self, behaviour: Behaviour[S], command: Command) -> tuple[S, int]:
        state, version = await self._copy(behaviour, command.aggregate_id)
        if command.expected_version is not None and command.expected_version > version:
            # The caller has seen a newer version than our hint: another writer was here.
            state, version = await self._catch_up(behaviour, command.aggregate_id, state, version)
        return state, version

    async def _catch_up(
        self, behaviour: Behaviour[S], aggregate_id: str, state: S, version: int
    ) -> tuple[S, int]:
        while True:
            envelope = await self._store.get(behaviour.aggregate_type, aggregate_id, version + 1)
            if envelope is None:
                self._cache[(behaviour.aggregate_type, aggregate_id)] = (state, version)
                return state, version
            state, version = behaviour.evolve(state, envelope), version + 1

    async def _claim_of(self, behaviour: Behaviour[S], command: Command) -> Claim | None:
        return await self._store.claim_of(behaviour.aggregate_type, command.idempotency_key)

    async def _replay(
        self, behaviour: Behaviour[S], command: Command, claim: Claim | None = None
    ) -> Outcome[S]:
        """The key was spent before: answer with the first request's result."""
        if claim is None:
            claim = await self._claim_of(behaviour, command)
        if claim is None:  # only a store that lost documents gets here
            raise Aborted("the idempotency key's first request cannot be read; retry later")
        _check_same_request(claim, command)
        if claim.envelope is not None:
            # Events carry the entity's full new state: the event alone gives the result.
            state = behaviour.evolve(behaviour.initial(command.aggregate_id), claim.envelope)
            return Outcome(state, claim.version, claim.envelope, replayed=True)
        # It changed nothing: answer again with the state it saw then.
        state = behaviour.initial(command.aggregate_id)
        seen = await self._store.get(behaviour.aggregate_type, command.aggregate_id, claim.version)
        if seen is not None:
            state = behaviour.evolve(state, seen)
        return Outcome(state, claim.version, None, replayed=True)


def _check_same_request(claim: Claim, command: Command) -> None:
    if claim.fingerprint != command.fingerprint or claim.aggregate_id != command.aggregate_id:
        raise InvalidArgument(
            [FieldViolation("idempotency_key", "was already used for a different request")]
        )


def _check_expected(command: Command, version: int) -> None:
    if command.expected_version is not None and command.expected_version != version:
        raise Aborted(
            f"version is {version}, not the expected {command.expected_version}: "
            "read it again and retry",
            current_version=str(version),
        )


__all__ = [
    "Behaviour",
    "Command",
    "CommandRunner",
    "DomainError",
    "Outcome",
    "command_for",
    "fingerprint",
    "request_fingerprint",
]
