"""The console's pure parts: the "collecting data" verdict of an experiment readout, and the
rule form derived from every rule type (each field round-trips through the form)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shelfwise.access import Principal
from shelfwise.dashboard.panels.experiments import _verdicts, collecting
from shelfwise.dashboard.ruleedit import change, may_write
from shelfwise.dashboard.ruleform import RULE_TYPES, TYPE_FIELDS, form_values, parse_form
from shelfwise.errors import Forbidden, InvalidInput
from shelfwise.experiments.checks import sample_ratio
from shelfwise.experiments.report import Report, progress, readout_status
from shelfwise.experiments.synthetic import START, World
from shelfwise.rules.model import parse_rule, rule_body


def _report(counts: dict[str, int], days: float = 7.0, **spec: Any) -> Report:
    """A readout's verdict parts for two arms of equal share, ``days`` after the start."""
    srm = sample_ratio(counts, {a: 1 / len(counts) for a in counts})
    plan = World(spec_overrides=spec).spec()
    end = START + timedelta(days=days)
    sample = progress(plan, counts, start=START, end=end)
    status = readout_status(srm, sample)
    return Report.model_construct(srm=srm, valid=srm.valid, status=status, sample=sample)


def test_three_against_none_is_collecting_data_not_valid() -> None:
    r = _report({"holdout": 3, "recs": 0})
    assert r.srm.valid and r.srm.status == "not_enough_data"  # nothing detected, no verdict
    early = collecting(r)
    assert early == (
        "collecting data: 3 vs 0 persons of 100 per arm,"
        " no expected date until every arm has enrolled someone"
    )
    validity, srm, words = _verdicts(r, early)
    assert (validity.text, srm.text, words) == ("Collecting data", "Not enough data", early)


def test_the_expected_date_extrapolates_the_enrolment_rate() -> None:
    # 50 and 40 persons in 5 days: 8 a day in the slower arm, 60 more to go -> 7.5 days.
    r = _report({"holdout": 50, "recs": 40}, days=5.0)
    assert collecting(r) == (
        "collecting data: 50 vs 40 persons of 100 per arm, expected by 17 Jan 2026, 12:00 UTC"
    )
    assert r.sample.expected_date == START + timedelta(days=12.5)


@given(st.integers(0, 400), st.integers(0, 400), st.integers(30, 300))
def test_valid_only_once_every_arm_has_the_minimum(a: int, b: int, least: int) -> None:
    r = _report({"holdout": a, "recs": b}, min_persons_per_arm=least)
    validity, srm, _ = _verdicts(r, collecting(r))
    if not r.srm.valid:
        assert (validity.text, srm.text) == ("Invalid", "Mismatch")
        return
    assert srm.text == ("Not enough data" if a + b < 10 else "OK")
    if min(a, b) < least or a + b < 10:
        assert validity.text == "Collecting data"
    else:
        assert validity.text == "Valid"


RULES: list[dict[str, Any]] = [
    {
        "id": "ex",
        "type": "exclude",
        "reason": "r",
        "when": {
            "and": [
                {"attr": "price", "op": "lt", "value": 5},
                {"attr": "brand", "op": "in", "value": ["a", "b"]},
            ]
        },
        "scope": {
            "placements": ["home", "cart"],
            "context_categories": ["toys"],
            "segments": {"tier": ["gold"]},
        },
        "window": {
            "start": "2026-12-01T08:00:00",
            "end": "2026-12-24T18:30:00",
            "timezone": "Europe/Berlin",
        },
        "priority": -3,
        "enabled": False,
    },
    {"id": "st", "type": "require_in_stock", "reason": "r", "min_qty": 0},
    {
        "id": "aware",
        "type": "require_in_stock",
        "reason": "a window stored with an offset",
        "window": {"start": "2026-12-01T08:00:00+00:00", "timezone": "Europe/Berlin"},
    },
    {
        "id": "su",
        "type": "suppress",
        "reason": "r",
        "attribute": "attributes.size",
        "values": ["XL", 42, True],
    },
    {
        "id": "pa",
        "type": "pairing",
        "reason": "r",
        "on": "viewed",
        "context": {"attr": "category", "op": "prefix", "value": "bikes"},
        "allow": {"attr": "category", "op": "prefix", "value": "bikes/parts"},
    },
    {
        "id": "pr",
        "type": "price_relation",
        "reason": "r",
        "anchor": "cart_max",
        "max_ratio": 1.5,
        "applies_to": {"not": {"attr": "tags", "op": "contains", "value": "gift"}},
    },
    {"id": "mf", "type": "margin_floor", "reason": "r", "min_band": "high", "unknown": "remove"},
    {
        "id": "bo",
        "type": "boost",
        "reason": "r",
        "when": {"attr": "stock", "op": "ge", "value": 100},
        "multiply": 2.5,
        "add": 1,
    },
    {
        "id": "bu",
        "type": "bury",
        "reason": "r",
        "when": {"attr": "sla_days", "op": "gt", "value": 7},
        "add": -3,
    },
    {"id": "de", "type": "dedupe_variants", "reason": "r", "include_context": False},
    {"id": "ca", "type": "cap", "reason": "r", "attribute": "category", "max_items": 3, "depth": 2},
    {"id": "pi", "type": "pin", "reason": "r", "product_id": "SKU-1", "position": 4},
]


def test_every_type_has_an_example() -> None:
    assert {r["type"] for r in RULES} == set(RULE_TYPES) == set(TYPE_FIELDS)
    assert len({r["id"] for r in RULES}) == len(RULES)


@pytest.mark.parametrize("data", RULES, ids=[r["id"] for r in RULES])
def test_a_rule_round_trips_through_its_form(data: dict[str, Any]) -> None:
    rule = parse_rule(data)
    values = form_values(rule)
    placements = values.pop("placements").split(",") if values["placements"] else []
    form = {k: v for k, v in values.items() if k != "version"}
    again = parse_form(form, placements)
    assert {**rule_body(again), "window": None} == {**rule_body(rule), "window": None}
    # The window holds the same instants, whatever offset they were written with.
    assert (again.window is None) == (rule.window is None)
    if again.window is not None and rule.window is not None:
        assert again.window.timezone == rule.window.timezone
        assert (again.window.start_utc, again.window.end_utc) == (
            rule.window.start_utc,
            rule.window.end_utc,
        )


def test_a_bad_form_carries_the_api_code_and_field() -> None:
    form = {"type": "boost", "id": "b", "reason": "r", "multiply": "50"}
    with pytest.raises(InvalidInput) as bad:
        parse_form({**form, "when": "{attr: price, op: lt, value: 5}"}, [])
    assert bad.value.code == "invalid_request"
    (detail,) = bad.value.details
    assert detail["field"] == "boost.multiply" and detail["code"] == "less_than_equal"
    with pytest.raises(InvalidInput) as unknown:
        parse_form({"type": "teleport", "id": "c", "reason": "r"}, [])
    assert unknown.value.code == "rule_type_unknown"


def test_only_a_rule_writer_may_change_rules() -> None:
    reader = Principal("auditor", frozenset({"read"}))
    assert not may_write(reader) and not may_write(None)
    assert may_write(Principal("m", frozenset({"merchandiser"})))
    assert may_write(Principal("a", frozenset({"admin"})))
    with pytest.raises(Forbidden) as refused:
        change(None, reader, {"action": "delete", "rule": "x", "version": "1"})  # type: ignore[arg-type]
    assert refused.value.code == "rules_read_only" and refused.value.http_status == 403
