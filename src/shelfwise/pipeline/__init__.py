"""The request path: context → candidates → safety rules → ranker → arrangement → slate."""

from shelfwise.pipeline.pool import Pool, Trace
from shelfwise.pipeline.ports import Arranged, Ranked
from shelfwise.pipeline.recommender import Recommender, Stages
from shelfwise.pipeline.request import RecommendRequest, SlateOut

__all__ = [
    "Arranged",
    "Pool",
    "Ranked",
    "RecommendRequest",
    "Recommender",
    "SlateOut",
    "Stages",
    "Trace",
]
