"""Workforce directory rules (teams and agents): pure functions on dataclasses, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import Enum

from services.scheduling.rostertime import local_date, parse_hhmm
from wfm_runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    RuleViolation,
    Violations,
)
from wfm_runtime.validation import check_id, check_time_zone

MAX_WEEKLY_MINUTES = 60 * 60
PART_TIME_MAX_WEEKLY_MINUTES = 30 * 60
UPDATABLE_AGENT_FIELDS = frozenset(
    {
        "display_name",
        "team",
        "site",
        "time_zone",
        "contract_type",
        "weekly_minutes",
        "annual_leave_days",
        "working_days",
    }
)
# A contract that names no working days works Monday to Friday (ISO weekdays).
DEFAULT_WORKING_DAYS = (1, 2, 3, 4, 5)
# The working days through time keep at most this many periods (the oldest drop off).
MAX_WORKING_DAYS_PERIODS = 32

UPDATABLE_TEAM_FIELDS = frozenset({"display_name", "client", "operating_hours", "min_rest_minutes"})


class ContractType(Enum):
    FULL_TIME = "FULL_TIME"
    PART_TIME = "PART_TIME"


@dataclass(frozen=True)
class Team:
    team_id: str
    display_name: str = ""
    client_time_zone: str = ""
    client: str = ""
    version: int = 0
    create_time: datetime | None = None
    update_time: datetime | None = None
    # (ISO weekday, local opening "HH:MM", minutes open) on the client's clock.
    operating_hours: tuple[tuple[int, str, int], ...] = ()
    min_rest_minutes: int = 0  # 0: the default (11 h)


@dataclass(frozen=True)
class Agent:
    agent_id: str
    display_name: str = ""
    team_id: str = ""
    site: str = ""
    time_zone: str = ""
    contract_type: ContractType = ContractType.FULL_TIME
    weekly_minutes: int = 0
    version: int = 0
    create_time: datetime | None = None
    update_time: datetime | None = None
    annual_leave_days: int = 0
    working_days: tuple[int, ...] = ()  # ISO weekdays, ascending; () = DEFAULT_WORKING_DAYS
    # (first local date in force, working days as `working_days`), oldest first; the first
    # period also covers every earlier date. () until the working days change: the current
    # ones were in force all along.
    working_days_history: tuple[tuple[date, tuple[int, ...]], ...] = ()

    @property
    def working_weekdays(self) -> frozenset[int]:
        return weekdays(self.working_days)

    @property
    def working_weekdays_history(self) -> tuple[tuple[date, frozenset[int]], ...]:
        """The working days through time as the rules read them (roster.Context)."""
        return tuple((since, weekdays(days)) for since, days in self.working_days_history)


def weekdays(working_days: tuple[int, ...]) -> frozenset[int]:
    """The ISO weekdays a contract's `working_days` names (none: Monday to Friday)."""
    return frozenset(working_days or DEFAULT_WORKING_DAYS)


def working_days_from(current: Agent, updated: Agent, now: datetime) -> Agent:
    """`updated` with its working days through time: a change of working days made at `now`
    takes effect from the agent's next local day (the day it is made began on the old
    contract, and a holiday or leave on it stays priced so). Changes taking effect on the
    same day keep the last; a change back to the days already in force then is none."""
    if updated.working_weekdays == current.working_weekdays:
        return updated
    history = current.working_days_history or ((_registered(current, now), current.working_days),)
    since = local_date(now, updated.time_zone) + timedelta(days=1)
    first, changes = history[0], [p for p in history[1:] if p[0] < since]
    periods = [first, *changes]
    if weekdays(periods[-1][1]) != updated.working_weekdays:
        periods.append((since, updated.working_days))
    return replace(updated, working_days_history=tuple(periods[-MAX_WORKING_DAYS_PERIODS:]))


def _registered(agent: Agent, now: datetime) -> date:
    """The local day the agent was registered (only shown: the first period covers all
    earlier dates anyway)."""
    return local_date(agent.create_time or now, agent.time_zone or "UTC")


def validate_team(team: Team, v: Violations) -> None:
    check_id(v, team.team_id, "team_id", "team id")
    v.check(0 < len(team.display_name) <= 200, "team.display_name", "1-200 characters required")
    check_time_zone(v, team.client_time_zone, "team.client_time_zone")
    v.check(len(team.client) <= 100, "team.client", "at most 100 characters")
    v.check(
        0 <= team.min_rest_minutes <= 24 * 60,
        "team.min_rest_minutes",
        "must be 0 (the default, 11 h) to 1440 minutes",
    )
    _validate_operating_hours(team.operating_hours, v)


