"""Dashboard sign-in: an API key exchanged for a signed, HttpOnly session cookie.

The cookie holds the key's name, roles and expiry, signed with HMAC-SHA256
under ``dashboard_secret``. Without a configured secret one is derived from
the configured key digests, so every worker agrees and a key change logs
everybody out; set ``dashboard_secret`` in production.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from shelfwise.api.auth import Principal
from shelfwise.config import Settings

COOKIE = "shelfwise_session"


def secret_of(settings: Settings) -> bytes:
    if settings.dashboard_secret:
        return settings.dashboard_secret.encode()
    digests = sorted(k.digest() for k in settings.api_keys)
    return hashlib.sha256(("shelfwise-dashboard\0" + "\0".join(digests)).encode()).digest()


def sign(principal: Principal, settings: Settings, now: float | None = None) -> str:
    expires = (now or time.time()) + settings.dashboard_session_hours * 3600
    body = json.dumps({"n": principal.name, "r": sorted(principal.roles), "e": int(expires)})
    payload = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
    mac = hmac.new(secret_of(settings), payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}.{mac}"


def verify(token: str | None, settings: Settings, now: float | None = None) -> Principal | None:
    if not token or "." not in token:
        return None
    payload, mac = token.rsplit(".", 1)
    want = hmac.new(secret_of(settings), payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, want):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        name, roles, expires = str(data["n"]), frozenset(data["r"]), float(data["e"])
    except (ValueError, KeyError, TypeError):
        return None
    if expires < (now or time.time()):
        return None
    return Principal(name=name, roles=roles)
