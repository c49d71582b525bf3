"""Shared validators for identifiers, resource names, pages and keys."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from wfm_runtime.errors import Violations
from wfm_runtime.timefmt import checked_timestamp

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,128}$")
REASON_CODE_PATTERN = re.compile(r"^[A-Z0-9_]{1,64}$")
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50


def check_id(v: Violations, value: str, field_path: str, what: str = "id") -> bool:
    if not value:
        v.add(field_path, f"{what} is required")
        return False
    return v.check(
        bool(ID_PATTERN.fullmatch(value)),
        field_path,
        f"{what} must be 1-63 characters of letters, digits, '_' or '-', starting with a letter "
        "or digit",
    )


def parse_name(v: Violations, name: str, field_path: str, collection: str, suffix: str = "") -> str:
    """Parses `collection/{id}` (+ optional `/suffix`) and returns the id, or '' on a violation."""
    example = f"{collection}/{{id}}{'/' + suffix if suffix else ''}"
    if not name:
        v.add(field_path, f"is required, in the form {example}")
        return ""
    parts = name.split("/")
    expected_len = 3 if suffix else 2
    if len(parts) != expected_len or parts[0] != collection or (suffix and parts[2] != suffix):
        v.add(field_path, f"must be in the form {example}, got {name[:80]!r}")
        return ""
    if not ID_PATTERN.fullmatch(parts[1]):
        v.add(field_path, "id must be 1-63 characters of letters, digits, '_' or '-'")
        return ""
    return parts[1]


def check_idempotency_key(v: Violations, key: str, field_path: str = "idempotency_key") -> None:
    if not key:
        v.add(field_path, "is required: a unique key per change, reused only to retry it")
    else:
        v.check(
            bool(IDEMPOTENCY_KEY_PATTERN.fullmatch(key)),
            field_path,
            "must be 1-128 printable ASCII characters without spaces",
        )


def check_page_size(v: Violations, page_size: int, field_path: str = "page_size") -> int:
    if page_size < 0:
        v.add(field_path, "must not be negative")
        return DEFAULT_PAGE_SIZE
    if page_size == 0:
        return DEFAULT_PAGE_SIZE
    return min(page_size, MAX_PAGE_SIZE)


_ZONES: frozenset[str] | None = None


def check_time_zone(v: Violations, zone: str, field_path: str) -> bool:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    if zone not in _ZONES or zone in {"localtime", "Factory"} or zone.startswith("posix"):
        v.add(field_path, f"must be an IANA time zone such as Asia/Kolkata, got {zone[:64]!r}")
        return False
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        v.add(field_path, f"unknown time zone {zone[:64]!r}")
        return False
    return True


def optional_instant(v: Violations, request: Any, field_path: str) -> datetime | None:
    """The request's Timestamp field as an instant; None if unset or unreadable (reported)."""
    if not request.HasField(field_path):
        return None
    instant = checked_timestamp(getattr(request, field_path))
    if instant is None:
        v.add(field_path, "is not a valid timestamp (years 1-9999)")
    return instant
