"""The JSON Schema each value type publishes (in the OpenAPI document) admits what its
validator accepts: a value the schema admits is accepted, and (within the schema's
lengths) a value accepted is admitted. The fuzzing in tests/fuzz relies on it."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from shelfwise.api.hotpath import request_of
from shelfwise.api.openapi import state_constraints
from shelfwise.values import (
    MAX_ID_LENGTH,
    TIMESTAMP_PATTERN,
    Id,
    LocalTimestamp,
    PathId,
    Scalar,
    Timestamp,
    path_id_list_schema,
)


def _admits(adapter: TypeAdapter[Any]) -> Any:
    """The type's JSON Schema as the OpenAPI document publishes it."""
    published = state_constraints({"schema": adapter.json_schema()})["schema"]
    return jsonschema_rs.validator_for(published, validate_formats=True).is_valid


def _accepts(adapter: TypeAdapter[Any], value: Any) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


SPACES = st.sampled_from([" ", "\t", "\xa0", "\u2003", "\u3000", "\ufeff", "\x1c", "\x85"])
# A lone surrogate cannot reach the schema (no JSON encoder writes one, jsonschema_rs cannot
# take one): the validator's refusal of it is its own test below.
CHARACTERS = st.characters(exclude_categories=["Cs"])
ID_TEXT = st.lists(st.one_of(CHARACTERS, SPACES), max_size=MAX_ID_LENGTH + 2).map("".join)


@pytest.mark.parametrize("kind", [Id, PathId])
@given(value=ID_TEXT)
def test_an_id_is_accepted_exactly_when_its_schema_admits_it(kind: Any, value: str) -> None:
    adapter = TypeAdapter(kind)
    assert _admits(adapter)(value) == _accepts(adapter, value), repr(value)


@pytest.mark.parametrize("kind", [Id, PathId])
@pytest.mark.parametrize("value", ["\ud800", "ab\udfffcd", "x\udc00"])
def test_an_id_with_a_lone_surrogate_is_refused(kind: Any, value: str) -> None:
    assert not _accepts(TypeAdapter(kind), value)


@pytest.mark.parametrize("pad", [" ", "\u2003", "\n"])
def test_an_id_is_as_long_as_it_is_once_stripped(pad: str) -> None:
    adapter = TypeAdapter(Id)
    padded = pad + "x" * MAX_ID_LENGTH + pad
    assert _admits(adapter)(padded) and _accepts(adapter, padded)
    assert not _admits(adapter)(padded + "x") and not _accepts(adapter, padded + "x")


@pytest.mark.parametrize("value", ["", " ", "\u3000\xa0", " \t "])
def test_an_id_of_spaces_is_refused_by_schema_and_validator(value: str) -> None:
    adapter = TypeAdapter(Id)
    assert not _admits(adapter)(value)
    assert not _accepts(adapter, value)


OFFSETS = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))


@given(st.datetimes(), OFFSETS)
def test_a_timestamp_is_accepted_when_its_schema_admits_it(when: datetime, zone: timezone) -> None:
    text = when.replace(tzinfo=zone).isoformat()
    for kind in (Timestamp, LocalTimestamp):
        adapter = TypeAdapter(kind)
        assert _admits(adapter)(text) == _accepts(adapter, text) == (2000 <= when.year <= 2099)


@given(st.from_regex(TIMESTAMP_PATTERN, fullmatch=True))
def test_what_the_timestamp_pattern_draws_is_accepted_when_it_is_a_date(text: str) -> None:
    adapter = TypeAdapter(Timestamp)
    assert _admits(adapter)(text) == _accepts(adapter, text), text


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("2000-01-01T00:00:00+14:00", True),  # 1999 in UTC, 2000 as written
        ("2099-12-31T23:59:59-12:00", True),
        ("1999-12-31T23:00:00-05:00", False),
        ("2100-01-01T00:00:00Z", False),
    ],
)
def test_a_timestamp_range_is_the_year_as_written(text: str, accepted: bool) -> None:
    adapter = TypeAdapter(Timestamp)
    assert _admits(adapter)(text) == _accepts(adapter, text) == accepted


SCALARS = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=1010),
    st.text(max_size=4).map(lambda t: t + "\x00"),
)


@given(SCALARS)
def test_a_scalar_is_accepted_exactly_when_its_schema_admits_it(value: Any) -> None:
    adapter = TypeAdapter(Scalar)
    assert _admits(adapter)(value) == _accepts(adapter, value), repr(value)


TOKENS = st.one_of(
    st.just(""),
    SPACES,
    st.text(alphabet=st.characters(blacklist_characters=","), max_size=6),
    st.text(alphabet="ab", min_size=127, max_size=130),
)


@given(st.lists(TOKENS, max_size=24).map(",".join))
def test_an_id_list_matches_its_pattern_exactly_when_the_query_reader_takes_it(
    value: str,
) -> None:
    """``item=<value>`` on GET /v1/recommendations: split at commas, stripped, blanks left out."""
    schema = path_id_list_schema(MAX_ID_LENGTH, 20)
    matched = all(re.search(part["pattern"], value) for part in schema["allOf"])
    assert matched == jsonschema_rs.validator_for(schema).is_valid(value)
    try:
        request_of([("placement", "home"), ("item", value)], max_k=100)
    except ValidationError:
        taken = False
    else:
        taken = True
    assert matched == taken, repr(value)
