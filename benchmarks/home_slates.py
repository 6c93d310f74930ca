"""Read the home slates a learned store serves: are the reasons true, is one item everywhere?

    .venv/bin/python benchmarks/home_slates.py [--slates 300] [--show 3] [--workdir DIR]
        [--products 2000 --people 2000 --days 84]

On the learned store of ``benchmarks/learned_store.py`` (made first if it is not in
``--workdir``), in process, the served code path (``Runtime.recommender``, the
rulebook in force, the bundle's learned ranker, ``explain=true``): personal home
slates for ``--people`` random known buyers (the bundle's own ids, so no identity
to stitch), at the bundle's clock. Reported:

- every personal reason with an anchor ("Because you viewed X", "Because you
  bought X", "Buy it again") checked against the person's history in the bundle
  (the anchor must be an item the person interacted with; bought, for the last
  two): the count of true and false ones;
- variants: slates holding two products of one variant group;
- concentration (pinned products left out: a rule puts them there): the item in
  most slates, its share of slates and of the first ranked slots, and the share of
  slates holding one of the ten most-shown items;
- ``--show`` random slates printed (title, reason) for a reader.

Every slate must say the learned ranker answered, or the run fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from learned_profile import check_learned, known_buyers, open_store  # noqa: E402
from learned_store import store_arguments, store_of  # noqa: E402
from shelfwise.pipeline import RecommendRequest  # noqa: E402

ANCHORED_PERSONAL = ("because_you_viewed", "because_you_bought", "buy_again")
BOUGHT = ("because_you_bought", "buy_again")  # true only of an item the person bought


def pinned(item: dict[str, Any]) -> bool:
    return any(r["kind"] == "pinned" for r in item.get("reasons", ()))


def read(folder: Path, n: int, show: int, seed: int = 11) -> dict[str, Any]:
    rt = open_store(folder)
    try:
        rec = rt.recommender
        view = rec.bundle_view()
        assert view is not None
        artifacts = view.bundle.artifacts
        ranker = rec.learned.of(view)  # type: ignore[arg-type]
        assert ranker is not None
        now = datetime.fromtimestamp(float(ranker.state.as_of), UTC) + timedelta(minutes=1)
        people = known_buyers(rt)
        rng = np.random.default_rng(seed)
        who = [people[int(i)] for i in rng.choice(len(people), min(n, len(people)), False)]
        groups = {p.product_id: p.variant_group for p in rt.snapshot.products if p.variant_group}
        reasons, shown, first, doubled, slates = (
            Counter[str](),
            Counter[str](),
            Counter[str](),
            0,
            [],
        )
        for person in who:
            req = RecommendRequest(placement="home", person=person, explain=True)
            slate = rec.recommend(req, now, record=False)
            check_learned(slate, "home")
            h = artifacts.history
            p = h.index(person)
            row = slice(0, 0) if p is None else h.row(p)
            past = {artifacts.items[int(i)] for i in h.items[row]}
            bought = {artifacts.items[int(i)] for i in h.items[row][h.bought[row] > 0]}
            items = slate["items"]
            ids = [it["product_id"] for it in items]
            # a pinned product is where the merchant's rule puts it: not the ranker's loop
            ranked = [i for i, it in zip(ids, items, strict=True) if not pinned(it)]
            shown.update(ranked)
            if ranked:
                first[ranked[0]] += 1
            in_groups = [groups[i] for i in ids if i in groups]
            doubled += len(in_groups) != len(set(in_groups))
            for it in items:
                for r in it.get("reasons", ()):
                    if r["kind"] in ANCHORED_PERSONAL and r.get("anchor"):
                        held = bought if r["kind"] in BOUGHT else past
                        reasons["true" if r["anchor"] in held else "false"] += 1
            slates.append((person, items))
        top, top_count = shown.most_common(1)[0]
        ten = {i for i, _ in shown.most_common(10)}
        titles = {p.product_id: p.title for p in rt.snapshot.products}
        out = {
            "slates": len(who),
            "personal_reasons": dict(reasons),
            "slates_with_two_variants_of_a_group": doubled,
            "top_item": titles.get(top, top),
            "top_item_share_of_slates": round(top_count / len(who), 3),
            "top_item_share_of_first_slots": round(first[top] / len(who), 3),
            "share_of_slates_with_a_top_ten_item": round(
                sum(
                    any(it["product_id"] in ten and not pinned(it) for it in items)
                    for _, items in slates
                )
                / len(who),
                3,
            ),
            "distinct_items_shown": len(shown),
        }
        for person, items in slates[:show]:
            print(f"\n{person}:")
            for it in items:
                why = "; ".join(r["text"] for r in it.get("reasons", ()))
                print(f"  {it['position']:>2} {it['title'][:48]:<48} {why[:70]}")
        return out
    finally:
        rt.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    store_arguments(ap)
    ap.add_argument("--slates", type=int, default=300, help="random known buyers to serve")
    ap.add_argument("--show", type=int, default=3)
    args = ap.parse_args()
    folder = store_of(args)
    print(json.dumps(read(folder, args.slates, args.show), indent=2))


if __name__ == "__main__":
    main()
