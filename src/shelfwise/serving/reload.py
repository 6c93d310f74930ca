"""Picking up a newly promoted model bundle without a restart: the bundle watch.

Every worker of a running server polls the promotion pointer every
``model_watch_seconds``: ``<model_dir>/CURRENT`` (replaced atomically by
``BundleStore.promote``), or with ``bundle_store = "database"`` the latest row of
``bundle_promotions`` (one indexed row, on every worker of every machine; the
bundle is then fetched into this machine's cache once, ``DatabaseBundleStore``). When the pointer names another version than it did at
the last look, the worker loads that bundle fully and swaps it in
(``load``: ``Runtime.load_bundle``; ``Runtime.bundle_watcher`` wires it), exactly as ``POST /v1/models/reload`` does — but in
every worker, not just the one that answered the request.

What is never loaded:

* a bundle that was written but not promoted (it failed the promotion guard
  and ``--force`` was not given): only the pointer is followed;
* a partial or altered bundle: a folder is complete only once its manifest,
  written last, agrees with its files (every file is re-hashed); a refused
  bundle leaves the served one in place, is logged as an error once, shows on
  ``/ready`` (``degraded``), ``/v1/models`` (``error``) and ``/metrics``
  (``shelfwise_model_bundle_refused``), and is tried again at the next poll.

Only *changes* of the pointer are followed, so a version an operator pinned
with ``POST /v1/models/reload {"version": ...}`` stays until the next promotion.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from shelfwise.bundles import BundleError, BundleStore
from shelfwise.errors import NotFound, ShelfwiseError
from shelfwise.store.failures import unreachable

log = logging.getLogger("shelfwise.serving.reload")

WATCH = "bundle-watch"  # the thread's name and its label in /metrics


class BundleWatcher:
    """Polls ``store``'s pointer; ``load(version)`` swaps a bundle in (raising
    ``BundleError`` when it refuses one, which it reports itself), ``refused``
    reports a pointer to no bundle, ``failure(thread, kind)`` counts a poll that broke."""

    def __init__(
        self,
        store: BundleStore,
        load: Callable[[str], object],
        refused: Callable[[str, ShelfwiseError], None],
        failure: Callable[[str, str], None],
        interval: float,
    ) -> None:
        self.store = store
        self.load, self.refused, self.failure = load, refused, failure
        self.interval = interval
        # The pointer as it was when the served bundle was loaded at start.
        self.seen = self.store.current_version()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        """One poll; True when a newly promoted bundle was swapped in."""
        version = self.store.current_version()
        if version is None or version == self.seen:
            return False
        try:
            self.load(version)
        except BundleError:  # load said it loudly (once per version); retry quietly
            return False
        except NotFound as e:  # the pointer names a bundle that is not there
            self.refused(version, e)
            return False
        self.seen = version
        log.info("loaded newly promoted bundle %s", version)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception as e:  # never let the watch die on a surprise; log and go on
                log.exception("model bundle watch failed")
                kind = "unreachable" if unreachable(e) else "error"
                self.failure(WATCH, kind)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=WATCH, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
