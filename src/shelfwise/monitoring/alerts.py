"""Cost-weighted alerts: evaluate the store, keep one open alert per series, notify.

``evaluate_alerts`` reads the hourly placement x category series of the last
``alert_reference_days`` (the baseline) plus the onset look-back, runs the
detector (``monitoring.detector``) at the current hour, and reconciles the
``alerts`` table: a new finding opens an alert, a finding on an open series
updates it, an open series without a finding for ``alert_resolve_after_hours``
is resolved (one episode, one alert). Newly opened or
escalated alerts are posted to ``alert_webhook_url``.
"""

from __future__ import annotations

import json
import logging
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, update

from shelfwise.config import Settings
from shelfwise.errors import InvalidInput
from shelfwise.monitoring.calibrate import Calibration, calibrate, history_hours
from shelfwise.monitoring.detector import (
    DetectorConfig,
    Finding,
    evaluate,
    fit_baseline,
)
from shelfwise.monitoring.metrics import hourly_series
from shelfwise.monitoring.money import money_at_risk
from shelfwise.monitoring.series import HourlySeries
from shelfwise.monitoring.signing import signed_headers
from shelfwise.store.deadletters import DeadLetters, OnFailure
from shelfwise.store.engine import Database
from shelfwise.store.failures import unreachable
from shelfwise.store.tables import alerts
from shelfwise.store.types import utcnow

log = logging.getLogger("shelfwise.monitoring")

Status = Literal["open", "resolved"]


class Alert(BaseModel):
    """One alert as listed by the API, the CLI and the webhook."""

    model_config = ConfigDict(extra="forbid")

    alert_id: str
    placement: str
    category: str
    severity: Literal["page", "ticket"]
    status: Status
    stage: str
    since: datetime
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    at_risk_per_hour: float
    expected_per_hour: float
    observed_per_hour: float
    burn_rate: float
    p_value: float
    window_hours: int
    currency: str
    dashboard_path: str
    notified_at: datetime | None

    def summary(self) -> str:
        return (
            f"{self.severity.upper()} {self.placement} / {self.category}: "
            f"{self.at_risk_per_hour:,.0f} {self.currency}/h at risk since "
            f"{self.since:%Y-%m-%d %H:%M} UTC ({self.stage.replace('_', ' ')})"
        )


def detector_config(settings: Settings) -> DetectorConfig:
    return DetectorConfig(
        budget_per_day=settings.alert_budget_per_day,
        fast_window_hours=settings.alert_fast_window_hours,
        slow_window_hours=settings.alert_slow_window_hours,
        page_burn=settings.alert_page_burn,
        ticket_burn=settings.alert_ticket_burn,
        fdr=settings.alert_fdr,
        resolve_after_hours=settings.alert_resolve_after_hours,
    )


def dashboard_path(placement: str, category: str) -> str:
    return "/dashboard/categories?" + urlencode({"placement": placement, "category": category})


class AlertStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def list(self, status: Status | None = None, limit: int = 100) -> list[Alert]:
        stmt = select(alerts).order_by(alerts.c.opened_at.desc(), alerts.c.alert_id).limit(limit)
        if status is not None:
            stmt = stmt.where(alerts.c.status == status)
        with self.db.engine.connect() as conn:
            return [Alert.model_validate(dict(r._mapping)) for r in conn.execute(stmt)]

    def save(self, alert: Alert) -> None:
        row = alert.model_dump()
        with self.db.engine.begin() as conn:
            done = conn.execute(
                update(alerts).where(alerts.c.alert_id == alert.alert_id).values(**row)
            )
            if done.rowcount == 0:
                conn.execute(alerts.insert().values(**row))


@dataclass(frozen=True)
class Evaluation:
    evaluated_at: datetime
    series: int
    opened: list[Alert]
    updated: list[Alert]
    resolved: list[Alert]
    notified: int


def _alert_from(
    f: Finding,
    since: datetime,
    risk: float,
    expected: float,
    observed: float,
    now: datetime,
    currency: str,
) -> Alert:
    placement, category = f.key
    return Alert(
        alert_id=uuid.uuid4().hex,
        placement=placement,
        category=category,
        severity=f.severity,
        status="open",
        stage=f.stage,
        since=since,
        opened_at=now,
        updated_at=now,
        resolved_at=None,
        at_risk_per_hour=round(risk, 2),
        expected_per_hour=round(expected, 2),
        observed_per_hour=round(observed, 2),
        burn_rate=round(f.burn_rate, 3),
        p_value=f.p_value,
        window_hours=f.window_hours,
        currency=currency,
        dashboard_path=dashboard_path(placement, category),
        notified_at=None,
    )


EVALUATOR = "alert-evaluator"  # its label in shelfwise_background_failures_total


def _save_each(store: AlertStore, letters: DeadLetters, items: list[Alert]) -> list[Alert]:
    """Save alerts one by one; one the store refuses goes to the dead letters, not
    in the way of the others. Returns those saved (an unreachable store raises)."""
    saved: list[Alert] = []
    for a in items:
        try:
            store.save(a)
        except Exception as e:
            if unreachable(e):
                raise
            letters.keep(a.alert_id, a.model_dump(mode="json"), e)
        else:
            saved.append(a)
    return saved


