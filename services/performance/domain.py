"""Performance rules: case records, periods, red-flag thresholds (pure, no I/O).

The metric rules themselves live in `metrics.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta

from services.performance.metrics import METRICS, CaseOutcome
from wfm_runtime.errors import Violations
from wfm_runtime.validation import ID_PATTERN, check_idempotency_key

CHANNELS = ("PHONE", "EMAIL", "CHAT", "SMS")
MAX_PERIOD_DAYS = 31
MAX_CASE_AGE = timedelta(days=366)  # a case open longer than a year is a data error
MAX_HANDLE_PART = timedelta(hours=24)
FUTURE_SKEW = timedelta(minutes=5)  # a case system's clock may run a little ahead
MAX_PERCENT_OR_COUNT = 1_000_000.0
# Periods start in 2000 (`_parse_date`), so no earlier case is ever read; one from year 1
# would also break the projector, whose day windows reach back past datetime.min.
EARLIEST_RESOLVED = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class CaseRecord:
    case_id: str
    agent_id: str
    channel: str
    opened: datetime
    resolved: datetime
    talk_ms: int
    hold_ms: int
    after_contact_ms: int
    first_contact: bool
    sla_target_ms: int | None
    sla_met: bool
    csat: int | None
    pulse: int | None
    version: int = 0

    def content(self) -> CaseRecord:
        return replace(self, version=0)

    def outcome(self) -> CaseOutcome:
        return CaseOutcome(
            case_id=self.case_id,
            agent_id=self.agent_id,
            channel=self.channel,
            opened=self.opened,
            resolved=self.resolved,
            handle_ms=self.talk_ms + self.hold_ms + self.after_contact_ms,
            first_contact=self.first_contact,
            has_sla=self.sla_target_ms is not None,
            sla_met=self.sla_met,
            csat=self.csat,
            pulse=self.pulse,
        )


@dataclass(frozen=True)
class CaseRecorded:
    case: CaseRecord
    previous_agent: str
    previous_resolved: datetime | None


def validate_case(
    record: CaseRecord, *, now: datetime, v: Violations, prefix: str = "case"
) -> None:
    """Checks every field of a case record; collects every violation in `v`."""
    if not ID_PATTERN.fullmatch(record.case_id):
        v.add("case_id", "must be 1-63 characters of letters, digits, '_' or '-'")
    if record.channel not in CHANNELS:
        v.add(f"{prefix}.channel", f"must be one of {', '.join(CHANNELS)}")
    if record.resolved > now + FUTURE_SKEW:
        v.add(f"{prefix}.resolve_time", "must not be in the future")
    elif record.resolved < EARLIEST_RESOLVED:
        v.add(f"{prefix}.resolve_time", "must be in the year 2000 or later")
    if record.opened > record.resolved:
        v.add(f"{prefix}.open_time", "must not be after resolve_time")
    elif record.resolved - record.opened > MAX_CASE_AGE:
        v.add(f"{prefix}.open_time", "must be at most 366 days before resolve_time")
    for name, value in (
        ("talk_duration", record.talk_ms),
        ("hold_duration", record.hold_ms),
        ("after_contact_duration", record.after_contact_ms),
    ):
        if value < 0 or value > MAX_HANDLE_PART / timedelta(milliseconds=1):
            v.add(f"{prefix}.{name}", "must be between 0 and 24 hours")
    if record.sla_target_ms is not None and not (
        0 < record.sla_target_ms <= MAX_CASE_AGE / timedelta(milliseconds=1)
    ):
        v.add(f"{prefix}.sla_target", "must be positive and at most 366 days when set")
    if record.sla_target_ms is None and record.sla_met:
        v.add(f"{prefix}.sla_met", "needs an sla_target")
    if record.csat is not None and not 1 <= record.csat <= 5:
        v.add(f"{prefix}.csat_score", "must be between 1 and 5")
    if record.pulse is not None and not 0 <= record.pulse <= 10:
        v.add(f"{prefix}.pulse_score", "must be between 0 and 10")


def validate_command(idempotency_key: str, expected_version: int | None, v: Violations) -> None:
    check_idempotency_key(v, idempotency_key)
    if expected_version is not None:
        v.check(expected_version >= 0, "expected_version", "must not be negative")


def decide_record_case(current: CaseRecord | None, record: CaseRecord) -> CaseRecorded | None:
    """The record to store; None when the case is already recorded exactly so (idempotent)."""
    if current is not None and current.version and current.content() == record.content():
        return None
    return CaseRecorded(
        case=record,
        previous_agent=current.agent_id if current and current.version else "",
        previous_resolved=current.resolved if current and current.version else None,
    )


# --- periods -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def parse_period(v: Violations, start_text: str, end_text: str, field: str = "period") -> Period:
    start = _parse_date(v, start_text, f"{field}.start_date")
    end = _parse_date(v, end_text, f"{field}.end_date")
    if start is None or end is None:
        return Period(date.min, date.min)
    if end < start:
        v.add(f"{field}.end_date", "must not be before start_date")
    elif (end - start).days + 1 > MAX_PERIOD_DAYS:
        v.add(f"{field}.end_date", f"the period may cover at most {MAX_PERIOD_DAYS} days")
    return Period(start, end)


def _parse_date(v: Violations, text: str, field: str) -> date | None:
    if not text:
        v.add(field, "is required, as YYYY-MM-DD")
        return None
    try:
        parsed = date.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or len(text) != 10 or not date(2000, 1, 1) <= parsed <= date(2999, 12, 31):
        v.add(field, f"must be a date YYYY-MM-DD between 2000 and 2999, got {text[:40]!r}")
        return None
    return parsed


def parse_order_by(v: Violations, text: str) -> tuple[str, bool]:
    """`metric` or `metric desc` (AIP-132); '' orders by agent id."""
    parts = text.split()
    if not parts:
        return "", False
    descending = len(parts) == 2 and parts[1].lower() == "desc"
    ascending = len(parts) == 2 and parts[1].lower() == "asc"
    if (
        parts[0] not in (*METRICS, "agent")
        or len(parts) > 2
        or (len(parts) == 2 and not (descending or ascending))
    ):
        v.add("order_by", "must be 'agent' or a metric of Metrics, optionally followed by desc")
        return "", False
    return ("" if parts[0] == "agent" else parts[0]), descending


def check_metric(v: Violations, metric: str) -> str:
    if metric not in METRICS:
        v.add("metric", f"must be one of {', '.join(METRICS)}")
        return ""
    return metric


# --- red flags ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Thresholds:
    team_id: str
    max_absenteeism_percent: float | None = None
    min_adherence_percent: float | None = None
    min_sla_compliance_percent: float | None = None
    max_late_logins: float | None = None
    min_occupancy_percent: float | None = None
    min_csat_average: float | None = None
    version: int = 0

    def limits(self) -> list[tuple[str, str, float]]:
        """(metric, bound, limit) for every limit that is set."""
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.startswith(("max_", "min_")) and value is not None:
                out.append((f.name[4:], f.name[:3], float(value)))
        return out


LIMIT_FIELDS = tuple(f.name for f in fields(Thresholds) if f.name.startswith(("max_", "min_")))


@dataclass(frozen=True)
class ThresholdsSet:
    thresholds: Thresholds


def validate_thresholds(thresholds: Thresholds, v: Violations) -> None:
    for name in LIMIT_FIELDS:
        value = getattr(thresholds, name)
        if value is None:
            continue
        top = 100.0 if name.endswith("_percent") else 5.0 if "csat" in name else 1e6
        if not (0.0 <= value <= top):  # also rejects NaN
            v.add(f"thresholds.{name}", f"must be between 0 and {top:g}")


def decide_thresholds(current: Thresholds, wanted: Thresholds) -> ThresholdsSet | None:
    if current.version and replace(current, version=0) == replace(wanted, version=0):
        return None
    return ThresholdsSet(wanted)


# Not a threshold: an agent with a certification expired by the period's end is flagged.
CERTIFICATION_EXPIRED = "certification_expired"


@dataclass(frozen=True)
class RedFlag:
    agent_id: str
    metric: str
    value: float
    threshold: float
    bound: str


def red_flags(
    agent_id: str, figures: dict[str, float | None], thresholds: Thresholds
) -> list[RedFlag]:
    """Every threshold the agent's figures break; a figure with no denominator breaks none."""
    flags = []
    for metric, bound, limit in thresholds.limits():
        value = figures.get(metric)
        if value is None:
            continue
        if (bound == "max" and value > limit) or (bound == "min" and value < limit):
            flags.append(RedFlag(agent_id, metric, value, limit, bound))
    return flags
