"""Candidate sources: each proposes items with a score and a reason; blends combine them."""

from shelfwise.candidates.base import Proposal, Reason, RecContext, SessionEvent, Source
from shelfwise.candidates.blend import CandidateBlend, blend
from shelfwise.candidates.config import PlacementChain, SourcesConfig
from shelfwise.candidates.log import InteractionLog, Resolve, Row
from shelfwise.candidates.model import Artifacts, fit_all

__all__ = [
    "Artifacts",
    "CandidateBlend",
    "InteractionLog",
    "PlacementChain",
    "Proposal",
    "Reason",
    "RecContext",
    "Resolve",
    "Row",
    "SessionEvent",
    "Source",
    "SourcesConfig",
    "blend",
    "fit_all",
]
