"""The batch path: read events, fit every source, write and promote a model bundle."""

from shelfwise.training.bundle import BundleError, BundleInfo, BundleStore, ModelBundle

__all__ = ["BundleError", "BundleInfo", "BundleStore", "ModelBundle"]
