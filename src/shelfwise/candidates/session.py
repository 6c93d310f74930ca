"""Neighbours of the items in the live session, the most recent counting most."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from shelfwise.candidates.base import Proposal, RecContext
from shelfwise.candidates.config import EventWeights, SessionConfig
from shelfwise.candidates.log import KIND_CODE
from shelfwise.candidates.neighbours import (
    NeighbourTable,
    ReasonCache,
    excluded,
    gather,
    personal_reasons,
    top_k,
)


@dataclass(eq=False)
class SessionSource:
    table: NeighbourTable
    config: SessionConfig
    events: EventWeights
    # Its proposal at depth k is ``top_k`` of scores that do not depend on k
    # (``candidates.base.shallower``: a deeper proposal gives the shallower one).
    prefix_exact: ClassVar[bool] = True
    name: str = "session"
    _reasons: dict[str, ReasonCache] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        kinds = ("because_you_viewed", "because_you_bought")
        reasons = {k: ReasonCache(self.name, k) for k in kinds}
        object.__setattr__(self, "_reasons", reasons)

    def propose(self, ctx: RecContext, k: int) -> Proposal:
        recent = ctx.session[-self.config.max_events :]
        if not recent:
            return Proposal.empty(self.name)
        kind_w = self.events.array()
        steps = np.arange(len(recent) - 1, -1, -1, dtype=np.float64)
        anchors = np.array([e.item for e in recent], dtype=np.int64)
        kinds = np.array([KIND_CODE.get(e.type, 0) for e in recent])
        w = kind_w[kinds] * np.power(self.config.decay_per_step, steps)
        keep = (anchors < self.table.n_items) & (w > 0)
        got = gather(self.table, anchors[keep], w[keep], excluded(ctx.exclude))
        top = top_k(got.scores, k)
        shown = got.anchors[top]
        bought = [e.item for e in recent if e.type == "purchase"]
        r = self._reasons
        reasons = personal_reasons(
            r["because_you_viewed"], r["because_you_bought"], shown, np.isin(shown, bought)
        )
        return Proposal(self.name, got.items[top], got.scores[top], reasons)
