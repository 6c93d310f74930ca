"""The running shelfwise a simulation sets up and plays against (``Runtime`` is one).

The simulator takes a way to open one (``lambda: Runtime.open(settings)``) rather
than opening it itself, so it stays below the place that wires everything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from shelfwise.training.inputs import TrainingInputs

if TYPE_CHECKING:
    from shelfwise.catalog import CatalogRepository
    from shelfwise.contracts.ingest import Ingestor
    from shelfwise.experiments import ExperimentRepository
    from shelfwise.pipeline import Recommender
    from shelfwise.rules.live import LiveRulebook


class Shop(TrainingInputs, Protocol):
    @property
    def catalog(self) -> CatalogRepository: ...

    @property
    def ingestor(self) -> Ingestor: ...

    @property
    def rules(self) -> LiveRulebook: ...

    @property
    def experiments(self) -> ExperimentRepository: ...

    @property
    def recommender(self) -> Recommender: ...

    def load_bundle(self, version: str | None = None, *, missing_ok: bool = False) -> object: ...

    def close(self) -> None: ...


OpenShop = Callable[[], Shop]
