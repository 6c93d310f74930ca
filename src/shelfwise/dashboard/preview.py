"""The impact preview of a draft rule set, as the rules page and the rule editor show it."""

from __future__ import annotations

from shelfwise.dashboard.format import count, money, percent, placement_label
from shelfwise.dashboard.slots import PanelCell, PanelTable
from shelfwise.pipeline.preview import PreviewItem, PreviewReport


def preview_tables(p: PreviewReport, currency: str) -> list[PanelTable]:
    """The impact of a draft as the rules page and the rule editor show it: the
    totals with the money estimate, then by placement, by category, and the items
    removed and added most often (with their pictures)."""
    m = p.money
    skipped = "; ".join(f"{n.slates:,} not replayed: {n.reason}" for n in p.not_replayed)
    notes = [p.method, m.method]
    if m.change is not None:
        notes.append(
            f"Money measured on {m.purchases:,} purchase lines ({m.units:,} units) over"
            f" {m.slates:,} replayed slates."
        )
    if skipped:
        notes.append(skipped + ".")
    if p.comparable:
        notes.append(
            f"Replayed with the live rules, {p.reproduced:,} of {p.comparable:,} slates served"
            " under the live rulebook came out as served."
        )
    change = (
        "no estimate"
        if m.change is None
        else f"{money(m.change, currency)} (95%: {money(m.low, currency)} to {money(m.high, currency)})"
    )
    tables = [
        PanelTable(
            "Impact of the draft",
            ["Slates replayed", "Slates changed", "Share changed", "Estimated revenue change"],
            [
                [
                    count_cell(p.requests, "preview-requests"),
                    count_cell(p.slates_changed, "preview-changed"),
                    PanelCell(
                        percent(p.share_changed, 1), value=p.share_changed, testid="preview-share"
                    ),
                    PanelCell(change, value=m.change, testid="preview-revenue-change"),
                ]
            ],
            note=" ".join(notes),
            testid="preview",
        ),
        PanelTable(
            "By placement",
            [
                "Placement",
                "Slates",
                "Changed",
                "Share changed",
                "Removed most often",
                "Added most often",
            ],
            [
                [
                    placement_label(g.placement),
                    count_cell(g.slates),
                    count_cell(g.slates_changed, f"preview-changed-{g.placement}"),
                    percent(g.share_changed, 1),
                    _names(g.removed),
                    _names(g.added),
                ]
                for g in p.by_placement
            ],
            testid="preview-placements",
        ),
        PanelTable(
            "By category of the items that came or went",
            ["Placement", "Category", "Slates changed", "Removed", "Added"],
            [
                [
                    placement_label(g.placement),
                    g.category or "(none)",
                    count_cell(g.slates_changed),
                    _names(g.removed),
                    _names(g.added),
                ]
                for g in p.by_category
            ],
            testid="preview-categories",
            empty="No slate changes.",
        ),
    ]
    for kind, items in (("removed", p.removed_most_often), ("added", p.added_most_often)):
        tables.append(
            PanelTable(
                f"Items {kind} most often",
                [
                    "Product",
                    "Brand",
                    "Category",
                    "Price",
                    f"Slates {kind} from" if kind == "removed" else "Slates added to",
                ],
                [
                    [
                        PanelCell(
                            i.title, image=i.image_url, testid=f"preview-{kind}-{i.product_id}"
                        ),
                        i.brand or "",
                        i.category or "",
                        money(i.price, currency),
                        count_cell(i.count),
                    ]
                    for i in items
                ],
                testid=f"preview-{kind}",
                empty=f"No item {kind}.",
            )
        )
    return tables


def _names(items: list[PreviewItem]) -> str:
    return ", ".join(f"{i.title} ({i.count})" for i in items[:5]) or "none"


def count_cell(value: int, testid: str | None = None) -> PanelCell:
    return PanelCell(count(value), value=value, testid=testid)
