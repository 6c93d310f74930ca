"""The dashboard's routes: sign-in, money overview, categories, alerts, drift, provider
slots, and the rule editor (``rules/edit``, ``rules/change``; see ``dashboard.ruleedit``).

Each page is a handler ``(request, runtime, form) -> View`` registered with
``@page(name)``, which does the sign-in check and the shared layout; a handler
that saved something answers a 303 redirect instead (post/redirect/get).

Every page needs a signed session cookie (see ``dashboard.session``) for a
key that is still active and holds the ``merchandiser`` role (``admin``
implies it); anything else — no cookie, a forged, expired or malformed one, a
revoked key — is sent to the sign-in form. Every POST must come from the
dashboard itself: the ``Origin`` (or ``Referer``) header, when sent, names
this host, and the form carries the session's token; otherwise 403
``csrf_origin_mismatch`` / ``csrf_token_invalid``. Plotly's JavaScript is
served from the installed plotly package, never from a CDN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from shelfwise.access import ANONYMOUS_ADMIN, KeyRing, Principal
from shelfwise.config import hash_key
from shelfwise.dashboard import charts, ruleedit
from shelfwise.dashboard.format import environment, label, placement_label
from shelfwise.dashboard.panels import BUILT_IN
from shelfwise.dashboard.panels.rules import rules_panel
from shelfwise.dashboard.session import COOKIE, CSRF_FIELD, Session, Sessions
from shelfwise.dashboard.slots import SLOTS, Slot, SlotParams, slot_providers
from shelfwise.errors import Forbidden, ShelfwiseError
from shelfwise.monitoring.alerts import AlertStore
from shelfwise.monitoring.attribution import window_label
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


@dataclass(frozen=True)
class Visitor:
    principal: Principal
    session: Session | None  # None with auth_enabled: false (nothing to sign in to)


def _sessions(request: Request) -> Sessions:
    """The app's session signer, made on first use (it may read the secret from the store)."""
    state = request.app.state
    sessions: Sessions | None = getattr(state, "dashboard_sessions", None)
    if sessions is None:
        sessions = state.dashboard_sessions = Sessions.of(state.settings, state.runtime.db)
    return sessions


def _visitor(request: Request) -> Visitor | None:
    ring: KeyRing = request.app.state.runtime.keyring
    if not ring.enabled:
        return Visitor(ANONYMOUS_ADMIN, None)
    sessions = _sessions(request)
    session = sessions.read(request.cookies.get(COOKIE))
    principal = sessions.holder(session, ring) if session is not None else None
    if principal is None or not principal.has("merchandiser"):
        return None
    return Visitor(principal, session)


def _check_origin(request: Request) -> None:
    """A POST's ``Origin`` (else ``Referer``), when the browser sends one, must name this
    host; without either the form token decides alone."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return
    parts = urlsplit(source) if source.isascii() else None
    host = request.headers.get("host", "")
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or parts.netloc.lower() != host.lower()
    ):
        raise Forbidden(
            "this form was not sent from the dashboard's own pages", code="csrf_origin_mismatch"
        )


def _check_post(request: Request, visitor: Visitor, form: dict[str, str]) -> None:
    """Refuse a POST that another site could have made the browser send."""
    _check_origin(request)
    token = form.pop(CSRF_FIELD, None)
    if visitor.session is not None and not _sessions(request).form_token_ok(visitor.session, token):
        raise Forbidden(
            "the form's token is missing or stale: reload the page and send it again",
            code="csrf_token_invalid",
        )


async def _form(request: Request) -> dict[str, str]:
    body = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in body.items()}


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


Handler = Callable[[Request, Runtime, dict[str, str]], View | RedirectResponse]


def _render(request: Request, view: View, visitor: Visitor, page: str) -> HTMLResponse:
    query = dict(request.query_params)
    range_key = query.get("range") or view.range_key or DEFAULT_RANGE

    def query_for(key: str) -> str:
        return urlencode({**query, "range": key})

    session = visitor.session
    html = _ENV.get_template(view.template).render(
        principal=visitor.principal,
        csrf_field=CSRF_FIELD,
        csrf_token=_sessions(request).form_token(session) if session else "",
        nav=[
            {
                "href": f"/dashboard/{name}".rstrip("/"),
                "title": title,
                # ``rules/edit`` is part of the Rules page
                "active": name == page or (bool(name) and page.startswith(name + "/")),
            }
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
            visitor = _visitor(request)
            if visitor is None:
                return _to_login(request)
            form: dict[str, str] = {}
            if request.method == "POST":
                form = await _form(request)
                _check_post(request, visitor, form)
            request.state.visitor = visitor
            runtime: Runtime = request.app.state.runtime
            view = await run_in_threadpool(handler, request, runtime, form)
            if isinstance(view, RedirectResponse):
                return view
            return _render(request, view, visitor, name)

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
    _check_origin(request)
    form = await _form(request)
    key = form.get("api_key", "")
    target = _safe_next(form.get("next"))
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
    sessions = _sessions(request)
    cookie, _ = sessions.open(principal.name, hash_key(key))
    secure = request.app.state.settings.dashboard_cookie_secure
    resp = RedirectResponse(target, status_code=303)
    resp.set_cookie(
        COOKIE,
        cookie,
        max_age=sessions.max_age,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" if secure is None else secure,
        path="/dashboard",
    )
    return resp


@router.post("/logout")
async def logout(request: Request) -> RedirectResponse:
    """Sign out: clears this browser's cookie (revoke the key to end every session)."""
    visitor = _visitor(request)
    if visitor is not None:
        _check_post(request, visitor, await _form(request))
    resp = RedirectResponse("/dashboard/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/dashboard")
    return resp


