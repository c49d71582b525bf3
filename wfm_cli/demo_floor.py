"""The rest of the demo floor, on the roster, training and performance services: sites with
public holidays, shift patterns, a published two-week roster, coverage requirements, courses
with sessions, enrollments and completions, and a day of cases.

Same contract as wfm_cli.demo: fixed ids, fixed idempotency keys, so a second run changes
nothing. Dates hang off the Monday of the current week (the roster's first week): a run in a
later week seeds that week's fortnight, without touching what an earlier run made.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from wfm.performance.v1 import performance_service_pb2 as performance_pb
from wfm.scheduling.v1 import roster_service_pb2 as roster_pb
from wfm.training.v1 import training_service_pb2 as training_pb

from wfm_cli.demo import PUNE, UK, Seeder, TeamSeed
from wfm_sdk import AlreadyExists, FailedPrecondition

ROSTER_DAYS = 14
LUNCH = roster_pb.Activity(
    kind=roster_pb.ACTIVITY_KIND_LUNCH, offset_minutes=240, length_minutes=30, paid=False
)
BREAK = roster_pb.Activity(
    kind=roster_pb.ACTIVITY_KIND_BREAK, offset_minutes=120, length_minutes=15, paid=True
)
# Half of each team takes its break and lunch half an hour to an hour later, so the floor is
# never empty at lunch.
LATE_LUNCH = roster_pb.Activity(
    kind=roster_pb.ACTIVITY_KIND_LUNCH, offset_minutes=300, length_minutes=30, paid=False
)
LATE_BREAK = roster_pb.Activity(
    kind=roster_pb.ACTIVITY_KIND_BREAK, offset_minutes=150, length_minutes=15, paid=True
)
WEEKDAYS = (1, 2, 3, 4, 5)
THU_TO_MON = (1, 4, 5, 6, 7)
# pattern id: display name, local start, hours, anchor, weekdays, activities
PATTERNS: dict[str, tuple[str, str, float, int, tuple[int, ...], list[roster_pb.Activity]]] = {
    "us-day": ("US Eastern day (Pune night)", "08:00", 9, roster_pb.ANCHOR_CLIENT, WEEKDAYS,
               [BREAK, LUNCH]),
    "us-day-b": ("US Eastern day (Pune night), late lunch", "08:00", 9, roster_pb.ANCHOR_CLIENT,
                 WEEKDAYS, [LATE_BREAK, LATE_LUNCH]),
    "us-day-pt": ("US Eastern day, part-time", "08:00", 9, roster_pb.ANCHOR_CLIENT, (1, 3),
                  [BREAK, LUNCH]),
    "uk-early": ("UK early", "08:00", 8, roster_pb.ANCHOR_AGENT, WEEKDAYS, [BREAK, LUNCH]),
    "uk-late": ("UK late", "15:00", 8, roster_pb.ANCHOR_AGENT, WEEKDAYS, [BREAK, LUNCH]),
    "uk-early-wkend": ("UK early, Thu-Mon", "08:00", 8, roster_pb.ANCHOR_AGENT, THU_TO_MON,
                       [LATE_BREAK, LATE_LUNCH]),
    "uk-late-wkend": ("UK late, Thu-Mon", "15:00", 8, roster_pb.ANCHOR_AGENT, THU_TO_MON,
                      [LATE_BREAK, LATE_LUNCH]),
    "uk-evening-pt": ("UK evening, part-time", "19:00", 4, roster_pb.ANCHOR_AGENT, (5, 6, 7),
                      []),
}  # fmt: skip
HOLIDAYS = {
    "pune": ("Asia/Kolkata", {"2026-01-26": "Republic Day", "2026-08-15": "Independence Day",
                              "2026-10-02": "Gandhi Jayanti", "2026-11-08": "Diwali",
                              "2027-01-26": "Republic Day"}),
    "uk-wfh": ("Europe/London", {"2026-12-25": "Christmas Day", "2026-12-28": "Boxing Day",
                                 "2027-01-01": "New Year's Day"}),
}  # fmt: skip
# Required agents per half hour of the client's day (48 values), the same every day.
REQUIRED = {
    "pune-night": [0] * 16 + [0.7] * 4 + [0.9] * 10 + [0.6] * 4 + [0] * 14,
    "uk-wfh": [0] * 16 + [0.3] * 14 + [0.45] * 8 + [0.35] * 8 + [0] * 2,
}
COURSES = {
    "fibre-101": ("Fibre broadband basics", training_pb.COURSE_CATEGORY_TECHNICAL, 240, True,
                  "fibre"),
    "gdpr-2026": ("Data protection refresher", training_pb.COURSE_CATEGORY_COMPLIANCE, 90,
                  False, "data-protection"),
    "calm-calls": ("De-escalating difficult calls", training_pb.COURSE_CATEGORY_SOFT_SKILLS,
                   120, False, ""),
}  # fmt: skip


def week_start(today: date | None = None) -> date:
    day = today or datetime.now(UTC).date()
    return day - timedelta(days=day.weekday())


def roster_start() -> date:
    """Tomorrow (UTC): the demo's roster runs from there, so no shift starts before the floor
    exists (a shift nobody could have logged into would read as a no-show)."""
    return datetime.now(UTC).date() + timedelta(days=1)


def next_weekday(day: date) -> date:
    """`day`, or the Monday after it when it falls on a weekend (the Pune team works Mon-Fri)."""
    return day + timedelta(days=7 - day.weekday() if day.weekday() >= 5 else 0)


def class_day() -> date:
    """The Monday of last week: the demo's classes have met, whatever the time of the run."""
    return week_start() - timedelta(days=7)


