"""The dashboard's door on both backends, with two workers on one store: forged,
malformed and stale cookies open nothing; a revoked or expired key ends its
sessions on every worker within seconds; every POST needs the session's form
token and, when the browser names one, the dashboard's own origin."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx2 as httpx
import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import func, select, update
from starlette.testclient import TestClient

from shelfwise.access.secrets import instance_secret
from shelfwise.api import create_app
from shelfwise.config import Settings
from shelfwise.dashboard.session import COOKIE, CSRF_FIELD
from shelfwise.runtime import Runtime
from shelfwise.store import connect
from shelfwise.store.tables import api_keys, instance_secrets
from shelfwise.store.types import utcnow
from tests.conftest import KEYS, headers
from tests.unit.test_dashboard_session import _old_derived_secret, _old_format_cookie

PAGES = ("/dashboard", "/dashboard/rules", "/dashboard/decisions")
DRAFT = "id: x\ntype: dedupe_variants\nreason: one colour"
# seconds: the key ring re-reads stored keys every 2 s (15 rounds, for a loaded machine)
DEADLINE = 30.0


@pytest.fixture
def workers(settings: Settings) -> Iterator[tuple[TestClient, TestClient, Runtime]]:
    """Two workers (each its own runtime, key ring and session signer) on one store."""
    a, b = Runtime.open(settings), Runtime.open(settings)
    try:
        with (
            TestClient(create_app(settings, a), follow_redirects=False) as ca,
            TestClient(create_app(settings, b), follow_redirects=False) as cb,
        ):
            yield ca, cb, a
    finally:
        a.close()
        b.close()


def _sign_in(c: TestClient, key: str) -> str:
    """Sign in with ``key``: the session cookie (kept out of the client's jar)."""
    r = c.post("/dashboard/login", data={"api_key": key})
    assert r.status_code == 303, r.text
    c.cookies.clear()
    return str(r.cookies[COOKIE])


def _open(c: TestClient, cookie: str, path: str = "/dashboard/alerts") -> bool:
    """True when ``cookie`` opens ``path``; False when it is sent to sign in."""
    r = c.get(path, headers={"cookie": f"{COOKIE}={cookie}"})
    if r.status_code == 200:
        return True
    assert r.status_code == 303, (path, r.status_code, r.text[:300])
    assert r.headers["location"].startswith("/dashboard/login?")
    return False


def _signed_out_within(c: TestClient, cookie: str) -> float:
    start = time.monotonic()
    while _open(c, cookie):
        assert time.monotonic() - start < DEADLINE, "the session outlived its key"
        time.sleep(0.05)
    return time.monotonic() - start


def _token(c: TestClient, cookie: str) -> str:
    html = c.get("/dashboard/rules", headers={"cookie": f"{COOKIE}={cookie}"}).text
    found = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', html)
    assert found, html[-2000:]
    return found.group(1)


def _post(
    c: TestClient, cookie: str, path: str, form: dict[str, str], **extra: str
) -> httpx.Response:
    return c.post(path, data=form, headers={"cookie": f"{COOKIE}={cookie}", **extra})


def test_a_forged_admin_cookie_opens_no_page(
    workers: tuple[TestClient, TestClient, Runtime], settings: Settings
) -> None:
    c, _, _ = workers
    old = _old_derived_secret(settings.api_keys)
    expires = int(time.time()) + 3600
    forged = (
        _old_format_cookie(old, ["admin"], expires),
        URLSafeSerializer(old, salt="shelfwise.dashboard.session").dumps(
            {"k": "admin", "f": "x", "s": "x", "e": expires}
        ),
    )
    for cookie in forged:
        for page in PAGES:
            assert not _open(c, cookie, page)
        r = _post(c, cookie, "/dashboard/rules", {"draft": DRAFT})
        assert r.status_code == 303 and r.headers["location"].startswith("/dashboard/login")


@pytest.mark.parametrize(
    "raw",
    [
        b"shelfwise_session=\xc3\xa9.\xc3\xa9",
        b"shelfwise_session=\xff\xfe.00",
        b"shelfwise_session=garbage",
        b"shelfwise_session=" + b"a" * 4000,
        b'shelfwise_session="eyJuIjoieCJ9.00"',
    ],
)
def test_a_malformed_cookie_is_signed_out_never_a_500(
    workers: tuple[TestClient, TestClient, Runtime], raw: bytes
) -> None:
    c, _, _ = workers
    for page in (*PAGES, "/dashboard/static/plotly.min.js"):
        r = c.get(page, headers=[(b"cookie", raw)])
        assert r.status_code in (303, 401), (page, r.status_code)
    r = c.post("/dashboard/logout", headers=[(b"cookie", raw)])
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/login"


def test_every_worker_reads_the_one_stored_secret(
    workers: tuple[TestClient, TestClient, Runtime], settings: Settings
) -> None:
    a, b, runtime = workers
    cookie = _sign_in(a, KEYS["merchandiser"])
    assert _open(a, cookie) and _open(b, cookie)
    # Workers starting together: each inserts its own secret if absent; all read one.
    barrier, seen = threading.Barrier(6), []

    def start(name: str) -> None:
        db = connect(settings)
        try:
            barrier.wait()
            seen.append(instance_secret(db, name))
        finally:
            db.dispose()

    threads = [threading.Thread(target=start, args=("race",)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 6 and len(set(seen)) == 1 and len(seen[0]) >= 43
    with runtime.db.engine.connect() as conn:
        rows = conn.execute(select(instance_secrets.c.name, instance_secrets.c.value)).all()
    assert sorted(r.name for r in rows) == ["dashboard_session", "race"]
    assert dict(rows)["race"] == seen[0]


def test_a_configured_secret_is_used_and_nothing_is_stored(settings: Settings) -> None:
    mine = settings.model_copy(update={"dashboard_secret": "x" * 32})
    runtime = Runtime.open(mine)
    try:
        with TestClient(create_app(mine, runtime), follow_redirects=False) as c:
            cookie = _sign_in(c, KEYS["merchandiser"])
            assert _open(c, cookie)
        with runtime.db.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(instance_secrets)).scalar() == 0
    finally:
        runtime.close()


def test_a_revoked_key_ends_its_sessions_on_every_worker(
    workers: tuple[TestClient, TestClient, Runtime],
) -> None:
    a, b, _ = workers
    created = a.post(
        "/v1/keys", json={"name": "temp", "roles": ["merchandiser"]}, headers=headers("admin")
    ).json()
    cookie = _sign_in(a, created["secret"])
    assert _open(a, cookie) and _open(b, cookie)
    # Another key's session is not touched.
    other = _sign_in(b, KEYS["merchandiser"])
    r = a.delete(f"/v1/keys/{created['key_id']}", headers=headers("admin"))
    assert r.status_code == 200
    assert not _open(a, cookie)  # the revoking worker: at once
    assert _signed_out_within(b, cookie) < DEADLINE  # the other: at its next key refresh
    for page in PAGES:
        assert not _open(b, cookie, page)
    assert _open(a, other) and _open(b, other)
    # Signing in again with the revoked key is refused.
    assert a.post("/dashboard/login", data={"api_key": created["secret"]}).status_code == 401


def test_an_expired_key_ends_its_sessions(
    workers: tuple[TestClient, TestClient, Runtime],
) -> None:
    a, b, runtime = workers
    later = (utcnow() + timedelta(hours=1)).isoformat()
    created = a.post(
        "/v1/keys",
        json={"name": "until", "roles": ["admin"], "expires_at": later},
        headers=headers("admin"),
    ).json()
    cookie = _sign_in(a, created["secret"])
    assert _open(a, cookie) and _open(b, cookie)
    # The hour passes (moved in the store rather than waited for).
    with runtime.db.engine.begin() as conn:
        conn.execute(
            update(api_keys)
            .where(api_keys.c.key_id == created["key_id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert _signed_out_within(a, cookie) < DEADLINE
    assert _signed_out_within(b, cookie) < DEADLINE


def test_a_post_needs_the_sessions_form_token_and_our_origin(
    workers: tuple[TestClient, TestClient, Runtime],
) -> None:
    a, b, _ = workers
    cookie = _sign_in(a, KEYS["merchandiser"])
    token = _token(a, cookie)
    assert _token(b, cookie) == token  # every worker derives the same one
    theirs = _token(a, _sign_in(a, KEYS["admin"]))
    assert theirs != token
    form = {"draft": DRAFT}
    for bad in ({}, {CSRF_FIELD: ""}, {CSRF_FIELD: "x" * 43}, {CSRF_FIELD: theirs}):
        r = _post(a, cookie, "/dashboard/rules", {**form, **bad})
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "csrf_token_invalid"
    for source in (
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"referer": "https://evil.example/dashboard/rules"},
        {"origin": "http://testserver.evil.example"},
    ):
        r = _post(a, cookie, "/dashboard/rules", {**form, CSRF_FIELD: token}, **source)
        assert r.status_code == 403, source
        assert r.json()["error"]["code"] == "csrf_origin_mismatch"
    ok = {**form, CSRF_FIELD: token}
    for source in ({}, {"origin": "http://testserver"}, {"referer": "http://testserver/x"}):
        r = _post(b, cookie, "/dashboard/rules", ok, **source)
        assert r.status_code == 200 and "no recorded requests to replay" in r.text, source
    # The form's token does not leak into what the page handler sees.
    assert f'name="{CSRF_FIELD}" value="{token}"' in r.text

    # Signing in from another site is refused too.
    r = a.post(
        "/dashboard/login",
        data={"api_key": KEYS["merchandiser"]},
        headers={"origin": "https://evil.example"},
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_origin_mismatch"

    # Sign out: a token too; then the cookie is cleared.
    r = _post(a, cookie, "/dashboard/logout", {})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_token_invalid"
    r = _post(a, cookie, "/dashboard/logout", {CSRF_FIELD: token})
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/login"
    assert f'{COOKIE}=""' in r.headers["set-cookie"] and "Max-Age=0" in r.headers["set-cookie"]


def test_the_cookie_is_strict_httponly_and_secure_over_https(settings: Settings) -> None:
    def set_cookie(s: Settings, base: str) -> str:
        runtime = Runtime.open(s)
        try:
            with TestClient(create_app(s, runtime), base_url=base, follow_redirects=False) as c:
                r = c.post("/dashboard/login", data={"api_key": KEYS["merchandiser"]})
                assert r.status_code == 303
                attributes = str(r.headers["set-cookie"]).lower().split(";")[1:]
                return ";".join(a.strip() for a in attributes)
        finally:
            runtime.close()

    plain = set_cookie(settings, "http://testserver")
    assert "httponly" in plain and "samesite=strict" in plain and "path=/dashboard" in plain
    assert "secure" not in plain.split(";")
    assert "secure" in set_cookie(settings, "https://testserver").split(";")
    forced = settings.model_copy(update={"dashboard_cookie_secure": True})
    assert "secure" in set_cookie(forced, "http://testserver").split(";")
    never = settings.model_copy(update={"dashboard_cookie_secure": False})
    assert "secure" not in set_cookie(never, "https://testserver").split(";")
