"""The catalog: product contract, feed import, completeness, hot updates, snapshot."""

from shelfwise.catalog.feed import FEED_FORMATS, ParsedFeed, read_feed, validate_records
from shelfwise.catalog.model import Product, ProductPatch, ProductPatchItem, StoredProduct
from shelfwise.catalog.report import CompletenessReport, completeness
from shelfwise.catalog.repository import CatalogRepository, UpsertResult
from shelfwise.catalog.rows import RejectedRow
from shelfwise.catalog.snapshot import CatalogSnapshot

__all__ = [
    "FEED_FORMATS",
    "CatalogRepository",
    "CatalogSnapshot",
    "CompletenessReport",
    "ParsedFeed",
    "Product",
    "ProductPatch",
    "ProductPatchItem",
    "RejectedRow",
    "StoredProduct",
    "UpsertResult",
    "completeness",
    "read_feed",
    "validate_records",
]
