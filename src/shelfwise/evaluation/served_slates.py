"""The one narrow door the protocols use to ask shelfwise: top-k through the served Pipeline.

A :class:`ServedSlates` holds a :class:`~shelfwise.pipeline.flow.Pipeline` built
with :meth:`Pipeline.offline` over the catalog snapshot (the same stages a
store serves: candidates of the placement's chain, the rulebook's safety and
arrangement, the rank stage) and the store's placements. :meth:`top_k` turns
a context (viewed items, the session's events, the cart, a person) into the
request the storefront would send and returns the dense ids of the slate.

The protocols (``session_protocol``, ``basket_protocol``) only call
:func:`served_slates` and :meth:`ServedSlates.top_k`: when evaluation gets the
served bundle or a per-placement learned ranker, only this module changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from shelfwise.candidates.model import Artifacts
from shelfwise.catalog import CatalogSnapshot
from shelfwise.pipeline.flow import Pipeline
from shelfwise.pipeline.pool import Trace
from shelfwise.pipeline.ports import Stage
from shelfwise.pipeline.request import RecommendRequest
from shelfwise.rules import Rulebook
from shelfwise.serving.placements import Placement
from shelfwise.serving.session import SessionRecord

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Context:
    """What the storefront knows at the request: dense item ids of this snapshot.

    ``session`` is the session's events so far, oldest first, as
    ``(item, event type, epoch seconds)``; ``items`` the viewed product(s) of a
    product page; ``cart`` the cart's items."""

    at: float
    session: Sequence[tuple[int, str, float]] = ()
    items: Sequence[int] = ()
    cart: Sequence[int] = ()
    person: str | None = None


@dataclass(frozen=True)
class ServedSlates:
    pipeline: Pipeline
    placements: Mapping[str, Placement]
    ranker_label: str  # which rank stage answered: "blend" or "learned"

    def label(self, placement: str) -> str:
        """Which path answered, for reports."""
        task = self.placements[placement].ranker
        ranker = (
            f"the learned ranker of the {task!r} task"
            if self.ranker_label == "learned"
            else "the blend ranker (the protocols train no learned ranker for this "
            "placement's task, or the blend ranked the validation window better)"
        )
        return (
            f"served Pipeline (Pipeline.offline): candidates of the {placement!r} chain, the "
            f"rulebook's safety and arrangement, {ranker}; exploration off"
        )

    def top_k(self, placement: str, ctx: Context, k: int) -> IntArray:
        """The dense ids of the slate ``placement`` serves for ``ctx``, best first."""
        p = self.placements[placement]
        ids = self.pipeline.snapshot.ids
        req = RecommendRequest(
            placement=placement,
            item=tuple(ids[i] for i in ctx.items) if p.requires_item else (),
            cart=tuple(ids[i] for i in ctx.cart),
            k=k,
        )
        records = [SessionRecord(ids[i], kind, at) for i, kind, at in ctx.session]
        trace = Trace(enabled=False)
        now = datetime.fromtimestamp(ctx.at, UTC)
        rc = self.pipeline.context(req, p, records, now, ctx.person, trace)
        slate = self.pipeline.run(rc, p, k, trace=trace)
        return np.fromiter((s.item for s in slate.items), dtype=np.int64, count=len(slate.items))


def served_slates(
    snapshot: CatalogSnapshot,
    artifacts: Artifacts,
    placements: Sequence[Placement],
    rulebook: Rulebook | None = None,
    ranker: Stage | None = None,
) -> ServedSlates:
    """The served pipeline over sources fitted offline (``artifacts``, indexed like
    ``snapshot``). Exploration is switched off (an evaluation compares rankings,
    not exploration draws); everything else is the placement as configured.
    ``ranker``: a learned rank stage when one applies (default: the blend ranker)."""
    pipeline = Pipeline.offline(snapshot, artifacts.blend(), rulebook, ranker)
    quiet = {p.name: p.model_copy(update={"exploration": 0.0}) for p in placements}
    return ServedSlates(pipeline, quiet, "learned" if ranker is not None else "blend")


__all__ = ["Context", "ServedSlates", "served_slates"]
