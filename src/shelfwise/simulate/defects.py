"""Injectable defects and incidents, each with a size, and the record of where
they were injected (the ground truth a signal-quality report must find).

- ``safari_cart_loss``: every add_to_cart of a share of mobile-Safari sessions is lost.
- ``id_format``: product ids in events from one surface are written differently
  from the catalog (lower case, padded with spaces, or leading zeros dropped).
- ``identity_split``: a share of registered multi-device shoppers never log in on
  their other devices, so their devices cannot be linked.
- ``ctr_drop``: clicks on one placement drop for one category from a given day.
- ``supplier_stockout``: every product of one brand goes out of stock from a given day.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shelfwise.simulate.catalog import SimCatalog
from shelfwise.simulate.categories import category_index
from shelfwise.simulate.platforms import SURFACES, surface_index


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SafariCartLoss(_Config):
    share: float = Field(default=0.0, ge=0.0, le=1.0)


class IdFormat(_Config):
    share: float = Field(default=0.0, ge=0.0, le=1.0)  # of the surface's events
    surface: str = "android_app"
    style: Literal["lower", "whitespace", "strip_zeros"] = "strip_zeros"


class IdentitySplit(_Config):
    share: float = Field(default=0.0, ge=0.0, le=1.0)  # of registered multi-device people


class CtrDrop(_Config):
    drop: float = Field(default=0.0, ge=0.0, le=1.0)
    placement: str = "product_page"
    category: str = "kitchen/cookware"
    from_day: int = Field(default=14, ge=0)


class SupplierStockout(_Config):
    brand: str | None = None  # None: no incident
    from_day: int = Field(default=10, ge=0)


class Defects(_Config):
    """All defects off by default; ``Defects.demo()`` is the demo's set."""

    safari_cart_loss: SafariCartLoss = SafariCartLoss()
    id_format: IdFormat = IdFormat()
    identity_split: IdentitySplit = IdentitySplit()
    ctr_drop: CtrDrop = CtrDrop()
    supplier_stockout: SupplierStockout = SupplierStockout()

    @classmethod
    def demo(cls) -> Defects:
        return cls(safari_cart_loss=SafariCartLoss(share=0.4))

    def check(self, catalog: SimCatalog) -> None:
        """Unknown names fail at once, not after a long generation."""
        surface_index(self.id_format.surface)
        category_index(self.ctr_drop.category)
        brand = self.supplier_stockout.brand
        if brand is not None and brand not in catalog.brands:
            raise ValueError(f"unknown brand {brand!r} for the supplier stock-out")


def format_product_id(product_id: str, style: str) -> str:
    """``P000123`` as a buggy client writes it."""
    if style == "lower":
        return product_id.lower()
    if style == "whitespace":
        return f" {product_id} "
    return product_id[0] + (product_id[1:].lstrip("0") or "0")


class DefectLog:
    """Counts and places of every defect actually injected (written to ground_truth.json)."""

    def __init__(self, defects: Defects) -> None:
        self.defects = defects
        self.mobile_safari_sessions = 0
        self.safari_sessions_hit: list[str] = []
        self.add_to_cart_dropped = 0
        self.id_format_sessions: list[str] = []
        self.id_format_ids = 0  # product ids written in the wrong format
        self.id_format_examples: dict[str, str] = {}
        self.split_people: dict[str, list[str]] = {}  # customer id -> unlinked anonymous ids

    def as_dict(self, catalog: SimCatalog) -> dict[str, Any]:
        d = self.defects
        out: dict[str, Any] = {}
        if d.safari_cart_loss.share > 0:
            out["safari_cart_loss"] = {
                "segment": {"platform": "mobile_web", "browser": "Safari", "os": "iOS"},
                "share": d.safari_cart_loss.share,
                "mobile_safari_sessions": self.mobile_safari_sessions,
                "sessions_affected": len(self.safari_sessions_hit),
                "add_to_cart_dropped": self.add_to_cart_dropped,
                "session_ids": self.safari_sessions_hit,
            }
        if d.id_format.share > 0:
            surface = SURFACES[surface_index(d.id_format.surface)]
            out["id_format"] = {
                **d.id_format.model_dump(),
                "segment": {"platform": surface.platform, "browser": surface.browser},
                "sessions_affected": len(self.id_format_sessions),
                "product_ids_reformatted": self.id_format_ids,
                "examples": dict(sorted(self.id_format_examples.items())),
                "session_ids": self.id_format_sessions,
            }
        if d.identity_split.share > 0:
            out["identity_split"] = {
                "share": d.identity_split.share,
                "people_affected": len(self.split_people),
                "unlinked_anonymous_ids": self.split_people,
            }
        if d.ctr_drop.drop > 0:
            out["ctr_drop"] = d.ctr_drop.model_dump()
        brand = d.supplier_stockout.brand
        if brand is not None:
            b = catalog.brands.index(brand)
            ids = [pid for pid, pb in zip(catalog.ids, catalog.brand, strict=True) if pb == b]
            out["supplier_stockout"] = {
                **d.supplier_stockout.model_dump(),
                "products": len(ids),
                "product_ids": ids,
            }
        return out
