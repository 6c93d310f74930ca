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
  dated (as written, in its own offset) from :data:`EARLIEST` to the end of the
  year before :data:`LATEST`: years 2000 to 2099. Compact forms (``20261101``),
  epoch numbers and naive times are refused.
- a **number** is finite (no NaN or Infinity) and never a boolean; integers
  stay within what every store and JSON encoder holds (53 bits).

Each type's JSON Schema (what the OpenAPI document publishes) states the same
rules, so a request the schema admits is one the validators accept: an id's
pattern also says it holds a character that is not a space (the spaces around
it are stripped, and an empty id is refused), a timestamp's pattern says
RFC 3339 in the years 2000 to 2099 (:data:`TIMESTAMP_PATTERN`).

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
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
)
from pydantic_core import PydanticCustomError, core_schema

MAX_ID_LENGTH: Final = 128
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(2100, 1, 1, tzinfo=UTC)
MAX_SAFE_INT: Final = 2**53  # JavaScript's and JSON decoders' exact integers

# C0 and C1 controls, DEL and U+FFFD, in a syntax Rust (pydantic-core), Python and
# ECMAScript (the OpenAPI document's readers) read alike; the Unicode spaces that are
# not controls; and what ``strip_whitespace`` removes (Unicode White_Space: those
# spaces, tab to carriage return and U+0085). The pattern says what an id is before it
# is stripped: spaces around at least one character that is neither a control nor a
# space. A stripped id that is not empty always matches, so the pattern refuses
# nothing the length does not; it tells the schema's readers that an id of spaces is
# empty and that spaces around an id are dropped.
_NOT_ID = "\\x00-\\x1f\\x7f-\\x9f\ufffd"
_SPACES = " \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
_STRIPPED = f"[\\t-\\r\\x85{_SPACES}]*"


def _id_pattern(refused: str) -> str:
    edge = f"[^{refused}{_SPACES}]"
    return f"^{_STRIPPED}{edge}(?:[^{refused}]*{edge})?{_STRIPPED}$"


ID_PATTERN = _id_pattern(_NOT_ID)
PATH_ID_PATTERN = _id_pattern(_NOT_ID + "/")
_REFUSED_BY = {ID_PATTERN: _NOT_ID, PATH_ID_PATTERN: _NOT_ID + "/"}


def stripped_id_pattern(pattern: str, max_length: int) -> str | None:
    """For JSON Schema: an id ``pattern`` that also bounds the id's length once
    stripped. ``maxLength`` counts the spaces around, which the validator strips
    before it counts; None for a pattern that is not an id's."""
    refused = _REFUSED_BY.get(pattern)
    if refused is None:
        return None
    edge = f"[^{refused}{_SPACES}]"
    inner = f"(?:[^{refused}]{{0,{max_length - 2}}}{edge})?" if max_length > 1 else ""
    return f"^{_STRIPPED}{edge}{inner}{_STRIPPED}$"


_TEXT_CHARS = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


# What ``str.strip()`` removes (``str.isspace``): the reader of a comma list strips
# its ids in Python before they are validated.
_PY_SPACES = "\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"


def path_id_list_schema(max_length: int, max_ids: int) -> dict[str, Any]:
    """JSON Schema of at most ``max_ids`` path ids of at most ``max_length`` characters,
    separated by commas; blank entries are allowed and left out (``a,,b`` is ``a``
    and ``b``). Two patterns: one counts the ids, one bounds each (one pattern doing
    both repeats the bound per id, a regex too large to compile quickly)."""
    blank = f"[{_PY_SPACES}]*"
    edge = f"[^{_NOT_ID}/,{_SPACES}]"
    one = f"{blank}{edge}(?:[^{_NOT_ID}/,]*{edge})?{blank}"
    ids = f"{one}(?:,{blank})*(?:,{one}(?:,{blank})*){{0,{max_ids - 1}}}"
    sized = f"{blank}(?:{edge}(?:[^{_NOT_ID}/,]{{0,{max_length - 2}}}{edge})?)?{blank}"
    return {
        "type": "string",
        "allOf": [
            {"pattern": f"^(?:{blank},)*(?:{blank}|{ids})$"},
            {"pattern": f"^{sized}(?:,{sized})*$"},
        ],
    }


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
    # The year as written (in the timestamp's own offset), as the schema's pattern says.
    if not EARLIEST.year <= value.year < LATEST.year:
        raise PydanticCustomError(
            "timestamp_range",
            "a timestamp is dated in the years {first} to {last}",
            {"first": EARLIEST.year, "last": LATEST.year - 1},
        )
    return value


