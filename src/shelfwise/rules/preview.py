"""A draft rule set saved over the rulebook, as the impact preview replays it.

The preview itself replays logged slates through the served pipeline
(``shelfwise.pipeline.preview``); the rules package only says what the rulebook
would be with the draft saved.
"""

from __future__ import annotations

from collections.abc import Sequence

from shelfwise.rules.model import Rule


def overlay(current: Sequence[Rule], draft: Sequence[Rule]) -> list[Rule]:
    """The rulebook as it would be with ``draft`` saved (same id replaces, new id adds)."""
    ids = {r.id for r in draft}
    return [r for r in current if r.id not in ids] + list(draft)
