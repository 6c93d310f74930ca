"""Impact preview: replay recorded requests with and without a draft rule set.

Pure: the same rulebooks and requests give the same report. A slate "changed"
when its items or their order differ. The expected revenue of a slate is the
sum of its items' values: the ranker's value when the request carries one,
otherwise the candidate's score x its price; a pinned item that was not a
candidate counts 0 (its value is unknown).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel

from shelfwise.candidates.base import FloatArray, IntArray
from shelfwise.catalog import CatalogSnapshot
from shelfwise.errors import InvalidInput
from shelfwise.rules.model import Rule
from shelfwise.rules.replay import RecordedRequest, RecordedRequestIn, serve
from shelfwise.rules.rulebook import Rulebook


class ItemCount(BaseModel):
    product_id: str
    count: int


class PreviewReport(BaseModel):
    requests: int
    slates_changed: int
    share_changed: float
    added_most_often: list[ItemCount]
    removed_most_often: list[ItemCount]
    expected_revenue_before: float
    expected_revenue_after: float
    revenue_change: float


def overlay(current: Sequence[Rule], draft: Sequence[Rule]) -> list[Rule]:
    """The rulebook as it would be with ``draft`` saved (same id replaces, new id adds)."""
    ids = {r.id for r in draft}
    return [r for r in current if r.id not in ids] + list(draft)


def slate_value(request: RecordedRequest, slate: IntArray, price: FloatArray) -> float:
    if request.values is not None:
        value = request.values
    else:
        value = request.scores * np.nan_to_num(price[request.items])
    lookup = dict(zip(request.items.tolist(), value.tolist(), strict=True))
    return float(sum(lookup.get(i, 0.0) for i in slate.tolist()))


def preview(
    before: Rulebook,
    after: Rulebook,
    requests: Sequence[RecordedRequest],
    *,
    k: int,
    ids: Sequence[str],
    top: int = 10,
) -> PreviewReport:
    added: Counter[int] = Counter()
    removed: Counter[int] = Counter()
    changed = 0
    rev_before = rev_after = 0.0
    price = before.snapshot.price
    for req in requests:
        a = serve(before, req, k).items
        b = serve(after, req, k).items
        if not np.array_equal(a, b):
            changed += 1
        sa, sb = set(a.tolist()), set(b.tolist())
        added.update(sb - sa)
        removed.update(sa - sb)
        rev_before += slate_value(req, a, price)
        rev_after += slate_value(req, b, price)

    def most(counter: Counter[int]) -> list[ItemCount]:
        ranked = sorted(counter.items(), key=lambda kv: (-kv[1], ids[kv[0]]))
        return [ItemCount(product_id=ids[i], count=c) for i, c in ranked[:top]]

    n = len(requests)
    return PreviewReport(
        requests=n,
        slates_changed=changed,
        share_changed=changed / n if n else 0.0,
        added_most_often=most(added),
        removed_most_often=most(removed),
        expected_revenue_before=round(rev_before, 6),
        expected_revenue_after=round(rev_after, 6),
        revenue_change=round(rev_after - rev_before, 6),
    )


class RecordedSlates(Protocol):
    """Where the served slates to replay are kept (``serving.DecisionLog`` is one)."""

    def flush_quietly(self) -> None: ...

    def recorded_requests(
        self, *, placement: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]: ...


def preview_draft(
    rules: Sequence[Rule],
    *,
    live: Callable[[], Rulebook],
    snapshot: CatalogSnapshot,
    clock: Callable[[], datetime],
    slates: RecordedSlates,
    requests: Sequence[RecordedRequestIn] | None = None,
    last: int = 500,
    placement: str | None = None,
    k: int = 10,
    replace: bool = False,
    top: int = 10,
) -> PreviewReport:
    """What ``POST /v1/rules/preview`` and the dashboard's rules page run: replay
    ``requests`` (default: the last ``last`` served slates of the decision log)
    with the ``live`` rulebook and with ``rules`` saved over it (or replacing it)."""
    snapshot.refresh()
    current = live()
    draft_rules = list(rules) if replace else overlay(current.rules, rules)
    draft = Rulebook(draft_rules, snapshot, masks=current.masks)
    now = clock()
    if requests is None:
        slates.flush_quietly()
        requests = [
            RecordedRequestIn.model_validate(r)
            for r in slates.recorded_requests(placement=placement, limit=last)
        ]
    if not requests:
        raise InvalidInput("no recorded requests to replay", code="preview_no_requests")
    replayed = [r.to_request(snapshot, now) for r in requests]
    return preview(current, draft, replayed, k=k, ids=snapshot.ids, top=top)
