"""API keys: configured ones (Settings) plus ones created at run time (the store).

Keys are held and compared only as SHA-256 digests. Rotation without downtime:
create a new key, move clients to it, revoke the old one. Every worker re-reads
the store's keys at most every ``refresh_seconds`` (default 2 s), so a revoked
key stops working on every worker within that time, with no restart.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from shelfwise.access.customers import SECRET_NAME as CUSTOMER_TOKENS
from shelfwise.access.customers import key_secret
from shelfwise.access.secrets import instance_secret
from shelfwise.config import STOREFRONT, ApiKey, Role, check_storefront_key, hash_key
from shelfwise.errors import InvalidInput, NotFound
from shelfwise.store.engine import Database
from shelfwise.store.tables import api_keys
from shelfwise.store.types import utcnow

log = logging.getLogger("shelfwise.access")


@dataclass(frozen=True)
class Principal:
    name: str
    roles: frozenset[str]
    # A storefront key's: the origins its pages run on, its own rate limit (None: the
    # setting), and an id its rate limit is counted under (a prefix of its digest).
    origins: frozenset[str] = field(default=frozenset(), compare=False)
    rate_limit: str | None = field(default=None, compare=False)
    key_id: str = field(default="", compare=False)

    def has(self, role: Role) -> bool:
        return role in self.roles or "admin" in self.roles

    @property
    def storefront(self) -> bool:
        """A browser's key: its origins and rate limits apply (api/storefront.py)."""
        return STOREFRONT in self.roles


def _principal(
    name: str, digest: str, roles: Iterable[str], origins: Iterable[str] | None, limit: str | None
) -> Principal:
    return Principal(name, frozenset(roles), frozenset(origins or ()), limit, digest[:16])


# Who everyone is when authentication is off (``auth_enabled: false``).
ANONYMOUS_ADMIN = Principal(name="anonymous", roles=frozenset({"admin"}))


class StoredKey(BaseModel):
    key_id: str
    name: str
    roles: list[Role]
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    origins: list[str] | None = None
    rate_limit: str | None = None


class CreatedKey(StoredKey):
    secret: str  # shown once
    # A storefront key's: what the store's backend signs its customers' tokens with
    # (access/customers.py); ``shelfwise keys customer-secret`` shows it again.
    customer_token_secret: str | None = None


class KeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        name: str,
        roles: list[Role],
        created_by: str,
        expires_at: datetime | None = None,
        origins: list[str] | None = None,
        rate_limit: str | None = None,
    ) -> CreatedKey:
        if not roles:
            raise InvalidInput("a key needs at least one role", code="key_roles_empty")
        try:
            check_storefront_key(roles, origins or (), rate_limit)
        except ValueError as e:
            raise InvalidInput(str(e), code="key_storefront_invalid") from e
        if expires_at is not None and (expires_at.tzinfo is None or expires_at <= utcnow()):
            raise InvalidInput(
                "expires_at is in the past or has no time zone", code="key_expiry_invalid"
            )
        secret = "sw_" + secrets.token_urlsafe(32)
        row = {
            "key_id": secrets.token_hex(8),
            "name": name,
            "sha256": hash_key(secret),
            "roles": sorted(set(roles)),
            "created_at": utcnow(),
            "created_by": created_by,
            "expires_at": expires_at,
            "revoked_at": None,
            "origins": sorted(set(origins)) if STOREFRONT in roles and origins else None,
            "rate_limit": rate_limit,
        }
        with self.db.engine.begin() as conn:
            conn.execute(api_keys.insert().values(**row))
        token_secret = (
            key_secret(instance_secret(self.db, CUSTOMER_TOKENS), hash_key(secret)[:16])
            if STOREFRONT in roles
            else None
        )
        fields = {k: v for k, v in row.items() if k != "sha256"}
        return CreatedKey(secret=secret, customer_token_secret=token_secret, **fields)

    def digest_of(self, ref: str) -> tuple[str, list[str], str] | None:
        """(name, roles, SHA-256 digest) of the usable stored key whose id or name is
        ``ref`` (the newest of that name), or None."""
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                select(api_keys.c.name, api_keys.c.roles, api_keys.c.sha256)
                .where(
                    (api_keys.c.key_id == ref) | (api_keys.c.name == ref),
                    api_keys.c.revoked_at.is_(None),
                )
                .order_by(api_keys.c.created_at.desc())
            ).all()
        return (rows[0].name, [str(r) for r in rows[0].roles], rows[0].sha256) if rows else None

    def list(self) -> list[StoredKey]:
        with self.db.engine.connect() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at)).all()
        return [StoredKey.model_validate(dict(r._mapping)) for r in rows]

    def revoke(self, key_id: str) -> StoredKey:
        with self.db.engine.begin() as conn:
            done = conn.execute(
                update(api_keys)
                .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            ).rowcount
        keys = {k.key_id: k for k in self.list()}
        if key_id not in keys:
            raise NotFound(f"unknown key {key_id!r}", code="key_not_found")
        if not done and keys[key_id].revoked_at is None:  # pragma: no cover - race only
            raise NotFound(f"key {key_id!r} could not be revoked", code="key_not_found")
        return keys[key_id]

    def active_digests(self) -> dict[str, Principal]:
        now = utcnow()
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                select(
                    api_keys.c.name,
                    api_keys.c.sha256,
                    api_keys.c.roles,
                    api_keys.c.expires_at,
                    api_keys.c.origins,
                    api_keys.c.rate_limit,
                ).where(api_keys.c.revoked_at.is_(None))
            ).all()
        return {
            r.sha256: _principal(r.name, r.sha256, r.roles, r.origins, r.rate_limit)
            for r in rows
            if r.expires_at is None or r.expires_at > now
        }


class KeyRing:
    """Authenticates a presented secret against configured and stored keys."""

    def __init__(
        self,
        configured: tuple[ApiKey, ...],
        store: KeyStore | None = None,
        enabled: bool = True,
        refresh_seconds: float = 2.0,
    ) -> None:
        self.enabled = enabled
        self._configured = {
            k.digest(): _principal(k.name, k.digest(), k.roles, k.origins, k.rate_limit)
            for k in configured
        }
        self._store = store
        self._stored: dict[str, Principal] = {}
        self._loaded_at = -1e18
        self._refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._origins: tuple[object, frozenset[str]] = (None, frozenset())

    def _stored_keys(self) -> dict[str, Principal]:
        if self._store is None:
            return {}
        now = time.monotonic()
        if now - self._loaded_at >= self._refresh_seconds:
            with self._lock:
                if now - self._loaded_at >= self._refresh_seconds:
                    try:
                        self._stored = self._store.active_digests()
                    except SQLAlchemyError as e:
                        # Store down: the keys last read keep working (nobody can revoke
                        # one meanwhile: that needs the store); try again after the interval.
                        log.warning("stored keys unreadable (%s): using the last read", e)
                    self._loaded_at = now
        return self._stored

    def invalidate(self) -> None:
        self._loaded_at = -1e18

    def active(self) -> Iterator[tuple[str, Principal]]:
        """Every usable key as (digest, principal): the configured ones, then the stored
        ones neither revoked nor expired as last read (at most ``refresh_seconds`` ago)."""
        yield from self._configured.items()
        yield from self._stored_keys().items()

    def origins(self) -> frozenset[str]:
        """Every origin a usable storefront key names (recomputed when the stored keys
        are re-read): what CORS lets a browser ask with, before it shows a key."""
        stored = self._stored_keys()
        seen, union = self._origins
        if seen is not stored:
            union = frozenset(o for _, p in self.active() if p.storefront for o in p.origins)
            self._origins = (stored, union)
        return union

    def authenticate(self, secret: str | None) -> Principal | None:
        if not secret or len(secret) > 256:
            return None
        digest = hash_key(secret)
        for known, principal in self.active():
            if hmac.compare_digest(known, digest):
                return principal
        return None
