"""Access control: API keys with roles, from Settings and from the store."""

from shelfwise.access.keys import (
    ANONYMOUS_ADMIN,
    CreatedKey,
    KeyRing,
    KeyStore,
    Principal,
    StoredKey,
)

__all__ = ["ANONYMOUS_ADMIN", "CreatedKey", "KeyRing", "KeyStore", "Principal", "StoredKey"]
