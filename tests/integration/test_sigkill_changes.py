"""SIGKILL while rule changes stream in and while models reload; a corrupt bundle over HTTP.

After a restart every acknowledged rule change is there, the rules and their
audit log agree (no half-written change), and the server serves the promoted
bundle; a bundle whose bytes differ from its manifest is refused and the one
being served stays.
"""

from __future__ import annotations

import shutil

import httpx2 as httpx
import pytest
from sqlalchemy import select

from shelfwise.catalog import Product
from shelfwise.config import Settings
from shelfwise.runtime import Runtime
from shelfwise.store.tables import rule_audit, rules
from shelfwise.training.job import train
from tests.conftest import headers
from tests.integration.killing import Stream, server, sigkill_when
from tests.shop_fixture import fill

M = headers("merchandiser")
A = headers("admin")
RULES = 12


def _rule(rule_id: str, k: int) -> dict[str, object]:
    return {
        "id": rule_id,
        "type": "exclude",
        "reason": f"edit {k}",
        "when": {"attr": "tags", "op": "contains", "value": f"tag{k % 5}"},
    }


@pytest.mark.slow
def test_acknowledged_rule_changes_survive_sigkill(settings: Settings) -> None:
    rt = Runtime.open(settings, load=False)
    rt.catalog.upsert(
        [Product(product_id=f"P{i}", title=f"P{i}", tags=[f"tag{i}"]) for i in range(5)]
    )
    rt.close()
    acked: dict[str, tuple[int, str]] = {}  # rule id -> (version, reason) last acknowledged

    def edit(client: httpx.Client, k: int) -> bool:
        rule_id = f"r{k % RULES}"
        body = _rule(rule_id, k)
        if rule_id not in acked:
            r = client.post(f"{base}/v1/rules", json=body, headers=M)
        else:
            tag = {"If-Match": f'"{acked[rule_id][0]}"'}
            r = client.put(f"{base}/v1/rules/{rule_id}", json=body, headers={**M, **tag})
        if r.status_code not in (200, 201):
            raise AssertionError(r.text)
        acked[rule_id] = (r.json()["version"], r.json()["reason"])
        return True

    with server(settings) as (proc, base), Stream(edit) as stream:
        sigkill_when(proc, stream, 3 * RULES)
    assert len(acked) == RULES and stream.acked >= 3 * RULES

    # What a restarted worker loads: the store's rules, the rulebook at its version.
    rt = Runtime.open(settings)
    try:
        stored = {r.id: (r.version, r.reason) for r in rt.rules.store.list_rules()}
        served = rt.rules.current()
        with rt.db.engine.connect() as conn:
            current = {r.rule_id: (r.version, r.body) for r in conn.execute(select(rules))}
            audit = conn.execute(select(rule_audit).order_by(rule_audit.c.seq)).all()
    finally:
        rt.close()
    for rule_id, (version, reason) in acked.items():
        # The change in flight at the kill may have committed without its answer.
        assert stored[rule_id][0] in (version, version + 1), (rule_id, stored[rule_id], version)
        if stored[rule_id][0] == version:
            assert stored[rule_id][1] == reason
    # No half-written change: each rule is exactly its last audited body, at its version,
    # and the rulebook served is the whole of it.
    last = {a.rule_id: (a.version, a.body) for a in audit}
    assert current == last
    assert len(audit) == sum(v for v, _ in current.values())
    assert served.version == audit[-1].seq
    assert sorted(r.id for r in served.rules) == sorted(current)


@pytest.mark.slow
def test_sigkill_during_reloads_then_serves_the_promoted_bundle(settings: Settings) -> None:
    rt = Runtime.open(settings)
    fill(rt)
    first = train(rt, force=True).bundle.version
    second = train(rt, force=True).bundle.version  # promoted: CURRENT
    rt.close()
    spare = settings.model_dir / "20990101T000000000000-spare"  # a complete copy, then spoilt
    shutil.copytree(settings.model_dir / second, spare)

    def reload(client: httpx.Client, k: int) -> bool:
        body = {"version": (first, second)[k % 2]}
        r = client.post(f"{base}/v1/models/reload", json=body, headers=A)
        assert r.status_code == 200, r.text
        return True

    with server(settings) as (proc, base):
        # A bundle whose bytes no longer match its manifest (same size) is refused.
        array = spare / "arrays" / "popular.scores.npy"
        array.chmod(0o644)  # bundles are written read-only
        data = bytearray(array.read_bytes())
        data[-1] ^= 0xFF
        array.write_bytes(bytes(data))
        # (30 s: a guard against a hung server, as the streams' client has; httpx's own
        # default of 5 s is a speed check a loaded machine fails)
        refused = httpx.post(
            f"{base}/v1/models/reload", json={"version": spare.name}, headers=A, timeout=30
        )
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "bundle_corrupt"
        state = httpx.get(f"{base}/v1/models", headers=headers("read"), timeout=30).json()
        assert state["loaded"]["version"] == second
        with Stream(reload) as stream:
            sigkill_when(proc, stream, 10)
    # What a killed training leaves behind: a half-written folder, never promoted.
    shutil.copytree(settings.model_dir / first, settings.model_dir / f".tmp-{first}x")
    with server(settings) as (_, base):
        state = httpx.get(f"{base}/v1/models", headers=headers("read"), timeout=30).json()
        slate = httpx.get(  # the restarted server's first slate
            f"{base}/v1/recommendations?placement=home&k=3", headers=headers("read"), timeout=30
        ).json()
    assert state["loaded"]["version"] == second == state["promoted"]
    assert state["error"] is None and f".tmp-{first}x" not in state["versions"]
    assert slate["mode"] == "model" and slate["model_version"] == second
