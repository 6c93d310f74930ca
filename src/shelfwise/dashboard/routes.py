"""The dashboard's routes: sign-in, money overview, categories, alerts, drift, provider slots.

Each page is a handler ``(request, runtime, form) -> View`` registered with
``@page(name)``, which does the sign-in check and the shared layout.

Every page needs a signed session cookie (see ``dashboard.session``) for a
key holding the ``merchandiser`` role (``admin`` implies it); anything else is
sent to the sign-in form. Plotly's JavaScript is served from the installed
plotly package, never from a CDN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from shelfwise.access import KeyRing
from shelfwise.api.auth import ANONYMOUS_ADMIN, Principal
from shelfwise.api.deps import runtime_from
from shelfwise.dashboard import charts
from shelfwise.dashboard.format import environment
from shelfwise.dashboard.panels import BUILT_IN
from shelfwise.dashboard.session import COOKIE, sign, verify
from shelfwise.dashboard.slots import SLOTS, Slot, SlotParams
from shelfwise.monitoring.alerts import AlertStore
from shelfwise.monitoring.detector import fit_baseline
from shelfwise.monitoring.metrics import compute_metrics, hourly_series
from shelfwise.monitoring.series import hour_of_week
from shelfwise.monitoring.served import drift_report
from shelfwise.monitoring.timerange import DEFAULT_RANGE, RANGES, resolve
from shelfwise.runtime import Runtime

router = APIRouter(prefix="/dashboard", include_in_schema=False)
_ENV = environment()
_PLOTLY_JS = files("plotly") / "package_data" / "plotly.min.js"

PAGES = (
    ("", "Overview"),
    ("categories", "Categories"),
    ("alerts", "Alerts"),
    ("drift", "Drift"),
    *((s.name, s.title) for s in SLOTS),
)


def _principal(request: Request) -> Principal | None:
    ring: KeyRing = request.app.state.runtime.keyring
    if not ring.enabled:
        return ANONYMOUS_ADMIN
    p = verify(request.cookies.get(COOKIE), request.app.state.settings)
    return p if p is not None and p.has("merchandiser") else None


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/dashboard/login?" + urlencode({"next": target}), status_code=303)


def _safe_next(value: str | None) -> str:
    return value if value and value.startswith("/dashboard") and "//" not in value else "/dashboard"


@dataclass
class View:
    """What a page handler hands back: a template and its context."""

    template: str
    title: str
    ctx: dict[str, Any] = field(default_factory=dict)
    ranged: bool = True  # offer the time-range picker
    range_key: str | None = None  # the page's own default range


Handler = Callable[[Request, Runtime, dict[str, str]], View]


def _render(request: Request, view: View, principal: Principal, page: str) -> HTMLResponse:
    query = dict(request.query_params)
    range_key = query.get("range") or view.range_key or DEFAULT_RANGE

    def query_for(key: str) -> str:
        return urlencode({**query, "range": key})

    html = _ENV.get_template(view.template).render(
        principal=principal,
        nav=[
            {"href": f"/dashboard/{name}".rstrip("/"), "title": title, "active": name == page}
            for name, title in PAGES
        ],
        ranges=[(k, v[0]) for k, v in RANGES.items()] if view.ranged else [],
        range_key=range_key,
        query_for=query_for,
        currency=request.app.state.settings.currency,
        title=view.title,
        **view.ctx,
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def page(name: str, *, post: bool = False) -> Callable[[Handler], Handler]:
    """Register ``handler`` as the page ``/dashboard/<name>``: sign-in check, the
    handler in the thread pool (it reads the store), the shared layout."""

    def register(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            principal = _principal(request)
            if principal is None:
                return _to_login(request)
            form: dict[str, str] = {}
            if request.method == "POST":
                body = parse_qs(
                    (await request.body()).decode("utf-8", "replace"), keep_blank_values=True
                )
                form = {k: v[-1] for k, v in body.items()}
            view = await run_in_threadpool(handler, request, runtime_from(request), form)
            return _render(request, view, principal, name)

        methods = ["GET", "POST"] if post else ["GET"]
        path = f"/{name}" if name else ""
        router.add_api_route(path, endpoint, methods=methods, name=f"dashboard_{name or 'home'}")
        return handler

    return register


def _window(request: Request) -> tuple[datetime, datetime]:
    return resolve(request.query_params.get("range"))


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    html = _ENV.get_template("login.html").render(next=_safe_next(next), error=None)
    return HTMLResponse(html)


@router.post("/login")
async def login(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key = (form.get("api_key") or [""])[0]
    target = _safe_next((form.get("next") or [""])[0])
    ring: KeyRing = request.app.state.runtime.keyring
    principal = ring.authenticate(key)
    if principal is None or not principal.has("merchandiser"):
        error = (
            "That key is not valid."
            if principal is None
            else "That key lacks the merchandiser role."
        )
        html = _ENV.get_template("login.html").render(next=target, error=error)
        return HTMLResponse(html, status_code=401 if principal is None else 403)
    settings = request.app.state.settings
    resp = RedirectResponse(target, status_code=303)
    resp.set_cookie(
        COOKIE,
        sign(principal, settings),
        max_age=int(settings.dashboard_session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/dashboard",
    )
    return resp


@router.post("/logout")
def logout() -> RedirectResponse:
    resp = RedirectResponse("/dashboard/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/dashboard")
    return resp


@router.get("/static/plotly.min.js")
def plotly_js(request: Request) -> Response:
    if _principal(request) is None:
        return Response(status_code=401)
    return Response(
        _PLOTLY_JS.read_bytes(),
        media_type="application/javascript",
        headers={"Cache-Control": "private, max-age=86400"},
    )


@page("")
def overview(request: Request, runtime: Runtime, form: dict[str, str]) -> View:
    start, end = _window(request)
    report = compute_metrics(runtime.db, start, end, ("placement",), decisions=runtime.decisions)
    trend = compute_metrics(runtime.db, start, end, ("placement", "time"), grain="day")
    by_placement: dict[str, tuple[list[datetime], list[float]]] = {}
    for r in trend.rows:
        xs, ys = by_placement.setdefault(r.placement, ([], []))
        assert r.period_start is not None
        xs.append(r.period_start)
        ys.append(r.revenue)
    currency = runtime.settings.currency
    return View(
        "overview.html",
        "Money from recommendations",
        {
            "start": start,
            "end": end,
            "report": report,
            "open_alerts": len(AlertStore(runtime.db).list(status="open")),
            "revenue_chart": charts.bars(
                "Revenue by placement",
                [r.placement for r in report.rows],
                [r.revenue for r in report.rows],
                currency,
            ),
            "trend_chart": charts.lines("Revenue per day", by_placement, currency),
        },
    )


@page("categories")
def categories(request: Request, runtime: Runtime, form: dict[str, str]) -> View:
    start, end = _window(request)
    placement = request.query_params.get("placement") or ""
    category = request.query_params.get("category") or ""
    report = compute_metrics(runtime.db, start, end, ("placement", "category"))
    placements = sorted({r.placement for r in report.rows})
    rows = [r for r in report.rows if not placement or r.placement == placement]
    rows.sort(key=lambda r: -r.revenue)
    per_cat: dict[str, float] = {}
    for r in rows:
        per_cat[r.category] = per_cat.get(r.category, 0.0) + r.revenue
    series_chart = None
    if placement and category:
        series_chart = _series_chart(runtime, placement, category, start, end)
    return View(
        "categories.html",
        "Categories" + (f": {placement.replace('_', ' ')}" if placement else ""),
        {
            "start": start,
            "end": end,
            "rows": rows,
            "placements": placements,
            "placement": placement,
            "category": category,
            "series_chart": series_chart,
            "category_chart": charts.bars(
                "Revenue by category",
                list(per_cat),
                list(per_cat.values()),
                runtime.settings.currency,
            ),
        },
    )


def _series_chart(
    runtime: Runtime, placement: str, category: str, start: datetime, end: datetime
) -> str | None:
    """Revenue per hour of one series against its hour-of-week baseline (the
    reference days before the window)."""
    ref_hours = runtime.settings.alert_reference_days * 24
    series = hourly_series(runtime.db, start - timedelta(hours=ref_hours), end)
    if (placement, category) not in series.keys:
        return None
    s = series.keys.index((placement, category))
    base = fit_baseline(series.window(0, ref_hours))
    shown = series.window(ref_hours, series.hours)
    hours = [shown.time_of(t) for t in range(shown.hours)]
    expected = base.revenue_per_hour[s, hour_of_week(shown.epoch_hours)]
    return charts.lines(
        "Revenue per hour",
        {
            "actual": (hours, shown.revenue[s].tolist()),
            "expected (hour-of-week baseline)": (hours, expected.tolist()),
        },
        runtime.settings.currency,
    )


@page("alerts")
def alerts_page(request: Request, runtime: Runtime, form: dict[str, str]) -> View:
    items = AlertStore(runtime.db).list(limit=200)
    items.sort(key=lambda a: (a.status != "open", a.severity != "page", -a.at_risk_per_hour))
    opened = [a for a in items if a.status == "open"]
    s = runtime.settings
    chart = (
        charts.bars(
            "Revenue at risk per hour (open alerts)",
            [f"{a.placement}/{a.category}" for a in opened],
            [a.at_risk_per_hour for a in opened],
            f"{s.currency} per hour",
        )
        if opened
        else None
    )
    return View(
        "alerts.html",
        "Alerts",
        {
            "alerts": items,
            "chart": chart,
            "budget": s.alert_budget_per_day,
            "fast": s.alert_fast_window_hours,
            "slow": s.alert_slow_window_hours,
            "every": s.alert_evaluate_every_seconds,
        },
        ranged=False,
    )


@page("drift")
def drift_page(request: Request, runtime: Runtime, form: dict[str, str]) -> View:
    range_key = request.query_params.get("range") or "24h"
    start, end = resolve(range_key)
    reference_days = 14
    ref = (start - timedelta(days=reference_days), start)
    report = drift_report(runtime.db, ref, (start, end), len(runtime.snapshot), runtime.decisions)
    figures = [
        charts.compare_shares(r.name.capitalize(), r.bins, r.reference_share, r.current_share)
        for r in report.results
    ]
    return View(
        "drift.html",
        "Drift",
        {
            "start": start,
            "end": end,
            "report": report,
            "charts": figures,
            "reference_days": reference_days,
            "has_decisions": bool(runtime.decisions.source_mix(*ref)),
        },
        range_key="24h",
    )


def _slot_page(slot: Slot) -> None:
    def handler(request: Request, runtime: Runtime, form: dict[str, str]) -> View:
        start, end = _window(request)
        query = dict(request.query_params)
        provider = runtime.dashboard_slots.get(slot.name) or BUILT_IN.get(slot.name)
        params = SlotParams(start, end, query, form, query.get("range") or DEFAULT_RANGE)
        panel = provider(runtime, params) if provider else None
        return View(
            "slot.html",
            slot.title,
            {
                "start": start,
                "end": end,
                "slot": slot,
                "panel": panel,
                "query": query,
                "figures": [charts.from_dict(f) for f in panel.figures] if panel else [],
            },
            ranged=panel.ranged if panel else False,
        )

    page(slot.name, post=slot.accepts_post)(handler)


for _slot in SLOTS:
    _slot_page(_slot)