async def seed_sites(seeder: Seeder) -> None:
    for site, (zone, holidays) in HOLIDAYS.items():
        with contextlib.suppress(AlreadyExists):
            await seeder.wfm.roster.create_site(
                site_id=site,
                site=roster_pb.Site(
                    display_name=site,
                    time_zone=zone,
                    public_holidays=[
                        roster_pb.PublicHoliday(date=d, display_name=n) for d, n in holidays.items()
                    ],
                ),
                idempotency_key=f"demo-site-{site}",
            )
        seeder.count("sites")


async def seed_patterns(seeder: Seeder) -> None:
    for pattern, (title, start, hours, anchor, days, activities) in PATTERNS.items():
        with contextlib.suppress(AlreadyExists):
            await seeder.wfm.roster.create_shift_pattern(
                shift_pattern_id=pattern,
                shift_pattern=roster_pb.ShiftPattern(
                    display_name=title,
                    start_local_time=start,
                    length_minutes=round(hours * 60),
                    anchor=anchor,  # type: ignore[arg-type]
                    activities=activities,
                    iso_weekdays=list(days),
                ),
                idempotency_key=f"demo-pattern-{pattern}",
            )
        seeder.count("shift patterns")


def pattern_for(team: TeamSeed, index: int, count: int) -> str:
    """Pune: everyone on the US day; UK: full-timers rotate early/late and weekday/weekend
    patterns (the floor is open seven days), part-timers take the weekend evenings."""
    part_time = index >= round(count * (1 - team.part_time_share))
    if team is PUNE:
        return "us-day-pt" if part_time else ("us-day", "us-day-b")[index % 2]
    if part_time:
        return "uk-evening-pt"
    return ("uk-early", "uk-late", "uk-early-wkend", "uk-late-wkend")[index % 4]


async def seed_roster(seeder: Seeder) -> None:
    """Two weeks of shifts from each agent's pattern, from tomorrow, then their weeks
    published."""
    first = roster_start()
    last = first + timedelta(days=ROSTER_DAYS - 1)
    with seeder.progress() as progress:
        for team in (PUNE, UK):
            ids = seeder.agents[team.team_id]
            task = progress.add_task(f"roster of {team.team_id}", total=len(ids))
            by_pattern: dict[str, list[str]] = {}
            for index, agent in enumerate(ids):
                by_pattern.setdefault(pattern_for(team, index, len(ids)), []).append(agent)
            for pattern, agents in by_pattern.items():
                reply = await seeder.wfm.roster.bulk_assign_shifts(
                    shift_pattern=f"shiftPatterns/{pattern}",
                    agents=[f"agents/{a}" for a in agents],
                    start_date=first.isoformat(),
                    end_date=last.isoformat(),
                    overrides=["PUBLIC_HOLIDAY"],  # the floor is open on holidays
                    idempotency_key=f"demo-roster-{first}-{team.team_id}-{pattern}",
                )
                # A rerun (another key, e.g. more agents) finds the shifts there: overlap.
                for item in reply.assignments:
                    if item.shifts:
                        seeder.seeded["shifts"] = seeder.seeded.get("shifts", 0) + len(item.shifts)
                progress.advance(task, len(agents))
            week = week_start(first)
            while week <= last:
                await seeder.wfm.roster.publish_week(
                    team=f"teams/{team.team_id}",
                    week_start=week.isoformat(),
                    idempotency_key=f"demo-publish-{team.team_id}-{week}",
                )
                seeder.count("weeks published")
                week += timedelta(days=7)


