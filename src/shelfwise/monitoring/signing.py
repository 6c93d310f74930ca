"""Signed webhooks: HMAC-SHA256 over a timestamp and the body, as a receiver checks them.

With ``alert_webhook_secret`` set, every webhook carries

    X-Shelfwise-Timestamp: <Unix seconds>
    X-Shelfwise-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>

A receiver recomputes the HMAC over the raw body it received, compares in constant
time, and refuses a timestamp further than a few minutes from its clock (a captured
request cannot be replayed later). :func:`verify` does exactly that.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Shelfwise-Timestamp"
SIGNATURE_HEADER = "X-Shelfwise-Signature"
SCHEME = "v1"
TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), b"%d." % timestamp + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The two headers that sign ``body`` at ``now`` (default: the clock)."""
    timestamp = int(time.time() if now is None else now)
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def verify(
    secret: str,
    body: bytes,
    timestamp: str | None,
    signed: str | None,
    now: float | None = None,
    tolerance: float = TOLERANCE_SECONDS,
) -> bool:
    """Whether ``signed`` is the signature of ``body`` at ``timestamp``, made with
    ``secret`` no further than ``tolerance`` seconds from ``now``."""
    if not timestamp or not signed or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    at = int(timestamp)
    if abs((time.time() if now is None else now) - at) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, at, body), signed)
