"""The console's pure parts: the "too early" verdict of an experiment readout, and the
rule form derived from every rule type (each field round-trips through the form)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shelfwise.access import Principal
from shelfwise.dashboard.panels.experiments import _verdicts, too_early
from shelfwise.dashboard.ruleedit import change, may_write
from shelfwise.dashboard.ruleform import RULE_TYPES, TYPE_FIELDS, form_values, parse_form
from shelfwise.errors import Forbidden, InvalidInput
from shelfwise.experiments.checks import sample_ratio
from shelfwise.experiments.report import Report
from shelfwise.experiments.stats import MIN_N
from shelfwise.rules.model import parse_rule, rule_body


def _report(counts: dict[str, int]) -> Report:
    srm = sample_ratio(counts, {a: 1 / len(counts) for a in counts})
    return Report.model_construct(srm=srm, valid=srm.valid)


def test_three_against_none_is_too_early_not_valid() -> None:
    r = _report({"control": 3, "treatment": 0})
    assert r.srm.valid  # chi-square sees nothing wrong in three persons...
    early = too_early(r)
    assert early == f"too early: 3 vs 0 persons, need at least {MIN_N} in each arm"
    validity, srm, words = _verdicts(r, early)
    assert (validity.text, srm.text, words) == ("Too early", "Too early", early)


@given(st.integers(0, 200), st.integers(0, 200))
def test_valid_only_once_every_arm_has_enough(a: int, b: int) -> None:
    r = _report({"control": a, "treatment": b})
    validity, srm, _ = _verdicts(r, too_early(r))
    if not r.srm.valid:
        assert (validity.text, srm.text) == ("Invalid", "Mismatch")
    elif min(a, b) < MIN_N:
        assert (validity.text, srm.text) == ("Too early", "Too early")
    else:
        assert (validity.text, srm.text) == ("Valid", "OK")


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
