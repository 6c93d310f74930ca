"""Invariants of the validation layer (shelfwise.values, shelfwise.documents)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from shelfwise.contracts.checks import UNSTORABLE, json_safe
from shelfwise.documents import MAX_DEPTH, check_shape, load_json, load_yaml, nesting_ok
from shelfwise.errors import InvalidInput, PayloadTooLarge
from shelfwise.values import (
    EARLIEST,
    LATEST,
    MAX_SAFE_INT,
    Float,
    Id,
    Int,
    PathId,
    Scalar,
    Text,
    Timestamp,
    is_clean_id,
)

ID = TypeAdapter(Id)
PATH_ID = TypeAdapter(PathId)
TEXT = TypeAdapter(Text)
TS = TypeAdapter(Timestamp)
FLOAT = TypeAdapter(Float)
INT = TypeAdapter(Int)
SCALAR = TypeAdapter(Scalar)

CONTROL = st.sampled_from(["\x00", "\x01", "\x1b", "\x7f", "\x85", "\x9f"])


def _refused(adapter: TypeAdapter[Any], value: Any) -> str:
    with pytest.raises(ValidationError) as e:
        adapter.validate_python(value)
    return str(e.value.errors()[0]["type"])


@given(st.text(max_size=40), st.text(max_size=40))
def test_any_string_with_a_nul_is_refused_as_id_and_text(a: str, b: str) -> None:
    for adapter in (ID, PATH_ID, TEXT):
        assert _refused(adapter, a + "\x00" + b) in ("string_pattern_mismatch", "string_unicode")


@given(st.text(max_size=20), CONTROL, st.text(max_size=20))
def test_control_characters_are_refused_in_ids(a: str, c: str, b: str) -> None:
    assert _refused(ID, f"x{a}{c}{b}x") in ("string_pattern_mismatch", "string_unicode")


@given(st.text(max_size=20), st.integers(0xD800, 0xDFFF))
def test_lone_surrogates_are_refused(a: str, code: int) -> None:
    value = a + chr(code)
    for adapter in (ID, PATH_ID, TEXT):
        assert _refused(adapter, value) in ("string_unicode", "string_pattern_mismatch")
    assert not is_clean_id(value)
    assert _refused(SCALAR, value) == "invalid_text"


@given(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=128)
)
def test_clean_ids_are_accepted_stripped_and_a_slash_only_outside_paths(value: str) -> None:
    if not value.strip() or "\ufffd" in value:
        return
    assert ID.validate_python(value) == value.strip()
    if "/" in value:
        assert _refused(PATH_ID, value) == "string_pattern_mismatch"
    else:
        assert PATH_ID.validate_python(value) == value.strip()


def test_ids_have_a_length() -> None:
    assert _refused(ID, "x" * 129) == "string_too_long"
    assert _refused(ID, "  ") == "string_too_short"
    assert _refused(ID, "bad\ufffd") == "string_pattern_mismatch"


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_finite_float_round_trips(x: float) -> None:
    assert FLOAT.validate_python(x) == x
    if abs(x) > MAX_SAFE_INT:  # as an integer of the same size (JSON cannot tell them apart)
        assert _refused(SCALAR, x) == "number_too_large"
        return
    assert SCALAR.validate_python(x) == x
    assert orjson.loads(orjson.dumps(SCALAR.validate_python(x))) == x


@given(st.sampled_from([math.nan, math.inf, -math.inf, "nan", "Infinity", "-inf"]))
def test_nan_and_infinity_are_refused(x: Any) -> None:
    assert _refused(FLOAT, x) == "finite_number"


@given(st.booleans())
def test_booleans_are_not_numbers_but_stay_booleans_as_values(b: bool) -> None:
    assert _refused(FLOAT, b) == "bool_not_number"
    assert _refused(INT, b) == "bool_not_number"
    assert SCALAR.validate_python(b) is b


@given(st.integers())
def test_integers_are_exact_or_refused(n: int) -> None:
    if abs(n) <= MAX_SAFE_INT:
        assert INT.validate_python(n) == n
        assert type(SCALAR.validate_python(n)) is int
    else:
        assert _refused(INT, n) == _refused(SCALAR, n) == "number_too_large"


OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@given(
    st.datetimes(
        min_value=EARLIEST.replace(tzinfo=None) + timedelta(days=1),
        max_value=LATEST.replace(tzinfo=None) - timedelta(days=1),
    ),
    OFFSETS,
)
def test_any_aware_datetime_in_range_is_accepted_as_object_and_iso_text(
    when: datetime, zone: timezone
) -> None:
    aware = when.replace(tzinfo=zone)
    assert TS.validate_python(aware) == aware
    assert TS.validate_python(aware.isoformat()) == aware
    assert _refused(TS, when.isoformat()) == "timezone_aware"


@given(st.datetimes(max_value=datetime(1999, 12, 30)), OFFSETS)
def test_timestamps_before_2000_are_refused(when: datetime, zone: timezone) -> None:
    assert _refused(TS, when.replace(tzinfo=zone).isoformat()) == "timestamp_range"


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("20261101", "timestamp_format"),
        ("20261101T120000Z", "timestamp_format"),
        (1790000000, "timestamp_format"),
        (1790000000.0, "timestamp_format"),
        (True, "timestamp_format"),
        ("2026-11-01", "timestamp_format"),
        ("9999-12-31T23:59:59-01:00", "timestamp_range"),
        ("2100-01-01T00:00:00Z", "timestamp_range"),
        ("2026-11-01T12:00:00", "timezone_aware"),
        ("2026-13-01T12:00:00Z", "datetime_from_date_parsing"),
    ],
)
def test_timestamps_are_iso_text_with_an_offset(value: Any, kind: str) -> None:
    assert _refused(TS, value) == kind


def test_a_timestamp_keeps_its_offset() -> None:
    got = TS.validate_python("2026-11-01T12:00:00+01:00")
    assert got.utcoffset() == timedelta(hours=1)
    assert got.astimezone(UTC).hour == 11


def _nested(depth: int) -> Any:
    data: Any = 1
    for i in range(depth):
        data = [data] if i % 2 else {"a": data}
    return data


@given(st.integers(0, 3 * MAX_DEPTH))
def test_nesting_is_bounded_without_recursion(depth: int) -> None:
    data = _nested(depth)
    assert nesting_ok(data) == (depth <= MAX_DEPTH)
    if depth <= MAX_DEPTH:
        assert check_shape(data) is data
        assert load_json(orjson.dumps(data)) == data
    else:
        with pytest.raises(InvalidInput) as e:
            check_shape(data)
        assert e.value.code == "document_too_deep"


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 5000, 100_000])
def test_deep_documents_are_refused_not_recursed(depth: int) -> None:
    for load, text in (
        (load_json, "[" * depth + "]" * depth),
        (load_yaml, "[" * depth + "]" * depth),
        (load_yaml, "{a: " * depth + "1" + "}" * depth),
    ):
        with pytest.raises(InvalidInput) as e:
            load(text)
        assert e.value.code == "document_too_deep"


def test_yaml_alias_bombs_are_refused() -> None:
    bomb = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
    for i, name in enumerate("bcdefgh"):
        prev = "abcdefgh"[i]
        bomb += f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]\n"
    with pytest.raises(PayloadTooLarge) as e:
        load_yaml(bomb)
    assert e.value.code == "document_too_large"


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=12,
    )
)
def test_quarantined_payloads_are_always_storable(raw: Any) -> None:
    safe = json_safe(raw)
    text = orjson.dumps(safe).decode()  # encodes: no lone surrogate, no NaN, no 64-bit overflow
    assert "\\u0000" not in text or UNSTORABLE in safe
    if isinstance(safe, dict) and UNSTORABLE in safe and safe[UNSTORABLE] is not None:
        assert safe[UNSTORABLE].isascii()
