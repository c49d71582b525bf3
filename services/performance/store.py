"""Performance persistence: event and proto codecs, document codecs, the motor repository."""

from __future__ import annotations

import asyncio
import functools
import json
import re
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from google.protobuf.duration_pb2 import Duration
from wfm.events.v1.envelope_pb2 import EventEnvelope
from wfm.performance.v1 import events_pb2
from wfm.performance.v1 import performance_service_pb2 as pb

from services.performance import domain, metrics
from wfm_runtime import mongo
from wfm_runtime.commands import Behaviour
from wfm_runtime.errors import Violations
from wfm_runtime.events import unpack
from wfm_runtime.timefmt import (
    as_utc,
    checked_timestamp,
    epoch_ms,
    from_epoch_ms,
    from_timestamp,
    to_timestamp,
)

CASE = "case"
THRESHOLDS = "team_thresholds"
RED_FLAG = "red_flag"
READ_CONCURRENCY = 16
WRITE_CONCURRENCY = 8
MAX_DURATION_S = 10 * 366 * 86400


# --- cases: proto <-> domain ---------------------------------------------------------------
_CHANNEL_BY_NUMBER: dict[int, str] = {
    int(number): name.removeprefix("CHANNEL_")
    for name, number in pb.Channel.items()
    if number != pb.CHANNEL_UNSPECIFIED
}


def channel_name(value: int) -> str:
    """The channel's name ("" for UNSPECIFIED or an unknown number)."""
    return _CHANNEL_BY_NUMBER.get(value, "")


def _duration_ms(v: Violations, message: Any, name: str, prefix: str) -> int | None:
    if not message.HasField(name):
        return None
    value: Duration = getattr(message, name)
    same_sign = (value.seconds >= 0 and value.nanos >= 0) or (
        value.seconds <= 0 and value.nanos <= 0
    )
    if abs(value.seconds) > MAX_DURATION_S or abs(value.nanos) >= 1_000_000_000 or not same_sign:
        v.add(f"{prefix}.{name}", "is not a valid duration")
        return None
    return value.seconds * 1000 + value.nanos // 1_000_000


