"""Dashboard sign-in: an API key exchanged for a signed, HttpOnly session cookie.

The cookie names the key it was opened with — its name and a keyed fingerprint
of its digest — plus a random session id and an expiry, signed with
itsdangerous (HMAC-SHA256). It carries no roles: every request looks the key up
in the key ring, so revoking or expiring the key ends its sessions on every
worker within the ring's refresh time (2 s). Each form carries a token derived
from the session id (``csrf_token``), checked on every POST.

The secret is ``dashboard_secret`` when set, otherwise a random one generated
once and kept in the store (``access.secrets``), so every worker and machine
agrees. It is never derived from anything public.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, Signer, URLSafeSerializer

from shelfwise.access import KeyRing, Principal
from shelfwise.access.secrets import instance_secret
from shelfwise.config import Settings
from shelfwise.store.engine import Database

COOKIE = "shelfwise_session"
CSRF_FIELD = "csrf_token"
SECRET_NAME = "dashboard_session"
_MAX_COOKIE = 1024  # ours are ~200 characters; anything longer is not ours


@dataclass(frozen=True)
class Session:
    key: str  # the name of the key that signed in
    fingerprint: str  # keyed hash of that key's digest: binds the session to that very key
    sid: str  # random per sign-in; the form token is derived from it
    expires: int  # unix seconds


class Sessions:
    """Opens and reads session cookies and form tokens under one secret."""

    def __init__(self, secret: str, hours: float) -> None:
        sha256 = hashlib.sha256
        self._cookies = URLSafeSerializer(
            secret, salt="shelfwise.dashboard.session", signer_kwargs={"digest_method": sha256}
        )
        self._forms = Signer(secret, salt="shelfwise.dashboard.csrf", digest_method=sha256)
        self._keys = Signer(secret, salt="shelfwise.dashboard.key", digest_method=sha256)
        self.max_age = int(hours * 3600)

    @classmethod
    def of(cls, settings: Settings, db: Database) -> Sessions:
        """The configured secret, else the store's (generated on first use)."""
        secret = settings.dashboard_secret or instance_secret(db, SECRET_NAME)
        return cls(secret, settings.dashboard_session_hours)

    def fingerprint(self, digest: str) -> str:
        return self._keys.get_signature(digest).decode()

    def open(self, key: str, digest: str, now: float | None = None) -> tuple[str, Session]:
        """A new session for the key ``key`` (SHA-256 ``digest``): (cookie value, session)."""
        expires = int((time.time() if now is None else now) + self.max_age)
        session = Session(key, self.fingerprint(digest), secrets.token_urlsafe(16), expires)
        data = {"k": session.key, "f": session.fingerprint, "s": session.sid, "e": expires}
        return self._cookies.dumps(data), session

    def read(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session a cookie holds, or None when it is missing, malformed, forged,
        tampered with or expired."""
        if not cookie or len(cookie) > _MAX_COOKIE or not cookie.isascii():
            return None
        try:
            data: Any = self._cookies.loads(cookie)
        except BadData:
            return None
        if not isinstance(data, dict) or set(data) != {"k", "f", "s", "e"}:
            return None
        key, fingerprint, sid, expires = data["k"], data["f"], data["s"], data["e"]
        if not all(isinstance(v, str) for v in (key, fingerprint, sid)):
            return None
        if not isinstance(expires, int) or expires <= (time.time() if now is None else now):
            return None
        return Session(key, fingerprint, sid, expires)

    def holder(self, session: Session, ring: KeyRing) -> Principal | None:
        """The key a session was opened with, if it is still active (not revoked, not
        expired, still configured)."""
        for digest, principal in ring.active():
            if principal.name == session.key and self._keys.verify_signature(
                digest, session.fingerprint
            ):
                return principal
        return None

    def form_token(self, session: Session) -> str:
        return self._forms.get_signature(session.sid).decode()

    def form_token_ok(self, session: Session, token: str | None) -> bool:
        if not token or not token.isascii():
            return False
        return self._forms.verify_signature(session.sid, token)