def _validate_operating_hours(windows: tuple[tuple[int, str, int], ...], v: Violations) -> None:
    days = [day for day, _, _ in windows]
    v.check(len(days) == len(set(days)), "team.operating_hours", "one window per weekday")
    for n, (day, opens, minutes) in enumerate(windows):
        where = f"team.operating_hours[{n}]"
        v.check(1 <= day <= 7, f"{where}.iso_weekday", "must be 1 (Monday) to 7 (Sunday)")
        v.check(parse_hhmm(opens) is not None, f"{where}.open_local_time", "must be HH:MM")
        v.check(0 < minutes <= 24 * 60, f"{where}.length_minutes", "must be 1 to 1440 minutes")


def validate_agent(agent: Agent, v: Violations, prefix: str = "agent.") -> None:
    v.check(
        0 < len(agent.display_name) <= 200, f"{prefix}display_name", "1-200 characters required"
    )
    check_id(v, agent.team_id, f"{prefix}team", "team id")
    v.check(len(agent.site) <= 100, f"{prefix}site", "at most 100 characters")
    check_time_zone(v, agent.time_zone, f"{prefix}time_zone")
    cap = (
        PART_TIME_MAX_WEEKLY_MINUTES
        if agent.contract_type is ContractType.PART_TIME
        else MAX_WEEKLY_MINUTES
    )
    v.check(
        0 < agent.weekly_minutes <= cap,
        f"{prefix}weekly_minutes",
        f"must be between 1 and {cap} minutes for a {agent.contract_type.value} contract",
    )
    v.check(
        0 <= agent.annual_leave_days <= 366,
        f"{prefix}annual_leave_days",
        "must be 0 to 366 days a year",
    )
    v.check(
        all(1 <= d <= 7 for d in agent.working_days)
        and len(set(agent.working_days)) == len(agent.working_days),
        f"{prefix}working_days",
        "ISO weekdays 1 (Monday) to 7 (Sunday), each at most once",
    )


def decide_create_team(current: Team, requested: Team, now: datetime) -> Team:
    if current.version:
        raise AlreadyExists("team", f"teams/{requested.team_id}")
    return replace(requested, version=1, create_time=now, update_time=now)


def decide_update_team(
    current: Team, changes: Team, paths: frozenset[str], now: datetime
) -> tuple[Team, list[str]] | None:
    """The team after applying `paths` from `changes`, with the fields that really changed."""
    if not current.version:
        raise NotFound("team", f"teams/{current.team_id}")
    updated = replace(current, **{p: getattr(changes, p) for p in paths})
    changed = sorted(p for p in paths if getattr(current, p) != getattr(updated, p))
    if not changed:
        return None
    v = Violations()
    validate_team(updated, v)
    v.raise_if_any()
    return replace(updated, update_time=now), changed


def decide_register_agent(
    current: Agent, requested: Agent, team_exists: bool, now: datetime
) -> Agent:
    if current.version:
        raise AlreadyExists("agent", f"agents/{requested.agent_id}")
    _require_team(requested, team_exists)
    return replace(requested, version=1, create_time=now, update_time=now)


def decide_update_agent(
    current: Agent, changes: Agent, paths: frozenset[str], team_exists: bool, now: datetime
) -> tuple[Agent, list[str]] | None:
    """The agent after applying `paths` from `changes`, with the fields that really changed."""
    values = {
        "display_name": changes.display_name,
        "team_id": changes.team_id,
        "site": changes.site,
        "time_zone": changes.time_zone,
        "contract_type": changes.contract_type,
        "weekly_minutes": changes.weekly_minutes,
        "annual_leave_days": changes.annual_leave_days,
        "working_days": changes.working_days,
    }
    fields = {
        ("team_id" if p == "team" else p): values["team_id" if p == "team" else p] for p in paths
    }
    updated = replace(current, **fields)  # type: ignore[arg-type]
    changed = sorted(k for k in fields if getattr(current, k) != getattr(updated, k))
    # Report API field names (the update mask's), not our attribute names.
    changed = sorted("team" if k == "team_id" else k for k in changed)
    if not changed:
        return None
    v = Violations()
    validate_agent(updated, v)
    v.raise_if_any()
    if "team" in changed:
        _require_team(updated, team_exists)
    return replace(working_days_from(current, updated, now), update_time=now), changed


def _require_team(agent: Agent, team_exists: bool) -> None:
    if not team_exists:
        raise FailedPrecondition(
            [
                RuleViolation(
                    "TEAM_EXISTS",
                    f"teams/{agent.team_id}",
                    f"team {agent.team_id!r} does not exist: create it first",
                )
            ]
        )
