"""The placements file: the shipped one is valid; mistakes fail at start, clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from shelfwise.config import load_settings
from shelfwise.errors import ConfigError, NotFound
from shelfwise.pipeline.assembly import known_sources
from shelfwise.serving.placements import load_placements, parse_placements

MINIMAL = """
placements:
  - name: pdp
    page: product
    requires_item: true
    sources: {content: 1.0}
    fallback: [popular]
    rule_scope: product_page
    objective: {engagement: 3, revenue: 1}
    k: 4
"""


def test_shipped_placements_cover_the_store_pages() -> None:
    p = load_placements(load_settings())
    assert [x.name for x in p] == [
        "home",
        "product_similar",
        "product_bought_with",
        "cart",
        "email",
    ]
    assert p.get("product_similar").requires_item
    assert p.get("cart").objective.normalised() == (0.3, 0.2, 0.5)
    assert p.get("email").batch
    p.check_sources(known_sources())
    assert len(p.version) == 12


def test_override_file_replaces_the_shipped_one(tmp_path: Path) -> None:
    path = tmp_path / "placements.yaml"
    path.write_text(MINIMAL)
    p = load_placements(load_settings(placements_file=path))
    assert [x.name for x in p] == ["pdp"]
    assert p.get("pdp").objective.normalised() == (0.75, 0.25, 0.0)
    assert p.get("pdp").source_names() == ["content", "popular"]


def test_missing_override_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_placements(load_settings(placements_file=tmp_path / "nope.yaml"))
    assert e.value.code == "config_file_missing"


def test_unknown_source_fails_naming_placement_and_source() -> None:
    p = parse_placements(MINIMAL.replace("fallback: [popular]", "fallback: [magic]"), "x.yaml")
    with pytest.raises(ConfigError) as e:
        p.check_sources(known_sources())
    assert e.value.code == "placement_unknown_source"
    assert "placement 'pdp' names unknown source 'magic'" in e.value.message


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (MINIMAL.replace("k: 4", "k: 4\n    colour: red"), "colour"),
        (MINIMAL + MINIMAL.replace("placements:\n", ""), "duplicate placement name(s): pdp"),
        (MINIMAL.replace("{engagement: 3, revenue: 1}", "{engagement: 0}"), "must not all be zero"),
        ("placements: [", "not valid YAML"),
    ],
)
def test_invalid_files_are_clear_errors(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_placements(text, "x.yaml")
    assert needle in e.value.message


def test_unknown_placement_is_not_found() -> None:
    with pytest.raises(NotFound) as e:
        parse_placements(MINIMAL, "x.yaml").get("nope")
    assert e.value.code == "placement_not_found"
