"""Hypothesis strategies for hostile protobuf messages, built from the message descriptors.

`messages(descriptor, dictionary)` fills every field of any message type: strings that are
empty, huge, unicode, control characters, or near-valid values from a dictionary of domain
words (so requests also get past validation and reach the stores); integers at and beyond
their limits; enum numbers that are known and unknown; nested messages; Timestamps and
Durations with extreme seconds and nanos; repeated fields and field masks. Every field may also
be left unset, which is where proto3 presence (`optional`, sub-messages) matters.
"""

from __future__ import annotations

import string
import time
from collections.abc import Sequence
from typing import Any, cast

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

F = FieldDescriptor

# Timestamp limits from google/protobuf/timestamp.proto: 0001-01-01 .. 9999-12-31T23:59:59Z.
MIN_TIMESTAMP_S = -62_135_596_800
MAX_TIMESTAMP_S = 253_402_300_799
NOW_S = int(time.time())
DAY_S = 86_400

_INT_LIMITS = {
    F.TYPE_INT32: (-(2**31), 2**31 - 1),
    F.TYPE_SINT32: (-(2**31), 2**31 - 1),
    F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    F.TYPE_INT64: (-(2**63), 2**63 - 1),
    F.TYPE_SINT64: (-(2**63), 2**63 - 1),
    F.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    F.TYPE_UINT32: (0, 2**32 - 1),
    F.TYPE_FIXED32: (0, 2**32 - 1),
    F.TYPE_UINT64: (0, 2**64 - 1),
    F.TYPE_FIXED64: (0, 2**64 - 1),
}

# Characters that tend to break parsers, logs, regexes ($ matches before a final newline) and
# terminals: C0 controls and DEL, NEL, line/paragraph separators, bidi override, BOM, zero
# width space, the largest code point.
_NASTY_CHARS = ["\x00", "\t", "\n", "\r", "\x1b", "\x7f", "\x85", "\u2028", "\u2029", "\u202e"]
_NASTY_CHARS += ["\ufeff", "\u200b", "\U0010ffff", "é", "😀", "/", "%", "*", " ", "\\", '"']


def hostile_ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    edges = [lo, lo + 1, -1, 0, 1, 2, 50, 999, 1000, 1001, 1800, 1801, 3600, 3601, hi - 1, hi]
    return st.one_of(
        st.sampled_from([e for e in edges if lo <= e <= hi]),
        st.integers(max(lo, -10), min(hi, 5000)),
        st.integers(lo, hi),
    )


def hostile_text(dictionary: Sequence[str]) -> st.SearchStrategy[str]:
    """Strings: arbitrary unicode, control characters, huge, empty, and near-valid words."""
    words = st.sampled_from(list(dictionary) or [""])
    nasty = st.sampled_from(_NASTY_CHARS)
    huge = st.builds(
        lambda unit, n: unit * n,
        st.sampled_from(["A", "a", "7", "/", "[", "é", "😀", "\x00", "agents/"]),
        st.integers(1_000, 60_000),
    )

    def mutate(word: str, at: int, insert: str, drop: int) -> str:
        at = at % (len(word) + 1)
        return word[:at] + insert + word[at + drop :]

    near_valid = st.one_of(
        st.builds(
            mutate, words, st.integers(0, 200), st.text(nasty, max_size=2), st.integers(0, 2)
        ),
        st.builds(lambda w, c: w + c, words, nasty),  # e.g. a trailing newline
        st.builds(str.upper, words),
        st.builds(str.lower, words),
        st.lists(
            st.one_of(words, st.sampled_from(["", "..", "*", "%2F"])), min_size=1, max_size=5
        ).map("/".join),
    )
    return st.one_of(
        st.just(""),
        words,
        words,  # twice: valid-looking values get requests past validation
        near_valid,
        st.text(max_size=40),  # any unicode (protobuf strings are UTF-8: no lone surrogates)
        st.text(st.characters(max_codepoint=0x1F) | nasty, max_size=12),
        st.text(string.printable, max_size=70),
        huge,
    )


def timestamps_seconds() -> st.SearchStrategy[int]:
    return st.one_of(
        st.sampled_from(
            [MIN_TIMESTAMP_S - 1, MIN_TIMESTAMP_S, MAX_TIMESTAMP_S, MAX_TIMESTAMP_S + 1, 0, -1]
        ),
        st.sampled_from([2**31, -(2**31) - 1, 2**63 - 1, -(2**63), 10**12]),
        st.integers(NOW_S - 40 * DAY_S, NOW_S + 40 * DAY_S),  # plausible ranges for history
        st.integers(MIN_TIMESTAMP_S, MAX_TIMESTAMP_S),
        st.integers(-(2**63), 2**63 - 1),
    )


def nanos() -> st.SearchStrategy[int]:
    return st.one_of(
        st.just(0),
        st.sampled_from([-1, 999_999_999, 1_000_000_000, -(2**31), 2**31 - 1]),
        st.integers(0, 999_999_999),
        st.integers(-(2**31), 2**31 - 1),
    )


@st.composite
def _timestamp(draw: st.DrawFn, cls: Any) -> Message:
    message: Message = cls(seconds=draw(timestamps_seconds()), nanos=draw(nanos()))
    return message


