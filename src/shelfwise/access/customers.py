"""Customer tokens: what lets a storefront (public) key read one customer's slate.

A storefront key sits in a page for anyone to read, so on its own it may not name a
known customer: anyone could then read what that customer bought or viewed. The
store's backend, which knows who is signed in, mints a short-lived token for the
customer and puts it in the page; the tracker sends it with the key.

A token is ``v1.<customer>.<expires>.<signature>``:

- ``customer``: the customer id, UTF-8, base64url without padding;
- ``expires``: unix seconds (an integer) after which the token is refused;
- ``signature``: base64url without padding of HMAC-SHA256(secret, the text before
  the last dot, i.e. ``v1.<customer>.<expires>``).

``secret`` is the storefront key's *customer-token secret* (:func:`key_secret`):
HMAC-SHA256 of the installation's secret ``storefront_customer_tokens``
(access/secrets.py) over the key's id, so each key has its own, a token made for one
key is refused with another, and revoking (rotating) the key retires its tokens.
Signing and checking go through itsdangerous's ``Signer`` with no key derivation, so
the construction above is all another language needs (docs/storefront.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

from itsdangerous import BadSignature, Signer
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from shelfwise.errors import Forbidden
from shelfwise.store.engine import Database
from shelfwise.store.tables import events

__all__ = [
    "SECRET_NAME",
    "CustomerTokenError",
    "CustomerTokens",
    "KnownCustomers",
    "key_secret",
]

SECRET_NAME = "storefront_customer_tokens"
VERSION = "v1"
SECRET_PREFIX = "swc_"
MAX_TOKEN = 512  # ours are ~100 characters plus the id


class CustomerTokenError(Forbidden):
    """A storefront request's customer token is missing, invalid or expired (403)."""

    code = "customer_token_invalid"


def key_secret(master: str, key_id: str) -> str:
    """The customer-token secret of the storefront key ``key_id`` (its digest's prefix,
    :attr:`shelfwise.access.Principal.key_id`), derived from the installation's."""
    mac = hmac.new(master.encode(), f"shelfwise.customer-token.{key_id}".encode(), hashlib.sha256)
    return SECRET_PREFIX + _b64(mac.digest())


_key_secret = lru_cache(maxsize=64)(key_secret)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@lru_cache(maxsize=64)
def _signer(secret: str) -> Signer:
    return Signer(secret, sep=".", key_derivation="none", digest_method=hashlib.sha256)


@dataclass(frozen=True)
class CustomerTokens:
    """Mints and checks customer tokens under the installation's secret ``master``.

    ``max_seconds``: a token expiring later than that from now is refused, so a
    backend cannot hand out long-lived ones by mistake."""

    master: str
    max_seconds: int = 86_400

    def secret(self, key_id: str) -> str:
        return _key_secret(self.master, key_id)

    def mint(
        self, key_id: str, customer_id: str, ttl_seconds: int, now: float | None = None
    ) -> str:
        expires = int((time.time() if now is None else now) + ttl_seconds)
        value = f"{VERSION}.{_b64(customer_id.encode())}.{expires}"
        return _signer(self.secret(key_id)).sign(value).decode()

    def customer(self, key_id: str, token: str, now: float | None = None) -> str:
        """The customer id ``token`` stands for; :class:`CustomerTokenError` when it is
        malformed, signed with another secret (another key), tampered with or expired."""
        if not token or len(token) > MAX_TOKEN or not token.isascii():
            raise CustomerTokenError("the customer token is malformed")
        try:
            value = _signer(self.secret(key_id)).unsign(token).decode()
        except BadSignature as e:
            raise CustomerTokenError(
                "the customer token is not signed with this key's secret"
            ) from e
        version, _, rest = value.partition(".")
        encoded, _, expires_text = rest.partition(".")
        try:
            customer = _unb64(encoded).decode()
            expires = int(expires_text)
        except (ValueError, binascii.Error) as e:  # UnicodeDecodeError is a ValueError
            raise CustomerTokenError("the customer token is malformed") from e
        if version != VERSION or not customer or "." in expires_text:
            raise CustomerTokenError("the customer token is malformed")
        at = time.time() if now is None else now
        if expires <= at:
            raise CustomerTokenError(
                "the customer token has expired", code="customer_token_expired"
            )
        if expires > at + self.max_seconds:
            raise CustomerTokenError(
                f"the customer token expires more than {self.max_seconds} s from now"
            )
        return customer


class KnownCustomers:
    """Whether an id is some event's ``customer_id`` (one indexed look-up, remembered
    ``ttl_seconds``): such an id's history is a customer's even when stitching never
    linked it. The store unreachable: treated as a customer's (refused, never leaked)."""

    def __init__(self, db: Database, ttl_seconds: float = 30.0, max_entries: int = 100_000):
        self.db = db
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._seen: dict[str, tuple[bool, float]] = {}
        self._lock = threading.Lock()

    def __contains__(self, any_id: str) -> bool:
        now = time.monotonic()
        got = self._seen.get(any_id)
        if got is not None and now - got[1] < self.ttl_seconds:
            return got[0]
        query = select(events.c.event_id).where(events.c.customer_id == any_id).limit(1)
        try:
            with self.db.engine.connect() as conn:
                known = conn.execute(query).first() is not None
        except SQLAlchemyError:
            return True
        with self._lock:
            if len(self._seen) >= self.max_entries:
                self._seen = {}
            self._seen[any_id] = (known, now)
        return known
