"""Merchant Center (text and XML) and Shopify feeds: mapping, detection, per-line rejections."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shelfwise.catalog.feed import detect_format, read_feed
from shelfwise.catalog.rows import CellError, parse_money
from shelfwise.catalog.shopify import html_to_text
from shelfwise.errors import InvalidInput

FEEDS = Path(__file__).parent.parent / "fixtures" / "feeds"


def _rejections(feed: object) -> dict[int, list[tuple[str, str]]]:
    return {r.row: [(e.field, e.code) for e in r.errors] for r in feed.rejected}  # type: ignore[attr-defined]


def test_merchant_center_text_feed() -> None:
    feed = read_feed(FEEDS / "merchant_center.tsv")
    by_id = {p.product_id: p for p in feed.products}
    assert list(by_id) == ["DUV-200-W", "DUV-200-G", "PIL-50", "MUG-1", "BOARD-6"]
    white = by_id["DUV-200-W"]
    assert (white.price, white.currency, white.availability) == (89.0, "EUR", "in_stock")
    assert white.category_path == "home/bedding/duvet covers"
    assert white.variant_group == "DUV-200" == by_id["DUV-200-G"].variant_group
    assert white.image_url == "https://shop.example/i/duv-200-w.jpg"
    # The fastest service: express, 0 days handling + 1 day transit.
    assert white.shipping_sla_days == 1
    assert white.attributes == {
        "sale_price": 69.0,
        "link": "https://shop.example/p/duv-200-w",
        "google_product_category": "569",
        "condition": "new",
        "color": "white",
    }
    assert by_id["DUV-200-G"].availability == "out_of_stock"
    assert by_id["DUV-200-G"].shipping_sla_days == 4
    assert by_id["PIL-50"].availability == "preorder"
    assert by_id["PIL-50"].brand == "Softloom"
    assert by_id["MUG-1"].availability == "preorder"  # backorder
    assert by_id["MUG-1"].shipping_sla_days is None  # the service gives no transit time
    assert by_id["BOARD-6"].price == 45.0  # a bare amount is in the store's currency
    assert by_id["BOARD-6"].shipping_sla_days == 4
    assert _rejections(feed) == {
        6: [("price", "currency_mismatch")],
        7: [("price", "price_invalid")],
        8: [("product_id", "missing")],
        9: [("availability", "availability_invalid")],
        10: [("sale_price", "sale_price_not_lower")],
        11: [("shipping", "shipping_invalid")],
        12: [("title", "missing")],
    }
    assert feed.rejected[0].product_id == "LAMP-3"
    assert "the store prices in EUR" in feed.rejected[0].errors[0].message


def test_merchant_center_text_feed_in_the_stores_currency() -> None:
    feed = read_feed(FEEDS / "merchant_center.tsv", currency="USD")
    # BOARD-6's bare amount is in whatever the store prices in.
    assert [p.product_id for p in feed.products] == ["LAMP-3", "BOARD-6"]
    assert {p.currency for p in feed.products} == {"USD"}


def _item_lines(path: Path) -> list[int]:
    lines = path.read_text().splitlines()
    return [n for n, line in enumerate(lines, start=1) if line.strip() == "<item>"]


def test_merchant_center_xml_feed() -> None:
    path = FEEDS / "merchant_center.xml"
    feed = read_feed(path)
    by_id = {p.product_id: p for p in feed.products}
    assert list(by_id) == ["DUV-200-W", "DUV-200-G", "MUG-1"]
    white = by_id["DUV-200-W"]
    assert white.description == "Stonewashed linen & cotton piping."
    assert white.shipping_sla_days == 1  # express: 0 + 1, standard: 1 (top level) + 3
    assert white.attributes["sale_price"] == 69.0
    # RSS's own title and link stand in for g:title and g:link.
    assert by_id["DUV-200-G"].title == "Linen duvet cover 200x200 grey"
    assert by_id["DUV-200-G"].attributes == {"link": "https://shop.example/p/duv-200-g"}
    assert by_id["MUG-1"].category_path == "home & garden/kitchen & dining/tableware"
    lamp, rug, candle = _item_lines(path)[2], _item_lines(path)[4], _item_lines(path)[5]
    assert _rejections(feed) == {
        lamp: [("price", "currency_mismatch")],
        rug: [("availability", "availability_invalid"), ("price", "price_invalid")],
        candle: [("title", "missing")],
    }


def test_shopify_product_csv() -> None:
    feed = read_feed(FEEDS / "shopify_products.csv")
    by_id = {p.product_id: p for p in feed.products}
    assert list(by_id) == [
        "DUV-200-W",
        "DUV-200-G",
        "DUV-240-G",
        "stoneware-mug",
        "THR-1",
        "CAN-OLD",
    ]
    white = by_id["DUV-200-W"]
    assert white.title == "Linen duvet cover - White / 200x200"
    assert white.description == "Stonewashed linen. 200x200 cm Made in Portugal"
    assert (white.brand, white.category_path) == ("Softloom", "bedding/duvet covers")
    assert white.tags == ("linen", "bedding", "premium")
    assert (white.price, white.cost, white.margin_band) == (89.0, 38.0, "high")
    assert (white.stock_qty, white.availability) == (12, "in_stock")
    assert white.variant_group == "linen-duvet-cover"
    assert white.image_url == "https://cdn.shop.example/duv-white.jpg"
    assert white.attributes == {
        "Colour": "White",
        "Size": "200x200",
        "compare_at_price": 99.0,
        "barcode": "4006381333931",
    }
    grey = by_id["DUV-200-G"]
    assert (grey.stock_qty, grey.availability) == (0, "preorder")  # policy: continue
    assert grey.image_url == "https://cdn.shop.example/duv-grey.jpg"
    oversold = by_id["DUV-240-G"]
    assert (oversold.stock_qty, oversold.availability) == (0, "out_of_stock")
    assert oversold.image_url == "https://cdn.shop.example/duv-white.jpg"  # the product's first
    mug = by_id["stoneware-mug"]
    assert (mug.title, mug.description, mug.brand) == (
        "Stoneware mug",
        "Hand-glazed & dishwasher safe.",
        "Gleam",
    )
    assert mug.attributes == {}
    assert (by_id["THR-1"].active, by_id["CAN-OLD"].active, white.active) == (False, False, True)
    assert _rejections(feed) == {
        # Line 2's quoted Body (HTML) spans lines 2 and 3.
        8: [("Variant Price", "price_invalid")],
        9: [("Variant Inventory Qty", "count_invalid")],
        12: [("Status", "status_invalid")],
        13: [("Status", "status_invalid")],  # its product row (line 12) is bad
        14: [("Title", "product_row_missing")],
        15: [("Handle", "handle_missing")],
    }
    assert [r.product_id for r in feed.rejected] == [
        "LAMP-3",
        "RUG-9",
        "VASE-S",
        "VASE-L",
        "BOARD-L",
        "TRAY-5",
    ]


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("merchant_center.tsv", "gmc-tsv"),
        ("merchant_center.xml", "gmc-xml"),
        ("shopify_products.csv", "shopify"),
    ],
)
def test_format_is_read_from_the_content(tmp_path: Path, name: str, fmt: str) -> None:
    # The suffix says nothing: the header or the namespace does.
    copy = tmp_path / "feed.txt"
    copy.write_bytes((FEEDS / name).read_bytes())
    assert detect_format(copy, copy.read_text()[:8192]) == fmt
    assert len(read_feed(copy).products) == len(read_feed(FEEDS / name).products)


def test_explicit_format_overrides_detection() -> None:
    with pytest.raises(InvalidInput) as e:
        read_feed(FEEDS / "shopify_products.csv", "gmc-tsv")
    assert e.value.code == "feed_header_invalid"
    with pytest.raises(InvalidInput) as e:
        read_feed(FEEDS / "shopify_products.csv", "tsv")
    assert e.value.code == "feed_format_unknown"


def test_xml_without_google_namespace_and_with_a_doctype(tmp_path: Path) -> None:
    plain = tmp_path / "feed.xml"
    plain.write_text("<rss><channel><item><id>1</id></item></channel></rss>")
    with pytest.raises(InvalidInput) as e:
        read_feed(plain)
    assert e.value.code == "feed_format_unknown"
    bomb = tmp_path / "bomb.xml"
    bomb.write_text(
        '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaa">]>'
        '<rss xmlns:g="http://base.google.com/ns/1.0"><channel><item>'
        "<g:id>&a;</g:id></item></channel></rss>"
    )
    with pytest.raises(InvalidInput) as e:
        read_feed(bomb)
    assert e.value.code == "feed_xml_invalid"
    broken = tmp_path / "broken.xml"
    broken.write_text('<rss xmlns:g="http://base.google.com/ns/1.0"><item><g:id>1</item>')
    with pytest.raises(InvalidInput) as e:
        read_feed(broken)
    assert e.value.code == "feed_xml_invalid"


@given(
    cents=st.integers(min_value=1, max_value=10**10),
    currency=st.sampled_from(["EUR", "USD", "GBP"]),
    store=st.sampled_from(["EUR", "USD", "GBP"]),
)
def test_money_round_trip_or_mismatch(cents: int, currency: str, store: str) -> None:
    text = f"{cents // 100}.{cents % 100:02d} {currency}"
    if currency == store:
        assert parse_money("price", text, store) == cents / 100
    else:
        with pytest.raises(CellError) as e:
            parse_money("price", text, store)
        assert e.value.error.code == "currency_mismatch"


_TITLE = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=40
).filter(lambda t: t.strip() and "\t" not in t)


@given(
    rows=st.lists(
        st.tuples(st.integers(1, 10**6), _TITLE, st.integers(1, 10**6)),
        min_size=1,
        max_size=20,
        unique_by=lambda r: r[0],
    )
)
def test_merchant_text_round_trip(
    rows: list[tuple[int, str, int]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("gmc") / "feed.tsv"
    lines = ["id\ttitle\tprice"] + [f"SKU-{i}\t{t}\t{c / 100:.2f} EUR" for i, t, c in rows]
    path.write_text("\n".join(lines) + "\n")
    feed = read_feed(path)
    assert feed.rejected == []
    assert [(p.product_id, p.title, p.price) for p in feed.products] == [
        (f"SKU-{i}", " ".join(t.split()), round(c / 100, 2)) for i, t, c in rows
    ]


@given(st.text(max_size=200))
def test_html_to_text_leaves_no_tags(html: str) -> None:
    text = html_to_text(f"<p>{html}</p><br>")
    assert "<p>" not in text
    assert text == text.strip()


_HANDLE = st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True)


@given(
    products=st.dictionaries(
        _HANDLE,
        st.lists(st.integers(1, 10**5), min_size=1, max_size=4, unique=True),
        min_size=1,
        max_size=6,
    ),
    images=st.integers(0, 2),
)
def test_shopify_every_variant_line_is_one_product(
    products: dict[str, list[int]], images: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("shopify") / "products.csv"
    rows = ["Handle,Title,Option1 Name,Option1 Value,Variant SKU,Variant Price,Image Src"]
    for handle, cents in products.items():
        for n, c in enumerate(cents):
            title = f"{handle} title" if n == 0 else ""
            rows.append(f"{handle},{title},Size,S{n},{handle}-{n},{c / 100:.2f},")
        rows += [f"{handle},,,,,,https://cdn.example/{handle}-{i}.jpg" for i in range(images)]
    path.write_text("\n".join(rows) + "\n")
    feed = read_feed(path)
    assert feed.rejected == []
    got = {(p.product_id, p.variant_group, p.price, p.image_url) for p in feed.products}
    first_image = {h: f"https://cdn.example/{h}-0.jpg" if images else None for h in products}
    assert got == {
        (f"{h}-{n}", h, round(c / 100, 2), first_image[h])
        for h, cents in products.items()
        for n, c in enumerate(cents)
    }


def test_every_bad_cell_of_a_row_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "products.csv"
    path.write_text(
        "Handle,Title,Variant SKU,Variant Price,Cost per item,"
        "Variant Inventory Tracker,Variant Inventory Qty\n"
        "mug,Mug,MUG-1,free,-3,shopify,lots\n"
    )
    feed = read_feed(path)
    assert _rejections(feed) == {
        2: [
            ("Variant Price", "price_invalid"),
            ("Cost per item", "price_invalid"),
            ("Variant Inventory Qty", "count_invalid"),
        ]
    }