async def seed_coverage(seeder: Seeder) -> None:
    for team_id, shares in REQUIRED.items():
        agents = len(seeder.agents[team_id])
        for weekday in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
            quiet = team_id == PUNE.team_id and weekday in ("sat", "sun")
            required = [0 if quiet else round(share * agents) for share in shares]
            await seeder.wfm.roster.set_coverage_requirement(
                team=f"teams/{team_id}",
                weekday=weekday,
                interval_minutes=30,
                required=required,
                idempotency_key=f"demo-coverage-{team_id}-{weekday}-{agents}",
            )
            seeder.count("coverage requirements")


def session_id(course: str, team: TeamSeed) -> str:
    return f"{course}-{team.team_id}-{class_day():%Y%m%d}"  # one per course, team and week


async def seed_training(seeder: Seeder) -> None:
    """Three courses; a session of each for each team on Monday to Wednesday of last week
    (started, as a class that has met), half of each team enrolled, results for most of them
    and the rest no-shows: nobody is left in progress, so a run in a later week can book the
    same agents on that week's classes (an agent in progress on a course holds its booking)."""
    training = seeder.wfm.training
    for course, (title, category, minutes, technical, competency) in COURSES.items():
        compliance = category == training_pb.COURSE_CATEGORY_COMPLIANCE
        with contextlib.suppress(AlreadyExists):
            await training.create_course(
                course_id=course,
                course=training_pb.Course(
                    title=title,
                    category=category,
                    credit_minutes=minutes,
                    technical=technical,
                    competency=competency,
                    competency_level=training_pb.COMPETENCY_LEVEL_FOUNDATION if competency else 0,  # type: ignore[arg-type]
                    validity_days=365 if compliance else 0,
                    # So `wfm due` has work to show: the half of each team not in its class.
                    required_for_clients=[t.client for t in (PUNE, UK)] if compliance else [],
                ),
                idempotency_key=f"demo-course-{course}",
            )
        seeder.count("courses")
    for team in (PUNE, UK):
        for number, course in enumerate(COURSES):
            await _session(seeder, team, course, day=class_day() + timedelta(days=number))
        await _open_session(seeder, team)


async def _open_session(seeder: Seeder, team: TeamSeed) -> None:
    """A compliance class on Wednesday next week with every seat free, for those `wfm due`
    lists: the training calendar (`wfm sessions list`) has something ahead to enroll into."""
    zone = ZoneInfo(team.agent_time_zone)
    start = datetime.combine(week_start() + timedelta(days=9), time(11, 0), zone)
    sid = f"gdpr-2026-{team.team_id}-{start:%Y%m%d}"
    await _create_class(seeder, team, "gdpr-2026", sid, start)
    seeder.count("open sessions")


async def _create_class(
    seeder: Seeder, team: TeamSeed, course: str, sid: str, start: datetime
) -> None:
    """A 20-seat virtual class of the course on the team's clock (kept if it exists)."""
    with contextlib.suppress(AlreadyExists):
        await seeder.wfm.training.create_session(
            session_id=sid,
            session=training_pb.Session(
                course=f"courses/{course}",
                start_time=_stamp(start),
                end_time=_stamp(start + timedelta(minutes=COURSES[course][2])),
                time_zone=team.agent_time_zone,
                trainer="Ravi Menon" if team is PUNE else "Hannah Clarke",
                capacity=20,
                delivery=training_pb.DELIVERY_VIRTUAL,
            ),
            idempotency_key=f"demo-session-{sid}",
        )