def evaluate_alerts(
    db: Database,
    settings: Settings,
    now: datetime | None = None,
    series: HourlySeries | None = None,
    on_failure: OnFailure | None = None,
) -> Evaluation:
    """Run the detector at the hour before ``now`` and reconcile the alerts table.

    ``series`` replaces the store's hourly series (a replay or a simulation); it
    must hold the reference days followed by the onset look-back. An alert the store
    refuses is kept in the dead letters (counted by ``on_failure``) and left out of
    the evaluation; the others are saved and notified.
    """
    now = now or utcnow()
    cfg = detector_config(settings)
    ref_hours = settings.alert_reference_days * 24
    if series is None:
        end = now.replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(hours=ref_hours + cfg.onset_lookback_hours)
        series = hourly_series(db, start, end, settings.attribution_window_hours)
    store = AlertStore(db)
    open_by_key = {(a.placement, a.category): a for a in store.list(status="open", limit=10_000)}
    opened: list[Alert] = []
    updated: list[Alert] = []
    if series.keys and series.impressions[:, :ref_hours].sum() > 0:
        base = fit_baseline(
            series.window(0, ref_hours),
            (cfg.fast_window_hours, cfg.slow_window_hours),
            cfg.onset_lookback_hours,
        )
        for f in evaluate(base, series, series.hours, cfg):
            o = money_at_risk(base, series, f, series.hours, cfg)
            risk = o.at_risk_per_hour if o.at_risk_per_hour > 0 else f.at_risk_per_hour
            fresh = _alert_from(
                f,
                series.time_of(o.start),
                risk,
                o.expected_revenue_per_hour,
                o.observed_revenue_per_hour,
                now,
                settings.currency,
            )
            prior = open_by_key.pop(f.key, None)
            if prior is None:
                opened.append(fresh)
                continue
            escalated = prior.severity == "ticket" and fresh.severity == "page"
            updated.append(
                fresh.model_copy(
                    update={
                        "alert_id": prior.alert_id,
                        "opened_at": prior.opened_at,
                        "since": min(prior.since, fresh.since),
                        "notified_at": None if escalated else prior.notified_at,
                    }
                )
            )
    # An alert without a finding now stays open until its series has been quiet for
    # ``resolve_after_hours`` (its last finding is its ``updated_at``): a loss that dips
    # below the thresholds for a few hours is still the same episode.
    quiet = timedelta(hours=cfg.resolve_after_hours)
    resolved = [
        a.model_copy(update={"status": "resolved", "resolved_at": now, "updated_at": now})
        for a in open_by_key.values()
        if now - a.updated_at >= quiet
    ]
    letters = DeadLetters(db, EVALUATOR, on_failure)
    opened, updated, resolved = (_save_each(store, letters, x) for x in (opened, updated, resolved))
    notified = 0
    pending = [a for a in (*opened, *updated) if a.notified_at is None]
    if (
        settings.alert_webhook_url
        and pending
        and send_webhook(settings.alert_webhook_url, pending, secret=settings.alert_webhook_secret)
    ):
        sent = [a.model_copy(update={"notified_at": now}) for a in pending]
        notified = len(_save_each(store, letters, sent))
    return Evaluation(now, len(series.keys), opened, updated, resolved, notified)


def calibrate_store(
    db: Database, settings: Settings, weeks: int, now: datetime | None = None
) -> Calibration:
    """Replay the store's last ``weeks`` weeks at the configured thresholds (see
    ``monitoring.calibrate``). The store must hold the reference days and the
    onset look-back before those weeks; otherwise ``not_enough_history``."""
    cfg = detector_config(settings)
    ref_hours = settings.alert_reference_days * 24
    end = (now or utcnow()).replace(minute=0, second=0, microsecond=0)
    need = history_hours(weeks, settings.alert_reference_days, cfg)
    series = hourly_series(db, end - timedelta(hours=need), end, settings.attribution_window_hours)
    first_ref = series.impressions[:, :24].sum() if series.keys else 0.0
    if not series.keys or first_ref == 0:
        raise InvalidInput(
            f"replaying {weeks} week(s) needs {need / 24:.0f} days of recommendation events "
            f"({settings.alert_reference_days} reference days, the onset look-back, then the "
            f"weeks replayed); the store has none on the first of those days",
            code="not_enough_history",
        )
    return calibrate(series, ref_hours, cfg, weeks * 7 * 24)


def send_webhook(
    url: str, items: list[Alert], timeout: float = 5.0, secret: str | None = None
) -> bool:
    """POST ``{"alerts": [...]}`` as JSON, signed with ``secret`` when given
    (monitoring/signing.py); a failure is logged, never raised."""
    body = json.dumps(
        {
            "source": "shelfwise",
            "alerts": [{**a.model_dump(mode="json"), "summary": a.summary()} for a in items],
        }
    ).encode()
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers.update(signed_headers(secret, body))
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            ok = 200 <= int(resp.status) < 300
    except OSError as e:
        log.warning("alert webhook %s failed: %s", url, e)
        return False
    if not ok:
        log.warning("alert webhook %s answered %s", url, resp.status)
    return ok