@router.get("/static/plotly.min.js")
def plotly_js(request: Request) -> Response:
    if _visitor(request) is None:
        return Response(status_code=401)
    return Response(
        _PLOTLY_JS.read_bytes(),
        media_type="application/javascript",
        headers={"Cache-Control": "private, max-age=86400"},
    )


@page("")
def overview(request: Request, runtime: Runtime, form: dict[str, str]) -> View:
    start, end = _window(request)
    window = runtime.settings.attribution_window_hours
    report = compute_metrics(
        runtime.db, start, end, ("placement",), decisions=runtime.decisions, window_hours=window
    )
    trend = compute_metrics(
        runtime.db, start, end, ("placement", "time"), grain="day", window_hours=window
    )
    by_placement: dict[str, tuple[list[datetime], list[float]]] = {}
    for r in trend.rows:
        xs, ys = by_placement.setdefault(placement_label(r.placement), ([], []))
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
                f"Revenue from recommendations by placement ({window_label(window)})",
                [placement_label(r.placement) for r in report.rows],
                [r.revenue for r in report.rows],
                currency,
            ),
            "trend_chart": charts.lines(
                f"Revenue from recommendations per day ({window_label(window)})",
                by_placement,
                currency,
            ),
        },
    )


@page("categories")
def categories(request: Request, runtime: Runtime, form: dict[str, str]) -> View:
    start, end = _window(request)
    placement = request.query_params.get("placement") or ""
    category = request.query_params.get("category") or ""
    report = compute_metrics(
        runtime.db,
        start,
        end,
        ("placement", "category"),
        window_hours=runtime.settings.attribution_window_hours,
    )
    coherence = runtime.coherence(start, end)
    placements = sorted({r.placement for r in report.rows} | {r.placement for r in coherence.rows})
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
        "Categories" + (f": {placement_label(placement)}" if placement else ""),
        {
            "start": start,
            "end": end,
            "rows": rows,
            "window_hours": report.attribution_window_hours,
            "placements": placements,
            "placement": placement,
            "category": category,
            "series_chart": series_chart,
            "coherence": coherence,
            # all placements: one row each; one product placement: its viewed categories too
            "coherence_rows": coherence.rows_of(placement or None, by_category=bool(placement)),
            "category_chart": charts.bars(
                "Revenue from recommendations by category"
                f" ({window_label(report.attribution_window_hours)})",
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
    series = hourly_series(
        runtime.db,
        start - timedelta(hours=ref_hours),
        end,
        runtime.settings.attribution_window_hours,
    )
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
            [f"{placement_label(a.placement)} · {label(a.category)}" for a in opened],
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
            # Slates in each window: the score and source-mix comparisons need both.
            "slates": (_slates(runtime, *ref), _slates(runtime, start, end)),
        },
        range_key="24h",
    )


def _visitor_of(request: Request) -> Visitor:
    visitor: Visitor = request.state.visitor  # set by ``page`` before the handler runs
    return visitor


@page("rules/edit", post=True)
def rule_editor(
    request: Request, runtime: Runtime, form: dict[str, str]
) -> View | RedirectResponse:
    """A new rule of one type, or a stored one, as a form; POSTed, it is saved."""
    got = ruleedit.editor(runtime, _visitor_of(request).principal, dict(request.query_params), form)
    if isinstance(got, ruleedit.Redirect):
        return RedirectResponse(got.url, status_code=303)
    title = "New rule" if got["picker"] else _editor_title(got)
    return View("rule_form.html", title, got, ranged=False)


def _editor_title(ctx: dict[str, Any]) -> str:
    values = ctx["values"]
    kind = label(ctx["rule_type"]).lower()
    return f"Edit rule {values.get('id', '')}" if ctx["stored"] else f"New {kind} rule"


@page("rules/change", post=True)
def rule_change(
    request: Request, runtime: Runtime, form: dict[str, str]
) -> View | RedirectResponse:
    """Enable, disable, delete or restore (POST); a refusal is shown on the rules page."""
    if not form:
        return RedirectResponse("/dashboard/rules", status_code=303)
    visitor = _visitor_of(request)
    try:
        done = ruleedit.change(runtime, visitor.principal, form)
    except Forbidden:
        raise
    except ShelfwiseError as e:
        query = {"rule": form.get("rule", "")} if form.get("rule") else {}
        start, end = _window(request)
        params = SlotParams(start, end, query, {}, DEFAULT_RANGE, visitor.principal)
        panel = replace(rules_panel(runtime, params), error=f"{e.code}: {e.message}")
        rules = next(s for s in SLOTS if s.name == "rules")
        return View(
            "slot.html",
            rules.title,
            {
                "start": start,
                "end": end,
                "slot": rules,
                "panel": panel,
                "query": query,
                "figures": [],
            },
            ranged=False,
        )
    return RedirectResponse(done.url, status_code=303)


def _slates(runtime: Runtime, start: datetime, end: datetime) -> int:
    """Slates the decision log holds for ``[start, end)``."""
    return sum(c.slates for c in runtime.decisions.served(start, end).values())


def _slot_page(slot: Slot) -> None:
    def handler(request: Request, runtime: Runtime, form: dict[str, str]) -> View:
        start, end = _window(request)
        query = dict(request.query_params)
        provider = slot_providers(request.app).get(slot.name) or BUILT_IN.get(slot.name)
        params = SlotParams(
            start,
            end,
            query,
            form,
            query.get("range") or DEFAULT_RANGE,
            _visitor_of(request).principal,
        )
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
