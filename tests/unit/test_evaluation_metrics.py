from __future__ import annotations

import numpy as np
import pytest

from shelfwise.evaluation.metrics import accuracy
from shelfwise.evaluation.split import Target, time_split
from tests.unit.candidates_fixtures import purchases


def test_metrics_written_out() -> None:
    target = Target(0, np.array([2, 5, 9]), np.array([10.0, 30.0, 60.0]), np.zeros(0, np.int64))
    got = accuracy(np.array([5, 1, 9, 3]), target, k=3)
    # hits at ranks 1 and 3 of 3; ideal: 3 hits.
    dcg = 1 + 1 / np.log2(4)
    idcg = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    assert got == pytest.approx(
        {
            "recall": 2 / 3,
            "ndcg": dcg / idcg,
            "map": (1 / 1 + 2 / 3) / 3,
            "mrr": 1.0,
            "hit_rate": 1.0,
            "revenue_recall": 90 / 100,
        }
    )


def test_split_by_person_and_protocols() -> None:
    baskets = [
        ("o1", "p1", ["A", "B"]),
        ("o2", "p2", ["A"]),
        ("o3", "p1", ["A", "C"]),  # after the cutoff: A again and C new
        ("o4", "p3", ["D"]),  # p3 only buys after the cutoff: not evaluated
        ("o5", "p2", ["A"]),
    ]
    log = purchases(baskets, days=[0, 1, 10, 11, 12])
    split = time_split(log, cutoff=log.at.min() + 5 * 86400)
    assert [(t.person, t.items.tolist()) for t in split.targets["all"]] == [(0, [0, 2]), (1, [0])]
    assert [(t.person, t.items.tolist()) for t in split.targets["new"]] == [(0, [2])]
    assert split.targets["new"][0].history.tolist() == [0, 1]


def test_notebook_api_fits_to_a_cutoff_and_answers_per_person() -> None:
    from datetime import timedelta

    from shelfwise.candidates.config import FactorsConfig, SourcesConfig
    from shelfwise.evaluation import Notebook
    from tests.unit.candidates_fixtures import ABC, T0

    log = purchases([*ABC, ("o5", "p9", ["E"])], days=[0, 0, 0, 0, 30])
    config = SourcesConfig(factors=FactorsConfig(factors=4, iterations=2))
    nb = Notebook.fit(log, cutoff=T0 + timedelta(days=1), config=config)
    assert nb.history("p9") == []  # their purchase is after the cutoff
    assert nb.history("p3") == ["A", "C"]
    recs = nb.recommend("p3", k=3, new_only=True)
    assert recs[0].product_id == "B"
    assert all(r.product_id not in ("A", "C") for r in recs)
