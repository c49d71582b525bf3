"""What schedulers type for sites, shift patterns and teams, read into API messages (and back
into the same words for tables): weekdays `mon-fri` or `mon,wed,sat`, operating hours
`mon-sun 08:00-23:00`, activities `2h:15` or `240:30:paid`, holidays `2026-12-25=Christmas`.

Pure: the parsers raise ValueError saying what was expected; the commands turn it into a
command-line error that names the option.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

from wfm.scheduling.v1 import directory_service_pb2 as directory_pb
from wfm.scheduling.v1 import roster_service_pb2 as roster_pb

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY_MINUTES = 24 * 60
ACTIVITY_KINDS = {
    "break": roster_pb.ACTIVITY_KIND_BREAK,
    "lunch": roster_pb.ACTIVITY_KIND_LUNCH,
    "meeting": roster_pb.ACTIVITY_KIND_MEETING,
    "training": roster_pb.ACTIVITY_KIND_TRAINING,
}
UNPAID_BY_DEFAULT = frozenset({"lunch"})  # breaks, meetings and training are working time


# --- weekdays ------------------------------------------------------------------------------
def _weekday(word: str) -> int:
    word = word.strip().lower()
    for number, (short, full) in enumerate(zip(WEEKDAYS, _FULL_NAMES, strict=True), start=1):
        if word in (short, full):
            return number
    raise ValueError(f"{word!r} is not a weekday (mon, tue, wed, thu, fri, sat, sun)")


def parse_weekdays(text: str) -> list[int]:
    """`mon-fri`, `mon,wed,sat`, `mon-wed,sat` or `thu-mon` (a range may run over the weekend)
    -> ISO weekdays (1 = Monday), sorted, each once."""
    days: set[int] = set()
    for item in text.replace(" ", "").split(","):
        first, dash, last = item.partition("-")
        start = _weekday(first)
        end = _weekday(last) if dash else start
        days.update((start - 1 + step) % 7 + 1 for step in range((end - start) % 7 + 1))
    return sorted(days)


def weekday_words(days: Iterable[int]) -> str:
    """ISO weekdays -> `mon-fri`, `mon,wed,sat`, `mon,fri-sun` (runs of days as ranges)."""
    runs: list[list[int]] = []
    for day in sorted(set(days)):
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ",".join(
        WEEKDAYS[run[0] - 1] if len(run) == 1 else f"{WEEKDAYS[run[0] - 1]}-{WEEKDAYS[run[-1] - 1]}"
        for run in runs
    )


# --- clock times and durations -------------------------------------------------------------
def parse_clock(text: str, *, end_of_day: bool = False) -> int:
    """`HH:MM` -> minutes after midnight; `24:00` only where it can mean the end of the day."""
    found = re.fullmatch(r"(\d{1,2}):([0-5]\d)", text.strip())
    minute = int(found[1]) * 60 + int(found[2]) if found else -1
    last = DAY_MINUTES if end_of_day else DAY_MINUTES - 1
    if not 0 <= minute <= last:
        latest = "24:00" if end_of_day else "23:59"
        raise ValueError(f"a time HH:MM from 00:00 to {latest}, got {text!r}")
    return minute


def clock_words(minute: int) -> str:
    """Minutes after midnight -> `HH:MM` (`24:00` for the end of the day)."""
    hours, minutes = divmod(minute, 60)
    return f"{hours:02d}:{minutes:02d}"


def parse_duration(text: str) -> int:
    """`90`, `90m`, `2h`, `2h30` or `2h30m` -> minutes (a bare number is minutes)."""
    found = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m?)?", text.strip().lower())
    if not found or not (found[1] or found[2]):
        raise ValueError(f"minutes (90) or hours and minutes (1h30), got {text!r}")
    return int(found[1] or 0) * 60 + int(found[2] or 0)


def duration_words(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    return f"{hours}h{rest:02d}" if hours else f"{rest}m"


# --- operating hours -----------------------------------------------------------------------
def parse_opening(text: str) -> list[directory_pb.OperatingWindow]:
    """`mon-fri 08:00-17:00` -> one window per weekday, on the client's clock. An end at or
    before the start runs past midnight (`mon-fri 18:30-03:30` is open 9 hours from 18:30);
    `24:00` is the end of the day."""
    days, _, hours = text.strip().rpartition(" ")
    opens, dash, closes = hours.partition("-")
    if not days.strip() or not dash:
        raise ValueError(f"weekdays and hours like 'mon-fri 08:00-17:00', got {text!r}")
    start = parse_clock(opens)
    end = parse_clock(closes, end_of_day=True)
    length = (end - start) % DAY_MINUTES or DAY_MINUTES  # the same time: open round the clock
    return [
        directory_pb.OperatingWindow(
            iso_weekday=day, open_local_time=clock_words(start), length_minutes=length
        )
        for day in parse_weekdays(days)
    ]


def parse_operating_hours(values: Iterable[str]) -> list[directory_pb.OperatingWindow]:
    """Every `--open` value together: a week's windows by weekday, at most one per day (the
    service keeps one window a day, so a second one for a day would be a typing mistake)."""
    by_day: dict[int, directory_pb.OperatingWindow] = {}
    for value in values:
        for window in parse_opening(value):
            if window.iso_weekday in by_day:
                day = WEEKDAYS[window.iso_weekday - 1]
                raise ValueError(f"{day} is given twice (one opening a day), in {value!r}")
            by_day[window.iso_weekday] = window
    return [by_day[day] for day in sorted(by_day)]


def opening_words(windows: Iterable[directory_pb.OperatingWindow]) -> list[str]:
    """Windows -> `mon-fri 08:00-17:00`, `sat 10:00-14:00`: the days sharing hours together,
    in the syntax `parse_opening` reads."""
    days_by_hours: dict[tuple[str, int], list[int]] = {}
    for window in windows:
        key = (window.open_local_time, window.length_minutes)
        days_by_hours.setdefault(key, []).append(window.iso_weekday)
    lines = []
    for (opens, length), days in sorted(days_by_hours.items(), key=lambda item: min(item[1])):
        start = parse_clock(opens)
        end = start + length if start + length <= DAY_MINUTES else start + length - DAY_MINUTES
        lines.append(f"{weekday_words(days)} {opens}-{clock_words(end)}")
    return lines


# --- activities ----------------------------------------------------------------------------
def parse_activity(kind: str, text: str) -> roster_pb.Activity:
    """`OFFSET:LENGTH[:paid|:unpaid]` -> an activity of `kind` that starts OFFSET after the
    shift's start (`120`, `2h`, `4h30`) and lasts LENGTH (`15`, `30m`, `1h`); lunch is unpaid
    unless told, the others paid."""
    parts = text.strip().lower().split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("paid", "unpaid")):
        raise ValueError(f"OFFSET:LENGTH[:paid|:unpaid] like 2h:15 or 240:30:paid, got {text!r}")
    paid = parts[2] == "paid" if len(parts) == 3 else kind not in UNPAID_BY_DEFAULT
    return roster_pb.Activity(
        kind=ACTIVITY_KINDS[kind],
        offset_minutes=parse_duration(parts[0]),
        length_minutes=parse_duration(parts[1]),
        paid=paid,
    )


def activity_words(activity: roster_pb.Activity, shift_start: str) -> str:
    """`lunch 12:00-12:30 unpaid (+4h00)`: on the clock of a shift starting at `shift_start`,
    so an offset typed as a clock time shows at once."""
    kind = roster_pb.ActivityKind.Name(activity.kind).removeprefix("ACTIVITY_KIND_").lower()
    begins = parse_clock(shift_start) + activity.offset_minutes
    ends = begins + activity.length_minutes
    return (
        f"{kind} {clock_words(begins % DAY_MINUTES)}-{clock_words(ends % DAY_MINUTES)} "
        f"{'paid' if activity.paid else 'unpaid'} (+{duration_words(activity.offset_minutes)})"
    )


# --- public holidays -----------------------------------------------------------------------
def parse_holiday(text: str) -> roster_pb.PublicHoliday:
    """`2026-12-25=Christmas Day` (also `2026-12-25,Christmas Day` or `2026-12-25 Christmas
    Day`, as pasted from a list), or just the date."""
    day, *name = re.split(r"\s*[=,]\s*|\s+", text.strip(), maxsplit=1)
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
        raise ValueError(f"a date YYYY-MM-DD[=Name], got {text!r}")
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        raise ValueError(f"no such date: {day}") from None
    return roster_pb.PublicHoliday(date=parsed.isoformat(), display_name="".join(name).strip())


def holidays_of_year(entries: Iterable[str], year: int) -> list[roster_pb.PublicHoliday]:
    """The holidays of `entries`, which must all fall in `year`, each date once."""
    found: dict[str, roster_pb.PublicHoliday] = {}
    for entry in entries:
        holiday = parse_holiday(entry)
        if not holiday.date.startswith(f"{year:04d}-"):
            raise ValueError(f"{holiday.date} is not in {year}")
        if holiday.date in found:
            raise ValueError(f"{holiday.date} is given twice")
        found[holiday.date] = holiday
    return [found[day] for day in sorted(found)]


def holiday_lines(text: str) -> list[str]:
    """The entries of a holidays file: one a line; blank lines and `#` comments skipped."""
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]
