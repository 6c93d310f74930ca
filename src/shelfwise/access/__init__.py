"""Access control: API keys with roles, from Settings and from the store."""

from shelfwise.access.keys import CreatedKey, KeyRing, KeyStore, Principal, StoredKey

__all__ = ["CreatedKey", "KeyRing", "KeyStore", "Principal", "StoredKey"]
