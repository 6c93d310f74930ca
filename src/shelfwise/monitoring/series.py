"""Hourly money series per placement x category: what alerts and charts read.

Counts are item-level: an impression is one recommended item shown, a click is
a ``rec_click``, an order is a purchase line carrying a ``rec_id`` and revenue
is that line's quantity x unit price. ``start`` is the first hour (aware UTC,
on the hour); column ``t`` covers ``[start + t h, start + (t + 1) h)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

HOURS_PER_WEEK = 168
SECONDS_PER_HOUR = 3600


def floor_hour(when: datetime) -> datetime:
    """The start of the UTC hour that holds ``when``."""
    when = when.astimezone(UTC)
    return when.replace(minute=0, second=0, microsecond=0)


def epoch_hour(when: datetime) -> int:
    """Whole hours since 1970-01-01 UTC."""
    return int(when.astimezone(UTC).timestamp()) // SECONDS_PER_HOUR


def hour_of_week(epoch_hours: IntArray) -> IntArray:
    """0 = Monday 00:00 UTC … 167 = Sunday 23:00 UTC (1970-01-01 was a Thursday)."""
    return (epoch_hours + 3 * 24) % HOURS_PER_WEEK


@dataclass
class HourlySeries:
    """Arrays of shape (series, hours) for one set of placement x category keys."""

    keys: list[tuple[str, str]]
    start: datetime
    impressions: FloatArray
    clicks: FloatArray
    orders: FloatArray
    revenue: FloatArray

    def __post_init__(self) -> None:
        shape = (len(self.keys), self.impressions.shape[1] if self.impressions.ndim == 2 else 0)
        for name in ("impressions", "clicks", "orders", "revenue"):
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} must have shape {shape}")

    @property
    def hours(self) -> int:
        return int(self.impressions.shape[1])

    @property
    def epoch_hours(self) -> IntArray:
        return epoch_hour(self.start) + np.arange(self.hours, dtype=np.int64)

    def time_of(self, t: int) -> datetime:
        return self.start + timedelta(hours=t)

    def index_of(self, when: datetime) -> int:
        return epoch_hour(when) - epoch_hour(self.start)

    def window(self, lo: int, hi: int) -> HourlySeries:
        """Columns ``lo..hi-1`` as a new series."""
        return HourlySeries(
            keys=self.keys,
            start=self.time_of(lo),
            impressions=self.impressions[:, lo:hi],
            clicks=self.clicks[:, lo:hi],
            orders=self.orders[:, lo:hi],
            revenue=self.revenue[:, lo:hi],
        )

    @classmethod
    def empty(cls, keys: list[tuple[str, str]], start: datetime, hours: int) -> HourlySeries:
        z = np.zeros((len(keys), hours))
        return cls(keys, floor_hour(start), z.copy(), z.copy(), z.copy(), z.copy())
