"""The values every entry accepts: ids, free text, timestamps and numbers.

One set of pydantic types used by every model that takes outside data (events,
products, rules, experiments, API keys, requests, importers), so a value is
refused the same way wherever it enters, with a stable error type the callers
map onto their codes (docs/api.md, docs/events.md):

- an **id** has 1 to 128 characters (surrounding spaces are stripped), no
  control character (NUL included), no lone surrogate and no U+FFFD (what a
  broken decoder leaves). A :data:`PathId` (products, rules, experiments, key
  names, model versions, slate ids) also has no ``/``: it is a path segment of
  the API (``/v1/products/{product_id}``). Shopper and event ids (anonymous,
  customer, device, session, event, order ids) may hold ``/`` (base64 tokens
  do); the routes that take them read the rest of the path.
- **text** (titles, queries, user agents) has no NUL or other control
  character but tab, newline and carriage return, and no lone surrogate.
- a **timestamp** is an ISO 8601 string with a date, a time and an explicit
  offset (``Z`` or ``+01:00``), or an aware ``datetime`` from Python callers,
  between :data:`EARLIEST` and :data:`LATEST`. Compact forms (``20261101``),
  epoch numbers and naive times are refused.
- a **number** is finite (no NaN or Infinity) and never a boolean; integers
  stay within what every store and JSON encoder holds (53 bits).

Error types (``pydantic_core`` ``type``): ``string_pattern_mismatch`` and
``string_unicode`` for ids and text, ``timestamp_format``,
``timezone_aware`` and ``timestamp_range`` for timestamps, ``finite_number``,
``bool_not_number`` and the usual bounds for numbers.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from pydantic import (
    AwareDatetime,
    BeforeValidator,
    Field,
    StringConstraints,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

MAX_ID_LENGTH: Final = 128
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(2100, 1, 1, tzinfo=UTC)
MAX_SAFE_INT: Final = 2**53  # JavaScript's and JSON decoders' exact integers

# C0 and C1 controls, DEL and U+FFFD, in a syntax Rust (pydantic-core), Python and
# ECMAScript (the OpenAPI document's readers) read alike.
ID_PATTERN = "^[^\\x00-\\x1f\\x7f-\\x9f\ufffd]*$"
PATH_ID_PATTERN = "^[^\\x00-\\x1f\\x7f-\\x9f\ufffd/]*$"
_TEXT_CHARS = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"

Id = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=MAX_ID_LENGTH, strip_whitespace=True, pattern=ID_PATTERN
    ),
]
PathId = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=MAX_ID_LENGTH, strip_whitespace=True, pattern=PATH_ID_PATTERN
    ),
]


# Free text; give its length with ``Field(max_length=...)`` where it is used.
Text = Annotated[str, StringConstraints(pattern=_TEXT_CHARS)]


# An ISO 8601 date and time; the offset is checked by pydantic (timezone_aware).
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
_FORMAT = (
    "a timestamp is an ISO 8601 string with a date, a time and an offset, e.g. 2026-11-01T12:00:00Z"
)


def _in_range(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise PydanticCustomError(
            "timestamp_range",
            "a timestamp lies between {earliest} and {latest}",
            {"earliest": EARLIEST.isoformat(), "latest": LATEST.isoformat()},
        )
    return value


def _checked_time(value: Any, parse: ValidatorFunctionWrapHandler, aware: bool) -> datetime:
    """One Python call per timestamp (events carry one each): the shape of the text,
    pydantic's parse (and its offset check), then the range, compared only near its
    ends (a comparison of aware datetimes costs microseconds)."""
    if isinstance(value, str):
        if not _ISO_DATETIME.match(value):
            raise PydanticCustomError("timestamp_format", _FORMAT)
        parsed: datetime = parse(value)
        if "2001" <= value[:4] <= "2098":
            return parsed
    elif isinstance(value, datetime):
        parsed = parse(value)
    else:
        raise PydanticCustomError("timestamp_format", _FORMAT)
    if aware:
        _in_range(parsed)
    else:  # a wall-clock time lies in range in some zone when it does in UTC
        _in_range(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
    return parsed


def _timestamp(value: Any, parse: ValidatorFunctionWrapHandler) -> datetime:
    return _checked_time(value, parse, aware=True)


def _local_timestamp(value: Any, parse: ValidatorFunctionWrapHandler) -> datetime:
    return _checked_time(value, parse, aware=False)


Timestamp = Annotated[AwareDatetime, WrapValidator(_timestamp)]
# A timestamp whose offset may be left out: its owner reads it in a named zone
# (a rule's window). Otherwise as :data:`Timestamp`.
LocalTimestamp = Annotated[datetime, WrapValidator(_local_timestamp)]


def not_bool(value: Any) -> Any:
    if value is True or value is False:
        raise PydanticCustomError("bool_not_number", "a number is expected, not true/false")
    return value


# Put bounds *before* NUMBER (``Annotated[float, Field(ge=0), NUMBER]``) where speed
# matters: pydantic then checks them natively instead of in Python after the
# validator (events do; see contracts/events.py).
NUMBER = BeforeValidator(not_bool)
Float = Annotated[float, Field(allow_inf_nan=False), NUMBER]
Int = Annotated[int, Field(ge=-MAX_SAFE_INT, le=MAX_SAFE_INT), NUMBER]
MAX_SCALAR_TEXT: Final = 1000
_TEXT_RE = re.compile(_TEXT_CHARS)


def _scalar(value: Any) -> Any:
    """One error per bad value, whatever it tried to be (a union would report four)."""
    if value is True or value is False:
        return value
    if isinstance(value, int):
        if -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            return value
        raise PydanticCustomError(
            "number_too_large", "an integer is at most {limit} in size", {"limit": MAX_SAFE_INT}
        )
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise PydanticCustomError("finite_number", "Input should be a finite number")
    if isinstance(value, str):
        if len(value) <= MAX_SCALAR_TEXT and _TEXT_RE.match(value) and not _SURROGATE.search(value):
            return value
        raise PydanticCustomError(
            "invalid_text",
            "a text value has at most {limit} characters and no control characters",
            {"limit": MAX_SCALAR_TEXT},
        )
    raise PydanticCustomError("scalar_type", "a value is true/false, a number or a text")


# A value compared with a product attribute or stored as one: true/false, a finite
# number or a short text (a boolean stays a boolean, an integer an integer).
Scalar = Annotated[bool | int | float | str, BeforeValidator(_scalar)]
MAX_SCALARS: Final = 1000


def _scalar_or_list(value: Any) -> Any:
    if not isinstance(value, list | tuple):
        return _scalar(value)
    if len(value) > MAX_SCALARS:
        raise PydanticCustomError("too_long", "a list has at most {n} values", {"n": MAX_SCALARS})
    return tuple(_scalar(v) for v in value)


# One value or a list of them (``in``/``not_in`` comparisons).
ScalarOrList = Annotated[
    bool | int | float | str | tuple[bool | int | float | str, ...],
    BeforeValidator(_scalar_or_list),
]


def is_clean_id(value: object) -> bool:
    """True for a string an :data:`Id` would accept as it is (to echo raw ids safely)."""
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH and not _UNSAFE.search(value)


_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ufffd\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
