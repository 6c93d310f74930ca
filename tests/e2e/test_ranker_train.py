"""``shelfwise train --ranker`` writes a ranker into the bundle that serves explained slates."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from shelfwise.bundles import ModelBundle
from shelfwise.candidates.base import RecContext
from shelfwise.config import Settings
from shelfwise.ranking import CandidateSet, RankingSettings, SnapshotNames
from shelfwise.ranking.ranker import ranker_of_bundle
from shelfwise.ranking.training import RANKED_SOURCES, RANKER_CHOICES, label_of, propose_all
from shelfwise.runtime import Runtime
from tests.e2e.server import json_of, run_cli, settings_env
from tests.shop_fixture import fill


def test_train_with_the_ranker_and_serve_from_the_bundle(sqlite_settings: Settings) -> None:
    runtime = Runtime.open(sqlite_settings)
    fill(runtime)
    runtime.close()
    result = json_of(run_cli(["train", "--json", "--ranker"], settings_env(sqlite_settings)))
    folder = Path(result["path"])
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    assert {"ranker/ranker.txt", "ranker/ranker.json", "ranker/state.npz"} <= set(manifest["files"])
    assert "train ranker" in result["timings"]
    # the home ranker's design chosen among the backtest's and the blend on the
    # validation window: every option's score is kept, the chosen one is the best
    choice = {k: v for k, v in result["metrics"].items() if k.startswith("ranker_choice[")}
    labels = {"blend", *(label_of(c) for c in RANKER_CHOICES)}
    assert {k[len("ranker_choice[") : -1] for k in choice} == labels
    assert result["metrics"]["ranker_chosen_blend"] == 0.0
    assert max(choice.values()) > choice["ranker_choice[blend]"]
    meta = json.loads((folder / "ranker" / "ranker.json").read_text())
    assert meta["sources"] == list(RANKED_SOURCES)

    runtime = Runtime.open(sqlite_settings)
    bundle = ModelBundle.load(folder)
    settings = RankingSettings(explore_share=0.0)
    ranker = ranker_of_bundle(folder, SnapshotNames(runtime.snapshot), settings, bundle.version)
    assert ranker is not None and ranker.model is not None
    # the home ranker serves its refit averaged over three draws (one booster)
    assert ranker.model.metrics["ensemble_models"] == 3.0
    person = bundle.artifacts.people[0]
    now = datetime.fromtimestamp(float(ranker.state.as_of), UTC)
    ctx = RecContext("home", now, person_id=person)
    cands = CandidateSet.from_proposals(propose_all(bundle.artifacts, 50)(ctx), RANKED_SOURCES)
    ranked = ranker.rank(ctx, cands, runtime.snapshot, k=5)
    assert len(ranked.items) == 5 and (np.diff(ranked.scores) <= 0).all()
    assert all(reasons and reasons[0].text for reasons in ranked.reasons)
    assert ranked.model_version == bundle.version
    runtime.close()


def test_evaluate_with_the_ranker_adds_a_row(sqlite_settings: Settings, tmp_path: Path) -> None:
    runtime = Runtime.open(sqlite_settings)
    fill(runtime)
    runtime.close()
    args = ["evaluate", "--json", "--cutoff", "2024-02-15", "--no-tune", "--no-baselines"]
    out = ["--out", str(tmp_path / "report"), "--k", "10"]
    report = json_of(run_cli([*args, *out, "--ranker"], settings_env(sqlite_settings)))
    rows = {m["name"]: m["metrics"] for m in report["models"]}
    assert list(rows) == ["shelfwise", "shelfwise+ranker"]
    for protocol in ("all", "new"):
        ndcg = rows["shelfwise+ranker"][protocol]["10"]["ndcg"]
        assert 0.0 < ndcg <= 1.0
