"""Rule-file tests, on a fixture whose answer is written out (the impact preview is
tested in tests/unit/pipeline/test_preview.py and over served slates end to end)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shelfwise.errors import InvalidInput
from shelfwise.rules.rulefile import load_rule_file, run_tests
from tests.unit.rules.catalog import NOW, STORE, snapshot_of

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


def test_the_example_in_docs_rules_md_holds(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[3] / "docs" / "rules.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "docs.yaml"
    path.write_text(block)
    rf = load_rule_file(path)
    outcomes = run_tests(rf.tests, rf.rules, snapshot_of(STORE), NOW)
    assert [(o.passed, o.failures) for o in outcomes] == [(True, [])]
