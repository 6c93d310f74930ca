"""The backtest's memo of source fits gives every prefix what a fresh fit gives it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from shelfwise.candidates.config import ContentConfig, FactorsConfig, SourcesConfig
from shelfwise.candidates.log import InteractionLog, Row
from shelfwise.candidates.model import SourceFits, fit_all
from shelfwise.catalog.model import Product

T0 = datetime(2026, 11, 2, tzinfo=UTC)
CONFIG = SourcesConfig(
    factors=FactorsConfig(factors=4, iterations=2), content=ContentConfig(price_bands=2)
)
ITEMS = ("A", "B", "C", "D", "E", "F")
# Every item priced by the catalog but F, whose price is the median paid for it; the
# titles share no word, so within the category the price band makes two items alike.
PRICES = {"A": 1.0, "B": 2.0, "C": 4.0, "D": 40.0, "E": 80.0}
TITLES = {"A": "alder", "B": "birch", "C": "cedar", "D": "damson", "E": "elm", "F": "fir"}
PRODUCTS = [
    Product(product_id=i, title=TITLES[i], category_path="lamps", price=PRICES.get(i))
    for i in ITEMS
]


def _log() -> InteractionLog:
    rows = [
        Row(f"p{n % 4}", item, "purchase", T0 + timedelta(days=n), basket=f"b{n}", price=price)
        for n, (item, price) in enumerate(
            [
                *[("A", 1.0), ("F", 1.5), ("B", 2.0), ("F", 1.5), ("C", 4.0), ("E", 80.0)],
                *[("F", 70.0), ("D", 40.0), ("F", 75.0), ("F", 90.0), ("A", 1.0), ("E", 80.0)],
            ]
        )
    ]
    return InteractionLog.from_rows(rows, items=ITEMS)


def test_a_prefix_fitted_after_another_gets_its_own_content_table() -> None:
    log = _log()
    early, late = log.before((T0 + timedelta(days=5)).timestamp()), log
    assert early.item_prices()[5] == 1.5 and late.item_prices()[5] == 70.0
    fits = SourceFits(PRODUCTS, CONFIG)
    fits(early)
    shared = fits(late).content
    fresh = fit_all(late, PRODUCTS, CONFIG).content
    # F is cheap in the early prefix and dear later: its neighbours move.
    assert fit_all(early, PRODUCTS, CONFIG).content.items[5, 0] in (0, 1)  # A or B
    assert fresh.items[5, 0] in (3, 4)  # D or E
    assert np.array_equal(shared.items, fresh.items)
    assert np.array_equal(shared.scores, fresh.scores)
    assert (fits.misses, fits.hits) == (2, 0)
    assert fits(early) is not None and fits.hits == 1


def test_a_content_table_is_reused_while_the_prices_stay_the_same() -> None:
    log = _log()
    fits = SourceFits(PRODUCTS, CONFIG)
    first = fits(log.before((T0 + timedelta(days=2)).timestamp())).content
    # one more sale of a catalog-priced item: every price is as before
    assert fits(log.before((T0 + timedelta(days=3)).timestamp())).content is first


def test_a_given_content_table_serves_every_prefix() -> None:
    log = _log()
    given = fit_all(log, PRODUCTS, CONFIG).content
    fits = SourceFits(PRODUCTS, CONFIG, content=given)
    assert fits(log.before((T0 + timedelta(days=5)).timestamp())).content is given