async def _session(seeder: Seeder, team: TeamSeed, course: str, *, day: date) -> None:
    training = seeder.wfm.training
    zone = ZoneInfo(team.agent_time_zone)
    start = datetime.combine(day, time(11, 0), zone)
    minutes = COURSES[course][2]
    sid = session_id(course, team)
    await _create_class(seeder, team, course, sid, start)
    seeder.count("sessions")
    agents = seeder.agents[team.team_id][::2]
    await training.enroll_agents(
        session=f"sessions/{sid}",
        agents=[f"agents/{a}" for a in agents],
        idempotency_key=f"demo-enroll-{sid}-{len(agents)}",
    )
    seeder.seeded["enrollments"] = seeder.seeded.get("enrollments", 0) + len(agents)
    await training.start_session(name=f"sessions/{sid}", idempotency_key=f"demo-start-{sid}")
    attended = max(1, len(agents) * 3 // 4)
    for agent in agents[attended:]:  # a class's register has a few absentees
        await training.mark_no_show(
            name=f"sessions/{sid}/enrollments/{agent}", idempotency_key=f"demo-noshow-{sid}-{agent}"
        )
        seeder.count("no-shows")
    for agent in agents[:attended]:
        rng = random.Random(f"{sid}-{agent}")
        score = rng.randint(55, 98)
        with contextlib.suppress(FailedPrecondition):  # recorded by an earlier run
            await training.record_completion(
                name=f"sessions/{sid}/enrollments/{agent}",
                completion=training_pb.Completion(
                    attended_minutes=minutes, score=score, passed=score >= 65
                ),
                idempotency_key=f"demo-complete-{sid}-{agent}",
            )
        seeder.count("completions")


def _stamp(when: datetime) -> Any:
    from google.protobuf.timestamp_pb2 import Timestamp

    stamp = Timestamp()
    stamp.FromDatetime(when.astimezone(UTC))
    return stamp


def day_of_cases(agents: list[str], day_end: datetime) -> list[performance_pb.RecordCasesRequest]:
    """Six to ten cases per agent over the 24 hours before `day_end` (fixed per agent and
    day)."""
    requests = []
    for agent in agents:
        rng = random.Random(f"{agent}-{day_end:%Y%m%d}")
        for number in range(rng.randint(6, 10)):
            resolved = day_end - timedelta(minutes=rng.randint(30, 23 * 60))
            handle = rng.randint(180, 900)
            case = performance_pb.Case(
                agent=f"agents/{agent}",
                channel=rng.choice([1, 1, 1, 2, 3]),  # type: ignore[arg-type]
                open_time=_stamp(resolved - timedelta(seconds=handle + rng.randint(0, 600))),
                resolve_time=_stamp(resolved),
                first_contact_resolution=rng.random() < 0.75,
                sla_met=rng.random() < 0.85,
            )
            case.talk_duration.FromSeconds(handle - 60)
            case.after_contact_duration.FromSeconds(60)
            case.sla_target.FromSeconds(900)
            if rng.random() < 0.5:
                case.csat_score = rng.choice([3, 4, 4, 5, 5])
            case_id = f"demo-{day_end:%Y%m%d}-{agent}-{number}"
            digest = hashlib.sha256(case.SerializeToString(deterministic=True)).hexdigest()[:16]
            requests.append(
                performance_pb.RecordCasesRequest(
                    case_id=case_id, case=case, idempotency_key=f"{case_id}-{digest}"
                )
            )
    return requests


async def seed_cases(seeder: Seeder) -> None:
    everyone = [agent for ids in seeder.agents.values() for agent in ids]
    day_end = datetime.combine(datetime.now(UTC).date(), time(0), UTC)  # fixed for the day
    requests = day_of_cases(everyone, day_end)

    async def stream() -> AsyncIterator[performance_pb.RecordCasesRequest]:
        for request in requests:
            yield request

    reply = await seeder.wfm.performance.record_cases(stream())
    seeder.seeded["cases"] = reply.recorded_count


async def seed_flag_limits(seeder: Seeder) -> None:
    """Each team's red-flag limits, so `wfm flags show` has something to say: what a floor's
    team leaders typically hold agents to (occupancy is left out: the demo's short burst of
    statuses says little about it)."""
    for team in (PUNE, UK):
        thresholds = performance_pb.RedFlagThresholds(
            name=f"teams/{team.team_id}/redFlagThresholds",
            max_absenteeism_percent=8.0,
            min_adherence_percent=85.0,
            min_sla_compliance_percent=80.0,
            max_late_logins=3.0,
            min_csat_average=3.8,
        )
        await seeder.wfm.performance.set_red_flag_thresholds(
            thresholds=thresholds, idempotency_key=f"demo-flags-{team.team_id}"
        )
        seeder.count("red-flag limits")


FLOOR_STEPS = [
    ("scheduling", "sites with public holidays", seed_sites),
    ("scheduling", "shift patterns", seed_patterns),
    ("scheduling", "a published two-week roster", seed_roster),
    ("scheduling", "coverage requirements", seed_coverage),
    ("training", "courses, sessions, enrollments and completions", seed_training),
    ("performance", "a day of cases", seed_cases),
    ("performance", "red-flag limits", seed_flag_limits),
]
