"""What serving needs beyond the pipeline: placements, live sessions, the decision log, metrics."""

from shelfwise.serving.decisions import Decision, DecisionLog, DecisionReader
from shelfwise.serving.metrics import ServingMetrics
from shelfwise.serving.placements import Placement, Placements, load_placements
from shelfwise.serving.session import SessionRecord, SessionState

__all__ = [
    "Decision",
    "DecisionLog",
    "DecisionReader",
    "Placement",
    "Placements",
    "ServingMetrics",
    "SessionRecord",
    "SessionState",
    "load_placements",
]
