"""The model bundle format: written once, verified against its manifest, never rewritten.

Training writes bundles (:meth:`ModelBundle.write`) and promotes them
(:meth:`BundleStore.promote`); serving opens them (:meth:`BundleStore.open`,
:meth:`BundleStore.open_last_good`). Neither imports the other: both import this.
"""

from shelfwise.bundles.model import BundleError, BundleInfo, ModelBundle, new_version
from shelfwise.bundles.store import BundleStore

__all__ = ["BundleError", "BundleInfo", "BundleStore", "ModelBundle", "new_version"]
