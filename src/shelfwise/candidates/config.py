"""Each source's own config, and the placement chains that combine them.

Every model is closed (``extra="forbid"``) and round-trips through JSON; the
hash of :class:`SourcesConfig` is stamped on every bundle trained with it.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shelfwise.candidates.log import KINDS


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventWeights(_Config):
    """How much one event of each type says about a person's interest."""

    product_view: float = Field(default=1.0, ge=0)
    add_to_cart: float = Field(default=3.0, ge=0)
    purchase: float = Field(default=5.0, ge=0)
    rec_click: float = Field(default=1.5, ge=0)

    def array(self) -> npt.NDArray[np.float64]:
        return np.array([getattr(self, k) for k in KINDS], dtype=np.float64)


class CooccurrenceConfig(_Config):
    width: int = Field(default=100, ge=1, le=2000)
    session_weight: float = Field(default=1.0, ge=0, description="co-occurrence within a basket")
    person_weight: float = Field(default=0.5, ge=0, description="within a person's history")
    half_life_days: float = Field(default=30.0, gt=0)
    significance: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="exponent on the neighbour's own count: 0 = raw conditional, 1 = damp popular items fully",
    )
    shrink: float = Field(default=2.0, ge=0)
    max_anchors: int = Field(default=50, ge=1)


class RegressionConfig(_Config):
    width: int = Field(default=100, ge=1, le=2000)
    regularization: float = Field(default=300.0, gt=0)
    half_life_days: float = Field(default=120.0, gt=0)
    max_items: int = Field(
        default=6_000,
        ge=0,
        description="skip the dense n x n fit above this (memory: ~3 x 8 n^2 bytes)",
    )


class FactorsConfig(_Config):
    factors: int = Field(default=64, ge=2, le=512)
    iterations: int = Field(default=15, ge=1, le=100)
    regularization: float = Field(default=0.05, ge=0)
    alpha: float = Field(default=10.0, gt=0, description="confidence = 1 + alpha * log1p(weight)")
    seed: int = 7


class ContentConfig(_Config):
    width: int = Field(default=50, ge=1, le=1000)
    text_weight: float = Field(default=1.0, ge=0)
    category_weight: float = Field(default=1.0, ge=0)
    brand_weight: float = Field(default=0.5, ge=0)
    price_weight: float = Field(default=0.3, ge=0)
    attribute_weight: float = Field(default=0.5, ge=0)
    price_bands: int = Field(default=8, ge=1)


class SubstitutesConfig(_Config):
    """``product_similar``: same or sibling category, price band, content and co-view."""

    sibling_weight: float = Field(
        default=0.3, ge=0, le=1, description="a sibling category's weight (same = 1)"
    )
    sibling_fill: int = Field(
        default=30,
        ge=0,
        description="siblings are proposed only when the category has fewer candidates",
    )
    price_band: float = Field(
        default=2.0, gt=1, description="price ratio at which the price fit is ~0.61"
    )
    max_price_ratio: float = Field(
        default=4.0, gt=1, description="dearer or cheaper than this many times: dropped"
    )
    coview_weight: float = Field(
        default=0.3, ge=0, description="co-view (co-occurrence) next to content"
    )
    hub_penalty: float = Field(
        default=0.5, ge=0, le=2, description="minus this x the item's mean similarity (hubs)"
    )
    category_floor: float = Field(
        default=0.05, ge=0, description="similarity of a category member with no neighbour score"
    )


