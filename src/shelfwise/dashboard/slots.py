"""Dashboard pages that other areas fill in, through small provider interfaces.

A slot is a navigation entry and a route; what it shows comes from the
provider registered on ``Runtime.dashboard_slots[name]``. Without one the page
renders a "not yet available" panel. A provider is a plain callable:

    def signal_quality(runtime: Runtime, params: SlotParams) -> Panel: ...
    runtime.dashboard_slots["signals"] = signal_quality

It returns text, tables of already formatted strings and plotly figures (as
``figure.to_plotly_json()`` dicts); the dashboard does the layout and escaping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from shelfwise.runtime import Runtime


@dataclass(frozen=True)
class SlotParams:
    start: datetime
    end: datetime
    query: Mapping[str, str]  # the page's query string (e.g. ``rec_id`` for the decision viewer)


@dataclass(frozen=True)
class PanelTable:
    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Panel:
    title: str
    summary: str = ""
    tables: list[PanelTable] = field(default_factory=list)
    figures: list[dict[str, Any]] = field(default_factory=list)


class SlotProvider(Protocol):
    def __call__(self, runtime: Runtime, params: SlotParams) -> Panel: ...


@dataclass(frozen=True)
class Slot:
    name: str
    title: str
    description: str
    input_name: str | None = None  # a query field the page offers (e.g. rec_id)


SLOTS: tuple[Slot, ...] = (
    Slot("signals", "Signal quality", "Event validity, quarantine and catalog joins per source."),
    Slot("experiments", "Experiments", "Running experiments, their arms and readouts."),
    Slot("rules", "Rules", "The rulebook, its audit log and the impact preview of a change."),
    Slot(
        "decisions",
        "Why was this shown",
        "The decision trace of a served slate: candidates, rules, scores, reasons.",
        input_name="rec_id",
    ),
)
