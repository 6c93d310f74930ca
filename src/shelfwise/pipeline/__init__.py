"""The request path: context → candidates → rules → ranker → arrangement → slate.

:class:`Pipeline` computes a :class:`Slate` over one catalog snapshot, online or
offline (:meth:`Pipeline.offline`); the serving :class:`Recommender` wraps it
with the slate cache, the decision log and metrics.
"""

from shelfwise.pipeline.flow import Pipeline
from shelfwise.pipeline.pool import Pool, Trace
from shelfwise.pipeline.ports import Arranged, Flow, Plan, Ranked, Stage
from shelfwise.pipeline.recommender import Recommender
from shelfwise.pipeline.request import RecommendRequest, SlateOut
from shelfwise.pipeline.slate import Shown, Slate, Versions

__all__ = [
    "Arranged",
    "Flow",
    "Pipeline",
    "Plan",
    "Pool",
    "Ranked",
    "RecommendRequest",
    "Recommender",
    "Shown",
    "Slate",
    "SlateOut",
    "Stage",
    "Trace",
    "Versions",
]
