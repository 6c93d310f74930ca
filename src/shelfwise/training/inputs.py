"""What the training job reads from a running system (``shelfwise.runtime.Runtime`` is one).

A protocol rather than the Runtime itself, so the batch path stays below the
place that wires everything together.
"""

from __future__ import annotations

from typing import Protocol

from shelfwise.catalog import CatalogSnapshot
from shelfwise.config import Settings
from shelfwise.contracts.identity import IdentityGraph
from shelfwise.store import Database


class TrainingInputs(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Database: ...

    @property
    def snapshot(self) -> CatalogSnapshot: ...  # the catalog, refreshed before reading

    @property
    def identity(self) -> IdentityGraph: ...  # frozen once per run: who is who
