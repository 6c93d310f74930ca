"""The built-in providers of the dashboard's slot pages (see ``dashboard.slots``).

Each reads through the same functions as its API endpoint, so the page and
the API agree: signal quality (``GET /v1/signals/report``), experiments
(``/v1/experiments``, ``/v1/experiments/{id}/report``), rules (``/v1/rules``,
their history and ``POST /v1/rules/preview``) and the decision viewer
(``GET /v1/decisions/{rec_id}``).
"""

from __future__ import annotations

from shelfwise.dashboard.panels.decisions import decisions_panel
from shelfwise.dashboard.panels.experiments import experiments_panel
from shelfwise.dashboard.panels.rules import rules_panel
from shelfwise.dashboard.panels.signals import signals_panel
from shelfwise.dashboard.slots import SlotProvider

BUILT_IN: dict[str, SlotProvider] = {
    "signals": signals_panel,
    "experiments": experiments_panel,
    "rules": rules_panel,
    "decisions": decisions_panel,
}

__all__ = ["BUILT_IN"]
