"""A key created at run time keeps working while the store is unreachable, as last read."""

from __future__ import annotations

from pathlib import Path

from shelfwise.access import KeyRing, KeyStore
from shelfwise.config import ApiKey, load_settings
from shelfwise.store import connect, upgrade


def test_stored_keys_survive_a_store_outage(tmp_path: Path) -> None:
    home = tmp_path / "db"
    home.mkdir()
    db = connect(load_settings(database_url=f"sqlite:///{home / 'keys.db'}"))
    upgrade(db)
    created = KeyStore(db).create("shop", ["read"], created_by="test")
    configured = ApiKey(name="ops", secret="configured-secret", roles=("admin",))
    ring = KeyRing((configured,), KeyStore(db), refresh_seconds=0.0)
    assert ring.authenticate(created.secret) is not None
    # The store goes: a fresh connection finds an empty file without the keys table.
    db.dispose()
    (home / "keys.db").unlink()
    principal = ring.authenticate(created.secret)
    assert principal is not None and principal.name == "shop"
    assert ring.authenticate("configured-secret") is not None
    assert ring.authenticate("sw_not-a-key") is None
    db.dispose()
