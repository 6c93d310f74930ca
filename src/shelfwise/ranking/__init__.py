"""The learned ranker: shared features, LambdaRank scoring, placement value, reasons, exploration.

Names are loaded on first use: ``shelfwise.config`` imports the ranker's
settings model, and the heavier modules import the catalog and the store,
which import the settings.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shelfwise.ranking.candidates import CandidateSet
    from shelfwise.ranking.dataset import TrainingSet, build_training_set, decision_context
    from shelfwise.ranking.explain import Explanation, Names, SnapshotNames, TableNames
    from shelfwise.ranking.features import BASE_FEATURES, FeatureSpec, build_features
    from shelfwise.ranking.history import HistoryLog
    from shelfwise.ranking.items import ItemColumns, ItemTable
    from shelfwise.ranking.model import RankerModel
    from shelfwise.ranking.objective import PlacementObjective, RankingSettings
    from shelfwise.ranking.ranker import Ranked, Ranker
    from shelfwise.ranking.state import RankingState

_WHERE = {
    "BASE_FEATURES": "features",
    "CandidateSet": "candidates",
    "Explanation": "explain",
    "FeatureSpec": "features",
    "HistoryLog": "history",
    "ItemColumns": "items",
    "ItemTable": "items",
    "Names": "explain",
    "PlacementObjective": "objective",
    "Ranked": "ranker",
    "Ranker": "ranker",
    "RankerModel": "model",
    "RankingSettings": "objective",
    "RankingState": "state",
    "SnapshotNames": "explain",
    "TableNames": "explain",
    "TrainingSet": "dataset",
    "build_features": "features",
    "build_training_set": "dataset",
    "decision_context": "dataset",
}

__all__ = [
    "BASE_FEATURES",
    "CandidateSet",
    "Explanation",
    "FeatureSpec",
    "HistoryLog",
    "ItemColumns",
    "ItemTable",
    "Names",
    "PlacementObjective",
    "Ranked",
    "Ranker",
    "RankerModel",
    "RankingSettings",
    "RankingState",
    "SnapshotNames",
    "TableNames",
    "TrainingSet",
    "build_features",
    "build_training_set",
    "decision_context",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'shelfwise.ranking' has no attribute {name!r}")
    return getattr(importlib.import_module(f"shelfwise.ranking.{_WHERE[name]}"), name)
