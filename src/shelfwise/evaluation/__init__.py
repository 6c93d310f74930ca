"""Offline evaluation: a time split by person, two protocols, peer baselines, reports."""

from shelfwise.evaluation.offline import compare
from shelfwise.evaluation.report import write_report
from shelfwise.evaluation.run import EvaluationResult, evaluate
from shelfwise.evaluation.served import ServedModel
from shelfwise.evaluation.shelfwise_model import Notebook, Recommendation
from shelfwise.evaluation.split import time_split

__all__ = [
    "EvaluationResult",
    "Notebook",
    "Recommendation",
    "ServedModel",
    "compare",
    "evaluate",
    "time_split",
    "write_report",
]