@st.composite
def _duration(draw: st.DrawFn, cls: Any) -> Message:
    seconds = draw(st.one_of(hostile_ints(-(2**63), 2**63 - 1), st.integers(-(10**12), 10**12)))
    message: Message = cls(seconds=seconds, nanos=draw(nanos()))
    return message


def _field_names(dictionary: Sequence[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(list(dictionary) or [""]), hostile_text(dictionary))


def scalar(field: FieldDescriptor, dictionary: Sequence[str]) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == F.TYPE_STRING:
        return hostile_text(dictionary)
    if kind == F.TYPE_BYTES:
        return st.binary(max_size=64)
    if kind == F.TYPE_BOOL:
        return st.booleans()
    if kind in (F.TYPE_FLOAT, F.TYPE_DOUBLE):
        return st.floats(width=32 if kind == F.TYPE_FLOAT else 64)
    if kind == F.TYPE_ENUM:
        assert field.enum_type is not None
        known = [v.number for v in field.enum_type.values]
        # proto3 enums are open: any int32 goes on the wire.
        return st.one_of(st.sampled_from(known), hostile_ints(-(2**31), 2**31 - 1))
    lo, hi = _INT_LIMITS[kind]
    return hostile_ints(lo, hi)


def messages(
    descriptor: Descriptor,
    dictionary: Sequence[str] = (),
    *,
    max_depth: int = 4,
    max_repeated: int = 4,
) -> st.SearchStrategy[Message]:
    """Messages of `descriptor`'s type with every field unset or hostile (see the module doc)."""
    return _message(descriptor, tuple(dictionary), max_depth, max_repeated)


def variants(
    template: Message, dictionary: Sequence[str] = (), *, max_repeated: int = 4
) -> st.SearchStrategy[Message]:
    """`template` (a valid request) with some fields, at any depth, cleared or made hostile.

    Fully random messages rarely get past validation; these do, so the hostile values reach
    the stores, the event log and the projections too.
    """
    return _variant(template, tuple(dictionary), max_repeated)


_KEEP, _REPLACE, _CLEAR = "keep", "replace", "clear"


def _variant(
    template: Message, dictionary: tuple[str, ...], max_repeated: int
) -> st.SearchStrategy[Message]:
    descriptor: Descriptor = cast(Descriptor, template.DESCRIPTOR)
    actions = st.sampled_from([_KEEP, _KEEP, _KEEP, _KEEP, _REPLACE, _REPLACE, _CLEAR])

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        message: Message = type(template)()
        message.CopyFrom(template)
        for field in descriptor.fields:
            action = draw(actions)
            nested = (
                field.type == F.TYPE_MESSAGE
                and not field.is_repeated
                and message.HasField(field.name)
            )
            if action == _KEEP and nested:
                inner = draw(_variant(getattr(template, field.name), dictionary, max_repeated))
                getattr(message, field.name).CopyFrom(inner)
            elif action == _CLEAR:
                message.ClearField(field.name)
            elif action == _REPLACE:
                value = draw(_field_value(field, dictionary, 3, max_repeated))
                if value is not None:
                    message.ClearField(field.name)
                    _assign(message, field, value)
        return message

    return build()


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _field_value(
    field: FieldDescriptor, dictionary: tuple[str, ...], depth: int, max_repeated: int
) -> st.SearchStrategy[Any]:
    """A value for `field` (a list for repeated fields); None where the depth runs out."""
    if _is_map(field):
        assert field.message_type is not None
        key = field.message_type.fields_by_name["key"]
        value = field.message_type.fields_by_name["value"]
        if value.type == F.TYPE_MESSAGE:  # no map of messages in these APIs
            return st.none()
        return st.dictionaries(
            scalar(key, dictionary), scalar(value, dictionary), max_size=max_repeated
        )
    if field.type == F.TYPE_MESSAGE:
        assert field.message_type is not None
        if depth <= 0:
            return st.none()
        element = _message(field.message_type, dictionary, depth - 1, max_repeated)
    else:
        element = scalar(field, dictionary)
    if field.is_repeated:
        return st.lists(element, max_size=max_repeated)
    return element


def _assign(message: Message, field: FieldDescriptor, value: Any) -> None:
    target = getattr(message, field.name)
    if _is_map(field):
        target.update(value)
    elif field.is_repeated:
        target.extend(value)
    elif field.type == F.TYPE_MESSAGE:
        target.CopyFrom(value)
    else:
        setattr(message, field.name, value)


def _message(
    descriptor: Descriptor, dictionary: tuple[str, ...], depth: int, max_repeated: int
) -> st.SearchStrategy[Message]:
    cls: Any = message_factory.GetMessageClass(descriptor)  # built at run time: untyped
    if descriptor.full_name == "google.protobuf.Timestamp":
        return _timestamp(cls)
    if descriptor.full_name == "google.protobuf.Duration":
        return _duration(cls)
    if descriptor.full_name == "google.protobuf.FieldMask":
        return st.builds(
            lambda paths: cls(paths=paths), st.lists(_field_names(dictionary), max_size=6)
        )
    fields = [(f, _field_value(f, dictionary, depth, max_repeated)) for f in descriptor.fields]

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        message: Message = cls()
        for field, values in fields:
            if not draw(st.booleans()):
                continue  # unset: proto3 presence and "missing field" paths
            value = draw(values)
            if value is not None:
                _assign(message, field, value)
        return message

    return build()
