"""An impersonal context's source proposals, kept per worker across placements and time buckets.

A request with no person, no live session and no cart (an anonymous product page)
gets from each source of the served bundle a proposal that is a function of the
viewed items, the items left out (the viewed ones), the month (the seasonal
source reads it) and the depth asked, nothing else: no source reads the person,
the clock past the month, the live catalog or the rules when there is no person,
session or cart (``candidates/``: content, co-occurrence, factors and buy-again
read the clock or a history only through the person). The learned ranker asks
every source it reads for its columns (nine on a product page of the benchmark
store); both placements of one product page (``product_similar``,
``product_bought_with``) ask the same sources, and the same page in the next time
bucket asks them again. :class:`ProposalMemo` keeps each answer per (source,
depth, viewed items, exclusions, month), so the second placement of a page and
the page's later buckets read them instead.

Entries are checked like every kept entry (``pipeline/kept.py``): a proposal is
dropped as soon as one of the products it proposes or the viewed products changed
(stock, price, any attribute; although no source reads them, a kept proposal is
made of them as the kept candidates are), and all of them when the catalog grows
or another bundle is served (a new bundle is a new ``BundleView``, with its own
memo). The rules never enter: they apply after the candidates, on every request,
so a rulebook change needs nothing here. Only an identity view is kept (the
bundle's and this worker's indices agree: the learned ranker's case), so an
entry's products are this snapshot's.
"""

from __future__ import annotations

from collections.abc import Hashable

from shelfwise.candidates.base import Proposal, RecContext, Source
from shelfwise.catalog import CatalogSnapshot
from shelfwise.pipeline.kept import KeptStore, depends_on
from shelfwise.pipeline.memo import impersonal


def proposal_key(name: str, ctx: RecContext, k: int) -> tuple[Hashable, ...]:
    """What an impersonal context's proposal of source ``name`` at depth ``k`` is made of."""
    return (name, k, ctx.context_items, ctx.exclude, ctx.now.month)


class ProposalMemo(KeptStore[Proposal]):
    """The proposals of impersonal contexts, ``max_entries`` of them (one per source,
    depth and context), least recently used out first."""

    def ask(
        self, name: str, source: Source, ctx: RecContext, k: int, snapshot: CatalogSnapshot
    ) -> Proposal:
        """``source.propose(ctx, k)``, kept when ``ctx`` is impersonal (``ctx`` and the
        proposal in ``snapshot``'s indices)."""
        if not self.enabled or not impersonal(ctx):
            return source.propose(ctx, k)
        key = proposal_key(name, ctx, k)
        stamp = len(snapshot)
        got = self.get(key, stamp, snapshot.changed_seq)
        if got is not None:
            return got
        seq = snapshot.seq  # read before: a change made meanwhile drops the entry
        got = source.propose(ctx, k)
        got.items.flags.writeable = False  # shared by later requests: nobody may edit it
        got.scores.flags.writeable = False
        self.put(key, stamp, got, depends_on(got.items, ctx.context_items), seq)
        return got
