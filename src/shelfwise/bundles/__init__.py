"""The model bundle format: written once, verified against its manifest, never rewritten.

Training writes bundles (:meth:`BundleStore.write`) and promotes them
(:meth:`BundleStore.promote`); serving opens them (:meth:`BundleStore.open`,
:meth:`BundleStore.open_last_good`). Neither imports the other: both import this.
:func:`bundle_store` picks the store the settings name: the model folder
(``BundleStore``), or the database every machine reads (``DatabaseBundleStore``).
"""

from shelfwise.bundles.model import BundleError, BundleInfo, ModelBundle, new_version
from shelfwise.bundles.shared import DatabaseBundleStore, bundle_store
from shelfwise.bundles.store import BundleStore

__all__ = [
    "BundleError",
    "BundleInfo",
    "BundleStore",
    "DatabaseBundleStore",
    "ModelBundle",
    "bundle_store",
    "new_version",
]