class ComplementsConfig(_Config):
    """``product_bought_with`` and ``cart``: co-purchase lift and complementary categories."""

    width: int = Field(default=50, ge=1, le=2000)
    shrink: float = Field(default=1.0, ge=0, description="c / (c + shrink) damps pairs seen once")
    categories: int = Field(
        default=3, ge=0, le=50, description="partner categories per anchor category"
    )
    per_category: int = Field(default=40, ge=1, le=500)
    own_category: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="the anchor's own category as a partner, at this x the best partner's "
        "score, when enough sessions carted or bought two of its items (see "
        "fit_category_lift; 0: never)",
    )
    own_items: int = Field(
        default=3,
        ge=1,
        le=500,
        description="items the own category offers (at most per_category): 3 keeps a "
        "bought-with slate mostly complements (chosen on the validation store: 19% of "
        "its items of the viewed product's category against 63% at 40, for 83% of "
        "the revenue gain)",
    )
    coview_weight: float = Field(
        default=1.0, ge=0, description="co-view with the anchor, next to popularity (0.5)"
    )
    addon_price: float = Field(
        default=0.5, gt=0, description="the add-on price that fits best, x the anchor's price"
    )
    addon_band: float = Field(
        default=2.5, gt=1, description="price ratio to addon_price at which the fit is ~0.61"
    )
    max_price_ratio: float = Field(
        default=4.0, gt=1, description="dearer than this many times the anchor: dropped"
    )


class SessionConfig(_Config):
    decay_per_step: float = Field(default=0.7, gt=0, le=1)
    max_events: int = Field(default=10, ge=1)


class SessionKNNConfig(_Config):
    """Session neighbourhood (``candidates/session_knn.py``); defaults chosen on the
    DIGINETICA validation window (docs/evaluation.md)."""

    max_sessions: int = Field(
        default=200_000, ge=0, description="most recent sessions kept in the bundle"
    )
    sample: int = Field(
        default=500, ge=1, description="most recent sessions sharing an item, compared"
    )
    neighbours: int = Field(default=100, ge=1, description="most similar sessions that vote")
    max_events: int = Field(default=10, ge=1, description="latest items of the live session")
    position_decay: float = Field(
        default=0.8, gt=0, le=1, description="weight of an item per step back in the session"
    )
    item_decay: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description="a neighbour's item per step away from its view of the shared item",
    )
    normalise: bool = Field(default=False, description="divide by sqrt(neighbour's length)")


class BasketEaseConfig(_Config):
    """Basket EASE (``candidates/basket_ease.py``); defaults chosen on the
    Online Retail validation window (docs/evaluation.md)."""

    width: int = Field(default=100, ge=1, le=2000)
    regularization: float = Field(default=30.0, gt=0)
    half_life_days: float = Field(
        default=0.0, ge=0, description="basket weight halves with this age (0: no decay)"
    )
    max_items: int = Field(
        default=5_000,
        ge=0,
        description="items kept, by basket support (memory ~3 x 8 n^2 bytes while fitting)",
    )
    min_support: int = Field(default=2, ge=1, description="baskets an item needs to be kept")
    carts: bool = Field(default=False, description="cart adds count as basket items too")


class BuyAgainConfig(_Config):
    spread: float = Field(default=1.0, gt=0, description="width of the due window (log scale)")
    floor: float = Field(default=0.3, ge=0, description="score share of items not yet due")
    half_life_days: float = Field(default=90.0, gt=0)
    min_repeat: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="repeat rate an item needs to be proposed: the share of its purchases "
        "the same person followed with another (candidates/buyagain.py); a person's past "
        "purchases below it are left out of every one of their slates",
    )
    repeat_prior: float = Field(
        default=100.0,
        gt=0,
        description="purchases' worth of shrinkage of an item's repeat rate toward its "
        "category's, and of a category's toward the store's",
    )


class PopularConfig(_Config):
    half_life_days: float = Field(default=21.0, gt=0)
    trend_days: float = Field(default=7.0, gt=0)
    trend_weight: float = Field(default=0.3, ge=0)
    season_weight: float = Field(default=0.5, ge=0)
    season_horizon_days: float = Field(default=21.0, gt=0)
    width: int = Field(default=200, ge=1)


