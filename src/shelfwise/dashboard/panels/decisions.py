"""Why was this shown: one served slate from the decision log — its items with
scores and reasons, the candidates each source proposed, what the rules did."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from shelfwise.dashboard import charts
from shelfwise.dashboard.format import label, money, placement_label, when
from shelfwise.dashboard.slots import (
    Cell,
    Panel,
    PanelAction,
    PanelCell,
    PanelField,
    PanelForm,
    PanelTable,
    SlotParams,
)
from shelfwise.serving.decisions import Decision

if TYPE_CHECKING:
    from shelfwise.runtime import Runtime


def decisions_panel(runtime: Runtime, params: SlotParams) -> Panel:
    rec_id = (params.query.get("rec_id") or "").strip()
    form = PanelForm(
        [
            PanelField(
                "rec_id",
                "Recommendation id (rec_id)",
                rec_id,
                placeholder="from a slate or an event",
            )
        ],
        submit="Explain",
    )
    runtime.decisions.flush_quietly()
    if not rec_id:
        return _recent(runtime, params, form)
    found = runtime.decisions.get(rec_id)
    if found is None:
        return Panel(
            "Why was this shown",
            error=f"No served slate with rec_id {rec_id!r} (it may be older than the log keeps).",
            forms=[form],
            ranged=False,
        )
    known = {
        p.product_id: p
        for p in runtime.catalog.get_many(str(i.get("product_id")) for i in found.items)
    }
    titled = [
        {"title": known[pid].title, "category": known[pid].category_path, **it}
        if (pid := str(it.get("product_id"))) in known
        else it
        for it in found.items
    ]
    return _explain(found, titled, form, runtime.settings.currency, params.query)


def _recent(runtime: Runtime, params: SlotParams, form: PanelForm) -> Panel:
    rows: list[list[Cell]] = [
        [
            PanelCell(d.rec_id, href="?" + urlencode({"rec_id": d.rec_id})),
            when(d.served_at),
            placement_label(d.placement),
            str(len(d.items)),
            d.person_id or "anonymous",
            f"{d.experiment_id} / {d.arm}" if d.experiment_id else "",
        ]
        for d in runtime.decisions.recent(since=params.start, limit=25)
        if d.served_at < params.end
    ]
    return Panel(
        "Why was this shown",
        summary="Enter the rec_id of a served slate, or pick one of the latest.",
        forms=[form],
        tables=[
            PanelTable(
                "Latest served slates",
                ["rec_id", "Served", "Placement", "Items", "Person", "Experiment / arm"],
                rows,
                testid="recent",
                empty="No slate served in this time range.",
            )
        ],
    )


def _reasons(item: dict[str, Any]) -> str:
    texts = [r.get("text") or r.get("kind", "") for r in item.get("reasons") or []]
    return "; ".join(t for t in texts if t) or "—"


def _owned(products: list[str], shown: int = 10) -> str:
    """The shopper's one-off past purchases the request left out, for the note."""
    if not products:
        return ""
    more = f" and {len(products) - shown} more" if len(products) > shown else ""
    return (
        " Left out because the shopper owns them (bought before; this store's shoppers "
        f"rarely buy them again): {', '.join(products[:shown])}{more}."
    )


