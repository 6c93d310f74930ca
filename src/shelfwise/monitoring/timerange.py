"""Named time ranges shared by the API, the CLI and the dashboard."""

from __future__ import annotations

from datetime import datetime, timedelta

from shelfwise.errors import InvalidInput
from shelfwise.monitoring.series import floor_hour
from shelfwise.store.types import utcnow

RANGES: dict[str, tuple[str, timedelta]] = {
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "14d": ("Last 14 days", timedelta(days=14)),
    "30d": ("Last 30 days", timedelta(days=30)),
}
DEFAULT_RANGE = "7d"


def resolve(
    range_name: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    now: datetime | None = None,
) -> tuple[datetime, datetime]:
    """``[start, end)``: explicit bounds win; else a named range ending at the next hour."""
    if start is not None or end is not None:
        if start is None or end is None:
            raise InvalidInput("give both start and end, or a range", code="invalid_time_range")
        if start.tzinfo is None or end.tzinfo is None:
            raise InvalidInput("start and end need a time zone", code="invalid_time_range")
        if end <= start:
            raise InvalidInput("end must be after start", code="invalid_time_range")
        return start, end
    name = range_name or DEFAULT_RANGE
    if name not in RANGES:
        raise InvalidInput(
            f"unknown range {name!r}; use one of {', '.join(RANGES)}", code="invalid_time_range"
        )
    stop = floor_hour(now or utcnow()) + timedelta(hours=1)
    return stop - RANGES[name][1], stop