SOURCE_NAMES = (
    "cooccurrence",
    "regression",
    "factors",
    "content",
    "session",
    "buy_again",
    "popular",
    "substitutes",
    "complements",
    "session_knn",
    "basket_ease",
)
# The sources whose own scores the learned ranker reads as features (it reads every
# source through the placement's blend). The session neighbourhood and basket EASE
# answer session and cart requests, which the home ranker's training requests
# (people, no session, no cart) never are: features of theirs would be empty in
# training.
RANKER_SOURCES = tuple(n for n in SOURCE_NAMES if n not in ("session_knn", "basket_ease"))


class PlacementChain(_Config):
    """Sources blended (name -> weight) for the main slots, then fallbacks in order."""

    blend: dict[str, float]
    fallbacks: tuple[str, ...] = ("popular",)
    depth: int = Field(default=100, ge=1, description="candidates asked of each source")

    @model_validator(mode="after")
    def _known(self) -> PlacementChain:
        unknown = sorted((set(self.blend) | set(self.fallbacks)) - set(SOURCE_NAMES))
        if unknown:
            raise ValueError(f"unknown source(s): {', '.join(unknown)}")
        return self


def _default_placements() -> dict[str, PlacementChain]:
    # Chosen on the Online Retail validation window (docs/evaluation.md).
    personal = {
        "buy_again": 2.0,
        "factors": 0.75,
        "content": 0.5,
        "popular": 1.5,
        "session": 0.8,
    }
    discovery = {
        "regression": 0.5,
        "factors": 1.0,
        "content": 0.35,
        "popular": 1.0,
        "session": 0.8,
    }
    return {
        "default": PlacementChain(blend=personal),
        "home": PlacementChain(blend=personal),
        "email": PlacementChain(blend=personal),
        "discovery": PlacementChain(blend=discovery),
        "product_page": PlacementChain(
            blend={"cooccurrence": 1.0, "content": 0.4, "session": 0.5},
            fallbacks=("factors", "popular"),
        ),
        "cart": PlacementChain(
            blend={"cooccurrence": 1.0, "session": 0.3, "content": 0.1},
            fallbacks=("buy_again", "popular"),
        ),
    }


class SourcesConfig(_Config):
    events: EventWeights = EventWeights()
    history_half_life_days: float = Field(default=60.0, gt=0)
    cooccurrence: CooccurrenceConfig = CooccurrenceConfig()
    regression: RegressionConfig = RegressionConfig()
    factors: FactorsConfig = FactorsConfig()
    content: ContentConfig = ContentConfig()
    session: SessionConfig = SessionConfig()
    substitutes: SubstitutesConfig = SubstitutesConfig()
    complements: ComplementsConfig = ComplementsConfig()
    session_knn: SessionKNNConfig = SessionKNNConfig()
    basket_ease: BasketEaseConfig = BasketEaseConfig()
    buy_again: BuyAgainConfig = BuyAgainConfig()
    popular: PopularConfig = PopularConfig()
    placements: dict[str, PlacementChain] = Field(default_factory=_default_placements)
    threads: int = Field(
        default=1,
        ge=0,
        description="Threads of a training: implicit's ALS, the BLAS/LAPACK of the dense "
        "inverses and neighbour blocks, and the ranker's LightGBM (0: every core). One by "
        "default: where the cores also serve or fit other things, idle threads spin and a "
        "fit takes 1.5-4x longer than on one thread (docs/sizing.md); a machine that "
        "trains alone gives its cores.",
    )

    def chain(self, placement: str) -> PlacementChain:
        return self.placements.get(placement) or self.placements.get(
            "default", PlacementChain(blend={"popular": 1.0})
        )

    def config_hash(self) -> str:
        """What the fitted sources depend on (``threads`` changes only the time)."""
        dumped = self.model_dump(mode="json", exclude={"threads"})
        data = json.dumps(dumped, sort_keys=True)
        return hashlib.sha256(data.encode()).hexdigest()[:12]
