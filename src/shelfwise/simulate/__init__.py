"""A synthetic home-goods store with known ground truth, for the demo and for tests."""

from shelfwise.simulate.catalog import CatalogSpec, generate_catalog

__all__ = ["CatalogSpec", "generate_catalog"]
