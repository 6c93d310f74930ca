"""Kept ranked orders of the learned ranker: one scoring per (context, time bucket), an
exploration draw per request, and the same slate as a fresh computation in the bucket."""

from __future__ import annotations

import copy
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shelfwise.candidates.base import RecContext
from shelfwise.catalog import ProductPatch
from shelfwise.config import Settings, load_settings
from shelfwise.pipeline import RecommendRequest
from shelfwise.pipeline.flow import Pipeline
from shelfwise.pipeline.learned import LearnedRank, at_bucket
from shelfwise.pipeline.pool import Trace
from shelfwise.pipeline.replay import logged_request
from shelfwise.pipeline.slate import Slate
from shelfwise.pipeline.stages import Candidates, build_context
from shelfwise.ranking import RankingSettings
from shelfwise.ranking.explore import POOL, PROPENSITY_DRAWS
from shelfwise.rules import Rulebook
from shelfwise.rules.model import RULE
from shelfwise.runtime import Runtime
from shelfwise.serving.placements import Placements, PlacementsFile
from shelfwise.training.job import train
from tests import shop_fixture

BUCKET = 60
# Half a minute into a bucket: +20 s is the same bucket, +60 s the next one.
T0 = datetime(2024, 3, 5, 12, 0, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    tmp = tmp_path_factory.mktemp("kept")
    settings: Settings = load_settings(
        database_url=f"sqlite:///{tmp / 'shelfwise.db'}", model_dir=tmp / "models"
    )
    ranking = RankingSettings(
        compile_model=False, explore_share=0.1, time_bucket_seconds=BUCKET, kept_orders=100
    )
    rt = Runtime.open(settings.model_copy(update={"ranking": ranking}))
    shop_fixture.fill(rt)
    train(rt, force=True, with_ranker=True)
    rt.load_bundle()
    yield rt
    rt.close()


def _pipelines(rt: Runtime, placement: str) -> tuple[Pipeline, Pipeline, object]:
    """The served pipeline (keeping orders) and its twin that keeps nothing."""
    rec = rt.recommender
    view = rec.bundle_view()
    ranker = rec.learned.of(view) if view is not None else None
    assert ranker is not None, "the bundle has a learned ranker"
    plan = rec.plan(rec.placements.get(placement), None)
    book = rec.rules.book(Trace()) if rec.rules is not None else None
    kept = rec.pipeline(view, book, ranker, plan)
    assert isinstance(kept.rank, LearnedRank) and isinstance(kept.candidates, Candidates)
    assert kept.rank.kept is not None and kept.rank.bucket == BUCKET
    fresh = replace(
        kept,
        candidates=replace(kept.candidates, kept=None),
        rank=replace(kept.rank, kept=None),
    )
    return kept, fresh, plan


def _run(rt: Runtime, pipe: Pipeline, plan: object, req: RecommendRequest, now: datetime,
         seed: int) -> Slate:  # fmt: skip
    placement = rt.recommender.placements.get(req.placement)
    ctx = build_context(req, placement, rt.snapshot, [], now, req.person, Trace())
    return pipe.run(ctx, plan, placement.k, seed=seed)  # type: ignore[arg-type]


def _shown(slate: Slate) -> list[tuple[str, float, bool, float]]:
    return [(s.product_id, s.score, s.explored, s.propensity) for s in slate.items]


@pytest.mark.parametrize(
    "req",
    [
        RecommendRequest(placement="home", person="c0"),
        RecommendRequest(placement="product_similar", item=("KI1",)),
        RecommendRequest(placement="cart", person="c1", cart=("GA2",)),
    ],
    ids=["home", "product", "cart"],
)
def test_kept_and_fresh_orders_agree_within_a_bucket(rt: Runtime, req: RecommendRequest) -> None:
    kept, fresh, plan = _pipelines(rt, req.placement)
    store = rt.recommender.kept_orders.scored
    before = len(store)
    first = _run(rt, kept, plan, req, T0, seed=7)  # scored and kept
    assert len(store) == before + 1
    later = T0 + timedelta(seconds=20)  # the same bucket
    again = _run(rt, kept, plan, req, later, seed=7)  # from the kept order
    assert len(store) == before + 1
    computed = _run(rt, fresh, plan, req, later, seed=7)  # nothing kept: scored again
    assert first.items and _shown(first) == _shown(again) == _shown(computed)
    assert first.versions.ranker == "learned"
    # The next bucket: the features see another clock, the order is scored again.
    _run(rt, kept, plan, req, T0 + timedelta(seconds=BUCKET), seed=7)
    assert len(store) == before + 2


def test_exploration_is_drawn_per_request_from_a_kept_order(rt: Runtime) -> None:
    kept, fresh, plan = _pipelines(rt, "home")
    req = RecommendRequest(placement="home", person="c2")
    slates = [_run(rt, kept, plan, req, T0 + timedelta(seconds=s % 40), seed=s) for s in range(40)]
    exploited = {tuple(i.product_id for i in s.items if not i.explored) for s in slates}
    explored = {tuple(i.product_id for i in s.items if i.explored) for s in slates}
    assert len(exploited) == 1  # one scored order ...
    assert len(explored) > 1  # ... and each request its own draw
    for s in slates:
        props = [i.propensity for i in s.items if i.explored]
        assert props and all(0 < p <= 1 for p in props)
        assert all(i.propensity == 1.0 for i in s.items if not i.explored)
    # Each draw is the one a fresh computation makes for the same request.
    for s, seed in ((slates[3], 3), (slates[17], 17)):
        now = T0 + timedelta(seconds=seed % 40)
        assert _shown(s) == _shown(_run(rt, fresh, plan, req, now, seed=seed))


def test_the_bucket_clock_is_its_end() -> None:
    ctx = RecContext("home", T0)
    assert at_bucket(ctx, 60).now == datetime(2024, 3, 5, 12, 1, tzinfo=UTC)
    assert at_bucket(ctx, 0).now == T0
    on_edge = replace(ctx, now=datetime(2024, 3, 5, 12, 1, tzinfo=UTC))
    assert at_bucket(on_edge, 60) is on_edge


def _lookups(rt: Runtime, result: str) -> float:
    total = 0.0
    for metric in rt.recommender.metrics.slate_cache.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels.get("result") == result:
                total += sample.value
    return total


def test_served_learned_slates_are_kept_per_pick_and_drawn_per_request(rt: Runtime) -> None:
    rec = rt.recommender
    req = RecommendRequest(placement="home", person="c3")
    now = T0 + timedelta(minutes=7)  # a bucket no other test used
    hits = _lookups(rt, "hit")
    answers = [rec.recommend(req, now + timedelta(seconds=n % 30)) for n in range(40)]
    assert _lookups(rt, "hit") > hits  # later requests were served kept slates
    assert len({a["rec_id"] for a in answers}) == 40  # each its own rec_id
    exploited = {tuple(i["product_id"] for i in a["items"] if not i["explored"]) for a in answers}
    explored = {tuple(i["product_id"] for i in a["items"] if i["explored"]) for a in answers}
    assert len(exploited) == 1 and len(explored) > 1
    for a in answers:
        assert a["ranker"] == "learned"
        assert all(0 < i["propensity"] <= 1 for i in a["items"])
    # Each answer is the slate the pipeline computes for that request's own draw.
    _, fresh, plan = _pipelines(rt, "home")
    for a in answers[::9]:
        seed = zlib.crc32(a["rec_id"].encode())
        computed = _run(rt, fresh, plan, req, now, seed=seed)
        assert [i.product_id for i in computed.items] == [i["product_id"] for i in a["items"]]
        assert [i.propensity for i in computed.items] == [i["propensity"] for i in a["items"]]


def test_a_changed_product_drops_the_kept_learned_slates(rt: Runtime) -> None:
    rec = rt.recommender
    req = RecommendRequest(placement="product_similar", item=("KI2",))
    now = T0 + timedelta(minutes=9)
    first = rec.recommend(req, now)
    gone = first["items"][0]["product_id"]
    rt.catalog.patch(gone, ProductPatch(stock_qty=0))
    after = [rec.recommend(req, now) for _ in range(5)]
    assert all(gone not in [i["product_id"] for i in a["items"]] for a in after)
    rt.catalog.patch(gone, ProductPatch(stock_qty=10))
    back = rec.recommend(req, now)
    assert gone in [i["product_id"] for i in back["items"]]


def test_people_without_history_share_the_anonymous_order(rt: Runtime) -> None:
    rec = rt.recommender
    now = T0 + timedelta(minutes=11)
    store = rec.kept_orders.scored
    before = len(store)
    slates = [
        rec.recommend(RecommendRequest(placement="email", person=p), now)
        for p in ("nobody-1", "nobody-2", None)
    ]
    assert len(store) == before + 1  # one scoring for the three of them
    heads = {tuple(i["product_id"] for i in s["items"] if not i["explored"]) for s in slates}
    assert len(heads) == 1
    known = rec.recommend(RecommendRequest(placement="email", person="c0"), now)
    assert len(store) == before + 2  # a person with a history has their own
    assert known["ranker"] == "learned"


def test_repeated_contexts_after_a_burst_of_one_offs_in_the_same_bucket_are_kept(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five one-off product pages fill stores of three; two buyers' home pages asked
    after them in the same bucket are kept and served kept when asked again (a store
    that kept its bucket's first comers refused them until the bucket ended)."""
    rec = rt.recommender
    orders = rec.kept_orders
    for store in (orders.candidates, orders.scored, rec.learned_slates):
        monkeypatch.setattr(store, "max_entries", 3)
    now = T0 + timedelta(minutes=13)  # later than every other test's bucket
    for i in range(5):
        rec.recommend(RecommendRequest(placement="product_similar", item=(f"TO{i}",)), now)
    home = [RecommendRequest(placement="home", person=p) for p in ("c1", "c2")]
    for r in home:
        rec.recommend(r, now + timedelta(seconds=5))

    def served_kept() -> float:
        """Requests served from a kept order: a kept slate, or the kept candidates."""
        return _lookups(rt, "hit") + orders.candidates.hits

    before = served_kept()
    again = [rec.recommend(r, now + timedelta(seconds=20)) for r in home]  # the same bucket
    assert served_kept() - before == 2
    assert all(a["ranker"] == "learned" and a["items"] for a in again)
    assert all(len(s) <= 3 for s in (orders.candidates, orders.scored, rec.learned_slates))


def test_a_kept_order_holds_only_the_rows_a_draw_can_serve(rt: Runtime) -> None:
    """Served: a kept order's bytes (from its arrays: ``Scored.nbytes``) are bounded by
    the rows its draws can serve, their features and their explanations."""
    rec = rt.recommender
    now = T0 + timedelta(minutes=19)  # later than every other test's bucket
    for req in (
        RecommendRequest(placement="home", person="c4"),
        RecommendRequest(placement="product_similar", item=("KI1",)),
        RecommendRequest(placement="cart", person="c4", cart=("GA2",)),
    ):
        for n in range(8):
            rec.recommend(req, now + timedelta(seconds=n))
    ranker = rec.learned.of(rec.bundle_view())  # type: ignore[arg-type]
    assert ranker is not None
    features, sources = len(ranker.spec.names), len(ranker.spec.sources)
    # a row: its features, its contributions once explained, three (sources,) columns
    # of the candidates, item, P(engagement), value, expected value, category
    width = features + features + 1 + 3 * sources + 5
    kept = [s for _, s in rec.kept_orders.scored.values() if s.cands.items.size]
    assert len(kept) >= 3
    for scored in kept:
        rows, n_explore = len(scored.cands), scored.plan.n_explore
        assert rows <= scored.n_candidates
        assert rows <= 10 + min(POOL, PROPENSITY_DRAWS * n_explore)
        plan_bytes = PROPENSITY_DRAWS * n_explore + 2 * POOL + 8 * 2 * rows
        assert 0 < scored.nbytes() <= 8 * width * rows + plan_bytes


def test_a_slate_served_kept_is_replayed_with_its_own_draw(rt: Runtime) -> None:
    """A request served the slate another request computed (the same pick) replays
    with its own exploration draw: under a draft that removes an explored item the
    two draws may pick differently, and the request served again takes its own."""
    rec = rt.recommender
    req = RecommendRequest(placement="home", person="c2")
    now = T0 + timedelta(minutes=23)  # a bucket no other test used
    times = [now + timedelta(seconds=n % 30) for n in range(40)]
    answers = [rec.recommend(req, t) for t in times]
    rt.decisions.flush()
    logged = {d.rec_id: d for d in rt.decisions.recent(limit=40)}
    assert set(logged) == {a["rec_id"] for a in answers}
    shared = [
        r for r, d in logged.items() if (d.trace or {}).get("slate_cache", {}).get("computed_by")
    ]
    assert len(shared) >= 10  # most were served a slate another request computed
    explored = Counter(i["product_id"] for a in answers for i in a["items"] if i["explored"])
    assert len(explored) >= 2
    draft = RULE.validate_python(
        {
            "id": "no-top-explored",
            "type": "exclude",
            "when": {"attr": "product_id", "op": "in", "value": [explored.most_common(1)[0][0]]},
            "reason": "test",
        }
    )
    replayer = rt.replayer()
    book = Rulebook([draft], rt.snapshot)
    replayed = {}
    for rec_id, d in logged.items():
        got = logged_request(d, rt.snapshot, replayer.placements)
        assert not isinstance(got, str)
        assert got.seed == zlib.crc32(rec_id.encode())
        slate = replayer.replay(got, {"draft": book})
        assert not isinstance(slate, str)
        replayed[rec_id] = [s.product_id for s in slate["draft"].items]
    store = rt.rules.store
    saved = store.save(draft, who="test", why="the truth")
    try:
        for a, t in zip(answers, times, strict=True):
            again = rec.recommend(req, t, record=False, rec_id=a["rec_id"])
            assert [i["product_id"] for i in again["items"]] == replayed[a["rec_id"]]
    finally:
        store.delete(draft.id, who="test", why="measured", expected_version=saved.version)


def test_a_product_pages_sources_are_asked_once_for_both_placements_and_later_buckets(
    rt: Runtime,
) -> None:
    """An anonymous product page's proposals are kept per worker (``pipeline/proposals.py``):
    the page's second placement and its next time bucket read them, the slates are the
    ones the sources asked afresh give, and a product they are made of that changes is
    asked again (and the rules still apply to it)."""
    rec = rt.recommender
    view = rec.bundle_view()
    assert view is not None and view.memo is not None and view.identity
    memo = view.memo
    unkept = copy.copy(view)
    unkept.memo = None
    now = T0 + timedelta(minutes=29)  # later than every other test's bucket
    shown: dict[str, list[tuple[str, float, bool, float]]] = {}
    for placement in ("product_similar", "product_bought_with"):
        _, fresh, plan = _pipelines(rt, placement)
        asked = replace(fresh, candidates=replace(fresh.candidates, blend=unkept, view=unkept))
        req = RecommendRequest(placement=placement, item=("KI3",))
        hits, misses = memo.hits, memo.misses
        slate = _run(rt, fresh, plan, req, now, seed=5)
        if placement == "product_bought_with":
            assert memo.hits > hits  # the sources product_similar asked already
        assert memo.misses >= misses
        before = (memo.hits, memo.misses)
        assert _shown(slate) == _shown(_run(rt, asked, plan, req, now, seed=5))
        assert (memo.hits, memo.misses) == before  # (the twin did not read the memo)
        shown[placement] = _shown(slate)
        # The next bucket: scored again, every proposal read from the memo.
        hits, misses = memo.hits, memo.misses
        _run(rt, fresh, plan, req, now + timedelta(seconds=BUCKET), seed=5)
        assert memo.hits > hits and memo.misses == misses
    assert shown["product_similar"] and shown["product_bought_with"]
    # A proposed product out of stock: the proposals made of it are asked again, and the
    # availability rule leaves it out; back in stock, it is shown again.
    _, fresh, plan = _pipelines(rt, "product_similar")
    req = RecommendRequest(placement="product_similar", item=("KI3",))
    gone = shown["product_similar"][0][0]
    rt.catalog.patch(gone, ProductPatch(stock_qty=0))
    rec.refresh_catalog(Trace())
    misses = memo.misses
    out = _run(rt, fresh, plan, req, now, seed=5)
    assert memo.misses > misses
    assert gone not in [s[0] for s in _shown(out)]
    rt.catalog.patch(gone, ProductPatch(stock_qty=10))
    rec.refresh_catalog(Trace())
    assert gone in [s[0] for s in _shown(_run(rt, fresh, plan, req, now, seed=5))]


@pytest.mark.parametrize(
    ("req", "spans"),
    [
        (RecommendRequest(placement="product_similar", item=("KI2",)), True),
        (RecommendRequest(placement="cart", person="c1", cart=("GA2",)), False),
    ],
    ids=["anonymous product page", "cart"],
)
def test_an_anonymous_pages_kept_candidates_serve_its_next_buckets(
    rt: Runtime, req: RecommendRequest, spans: bool
) -> None:
    """An impersonal context's candidates are kept for the month (its sources read no
    other clock); the ranker still scores every bucket at its own clock. A person's
    candidates are kept for their bucket only."""
    kept, fresh, plan = _pipelines(rt, req.placement)
    orders = rt.recommender.kept_orders
    now = T0 + timedelta(minutes=31)  # later than every other test's bucket
    _run(rt, kept, plan, req, now, seed=3)
    hits, scored = orders.candidates.hits, len(orders.scored)
    later = now + timedelta(seconds=BUCKET)
    slate = _run(rt, kept, plan, req, later, seed=3)
    assert orders.candidates.hits == hits + (1 if spans else 0)
    assert len(orders.scored) == scored + 1  # scored again at the next bucket's clock
    assert slate.items and _shown(slate) == _shown(_run(rt, fresh, plan, req, later, seed=3))


def test_a_short_slate_asked_deeper_is_kept_and_served_as_computed(rt: Runtime) -> None:
    """Home with a pool of 8 and three items per brand: the rules leave the slate short, it
    is made again over deeper pools; each kept slate a later request of the bucket is
    served (exploration slots drawn per request) is the one a fresh computation gives
    for the request's own draw."""
    rec = rt.recommender
    placements, plans = rec.placements, rec._plans
    home = placements.get("home").model_copy(update={"max_candidates": 8, "k": 10})
    swapped = tuple(home if p.name == "home" else p for p in placements)
    rec.placements = Placements(PlacementsFile(placements=swapped), "test")
    rec._plans = {}
    cap = {"id": "three-per-brand", "type": "cap", "reason": "diversity", "attribute": "brand",
           "max_items": 3}  # fmt: skip
    saved = rt.rules.store.save(RULE.validate_python(cap), who="test", why="diversity")
    try:
        req = RecommendRequest(placement="home", person="c5")
        now = T0 + timedelta(minutes=11)  # a bucket no other test used
        explained = rec.recommend(req.model_copy(update={"explain": True}), now, record=False)
        deepened = explained["trace"]["deepened"]
        assert deepened["first_size"] == 8 and deepened["first_items"] < 10
        assert deepened["items"] == 10 and deepened["filled"]
        hits = _lookups(rt, "hit")
        answers = [rec.recommend(req, now + timedelta(seconds=n % 30)) for n in range(40)]
        assert _lookups(rt, "hit") > hits  # later requests were served kept slates
        assert len({tuple(i["product_id"] for i in a["items"]) for a in answers}) > 1  # draws
        brand = {p.product_id: p.brand for p in rt.snapshot.products}
        _, fresh, plan = _pipelines(rt, "home")
        for a in answers:
            shown = [i["product_id"] for i in a["items"]]
            assert len(shown) == 10 and max(Counter(brand[p] for p in shown).values()) <= 3
            computed = _run(rt, fresh, plan, req, now, seed=zlib.crc32(a["rec_id"].encode()))
            assert [i.product_id for i in computed.items] == shown
            assert [i.propensity for i in computed.items] == [i["propensity"] for i in a["items"]]
    finally:
        rt.rules.store.delete(
            "three-per-brand", who="test", why="done", expected_version=saved.version
        )
        rec.placements, rec._plans = placements, plans