def _explain(
    d: Decision,
    shown: list[dict[str, Any]],
    form: PanelForm,
    currency: str,
    query: Mapping[str, str],
) -> Panel:
    """``shown``: the logged items with the catalog's title and category where known;
    ``query``'s ``rule`` and ``items_offset``: which rule decision's items to list."""
    trace = d.trace or {}
    facts: list[list[Cell]] = [
        [
            PanelCell(when(d.served_at), testid="served-at"),
            PanelCell(placement_label(d.placement), value=d.placement, testid="placement"),
            d.mode.title(),
            d.person_id or "anonymous",
            d.session_id or "",
            f"{d.experiment_id} / {d.arm}" if d.experiment_id else "none",
            d.model_version or "none",
            d.rulebook_version or "none",
        ]
    ]
    items: list[list[Cell]] = [
        [
            str(it.get("position", i + 1)),
            PanelCell(str(it.get("product_id")), testid=f"item-{i}"),
            str(it.get("title") or ""),
            label(str(it.get("category") or "")),
            money(it.get("price"), it.get("currency") or currency),
            PanelCell(
                f"{float(it.get('score', 0.0)):.4f}", value=it.get("score"), testid=f"score-{i}"
            ),
            _reasons(it) + (" (exploration)" if it.get("explored") else ""),
        ]
        for i, it in enumerate(shown)
    ]
    candidates: dict[str, int] = trace.get("candidates") or {}
    decided: list[dict[str, Any]] = trace.get("rules") or []
    rules: list[list[Cell]] = [
        [
            str(r.get("rule")),
            label(str(r.get("action", ""))),
            PanelCell(
                f"{r.get('count', 0):,}",
                href="?" + urlencode({"rec_id": d.rec_id, "rule": n}),
                value=r.get("count"),
                testid=f"rule-count-{n}",
            ),
            ", ".join(str(x) for x in r.get("items") or [])[:120],
            str(r.get("reason", "")),
        ]
        for n, r in enumerate(decided)
    ]
    tables = [
        PanelTable(
            "The slate",
            [
                "Served",
                "Placement",
                "Mode",
                "Person",
                "Session",
                "Experiment / arm",
                "Model",
                "Rulebook",
            ],
            facts,
            testid="facts",
        ),
        PanelTable(
            "Items and why each was shown",
            ["Position", "Product", "Title", "Category", "Price", "Score", "Reasons"],
            items,
            testid="items",
        ),
        PanelTable(
            "Candidates proposed, by source",
            ["Source", "Candidates"],
            [
                [label(k), PanelCell(f"{v:,}", value=v, testid=f"source-{k}")]
                for k, v in candidates.items()
            ],
            note="Fallback used: "
            + (", ".join(trace.get("fallback_used") or []) or "none")
            + "."
            + _owned(trace.get("owned") or []),
            testid="candidates",
            empty="No trace kept for this slate (trace sampling).",
        ),
        PanelTable(
            "What the rules did",
            ["Rule", "Action", "Items", "Examples", "Why"],
            rules,
            note="Each rule's item count links to the list of every item it named.",
            testid="rules-applied",
            empty="No rule changed this slate." if trace else "No trace kept for this slate.",
        ),
    ]
    listed, links, error = _rule_items(d.rec_id, decided, query)
    tables += listed
    stages = trace.get("stages_ms") or {}
    figures = [
        charts.bar_dict(title, list(values), list(values.values()), axis, colour)
        for title, values, axis, colour in (
            ("Candidates by source", candidates, "candidates", "#2f6f5e"),
            ("Time per stage", stages, "milliseconds", "#9bb8ae"),
        )
        if values
    ]
    return Panel(
        f"Why was {d.rec_id} shown",
        summary=f"{len(d.items)} items served on {placement_label(d.placement)} at {when(d.served_at)}.",
        forms=[form],
        tables=tables,
        figures=figures,
        links=links,
        error=error,
        ranged=False,
    )


RULE_ITEMS_PER_PAGE = 100


def _rule_items(
    rec_id: str, decided: list[dict[str, Any]], query: Mapping[str, str]
) -> tuple[list[PanelTable], list[PanelAction], str]:
    """The page of one rule decision's items that ``query`` asks for (``rule``: its
    position in the trace, ``items_offset``: the first item), with links to the pages
    before and after it; an error text for a paging value that names nothing."""
    if "rule" not in query:
        return [], [], ""
    try:
        n, offset = int(query["rule"]), int(query.get("items_offset") or 0)
    except ValueError:
        return [], [], "The rule and items_offset of the list must be whole numbers."
    if not 0 <= n < len(decided) or offset < 0:
        return [], [], f"This slate has no rule decision {n} or no item {offset} in it."
    r = decided[n]
    items = [str(x) for x in r.get("items") or []]
    page = items[offset : offset + RULE_ITEMS_PER_PAGE]
    links = [
        PanelAction(
            text,
            "?" + urlencode({"rec_id": rec_id, "rule": n, "items_offset": at}),
            testid=f"rule-items-{testid}",
        )
        for text, at, testid, shown in (
            ("Previous items", max(0, offset - RULE_ITEMS_PER_PAGE), "previous", offset > 0),
            (
                "Next items",
                offset + RULE_ITEMS_PER_PAGE,
                "next",
                offset + RULE_ITEMS_PER_PAGE < len(items),
            ),
        )
        if shown
    ]
    first = offset + 1 if page else 0
    table = PanelTable(
        f"Items {r.get('rule')} {r.get('action')}: {first:,} to {offset + len(page):,} of "
        f"{len(items):,}",
        ["#", "Product"],
        [
            [str(offset + i + 1), PanelCell(pid, testid=f"rule-item-{offset + i}")]
            for i, pid in enumerate(page)
        ],
        note=f"The rule counted {r.get('count', len(items)):,} items.",
        testid="rule-items",
        empty="No item on this page.",
    )
    return [table], links, ""
