"""What a store puts in its pages: the tracker (``/shelfwise.js``) and the demo storefront.

The tracker is a dependency-free ES module shipped inside the package (docs/storefront.md),
served by the API at ``/shelfwise.js`` and, immutable, at ``/shelfwise-<version>.js``.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from importlib.resources import files

__all__ = ["TRACKER_FILE", "Tracker", "tracker"]

TRACKER_FILE = "shelfwise.js"


class Tracker:
    """The tracker's source, its version (``export const VERSION``) and an ETag."""

    def __init__(self, source: bytes) -> None:
        found = re.search(rb'export const VERSION = "([0-9][0-9A-Za-z.\-]*)";', source)
        if found is None:
            raise RuntimeError(f"{TRACKER_FILE} names no VERSION")
        self.source = source
        self.version = found.group(1).decode()
        self.etag = '"' + hashlib.sha256(source).hexdigest()[:20] + '"'


@lru_cache(maxsize=1)
def tracker() -> Tracker:
    return Tracker((files("shelfwise.storefront") / TRACKER_FILE).read_bytes())
