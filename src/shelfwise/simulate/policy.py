"""How the simulated shoppers meet a recommender: a :class:`Policy` turns a
request context into a ranked slate with a ``rec_id``.

The simulator ships the policies it needs to compare arms online: random,
popularity-only, an oracle that knows the ground truth, a split that assigns
people to arms by hash, and :class:`HttpPolicy`, which asks a running server's
recommendations endpoint.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import httpx2
import numpy as np

from shelfwise.simulate.catalog import FloatArray

if TYPE_CHECKING:
    from shelfwise.simulate.world import World


@dataclass(frozen=True)
class RequestContext:
    """What the storefront knows when it asks for a slate (external ids only)."""

    placement: str  # home | product_page | cart | email
    now: datetime
    anonymous_id: str
    session_id: str
    customer_id: str | None = None
    item: str | None = None  # the product being viewed
    cart: tuple[str, ...] = ()
    k: int = 8
    platform: str | None = None


@dataclass(frozen=True)
class Slate:
    rec_id: str
    product_ids: tuple[str, ...]
    experiment_id: str | None = None
    arm: str | None = None


class Policy(Protocol):
    name: str

    def recommend(self, ctx: RequestContext) -> Slate: ...


@dataclass
class _RecIds:
    prefix: str
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next(self) -> str:
        return f"{self.prefix}-{next(self.counter):08d}"


def _exclusions(ctx: RequestContext) -> set[str]:
    return {*ctx.cart, *([ctx.item] if ctx.item else [])}


class ScoredPolicy:
    """Ranks every product by a fixed score, skipping the viewed item and the cart."""

    def __init__(self, name: str, product_ids: Sequence[str], scores: FloatArray) -> None:
        self.name = name
        order = np.argsort(-scores, kind="stable")
        self.ranked = [product_ids[int(i)] for i in order]
        self._ids = _RecIds(f"rec-{name}")

    def recommend(self, ctx: RequestContext) -> Slate:
        skip = _exclusions(ctx)
        top = tuple(itertools.islice((p for p in self.ranked if p not in skip), ctx.k))
        return Slate(self._ids.next(), top)


def popularity_policy(product_ids: Sequence[str], counts: FloatArray) -> ScoredPolicy:
    """Popularity only: the most purchased (or viewed) products, the same for everyone."""
    return ScoredPolicy("popularity", product_ids, counts)


class RandomPolicy:
    def __init__(self, product_ids: Sequence[str], seed: int = 0) -> None:
        self.name = "random"
        self._products = list(product_ids)
        self._rng = np.random.default_rng(seed)
        self._ids = _RecIds("rec-random")

    def recommend(self, ctx: RequestContext) -> Slate:
        skip = _exclusions(ctx)
        picks = self._rng.choice(len(self._products), size=ctx.k + len(skip), replace=False)
        top = [self._products[int(i)] for i in picks if self._products[int(i)] not in skip]
        return Slate(self._ids.next(), tuple(top[: ctx.k]))


class OraclePolicy:
    """Knows who the shopper really is and their true preferences: the upper bound."""

    def __init__(self, world: World) -> None:
        self.name = "oracle"
        self.world = world
        self._ids = _RecIds("rec-oracle")

    def recommend(self, ctx: RequestContext) -> Slate:
        w = self.world
        person = w.owner[ctx.anonymous_id]
        item = w.index.get(ctx.item) if ctx.item else None
        cart = tuple(w.index[c] for c in ctx.cart if c in w.index)
        top = w.truth.best_slate(person, w.day_of(ctx.now), ctx.placement, ctx.k, item, cart)
        return Slate(self._ids.next(), tuple(w.ids[int(i)] for i in top))


class SplitPolicy:
    """An A/B split: each person (customer id, else anonymous id) gets one arm by hash."""

    def __init__(self, experiment_id: str, arms: Mapping[str, Policy], salt: str = "") -> None:
        self.name = experiment_id
        self.experiment_id = experiment_id
        self.arms = dict(arms)
        self._names = sorted(self.arms)
        self._salt = salt or experiment_id

    def arm_of(self, unit: str) -> str:
        h = hashlib.sha256(f"{self._salt}:{unit}".encode()).digest()
        return self._names[int.from_bytes(h[:8], "big") % len(self._names)]

    def recommend(self, ctx: RequestContext) -> Slate:
        arm = self.arm_of(ctx.customer_id or ctx.anonymous_id)
        slate = self.arms[arm].recommend(ctx)
        return Slate(slate.rec_id, slate.product_ids, self.experiment_id, arm)


class HttpPolicy:
    """Asks a running shelfwise server: ``GET {url}/v1/recommendations``.

    Any failure (refused, timeout, non-200, unreadable body) yields an empty
    slate and is counted in ``errors``, so a simulation keeps running.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        name: str = "server",
        client: httpx2.Client | None = None,
        timeout: float = 5.0,
        placements: Mapping[str, str] | None = None,
    ) -> None:
        # The simulator's page kinds -> the server's placement names.
        self.placements = dict(SERVER_PLACEMENTS if placements is None else placements)
        self.name = name
        self.url = url.rstrip("/")
        self.errors = 0
        self._client = client or httpx2.Client(timeout=timeout)
        self._headers = {"X-API-Key": api_key}
        self._ids = _RecIds(f"rec-{name}-fallback")

    def close(self) -> None:
        self._client.close()

    def params(self, ctx: RequestContext) -> dict[str, Any]:
        params: dict[str, Any] = {
            "placement": self.placements.get(ctx.placement, ctx.placement),
            "person": ctx.customer_id or ctx.anonymous_id,
            "session": ctx.session_id,
            "k": ctx.k,
        }
        if ctx.item:
            params["item"] = ctx.item
        if ctx.cart:
            params["cart"] = ",".join(ctx.cart)
        return params

    def recommend(self, ctx: RequestContext) -> Slate:
        try:
            r = self._client.get(
                f"{self.url}/v1/recommendations", params=self.params(ctx), headers=self._headers
            )
            body = r.json() if r.status_code == 200 else None
        except (httpx2.HTTPError, ValueError):
            body = None
        slate = parse_slate(body) if isinstance(body, dict) else None
        if slate is None:
            self.errors += 1
            return Slate(self._ids.next(), ())
        return slate


SERVER_PLACEMENTS = {"product_page": "product_similar"}


def parse_slate(body: Mapping[str, Any]) -> Slate | None:
    """A recommendations response -> Slate; items may be ids or objects with ``product_id``."""
    rec_id = body.get("rec_id")
    items = body.get("items")
    if not isinstance(rec_id, str) or not isinstance(items, list):
        return None
    ids = [i.get("product_id") if isinstance(i, dict) else i for i in items]
    nested = body.get("experiment")
    experiment: Mapping[str, Any] = nested if isinstance(nested, Mapping) else {}
    arm = body.get("arm") or body.get("experiment_arm") or experiment.get("arm")
    exp = body.get("experiment_id") or experiment.get("experiment_id")
    return Slate(
        rec_id,
        tuple(str(i) for i in ids if isinstance(i, str) and i),
        exp if isinstance(exp, str) else None,
        arm if isinstance(arm, str) else None,
    )
