"""The rules' impact preview: logged slates replayed through the served pipeline with
the live rulebook and with a draft, compared.

Each logged request runs through the pipeline that served it (``pipeline/replay.py``:
the logged candidates, the bundle's ranker as served, the arrangement) twice: with
the live rulebook and with the draft saved over it. A slate *changed* when its items
or their order differ. The report says how many slates changed per placement and per
category of the items that came or went (with their titles and images), what the
change is worth as an estimate with its method and a 95% interval, and which logged
slates could not be replayed and why.

Money is estimated, never read off ranker scores: each placement's rate of units
bought by position is measured on the replayed slates themselves (purchase lines
carrying the slate's rec_id, bought at the position it was shown, with their
quantities), and a slate is worth the sum over its positions of that rate times the
item's current price. The interval comes from the purchase rates' binomial
uncertainty (Agresti-Coull), scaled by the placement's units per purchase line; it
leaves out that a different item at a position may sell at another rate (measured
against the simulator's truth in ``benchmarks/preview.py``).

Of the store's definition of revenue from recommendations
(``shelfwise.monitoring.attribution``) the estimate uses route 1 only, the lines
carrying the slate's rec_id: a line credited to a click within the attribution
window (route 2) is left out, so the rates rest on fewer purchases than the
overview's figure and read low by that share; the method text says so.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as with_fields
from datetime import datetime
from typing import Protocol

import numpy as np
from pydantic import BaseModel

from shelfwise.catalog import CatalogSnapshot
from shelfwise.contracts.reconcile import canonical
from shelfwise.errors import InvalidInput
from shelfwise.pipeline.replay import LoggedRequest, Replayer, logged_request
from shelfwise.rules.model import Rule
from shelfwise.rules.preview import overlay
from shelfwise.rules.replay import RecordedRequestIn
from shelfwise.rules.rulebook import Rulebook
from shelfwise.serving.decisions import Decision
from shelfwise.serving.placements import Placement, Placements

Z95 = 1.959964
MONEY_METHOD = (
    "Units bought per slate by position on each placement, measured on the replayed"
    " slates (purchase lines carrying the slate's rec_id, at the position shown),"
    " times the item's current price; 95% interval from the purchase rates' binomial"
    " uncertainty (Agresti-Coull). It assumes an item sells at the rate of the"
    " position it is shown at, whatever the item. It counts only the lines carrying"
    " the slate's rec_id, not those the overview's revenue from recommendations also"
    " credits to a click within the attribution window: it rests on fewer purchases."
)
NO_MONEY = "No purchase carries the rec_id of a replayed slate: no money estimate."


class PreviewItem(BaseModel):
    """A product the draft adds to or removes from slates, as the shopper sees it."""

    product_id: str
    title: str
    image_url: str | None
    brand: str | None
    category: str | None
    price: float | None
    count: int  # slates it was added to (removed from)


class PreviewGroup(BaseModel):
    """Slates of one placement (and, by category, those whose change touched it)."""

    placement: str
    category: str | None = None
    slates: int
    slates_changed: int
    share_changed: float
    removed: list[PreviewItem]
    added: list[PreviewItem]


class MoneyEstimate(BaseModel):
    currency: str
    method: str
    slates: int  # slates the rates are measured on
    purchases: int  # purchase lines carrying their rec_ids, at a shown position
    units: int  # units bought on those lines
    before: float | None  # None: no purchase to measure a rate on
    after: float | None
    change: float | None
    low: float | None  # 95% interval of the change
    high: float | None


class NotReplayed(BaseModel):
    reason: str
    slates: int


class PreviewReport(BaseModel):
    method: str
    requests: int  # slates replayed
    slates_changed: int
    share_changed: float
    added_most_often: list[PreviewItem]
    removed_most_often: list[PreviewItem]
    by_placement: list[PreviewGroup]
    by_category: list[PreviewGroup]
    money: MoneyEstimate
    not_replayed: list[NotReplayed]
    # Replays with the live rulebook that give back the served slate, of those served
    # with the live rulebook's version (what the replay's fidelity is checked on).
    reproduced: int
    comparable: int


METHOD = (
    "Each logged slate is replayed through the pipeline that served it (its logged"
    " candidates, the model bundle's ranker as served, the same rules and arrangement)"
    " with the live rulebook and with the draft; a slate changed when its items or"
    " their order differ."
)


class DecisionSource(Protocol):
    """Where the served slates to replay are kept (``serving.DecisionLog`` is one)."""

    def flush_quietly(self) -> None: ...

    def recent(
        self, *, placement: str | None = None, since: datetime | None = None, limit: int = 1000
    ) -> list[Decision]: ...


@dataclass
class _Tally:
    slates: int = 0
    changed: int = 0
    added: Counter[int] = field(default_factory=Counter)
    removed: Counter[int] = field(default_factory=Counter)


@dataclass
class PositionMoney:
    """Per placement: slates, purchases and units by position, price sums by position."""

    slates: int = 0
    bought: Counter[int] = field(default_factory=Counter)  # position (0-based) -> purchases
    units: Counter[int] = field(default_factory=Counter)  # position -> units bought
    before: dict[int, float] = field(
        default_factory=lambda: defaultdict(float)
    )  # position -> prices
    after: dict[int, float] = field(default_factory=lambda: defaultdict(float))


def top_category(path: str | None) -> str:
    return path.split("/")[0] if path else "(none)"


def compare(
    requests: Sequence[LoggedRequest],
    replayer: Replayer,
    live: Rulebook,
    draft: Rulebook,
    *,
    purchases: Mapping[str, Mapping[str, int]],  # rec_id -> canonical product id -> units
    currency: str,
    top: int = 10,
    not_replayed: Mapping[str, int] | None = None,
) -> PreviewReport:
    """Replay ``requests`` under ``live`` and ``draft`` and report the difference."""
    snapshot = replayer.snapshot
    price = np.nan_to_num(snapshot.price)
    skipped: Counter[str] = Counter(not_replayed or {})
    places: dict[str, _Tally] = defaultdict(_Tally)
    cats: dict[tuple[str, str], _Tally] = defaultdict(_Tally)
    total = _Tally()
    money: dict[str, PositionMoney] = defaultdict(PositionMoney)
    reproduced = comparable = 0
    for req in requests:
        got = replayer.replay(req, {"live": live, "draft": draft})
        if isinstance(got, str):
            skipped[got] += 1
            continue
        a = [s.item for s in got["live"].items]
        b = [s.item for s in got["draft"].items]
        if req.rulebook_version == str(live.version) and req.served:
            comparable += 1
            reproduced += tuple(s.product_id for s in got["live"].items) == req.served
        name = req.placement.name
        changed = a != b
        gone, came = set(a) - set(b), set(b) - set(a)
        for tally in (total, places[name]):
            tally.slates += 1
            tally.changed += changed
            tally.removed.update(gone)
            tally.added.update(came)
        touched: dict[str, tuple[set[int], set[int]]] = {}
        for i in gone | came:
            cat = top_category(snapshot.products[i].category_path)
            g, c = touched.setdefault(cat, (set(), set()))
            (g if i in gone else c).add(i)
        for cat, (g, c) in touched.items():
            t = cats[(name, cat)]
            t.slates += 1
            t.changed += 1
            t.removed.update(g)
            t.added.update(c)
        m = money[name]
        m.slates += 1
        bought = purchases.get(req.rec_id, {})  # by canonical product id
        for pos, pid in enumerate(req.served):
            units = bought.get(canonical(pid), 0)
            m.bought[pos] += units > 0
            m.units[pos] += units
        for pos, i in enumerate(a):
            m.before[pos] += float(price[i])
        for pos, i in enumerate(b):
            m.after[pos] += float(price[i])

    def items(counter: Counter[int]) -> list[PreviewItem]:
        return shown_items(snapshot, counter, top)

    def group(name: str, t: _Tally, category: str | None = None) -> PreviewGroup:
        return PreviewGroup(
            placement=name,
            category=category,
            slates=t.slates,
            slates_changed=t.changed,
            share_changed=t.changed / t.slates if t.slates else 0.0,
            removed=items(t.removed),
            added=items(t.added),
        )

    ordered_cats = sorted(cats.items(), key=lambda kv: (kv[0][0], -kv[1].changed, kv[0][1]))
    return PreviewReport(
        method=METHOD,
        requests=total.slates,
        slates_changed=total.changed,
        share_changed=total.changed / total.slates if total.slates else 0.0,
        added_most_often=items(total.added),
        removed_most_often=items(total.removed),
        by_placement=[group(n, t) for n, t in sorted(places.items())],
        by_category=[group(n, t, c) for (n, c), t in ordered_cats],
        money=estimate(money.values(), currency),
        not_replayed=[NotReplayed(reason=r, slates=n) for r, n in sorted(skipped.items())],
        reproduced=reproduced,
        comparable=comparable,
    )


def shown_items(snapshot: CatalogSnapshot, counter: Counter[int], top: int) -> list[PreviewItem]:
    ids = snapshot.ids
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], ids[kv[0]]))[:top]
    out = []
    for i, n in ranked:
        p = snapshot.products[i]
        out.append(
            PreviewItem(
                product_id=p.product_id,
                title=p.title,
                image_url=p.image_url,
                brand=p.brand,
                category=p.category_path,
                price=p.price,
                count=n,
            )
        )
    return out


def estimate(placements: Iterable[PositionMoney], currency: str) -> MoneyEstimate:
    """Expected revenue before and after: per placement and position, the measured
    purchase rate times the summed prices shown there (see the module's docstring)."""
    before = after = change = var = 0.0
    slates = bought = units = 0
    for m in placements:
        n = m.slates
        lines = sum(m.bought.values())
        slates += n
        bought += lines
        units += sum(m.units.values())
        per_line = sum(m.units.values()) / lines if lines else 1.0
        for pos in set(m.before) | set(m.after):
            x = m.bought.get(pos, 0)
            rate = m.units.get(pos, 0) / n
            adjusted = (x + 2) / (n + 4)
            delta = m.after.get(pos, 0.0) - m.before.get(pos, 0.0)
            before += rate * m.before.get(pos, 0.0)
            after += rate * m.after.get(pos, 0.0)
            change += rate * delta
            var += (per_line * delta) ** 2 * adjusted * (1 - adjusted) / (n + 4)
    if not bought:
        return MoneyEstimate(
            currency=currency,
            method=NO_MONEY,
            slates=slates,
            purchases=0,
            units=0,
            before=None,
            after=None,
            change=None,
            low=None,
            high=None,
        )
    half = Z95 * math.sqrt(var)
    return MoneyEstimate(
        currency=currency,
        method=MONEY_METHOD,
        slates=slates,
        purchases=bought,
        units=units,
        before=round(before, 2),
        after=round(after, 2),
        change=round(change, 2),
        low=round(change - half, 2),
        high=round(change + half, 2),
    )


def given_request(r: RecordedRequestIn, replayer: Replayer, now: datetime, n: int) -> LoggedRequest:
    """A request given with the preview (not logged): replayed through the pipeline
    serving now (the loaded bundle and its ranker), with the given candidates."""
    placement = _placement(replayer.placements, r.placement)
    if placement is None:
        known = sorted(
            {p.name for p in replayer.placements} | {p.rule_scope for p in replayer.placements}
        )
        raise InvalidInput(
            f"unknown placement {r.placement!r}; known: {', '.join(known)}",
            code="placement_unknown",
        )
    snapshot = replayer.snapshot
    request = r.to_request(snapshot, now)
    view = replayer.current
    learned = view is not None and replayer.learned.of(view, placement.ranker) is not None
    ctx = request.ctx
    # Left out as serving leaves them out: the viewed items, the cart, what the person owns.
    owned = view.owned(ctx.person_id).tolist() if view is not None and ctx.person_id else []
    return LoggedRequest(
        rec_id=f"given-{n}",
        placement=placement,
        ctx=with_fields(
            ctx,
            placement=placement.name,
            exclude=frozenset((*ctx.context_items, *ctx.cart_items, *owned)),
        ),
        items=request.items,
        scores=request.scores,
        seed=n,
        model_version=view.version if view is not None else None,
        ranker="learned" if learned else "blend",
        degraded=view is None,
        served=(),
        rulebook_version=None,
        k=placement.k,
    )


def _placement(placements: Placements, name: str) -> Placement | None:
    """A placement by name, or the first one whose rules scope is ``name``."""
    if name in placements:
        return placements.get(name)
    return next((p for p in placements if p.rule_scope == name), None)


def preview_draft(
    rules: Sequence[Rule],
    *,
    live: Callable[[], Rulebook],
    replayer: Replayer,
    decisions: DecisionSource,
    purchases: Callable[[Iterable[str]], Mapping[str, Mapping[str, int]]],
    clock: Callable[[], datetime],
    currency: str,
    requests: Sequence[RecordedRequestIn] | None = None,
    last: int = 500,
    placement: str | None = None,
    k: int | None = None,
    replace: bool = False,
    top: int = 10,
) -> PreviewReport:
    """What ``POST /v1/rules/preview``, the dashboard and ``shelfwise rules preview``
    run: replay ``requests`` (default: the last ``last`` served slates of the decision
    log, or of one placement) with the ``live`` rulebook and with ``rules`` saved over
    it (or replacing it). ``k``: replay at this slate size instead of the served one."""
    snapshot = replayer.snapshot
    snapshot.refresh()
    current = live()
    draft_rules = list(rules) if replace else overlay(current.rules, rules)
    draft = Rulebook(draft_rules, snapshot, masks=current.masks)
    skipped: Counter[str] = Counter()
    logged: list[LoggedRequest] = []
    if requests is None:
        decisions.flush_quietly()
        for d in decisions.recent(placement=placement, limit=last):
            got = logged_request(d, snapshot, replayer.placements)
            if isinstance(got, str):
                skipped[got] += 1
            else:
                logged.append(got)
    else:
        now = clock()
        logged = [given_request(r, replayer, now, n) for n, r in enumerate(requests)]
    if k is not None:
        logged = [_with_k(r, k) for r in logged]
    if not logged and not skipped:
        raise InvalidInput("no recorded requests to replay", code="preview_no_requests")
    bought = purchases(r.rec_id for r in logged) if requests is None else {}
    return compare(
        logged,
        replayer,
        current,
        draft,
        purchases=bought,
        currency=currency,
        top=top,
        not_replayed=skipped,
    )


def _with_k(r: LoggedRequest, k: int) -> LoggedRequest:
    return with_fields(r, k=k, served=r.served if k == r.k else ())