def _timestamp(value: Any, parse: ValidatorFunctionWrapHandler) -> datetime:
    """One Python call per timestamp (events carry one each): the shape of the text,
    pydantic's parse (and, for :data:`Timestamp`, its offset check), then the year."""
    if isinstance(value, str):
        if not _ISO_DATETIME.match(value):
            raise PydanticCustomError("timestamp_format", _FORMAT)
    elif not isinstance(value, datetime):
        raise PydanticCustomError("timestamp_format", _FORMAT)
    return _in_range(parse(value))


# RFC 3339 (JSON Schema's ``date-time``) in the years EARLIEST.year to LATEST.year - 1.
TIMESTAMP_PATTERN = (
    r"^20\d{2}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:[0-5]\d"
    r"(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)
_TIMESTAMP_SCHEMA = {"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}

Timestamp = Annotated[AwareDatetime, WrapValidator(_timestamp), WithJsonSchema(_TIMESTAMP_SCHEMA)]
# A timestamp whose offset may be left out: its owner reads it in a named zone
# (a rule's window). Otherwise as :data:`Timestamp`; the schema publishes the form
# with an offset.
LocalTimestamp = Annotated[
    datetime,
    WrapValidator(_timestamp),
    WithJsonSchema(
        {**_TIMESTAMP_SCHEMA, "description": "the offset may be left out: read in the timezone"}
    ),
]


def not_bool(value: Any) -> Any:
    if value is True or value is False:
        raise PydanticCustomError("bool_not_number", "a number is expected, not true/false")
    return value


# Put bounds *before* NUMBER (``Annotated[float, Field(ge=0), NUMBER]``) where speed
# matters: pydantic then checks them natively instead of in Python after the
# validator (events do; see contracts/events.py).
NUMBER = BeforeValidator(not_bool)
Float = Annotated[float, Field(allow_inf_nan=False), NUMBER]


def _safe_int(value: int) -> int:
    if -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
        return value
    raise PydanticCustomError(
        "number_too_large", "a number is at most {limit} in size", {"limit": MAX_SAFE_INT}
    )


class _SafeInt:
    """An integer within +-2**53 that keeps the bounds of the field using it.

    (A ``Field(ge=..., le=...)`` here would replace the field's own ``Field(ge=1, le=100)``:
    pydantic applies the alias's constraints last.)"""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return core_schema.no_info_after_validator_function(_safe_int, handler(source))

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler) -> Any:
        out = handler(schema)
        out.setdefault("minimum", -MAX_SAFE_INT)
        out.setdefault("maximum", MAX_SAFE_INT)
        return out


Int = Annotated[int, _SafeInt(), NUMBER]
MAX_SCALAR_TEXT: Final = 1000
_TEXT_RE = re.compile(_TEXT_CHARS)


def _scalar(value: Any) -> Any:
    """One error per bad value, whatever it tried to be (a union would report four)."""
    if value is True or value is False:
        return value
    if isinstance(value, int | float):
        # Floats too: JSON tells 1e300 from a 301-digit integer only by its spelling.
        if -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            return value
        if isinstance(value, float) and not math.isfinite(value):
            raise PydanticCustomError("finite_number", "Input should be a finite number")
        raise PydanticCustomError(
            "number_too_large", "a number is at most {limit} in size", {"limit": MAX_SAFE_INT}
        )
    if isinstance(value, str):
        if len(value) <= MAX_SCALAR_TEXT and _TEXT_RE.match(value) and not _SURROGATE.search(value):
            return value
        raise PydanticCustomError(
            "invalid_text",
            "a text value has at most {limit} characters and no control characters",
            {"limit": MAX_SCALAR_TEXT},
        )
    raise PydanticCustomError("scalar_type", "a value is true/false, a number or a text")


_SCALAR_SCHEMA: Final = {
    "anyOf": [
        {"type": "boolean"},
        {"type": "number", "minimum": -MAX_SAFE_INT, "maximum": MAX_SAFE_INT},
        {"type": "string", "maxLength": MAX_SCALAR_TEXT, "pattern": _TEXT_CHARS},
    ]
}
# A value compared with a product attribute or stored as one: true/false, a number
# of at most 2**53 in size or a short text (a boolean stays a boolean, an integer an
# integer).
Scalar = Annotated[
    bool | int | float | str, BeforeValidator(_scalar), WithJsonSchema(_SCALAR_SCHEMA)
]
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
    WithJsonSchema(
        {
            "anyOf": [
                *_SCALAR_SCHEMA["anyOf"],
                {"type": "array", "items": _SCALAR_SCHEMA, "maxItems": MAX_SCALARS},
            ]
        }
    ),
]


def is_clean_id(value: object) -> bool:
    """True for a string an :data:`Id` would accept as it is (to echo raw ids safely)."""
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH and not _UNSAFE.search(value)


_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ufffd\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
