"""The console's read-only pages on both backends: the drift page knows the decision
log is there (it says which window lacks slates), every table names a placement
the same way, the overview defines and reconciles its two revenue figures."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from shelfwise.api import create_app
from shelfwise.config import Settings
from shelfwise.dashboard.format import placement_label
from shelfwise.rules.model import parse_rule
from shelfwise.runtime import Runtime
from tests import shop_fixture


@pytest.fixture
def shop(settings: Settings) -> Iterator[tuple[TestClient, Runtime]]:
    settings = settings.model_copy(update={"auth_enabled": False})
    runtime = Runtime.open(settings)
    shop_fixture.fill(runtime)
    try:
        with TestClient(create_app(settings, runtime)) as c:
            yield c, runtime
    finally:
        runtime.close()


def _serve(c: TestClient, n: int) -> None:
    for i in range(n):
        r = c.get("/v1/recommendations", params={"placement": "home", "person": f"p{i}"})
        assert r.status_code == 200, r.text


def test_drift_sees_the_decision_log_and_says_which_window_is_empty(
    shop: tuple[TestClient, Runtime],
) -> None:
    c, _ = shop
    empty = c.get("/dashboard/drift?range=24h").text
    assert "no decision log is attached" not in empty
    assert "holds no served slate in either window" in empty
    _serve(c, 4)
    page = c.get("/dashboard/drift?range=24h").text
    assert "no decision log is attached" not in page
    note = re.search(r'data-testid="decisions-note" data-value="(\d+)"', page)
    assert note and int(note.group(1)) == 4
    assert "4 slates in the current window and none in the 14 days before it" in page
    # The overview's serving health reads the same log.
    overview = c.get("/dashboard?range=24h").text
    assert "Fallback share" in overview and "holds no served slate" not in overview


def test_one_placement_label_everywhere(shop: tuple[TestClient, Runtime]) -> None:
    c, runtime = shop
    assert placement_label("product_similar") == "Product similar"
    assert placement_label("all") == "All placements"
    rule = parse_rule(
        {
            "id": "pp",
            "type": "dedupe_variants",
            "reason": "one colour",
            "scope": {"placements": ["product_page"]},
        }
    )
    runtime.rules.store.save(rule, who="t", why="t")
    rules = c.get("/dashboard/rules").text
    # A rule scope names the placements it covers, by their own labels.
    assert "Product similar + Product bought with" in rules
    assert ">Product page<" not in rules
    _serve(c, 2)
    overview = c.get("/dashboard?range=24h").text
    assert f"<td>{placement_label('home')}</td>" in overview
    categories = c.get("/dashboard/categories?placement=product_similar").text
    assert "<title>Categories: Product similar · shelfwise</title>" in categories


def test_the_two_revenue_figures_are_defined_and_reconciled(
    shop: tuple[TestClient, Runtime],
) -> None:
    c, _ = shop
    page = c.get("/dashboard?range=30d").text
    # One name per figure: the definition's, its window stated; the sessions figure
    # under its own name.
    assert "Attributed revenue" not in page
    assert "Revenue from recommendations <span" in page
    assert 'data-testid="attribution-window">(24 h attribution window)' in page
    assert "Revenue of sessions that interacted with recommendations (descriptive)" in page
    note = re.search(r'data-testid="revenue-reconciliation">(.*?)</p>', page, re.S)
    assert note, page[-3000:]
    text = note.group(1)
    assert "carry a recommendation" in text and "every order line" in text
    assert "clicked in a recommendation within the 24 h attribution window" in text
    total = re.search(r'data-testid="total-revenue" data-value="([^"]+)"', page)
    interacted = re.search(r'data-testid="interacted-revenue" data-value="([^"]+)"', page)
    assert total and interacted
    assert float(interacted.group(1)) >= 0 and float(total.group(1)) >= 0
