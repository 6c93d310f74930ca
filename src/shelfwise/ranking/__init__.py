"""The learned ranker: shared features, LambdaRank scoring, placement value, reasons, exploration."""

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
