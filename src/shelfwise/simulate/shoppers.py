"""Shoppers: latent preferences (categories, brand style, price level), how
often they come, the devices they use, cookies that get reset, and accounts.

The latent arrays are the ground truth the relevance function reads; the
device and cookie state is what their events reveal.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from shelfwise.simulate.catalog import FloatArray, IntArray
from shelfwise.simulate.categories import CATEGORIES
from shelfwise.simulate.platforms import SURFACE_SHARES, SURFACES, Surface

STYLE_DIMS = 4


@dataclass(frozen=True)
class ShopperSpec:
    n_people: int = 2_000
    seed: int = 7
    registered_share: float = 0.45
    second_device_share: float = 0.35  # people with more than one device
    cookie_clearer_share: float = 0.08  # people who clear cookies now and then
    sessions_per_week: float = 1.3  # mean; activity is log-normal across people


@dataclass
class Device:
    """One browser or app install of a person; its cookie may be reset."""

    surface: int  # index into SURFACES
    device_id: str | None
    app_version: str | None
    cookie_seed: str
    generation: int = 0
    last_seen_ms: int | None = None
    anonymous_ids: list[str] = field(default_factory=list)

    def anonymous_id(self) -> str:
        digest = hashlib.blake2b(f"{self.cookie_seed}:{self.generation}".encode(), digest_size=8)
        return f"anon-{digest.hexdigest()}"

    def touch(self, at_ms: int, reset: bool) -> str:
        """The cookie seen at ``at_ms``: a new one after a reset or an expiry."""
        expiry = SURFACES[self.surface].cookie_days
        idle = None if self.last_seen_ms is None else at_ms - self.last_seen_ms
        if self.anonymous_ids and (
            reset or (expiry is not None and idle is not None and idle > expiry * 86_400_000)
        ):
            self.generation += 1
        self.last_seen_ms = at_ms
        anon = self.anonymous_id()
        if not self.anonymous_ids or self.anonymous_ids[-1] != anon:
            self.anonymous_ids.append(anon)
        return anon

    @property
    def info(self) -> Surface:
        return SURFACES[self.surface]


@dataclass
class Population:
    """People 0..n-1: latent preferences (ground truth) and their devices."""

    spec: ShopperSpec
    category_logit: FloatArray  # (people, categories): log relative interest
    style: FloatArray  # (people, STYLE_DIMS): brand taste
    price_level: FloatArray  # 0 = wants the cheap end of a category, 1 = the dear end
    price_weight: FloatArray  # how much a price mismatch hurts
    activity: FloatArray  # expected sessions per day on an ordinary Monday
    customer_id: list[str | None]
    cookie_clearer: np.ndarray
    devices: list[list[Device]]

    @property
    def n(self) -> int:
        return len(self.devices)


def brand_styles(n_brands: int, seed: int) -> FloatArray:
    """Each brand's position in the taste space (fixed by the catalog seed)."""
    rng = np.random.default_rng([seed, 1])
    return rng.normal(0.0, 1.0, size=(n_brands, STYLE_DIMS))


def generate_population(spec: ShopperSpec) -> Population:
    rng = np.random.default_rng([spec.seed, 2])
    n, n_cat = spec.n_people, len(CATEGORIES)
    shares = np.array([c.share for c in CATEGORIES])
    # A few favourite categories per person, on top of the store-wide mix.
    interest = rng.dirichlet(np.full(n_cat, 0.35), size=n) * 0.7 + 0.3 * shares / shares.sum()
    category_logit = np.log(interest * n_cat)
    style = rng.normal(0.0, 1.0, size=(n, STYLE_DIMS)) / np.sqrt(STYLE_DIMS)
    price_level = rng.beta(2.0, 2.5, size=n)
    price_weight = rng.uniform(1.0, 4.0, size=n)
    activity = rng.lognormal(np.log(spec.sessions_per_week / 7) - 0.3, 0.8, size=n)
    registered = rng.random(n) < spec.registered_share
    n_devices: IntArray = np.where(
        rng.random(n) < spec.second_device_share, rng.choice([2, 3], size=n, p=[0.75, 0.25]), 1
    )
    surfaces = rng.choice(len(SURFACES), size=int(n_devices.sum()), p=SURFACE_SHARES)
    versions = rng.random(len(surfaces))
    devices: list[list[Device]] = []
    k = 0
    for person in range(n):
        mine = []
        for d in range(int(n_devices[person])):
            surface = SURFACES[int(surfaces[k])]
            app = surface.app_versions
            mine.append(
                Device(
                    surface=int(surfaces[k]),
                    device_id=f"dev-{spec.seed}-{person + 1:07d}-{d + 1}"
                    if surface.has_device_id
                    else None,
                    app_version=app[int(versions[k] * len(app))] if app else None,
                    cookie_seed=f"{spec.seed}:{person}:{d}",
                )
            )
            k += 1
        devices.append(mine)
    return Population(
        spec=spec,
        category_logit=category_logit,
        style=style,
        price_level=price_level,
        price_weight=price_weight,
        activity=activity,
        customer_id=[f"C{p + 1:07d}" if registered[p] else None for p in range(n)],
        cookie_clearer=rng.random(n) < spec.cookie_clearer_share,
        devices=devices,
    )
