"""AIP-158 page tokens: opaque, tied to the filter they were issued for."""

from __future__ import annotations

import base64
import hashlib
import json

from wfm_runtime.errors import FieldViolation, InvalidArgument

MAX_TOKEN_LENGTH = 1024


def _filter_hash(filter_key: str) -> str:
    return hashlib.sha256(filter_key.encode()).hexdigest()[:12]


def encode(last_key: str, filter_key: str) -> str:
    body = json.dumps({"k": last_key, "f": _filter_hash(filter_key)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode(token: str, filter_key: str, field_path: str = "page_token") -> str:
    """Returns the last key of the previous page ('' for the first page)."""
    if not token:
        return ""
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidArgument([FieldViolation(field_path, "is not a token from this API")])
    try:
        padded = token + "=" * (-len(token) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode()))
        last_key, issued_for = body["k"], body["f"]
        if not isinstance(last_key, str):
            raise TypeError("bad key")
        # JSON can escape a lone surrogate, which no store can encode: not a key we issued.
        last_key.encode()
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise InvalidArgument([FieldViolation(field_path, "is not a token from this API")]) from exc
    if issued_for != _filter_hash(filter_key):
        raise InvalidArgument(
            [FieldViolation(field_path, "was issued for a different filter; start again")]
        )
    return last_key
