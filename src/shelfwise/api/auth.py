"""API keys with roles. Keys are compared by SHA-256 digest; ``admin`` implies every role."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from shelfwise.config import ApiKey, Role, Settings, hash_key
from shelfwise.errors import Forbidden, Unauthorized


@dataclass(frozen=True)
class Principal:
    name: str
    roles: frozenset[str]

    def has(self, role: Role) -> bool:
        return role in self.roles or "admin" in self.roles


ANONYMOUS_ADMIN = Principal(name="anonymous", roles=frozenset({"admin"}))


class KeyRing:
    def __init__(self, keys: tuple[ApiKey, ...], enabled: bool = True) -> None:
        self.enabled = enabled
        self._by_digest = {k.digest(): k for k in keys}

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        return cls(settings.api_keys, enabled=settings.auth_enabled)

    def authenticate(self, secret: str | None) -> Principal | None:
        if not secret:
            return None
        digest = hash_key(secret)
        for known, key in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                return Principal(name=key.name, roles=frozenset(key.roles))
        return None


def presented_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return None


def require(role: Role) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """A FastAPI dependency: the caller must hold ``role`` (or ``admin``).

    ``async`` because it is cheap: a sync dependency costs a thread-pool hop."""

    async def dependency(request: Request) -> Principal:
        ring: KeyRing = request.app.state.keyring
        if not ring.enabled:
            return ANONYMOUS_ADMIN
        principal = ring.authenticate(presented_key(request))
        if principal is None:
            raise Unauthorized("a valid API key is required (X-API-Key header)")
        if not principal.has(role):
            raise Forbidden(f"this key lacks the {role!r} role", code="role_missing")
        return principal

    dependency.__name__ = f"require_{role}"
    return dependency
