"""Dashboard pages that other areas fill in, through small provider interfaces.

A slot is a navigation entry and a route; what it shows comes from the
provider registered on the app, ``slot_providers(app)[name]`` (the built-in ones
in ``dashboard.panels`` serve when nothing else is registered). Without any the
page renders a "not yet available" panel. A provider is a plain callable:

    def signal_quality(runtime: Runtime, params: SlotParams) -> Panel: ...
    slot_providers(app)["signals"] = signal_quality

It returns text, forms, tables of already formatted cells and plotly figures
(as ``figure.to_plotly_json()`` dicts); the dashboard does the layout and
escaping. A cell may carry a link and the raw value behind its text (rendered
as ``data-value``, so browser tests can compare it with the API). A cell may
also be a row of actions: links and buttons that POST a small form back to the
dashboard (the page adds the session's form token).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from shelfwise.access import Principal
    from shelfwise.runtime import Runtime

Tone = Literal["", "ok", "page", "ticket", "resolved"]


@dataclass(frozen=True)
class SlotParams:
    start: datetime
    end: datetime
    query: Mapping[str, str]  # the page's query string (e.g. ``rec_id`` for the decision viewer)
    form: Mapping[str, str] = field(default_factory=dict)  # a POSTed form (the rules preview)
    range_key: str = "7d"
    principal: Principal | None = None  # who is signed in (None: nobody to ask)


@dataclass(frozen=True)
class PanelCell:
    text: str
    href: str | None = None
    value: float | str | None = None  # the number behind ``text``
    testid: str | None = None
    tone: Tone = ""  # shown as a coloured badge when set
    image: str | None = None  # a thumbnail shown before the text (a product's image)


@dataclass(frozen=True)
class PanelAction:
    """A link (``fields`` empty) or a button POSTing ``fields`` to ``href``."""

    text: str
    href: str
    fields: Mapping[str, str] = field(default_factory=dict)
    confirm: str = ""  # asked before the POST is sent
    testid: str | None = None


@dataclass(frozen=True)
class PanelActions:
    items: tuple[PanelAction, ...]


Cell = str | PanelCell | PanelActions


@dataclass(frozen=True)
class PanelTable:
    title: str
    columns: list[str]
    rows: Sequence[Sequence[Cell]]
    note: str = ""
    testid: str | None = None
    empty: str = "Nothing to show."


@dataclass(frozen=True)
class PanelField:
    name: str
    label: str
    value: str = ""
    kind: Literal["text", "textarea", "number", "checkbox", "hidden"] = "text"
    placeholder: str = ""


@dataclass(frozen=True)
class PanelForm:
    fields: list[PanelField]
    submit: str
    method: Literal["get", "post"] = "get"
    title: str = ""
    note: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    summary: str = ""
    tables: list[PanelTable] = field(default_factory=list)
    figures: list[dict[str, Any]] = field(default_factory=list)
    forms: list[PanelForm] = field(default_factory=list)
    error: str = ""  # a lookup that failed, a draft that did not parse
    notice: str = ""  # what a change just did
    links: list[PanelAction] = field(default_factory=list)  # shown above the tables
    ranged: bool = True  # False: the page ignores the time range (no range picker)


class SlotProvider(Protocol):
    def __call__(self, runtime: Runtime, params: SlotParams) -> Panel: ...


def slot_providers(app: Starlette) -> dict[str, SlotProvider]:
    """The providers registered on ``app`` by slot name; each replaces its slot's
    built-in one. The registry belongs to the app (the Runtime knows nothing of pages)."""
    providers: dict[str, SlotProvider] | None = getattr(app.state, "dashboard_slots", None)
    if providers is None:
        providers = app.state.dashboard_slots = {}
    return providers


@dataclass(frozen=True)
class Slot:
    name: str
    title: str
    description: str
    input_name: str | None = None  # a query field the page offers (e.g. rec_id)
    accepts_post: bool = False  # a form on the page posts back to it


SLOTS: tuple[Slot, ...] = (
    Slot("signals", "Signal quality", "Event validity, quarantine and catalog joins per source."),
    Slot("experiments", "Experiments", "Running experiments, their arms and readouts."),
    Slot(
        "rules",
        "Rules",
        "The rulebook, its audit log and the impact preview of a change.",
        accepts_post=True,
    ),
    Slot(
        "decisions",
        "Why was this shown",
        "The decision trace of a served slate: candidates, rules, scores, reasons.",
    ),
)
