from __future__ import annotations

import json
from pathlib import Path

import pytest

from shelfwise.catalog.feed import read_feed
from shelfwise.errors import InvalidInput

CSV = """product_id,title,category_path,brand,price,currency,cost,stock_qty,shipping_sla_days,tags,attr_colour
P1,Linen duvet,bedding/duvets,Softloom,59.00,EUR,25,10,3,premium|bedding,white
P2,Oak side table,decor,Oakmoor,-5,EUR,,3,2,,
P3,,kitchen,Tidy,9.5,EUR,,1,1,,
P4,Spare filter,parts/replacement,Everfix,4.5,ZZZ,1,100,2,replacement-part,
P5,Candle,decor/candles,Gleam,12,EUR,4,0,1,,
P1,Linen duvet cover,bedding/duvets,Softloom,61.00,EUR,25,10,3,premium,white
"""


def test_csv_feed_reports_every_invalid_row_and_keeps_the_rest(tmp_path: Path) -> None:
    f = tmp_path / "feed.csv"
    f.write_text(CSV)
    feed = read_feed(f)
    assert [p.product_id for p in feed.products] == ["P1", "P5"]
    # The later row for P1 wins.
    assert feed.products[0].price == 61.0
    assert feed.products[0].attributes == {"colour": "white"}
    got = {(r.row, r.product_id): [(e.field, e.code) for e in r.errors] for r in feed.rejected}
    assert got == {
        (3, "P2"): [("price", "greater_than")],
        (4, "P3"): [("title", "missing")],
        (5, "P4"): [("currency", "value_error")],
    }
    assert feed.received == 5


def test_jsonl_feed_with_broken_line(tmp_path: Path) -> None:
    f = tmp_path / "feed.jsonl"
    rows = [
        json.dumps({"product_id": "A", "title": "Mug", "price": 8}),
        "{not json",
        json.dumps({"product_id": "B", "title": "Bowl", "price": 9, "extra": 1}),
        "[1, 2]",
    ]
    f.write_text("\n".join(rows) + "\n")
    feed = read_feed(f)
    assert [p.product_id for p in feed.products] == ["A"]
    assert [(r.row, r.errors[0].code) for r in feed.rejected] == [
        (2, "invalid_json"),
        (3, "extra_forbidden"),
        (4, "not_an_object"),
    ]


def test_missing_file_and_header(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as e:
        read_feed(tmp_path / "nope.csv")
    assert e.value.code == "file_not_found"
    f = tmp_path / "bad.csv"
    f.write_text("id,title\n1,x\n")
    with pytest.raises(InvalidInput) as e:
        read_feed(f)
    assert e.value.code == "feed_header_invalid"
