"""Impact preview and rule-file tests, on a fixture whose answer is written out."""

from __future__ import annotations

from pathlib import Path

import pytest

from shelfwise.errors import InvalidInput
from shelfwise.rules import Rulebook, parse_rule
from shelfwise.rules.preview import overlay, preview
from shelfwise.rules.replay import RecordedRequestIn
from shelfwise.rules.rulefile import load_rule_file, run_tests
from tests.unit.rules.catalog import NOW, STORE, snapshot_of

REQUESTS = [
    # 1. viewing the lamp (200.0): candidates with scores
    {
        "placement": "product_page",
        "context_items": ["lamp"],
        "candidates": [
            {"product_id": "vase", "score": 0.5},
            {"product_id": "hook", "score": 0.4},
            {"product_id": "frame", "score": 0.3},
        ],
    },
    # 2. viewing the vase (120.0): the ranker's values are given
    {
        "placement": "product_page",
        "context_items": ["vase"],
        "candidates": [
            {"product_id": "fuse", "score": 0.9, "value": 2.0},
            {"product_id": "lamp", "score": 0.2, "value": 30.0},
        ],
    },
    # 3. the home page, where the draft does not apply
    {"placement": "home", "candidates": ["hook", "lamp"]},
]
DRAFT = [
    {
        "id": "premium-decor-no-parts",
        "type": "pairing",
        "reason": "premium decor pages show no parts or utility items",
        "scope": {"placements": ["product_page"]},
        "context": {"attr": "category", "op": "prefix", "value": "decor/premium"},
        "forbid": {"attr": "tags", "op": "in", "value": ["replacement-part", "utility"]},
    }
]


def test_preview_reports_the_written_out_changes() -> None:
    snap = snapshot_of(STORE)
    before = Rulebook([], snap)
    after = Rulebook(overlay(before.rules, [parse_rule(r) for r in DRAFT]), snap)
    reqs = [RecordedRequestIn.model_validate(r).to_request(snap, NOW) for r in REQUESTS]
    report = preview(before, after, reqs, k=2, ids=snap.ids)
    # 1: [vase, hook] -> [vase, frame]; 2: [fuse, lamp] -> [lamp]; 3: unchanged [hook, lamp].
    assert report.requests == 3
    assert report.slates_changed == 2
    assert report.share_changed == pytest.approx(2 / 3)
    assert [(c.product_id, c.count) for c in report.added_most_often] == [("frame", 1)]
    assert [(c.product_id, c.count) for c in report.removed_most_often] == [
        ("fuse", 1),
        ("hook", 1),
    ]
    # Value = score x price unless the ranker's value is given; bare ids score by
    # position (home: hook 2, lamp 1).
    before_value = (0.5 * 120 + 0.4 * 6) + (2.0 + 30.0) + (2 * 6.0 + 1 * 200.0)
    after_value = (0.5 * 120 + 0.3 * 160) + 30.0 + (2 * 6.0 + 1 * 200.0)
    assert report.expected_revenue_before == pytest.approx(before_value)  # 306.4
    assert report.expected_revenue_after == pytest.approx(after_value)  # 350.0
    assert report.revenue_change == pytest.approx(43.6)


RULE_FILE = """
rules:
  - id: premium-decor-no-parts
    type: pairing
    reason: premium decor pages show no parts or utility items
    scope: {placements: [product_page]}
    context: {attr: category, op: prefix, value: decor/premium}
    forbid: {attr: tags, op: in, value: [replacement-part, utility]}
  - id: upsell
    type: price_relation
    reason: upsell at least 0.8x the viewed price
    scope: {placements: [product_page]}
    min_ratio: 0.8
tests:
  - name: premium lamp page
    request: {placement: product_page, context_items: [lamp], candidates: [hook, frame, vase, rug]}
    expect:
      slate: [frame, rug]
      removed_by: {hook: premium-decor-no-parts, vase: upsell}
  - name: a wrong expectation is reported
    request: {placement: home, candidates: [hook]}
    expect: {excludes: [hook], removed_by: {hook: upsell}}
"""


def test_rule_file_tests_pass_and_fail_with_reasons(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULE_FILE)
    rf = load_rule_file(path)
    outcomes = run_tests(rf.tests, rf.rules, snapshot_of(STORE), NOW)
    assert [(o.name, o.passed) for o in outcomes] == [
        ("premium lamp page", True),
        ("a wrong expectation is reported", False),
    ]
    assert outcomes[1].failures == [
        "hook is in the slate",
        "hook was not removed (expected 'upsell')",
    ]


def test_a_bad_rule_file_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "rules:\n  - {id: x, type: exclude, reason: r, when: {attr: colour, value: red}}\n"
    )
    with pytest.raises(InvalidInput, match="unknown attribute 'colour'"):
        load_rule_file(path)
    with pytest.raises(InvalidInput, match="does not exist"):
        load_rule_file(tmp_path / "missing.yaml")