def _instant(v: Violations, message: Any, name: str, prefix: str) -> datetime | None:
    if not message.HasField(name):
        v.add(f"{prefix}.{name}", "is required")
        return None
    instant = checked_timestamp(getattr(message, name))
    if instant is None:
        v.add(f"{prefix}.{name}", "is not a valid timestamp (years 1-9999)")
        return None
    return instant.replace(microsecond=instant.microsecond // 1000 * 1000)


def case_from_request(
    v: Violations, case_id: str, message: pb.Case, agent_id: str, *, now: datetime
) -> domain.CaseRecord | None:
    """The request's case as a record, or None after reporting what is wrong with it."""
    before = len(v.items)
    opened = _instant(v, message, "open_time", "case")
    resolved = _instant(v, message, "resolve_time", "case")
    parts = [
        _duration_ms(v, message, name, "case")
        for name in ("talk_duration", "hold_duration", "after_contact_duration")
    ]
    sla_target = _duration_ms(v, message, "sla_target", "case")
    if len(v.items) > before or opened is None or resolved is None:
        return None
    record = domain.CaseRecord(
        case_id=case_id,
        agent_id=agent_id,
        channel=channel_name(message.channel),
        opened=opened,
        resolved=resolved,
        talk_ms=parts[0] or 0,
        hold_ms=parts[1] or 0,
        after_contact_ms=parts[2] or 0,
        first_contact=message.first_contact_resolution,
        sla_target_ms=sla_target,
        sla_met=message.sla_met,
        csat=message.csat_score if message.HasField("csat_score") else None,
        pulse=message.pulse_score if message.HasField("pulse_score") else None,
    )
    domain.validate_case(record, now=now, v=v)
    return record if len(v.items) == before else None


def _ms_duration(ms: int) -> Duration:
    duration = Duration()
    duration.FromMilliseconds(ms)
    return duration


def case_to_proto(record: domain.CaseRecord) -> pb.Case:
    message = pb.Case(
        name=f"cases/{record.case_id}",
        agent=f"agents/{record.agent_id}",
        channel=pb.Channel.Value(f"CHANNEL_{record.channel or 'UNSPECIFIED'}"),
        open_time=to_timestamp(record.opened),
        resolve_time=to_timestamp(record.resolved),
        talk_duration=_ms_duration(record.talk_ms),
        hold_duration=_ms_duration(record.hold_ms),
        after_contact_duration=_ms_duration(record.after_contact_ms),
        first_contact_resolution=record.first_contact,
        sla_met=record.sla_met,
        version=record.version,
    )
    if record.sla_target_ms is not None:
        message.sla_target.CopyFrom(_ms_duration(record.sla_target_ms))
    if record.csat is not None:
        message.csat_score = record.csat
    if record.pulse is not None:
        message.pulse_score = record.pulse
    return message


def case_from_proto(message: pb.Case, version: int | None = None) -> domain.CaseRecord:
    """A stored (already validated) case back to the record (at `version` if given)."""

    def ms(name: str) -> int:
        value: Duration = getattr(message, name)
        return value.seconds * 1000 + value.nanos // 1_000_000

    return domain.CaseRecord(
        case_id=message.name.removeprefix("cases/"),
        agent_id=message.agent.removeprefix("agents/"),
        channel=channel_name(message.channel),
        opened=from_timestamp(message.open_time),
        resolved=from_timestamp(message.resolve_time),
        talk_ms=ms("talk_duration"),
        hold_ms=ms("hold_duration"),
        after_contact_ms=ms("after_contact_duration"),
        first_contact=message.first_contact_resolution,
        sla_target_ms=ms("sla_target") if message.HasField("sla_target") else None,
        sla_met=message.sla_met,
        csat=message.csat_score if message.HasField("csat_score") else None,
        pulse=message.pulse_score if message.HasField("pulse_score") else None,
        version=message.version if version is None else version,
    )


def encode_case(event: domain.CaseRecorded, version: int) -> events_pb2.CaseRecorded:
    message = events_pb2.CaseRecorded(
        case=case_to_proto(replace(event.case, version=version)),
        previous_agent=event.previous_agent,
    )
    if event.previous_resolved is not None:
        message.previous_resolve_time.CopyFrom(to_timestamp(event.previous_resolved))
    return message


def decode_case(envelope: EventEnvelope) -> domain.CaseRecorded:
    message = unpack(envelope, events_pb2.CaseRecorded)
    return domain.CaseRecorded(
        case=case_from_proto(message.case, envelope.aggregate_version),
        previous_agent=message.previous_agent,
        previous_resolved=(
            from_timestamp(message.previous_resolve_time)
            if message.HasField("previous_resolve_time")
            else None
        ),
    )


async def _nothing_yet(_aggregate_id: str) -> tuple[Any, int]:
    # The event store is the truth: a stale hint of 0 makes the runner catch up from it.
    return None, 0


def case_behaviour() -> Behaviour[domain.CaseRecord | None]:
    return Behaviour(
        aggregate_type=CASE,
        initial=lambda _id: None,
        load=_nothing_yet,
        evolve=lambda _state, envelope: decode_case(envelope).case,
    )


# --- thresholds ----------------------------------------------------------------------------
def thresholds_from_proto(team_id: str, message: pb.RedFlagThresholds) -> domain.Thresholds:
    values = {
        name: getattr(message, name) if message.HasField(name) else None  # type: ignore[arg-type]
        for name in domain.LIMIT_FIELDS
    }
    return domain.Thresholds(team_id=team_id, version=message.version, **values)


def thresholds_to_proto(thresholds: domain.Thresholds) -> pb.RedFlagThresholds:
    message = pb.RedFlagThresholds(
        name=f"teams/{thresholds.team_id}/redFlagThresholds", version=thresholds.version
    )
    for name in domain.LIMIT_FIELDS:
        value = getattr(thresholds, name)
        if value is not None:
            setattr(message, name, value)
    return message


def decode_thresholds(envelope: EventEnvelope) -> domain.Thresholds:
    message = unpack(envelope, events_pb2.RedFlagThresholdsSet).thresholds
    team_id = message.name.removeprefix("teams/").removesuffix("/redFlagThresholds")
    return replace(thresholds_from_proto(team_id, message), version=envelope.aggregate_version)


def encode_thresholds(event: domain.ThresholdsSet, version: int) -> events_pb2.RedFlagThresholdsSet:
    return events_pb2.RedFlagThresholdsSet(
        thresholds=thresholds_to_proto(replace(event.thresholds, version=version))
    )


def red_flag_id(flag: domain.RedFlag, month: str) -> str:
    return f"{flag.agent_id}--{month}--{flag.metric}"


def encode_red_flag(flag: domain.RedFlag, team_id: str, month: str) -> events_pb2.RedFlagRaised:
    return events_pb2.RedFlagRaised(
        flag=pb.RedFlag(
            agent=f"agents/{flag.agent_id}",
            metric=flag.metric,
            value=flag.value,
            threshold=flag.threshold,
            bound=flag.bound,
        ),
        team=f"teams/{team_id}",
        month=month,
    )


def red_flag_behaviour() -> Behaviour[bool]:
    """A flag's only state: raised or not."""
    return Behaviour(
        aggregate_type=RED_FLAG,
        initial=lambda _id: False,
        load=_not_raised_yet,
        evolve=lambda _state, _envelope: True,
    )


async def _not_raised_yet(_flag_id: str) -> tuple[bool, int]:
    return False, 0


def thresholds_doc(thresholds: domain.Thresholds) -> dict[str, Any]:
    doc: dict[str, Any] = {"version": thresholds.version}
    for name in domain.LIMIT_FIELDS:
        doc[name] = getattr(thresholds, name)
    return doc


def thresholds_from_doc(team_id: str, doc: dict[str, Any] | None) -> domain.Thresholds:
    if doc is None:
        return domain.Thresholds(team_id)
    values = {name: doc.get(name) for name in domain.LIMIT_FIELDS}
    return domain.Thresholds(team_id=team_id, version=int(doc.get("version", 0)), **values)


# --- input documents -----------------------------------------------------------------------
# View documents are stored as `{_id, data}` with the content as one JSON string (instants as
# epoch milliseconds): FerretDB v1.24 spends its time per field, and a packed document reads
# and writes many times faster.
def pack_doc(doc: dict[str, Any]) -> dict[str, Any]:
    content = {k: v for k, v in doc.items() if k != "_id"}
    return {"_id": doc["_id"], "data": json.dumps(content, separators=(",", ":"))}


def unpack_doc(stored: dict[str, Any]) -> dict[str, Any]:
    content: dict[str, Any] = json.loads(stored.get("data") or "{}")
    return {"_id": stored["_id"], **content}


# Agents share input documents: one per UTC date and hash bucket (`YYYY-MM-DD|07`), holding
# each agent's inputs under `agents.<id>`. A projector batch then rewrites a few documents
# per date instead of one per agent it touched (4, not 16: on FerretDB a write costs more per
# document than per byte; changing the count changes the ids, so the views need a rebuild).
INPUT_BUCKETS = 4
Slot = tuple[str, str]  # (input document id, agent id)


def date_slot(agent_id: str, day: date) -> Slot:
    bucket = zlib.crc32(agent_id.encode()) % INPUT_BUCKETS
    return f"{day.isoformat()}|{bucket:02d}", agent_id


def bucket_id(agent_id: str, instant: datetime) -> Slot:
    return date_slot(agent_id, as_utc(instant).date())


def buckets_for_day(agent_id: str, day: date, zone: str) -> list[Slot]:
    start, end = metrics.window(day, zone)
    first, last = start.date(), end.date()
    out = []
    while first <= last:
        out.append(date_slot(agent_id, first))
        first += timedelta(days=1)
    return out


def change_entry(change: metrics.StatusChange) -> dict[str, Any]:
    return {"at": epoch_ms(change.at), "status": change.status, "reason": change.reason_code}


def case_entry(record: domain.CaseRecord) -> dict[str, Any]:
    return {
        "v": record.version,
        "channel": record.channel,
        "opened": epoch_ms(record.opened),
        "resolved": epoch_ms(record.resolved),
        "talk_ms": record.talk_ms,
        "hold_ms": record.hold_ms,
        "acw_ms": record.after_contact_ms,
        "fcr": record.first_contact,
        "sla_target_ms": record.sla_target_ms,
        "sla_met": record.sla_met,
        "csat": record.csat,
        "pulse": record.pulse,
    }


def case_record_from_entry(agent_id: str, case_id: str, e: dict[str, Any]) -> domain.CaseRecord:
    return domain.CaseRecord(
        case_id=case_id,
        agent_id=agent_id,
        channel=e["channel"],
        opened=from_epoch_ms(e["opened"]),
        resolved=from_epoch_ms(e["resolved"]),
        talk_ms=int(e["talk_ms"]),
        hold_ms=int(e["hold_ms"]),
        after_contact_ms=int(e["acw_ms"]),
        first_contact=bool(e["fcr"]),
        sla_target_ms=e.get("sla_target_ms"),
        sla_met=bool(e["sla_met"]),
        csat=e.get("csat"),
        pulse=e.get("pulse"),
        version=int(e["v"]),
    )


def shift_entry(shift: metrics.Shift) -> dict[str, Any]:
    return {
        "roster_date": shift.roster_date.isoformat(),
        "start": epoch_ms(shift.start),
        "end": epoch_ms(shift.end),
        "activities": [
            {
                "kind": a.kind,
                "start": epoch_ms(a.start),
                "end": epoch_ms(a.end),
                "paid": a.paid,
                "productive": a.productive,
            }
            for a in shift.activities
        ],
    }


def leave_entry(leave: metrics.Leave) -> dict[str, Any]:
    return {"start": epoch_ms(leave.start), "end": epoch_ms(leave.end)}


def training_entry(training: metrics.TrainingCompletion) -> dict[str, Any]:
    assert training.at is not None  # what the projection records always has its instant
    return {
        "at": epoch_ms(training.at),
        "zone": training.zone,
        "minutes": training.minutes,
        "technical": training.technical,
    }


class Parsed(NamedTuple):
    """One stored slice parsed: status changes by version, cases, shifts, leave, trainings by
    id; `raw` holds the stored entry each was parsed from, by (section, stored key)."""

    changes: dict[int, metrics.StatusChange]
    cases: dict[str, metrics.CaseOutcome]
    shifts: dict[str, metrics.Shift]
    leave: dict[str, metrics.Leave]
    trainings: dict[str, metrics.TrainingCompletion]
    raw: dict[tuple[str, str], Any]


def parse_slice(agent_id: str, doc: dict[str, Any], before: Parsed | None = None) -> Parsed:
    """An agent's part of one input document, as the metrics' inputs.

    With `before` (the same slice parsed before it changed), an entry that is the very same
    stored object as then is taken as parsed then: stored entries are replaced, never changed
    in place, so only new and replaced entries are parsed again.
    """
    raw: dict[tuple[str, str], Any] = {}
    old_raw = before.raw if before is not None else {}

    def section(name: str, old: dict[Any, Any], key_of: Any, parse: Any) -> dict[Any, Any]:
        out = {}
        for key, entry in doc.get(name, {}).items():
            raw[(name, key)] = entry
            parsed_key = key_of(key)
            if old_raw.get((name, key)) is entry and parsed_key in old:
                out[parsed_key] = old[parsed_key]
            elif (value := parse(key, entry)) is not None:
                out[parsed_key] = value
        return out

    old = before or Parsed({}, {}, {}, {}, {}, {})
    return Parsed(
        section("changes", old.changes, int, _status_change),
        section("cases", old.cases, str, functools.partial(_case_outcome, agent_id)),
        section("shifts", old.shifts, str, _shift),
        section("leave", old.leave, str, _leave),
        section("trainings", old.trainings, str, _training),
        raw,
    )


def _status_change(version: str, e: dict[str, Any]) -> metrics.StatusChange:
    return metrics.StatusChange(
        int(version), from_epoch_ms(e["at"]), e["status"], e.get("reason", "")
    )


def _leave(leave_id: str, e: dict[str, Any]) -> metrics.Leave:
    return metrics.Leave(leave_id, from_epoch_ms(e["start"]), from_epoch_ms(e["end"]))


def _training(training_id: str, e: dict[str, Any]) -> metrics.TrainingCompletion:
    if "at" not in e:  # stored before the instant was kept: counts on the date filed then
        return metrics.TrainingCompletion(
            training_id,
            None,
            "",
            e["minutes"],
            e["technical"],
            filed_on=date.fromisoformat(e["roster_date"]),
        )
    return metrics.TrainingCompletion(
        training_id, from_epoch_ms(e["at"]), e["zone"], e["minutes"], e["technical"]
    )


def inputs_from_parsed(zone: str, parts: list[Parsed]) -> metrics.AgentInputs:
    """Parsed slices merged (a later slice's entry of the same key wins, as stored)."""
    changes: dict[int, metrics.StatusChange] = {}
    cases: dict[str, metrics.CaseOutcome] = {}
    shifts: dict[str, metrics.Shift] = {}
    leave: dict[str, metrics.Leave] = {}
    trainings: dict[str, metrics.TrainingCompletion] = {}
    for part in parts:
        changes.update(part.changes)
        cases.update(part.cases)
        shifts.update(part.shifts)
        leave.update(part.leave)
        for training_id, training in part.trainings.items():
            # A completion recorded again since the instant is kept (a redelivered event)
            # is filed by its instant: that copy wins over the old one, wherever each lies.
            known = trainings.get(training_id)
            if known is None or known.at is None or training.at is not None:
                trainings[training_id] = training
    return metrics.AgentInputs(
        zone=zone or "UTC",
        changes=tuple(changes[v] for v in sorted(changes)),
        shifts=tuple(sorted(shifts.values(), key=lambda s: s.start)),
        leave=tuple(leave.values()),
        trainings=tuple(trainings.values()),
        cases=tuple(cases.values()),
    )


def _case_outcome(agent_id: str, case_id: str, e: dict[str, Any]) -> metrics.CaseOutcome | None:
    """None for a tombstone (the case moved to another agent or date)."""
    if e.get("moved"):
        return None
    return case_record_from_entry(agent_id, case_id, e).outcome()


def _shift(shift_id: str, e: dict[str, Any]) -> metrics.Shift:
    return metrics.Shift(
        shift_id,
        date.fromisoformat(e["roster_date"]),
        from_epoch_ms(e["start"]),
        from_epoch_ms(e["end"]),
        tuple(
            metrics.Activity(
                a["kind"],
                from_epoch_ms(a["start"]),
                from_epoch_ms(a["end"]),
                a["paid"],
                a["productive"],
            )
            for a in e.get("activities", [])
        ),
    )


# --- figure documents ----------------------------------------------------------------------
# One document per team and roster date, `team|YYYY-MM-DD`, with every agent's sums packed
# as a comma-separated string in `metrics.SUM_FIELDS` order (a 1,000-agent team-day stays
# around 100 KB, so a team-month scorecard reads 31 documents).
def team_day_id(team_id: str, day: date) -> str:
    return f"{team_id or '-'}|{day.isoformat()}"


def team_month_id(team_id: str, month: str) -> str:
    """The month roll-up of a team, `team|YYYY-MM` (day documents are `team|YYYY-MM-DD`)."""
    return f"{team_id}|{month}"


def month_days(month: str) -> list[date]:
    first = date.fromisoformat(f"{month}-01")
    out = []
    day = first
    while day.month == first.month:
        out.append(day)
        day += timedelta(days=1)
    return out


def period_parts(start: date, end: date) -> tuple[list[str], list[date]]:
    """A period as the calendar months wholly inside it and the remaining single days."""
    months: list[str] = []
    days: list[date] = []
    day = start
    while day <= end:
        month_end = month_days(f"{day:%Y-%m}")[-1]
        if day.day == 1 and month_end <= end:
            months.append(f"{day:%Y-%m}")
            day = month_end + timedelta(days=1)
        else:
            days.append(day)
            day += timedelta(days=1)
    return months, days


def row_of(packed: str | None) -> list[int]:
    """Packed sums as integers in SUM_FIELDS order (zeros when absent or shorter)."""
    width = len(metrics.SUM_FIELDS)
    values = list(map(int, packed.split(","))) if packed else []
    return values + [0] * (width - len(values))


def rows_of(packed: list[str]) -> list[list[int]]:
    """Many packed rows as integer rows (one JSON parse: a team period reads tens of
    thousands), padded like `row_of`."""
    width = len(metrics.SUM_FIELDS)
    rows: list[list[int]] = json.loads("[[" + "],[".join(packed) + "]]") if packed else []
    return [row if len(row) == width else row + [0] * (width - len(row)) for row in rows]


def pack_row(row: list[int]) -> str:
    return ",".join(map(str, row))


def sum_rows(agent_rows: Iterable[dict[str, str]]) -> dict[str, list[int]]:
    """Each agent's packed rows (of several day documents) added up, zero totals left out."""
    totals: dict[str, list[int]] = {}
    for rows in agent_rows:
        for agent_id, packed in rows.items():
            row = row_of(packed)
            total = totals.get(agent_id)
            totals[agent_id] = (
                row if total is None else [a + b for a, b in zip(total, row, strict=True)]
            )
    return {a: row for a, row in totals.items() if any(row)}


def pack_rows(rows: dict[str, list[int]]) -> dict[str, str]:
    return {agent_id: pack_row(row) for agent_id, row in rows.items()}


def move_row(total: list[int] | None, old: str | None, new: str | None) -> list[int] | None:
    """A total after one of the rows it sums went from `old` to `new` (None: all zero)."""
    moved = [
        t + n - o for t, n, o in zip(total or row_of(None), row_of(new), row_of(old), strict=True)
    ]
    return moved if any(moved) else None


def pack_sums(sums: metrics.Sums) -> str:
    return ",".join([str(int(sums.get(name, 0))) for name in metrics.SUM_FIELDS])


def unpack_sums(text: str) -> metrics.Sums:
    values = [int(x) for x in text.split(",")] if text else []
    return {name: values[i] if i < len(values) else 0 for i, name in enumerate(metrics.SUM_FIELDS)}


# A day's tail (`metrics.Tail`) as text in its team-day document, `tails.<agent>`: the tail's
# end, `|`, its pieces `start,end,fields` (epoch ms; fields a bit mask over SUM_FIELDS) joined
# by `;`, `|`, the no-show ends. A read skips a tail that ended before now on its first number.
def pack_tail(tail: metrics.Tail) -> str:
    pieces = ";".join(
        f"{p.start_ms},{p.end_ms},{sum(1 << i for i in p.fields)}" for p in tail.pieces
    )
    ends = ";".join(map(str, tail.no_show_ends_ms))
    return f"{tail.end_ms}|{pieces}|{ends}"


def unpack_tail(text: str) -> metrics.Tail:
    _, pieces_text, ends_text = text.split("|")
    pieces = []
    for item in filter(None, pieces_text.split(";")):
        start, end, mask = item.split(",")
        pieces.append(metrics.TailPiece(int(start), int(end), _indices_of_mask(int(mask))))
    ends = tuple(int(x) for x in filter(None, ends_text.split(";")))
    return metrics.Tail(tuple(pieces), ends)


@functools.lru_cache(maxsize=256)
def _indices_of_mask(mask: int) -> tuple[int, ...]:
    return tuple(i for i in range(len(metrics.SUM_FIELDS)) if mask >> i & 1)


def tail_over(tail_text: str, now_ms: int) -> bool:
    """Whether nothing of a stored tail lies after `now_ms` (read from its first number)."""
    end = tail_text.partition("|")[0]
    return not end.isdigit() or int(end) <= now_ms


def so_far_row(row: list[int], tail_text: str | None, now_ms: int) -> list[int]:
    """A stored day row as of `now_ms` (the row itself when nothing of it is after now, or
    when its tail does not read: written otherwise, it is set right by a rebuild)."""
    if tail_text is None or tail_over(tail_text, now_ms):
        return row
    try:
        tail = unpack_tail(tail_text)
    except ValueError:
        return row
    return metrics.so_far(row, tail, now_ms)


class Repository:
    """Every driver call of the performance views goes through here or `wfm_runtime.mongo`."""

    def __init__(self, db: mongo.Database) -> None:
        self.inputs = db["agent_inputs"]
        self.team_days = db["team_days"]
        self.thresholds = db["thresholds"]
        self.agents = db["directory_agents"]
        self.teams = db["directory_teams"]
        self.certifications = db["certifications"]
        self.pending_days = db["pending_days"]
        self._reads = asyncio.Semaphore(READ_CONCURRENCY)
        self._writes = asyncio.Semaphore(WRITE_CONCURRENCY)

    async def get_many(
        self, coll: mongo.Collection, ids: list[str], projection: dict[str, int] | None = None
    ) -> dict[str, dict[str, Any]]:
        """Documents by `_id`, one lookup each (FerretDB pushes only `_id` equality down)."""

        async def one(doc_id: str) -> dict[str, Any] | None:
            async with self._reads:
                if projection is None:
                    return await mongo.get(coll, doc_id)
                found: list[dict[str, Any]] = await coll.find({"_id": doc_id}, projection).to_list(
                    1
                )
                return found[0] if found else None

        docs = await asyncio.gather(*(one(i) for i in ids))
        return {str(d["_id"]): d for d in docs if d is not None}

    async def put_many(self, coll: mongo.Collection, docs: list[dict[str, Any]]) -> None:
        """Replaces (or creates) whole documents by `_id`, a few at a time.

        One `replace_one` each: FerretDB v1.24 runs a bulk of replaces far slower than the
        same replaces sent side by side (a bulk of 200 took over 15 s in a probe).
        """

        async def one(doc: dict[str, Any]) -> None:
            async with self._writes:
                await coll.replace_one({"_id": doc["_id"]}, doc, upsert=True)

        await asyncio.gather(*(one(d) for d in docs))

    async def team_day_ids(self, team_id: str) -> list[str]:
        """The ids of the team's day documents (one scan; a team change is rare)."""
        pattern = f"^{re.escape(team_id or '-')}\\|\\d{{4}}-\\d{{2}}-\\d{{2}}$"
        docs = await self.team_days.find({"_id": {"$regex": pattern}}, {"_id": 1}).to_list(None)
        return sorted(str(d["_id"]) for d in docs)

    async def mark_pending(self, days: list[tuple[str, date]]) -> str:
        """Stores a mark of agent-days whose figures are to be recomputed (one insert)."""
        mark_id = uuid.uuid4().hex
        packed = json.dumps([[agent_id, day.isoformat()] for agent_id, day in days])
        await mongo.insert_new(self.pending_days, [{"_id": mark_id, "days": packed}])
        return mark_id

    async def pending(self) -> tuple[list[str], set[tuple[str, date]]]:
        """Every stored mark and the agent-days they hold."""
        marks = await mongo.find_all(self.pending_days, {})
        days = set()
        for mark in marks:
            for agent_id, day in json.loads(mark.get("days") or "[]"):
                days.add((str(agent_id), date.fromisoformat(day)))
        return [str(m["_id"]) for m in marks], days

    async def clear_pending(self, mark_ids: list[str]) -> None:
        if mark_ids:
            await mongo.delete_ids(self.pending_days, mark_ids)

    async def drop_all(self) -> None:
        for coll in (
            self.inputs,
            self.team_days,
            self.thresholds,
            self.certifications,
            self.pending_days,
        ):
            await mongo.drop_collection(coll)

    async def drop_directory(self) -> None:
        for coll in (self.agents, self.teams):
            await mongo.drop_collection(coll)
