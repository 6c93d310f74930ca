"""Shopping sessions: browsing, slates, add-to-cart, removals, purchases and
returns, driven by the ground truth and written as contract-v1 event dicts.

A :class:`SessionRunner` plays one session at a time (the history generator
and the live trickle both use it); defects are injected here, as a buggy
client would, and recorded in the :class:`DefectLog`.

A runner given ``streams`` (the online replay) draws each page of a session,
the reactions to each slate and the checkout from random streams of their own,
fixed by ``(*streams, page)``: two policies that show different slates on one
page still meet the same shopper on the next pages (the same number of pages,
the same draws), so their paired sessions differ only by what the slates did.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from shelfwise.simulate.catalog import FloatArray, IntArray
from shelfwise.simulate.categories import CATEGORIES
from shelfwise.simulate.defects import DefectLog, format_product_id
from shelfwise.simulate.policy import Policy, RequestContext, Slate
from shelfwise.simulate.truth import ADD_OFFSET, CHECKOUT
from shelfwise.simulate.world import World

DAY_MS = 86_400_000
Event = dict[str, Any]


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


class _Session:
    """The state of one session: who, where, what the client writes."""

    def __init__(
        self, common: Event, id_style: str | None, lose_cart: bool, log: DefectLog
    ) -> None:
        self.common = common
        self.log = log
        self.id_style = id_style
        self.lose_cart = lose_cart
        self.cart: dict[int, str | None] = {}  # item -> rec_id it came from
        self.base: FloatArray = np.zeros(0)  # the shopper's utility of every product today
        self.pools: dict[int, tuple[IntArray, FloatArray]] = {}  # category -> cumulative exp(u)

    def pid(self, product_id: str) -> str:
        """The product id as this session's client writes it."""
        if self.id_style is None:
            return product_id
        written = format_product_id(product_id, self.id_style)
        self.log.id_format_ids += 1
        if len(self.log.id_format_examples) < 10:
            self.log.id_format_examples[product_id] = written
        return written


class SessionRunner:
    """Plays sessions into ``self.events``: ``(t_ms, seq, event dict)`` triples."""

    def __init__(
        self,
        world: World,
        policy: Policy | None,
        rng: np.random.Generator,
        prefix: str,
        log: DefectLog,
        horizon_ms: int | None = None,
        *,
        listener: Callable[[Event], None] | None = None,
    ) -> None:
        self.w = world
        self.policy = policy
        self.rng = rng
        self.prefix = prefix
        self.log = log
        self.horizon_ms = horizon_ms
        self.events: list[tuple[int, int, Event]] = []
        self.seq = 0
        self.sessions = 0
        self.orders = 0
        self.listener = listener  # sees every event as it is written (a store's live session)
        # Paired random streams (see the module doc); None: one stream, ``rng``, for all.
        self.streams: tuple[int, ...] | None = None
        self._clicks: np.random.Generator | None = None
        # A slate shown while the shopper has a cart is a cart slate (the replay's
        # cart placement); off, every slate after a product is a product page's.
        self.cart_pages = False

    def _stream(self, *key: int) -> None:
        """With paired streams, the draws that follow come from the stream ``key``."""
        if self.streams is not None:
            self.rng = np.random.default_rng([*self.streams, *key])
            self._clicks = np.random.default_rng([*self.streams, *key, 1])

    def emit(self, s: _Session, t: int, etype: str, **fields: Any) -> None:
        self.seq += 1
        event = {"type": etype, "event_id": f"{self.prefix}-{self.seq:09d}", "occurred_at": t}
        event.update(s.common)
        event.update(fields)
        self.events.append((t, self.seq, event))
        if self.listener is not None:
            self.listener(event)

    def _open(self, person: int, dev: int, t: int) -> _Session:
        w, rng = self.w, self.rng
        device = w.people.devices[person][dev]
        info = device.info
        anon = device.touch(t, bool(w.people.cookie_clearer[person]) and rng.random() < 0.15)
        w.owner[anon] = person
        self.sessions += 1
        common: Event = {"anonymous_id": anon, "session_id": f"{self.prefix}-s{self.sessions:07d}"}
        if device.device_id:
            common["device_id"] = device.device_id
        common.update(platform=info.platform, os=info.os, browser=info.browser)
        if device.app_version:
            common["app_version"] = device.app_version
        common["user_agent"] = info.user_agent
        d = w.spec.defects
        r_cart, r_id = rng.random(), rng.random()
        lose = info.is_mobile_safari and r_cart < d.safari_cart_loss.share
        if info.is_mobile_safari:
            self.log.mobile_safari_sessions += 1
            if lose:
                self.log.safari_sessions_hit.append(common["session_id"])
        style = (
            d.id_format.style
            if info.key == d.id_format.surface and r_id < d.id_format.share
            else None
        )
        if style is not None:
            self.log.id_format_sessions.append(common["session_id"])
        return _Session(common, style, lose, self.log)

    def _login(self, s: _Session, t: int, customer: str) -> None:
        s.common = {**s.common, "customer_id": customer}
        self.emit(s, t, "login")

    def run(self, person: int, dev: int, t: int) -> None:
        """One session of ``person`` on their device ``dev`` starting at ``t`` (ms)."""
        w, rng = self.w, self.rng
        day = (t - w.start_ms) // DAY_MS
        s = self._open(person, dev, t)
        s.base = w.truth.utility(person, None, day)
        customer = w.people.customer_id[person]
        split = person in w.split_people and dev > 0
        if split and customer is not None:
            self.log.split_people.setdefault(customer, [])
            if s.common["anonymous_id"] not in self.log.split_people[customer]:
                self.log.split_people[customer].append(s.common["anonymous_id"])
        app = s.common["platform"] in ("ios_app", "android_app")
        cat = self._category(person, day)
        entry = rng.random()
        if entry < 0.45:
            self.emit(s, t, "page_view", page_type="home")
        elif entry < 0.85:
            self.emit(s, t, "page_view", page_type="category", category_path=CATEGORIES[cat].path)
        else:
            self.emit(s, t, "page_view", page_type="search", query=CATEGORIES[cat].nouns[0].lower())
        if customer and not split and rng.random() < (0.9 if app else 0.3):
            t += 2_000
            self._login(s, t, customer)
        viewed: int | None = None
        for page in range(min(int(rng.geometric(0.28)), 12)):
            self._stream(1, page)
            rng = self.rng
            t += int(rng.lognormal(10.3, 0.7))  # ~30 s between pages
            if rng.random() < 0.2:
                cat = self._category(person, day)
            item, rec, placement = None, None, None
            if self.policy is not None and rng.random() < w.spec.rec_share:
                placement = "product_page" if viewed is not None else "home"
                if self.cart_pages and s.cart:
                    placement = "cart"
                picked = self._slate(s, person, day, t, placement, viewed)
                if picked is not None:
                    item, rec = picked
                    t += 1_500
            if item is None:
                item, u = self._browse(s, cat, viewed)
                placement = None
            else:
                u = w.truth.scalar_utility(s.base, item, viewed)
            self._view(s, day, t, item, u, placement, rec)
            viewed, cat = item, int(w.catalog.category[item])
        self._stream(2)
        rng = self.rng
        if s.cart and rng.random() < CHECKOUT:
            if customer and not split and "customer_id" not in s.common and rng.random() < 0.6:
                t += 5_000
                self._login(s, t, customer)
            self._purchase(s, person, day, t + int(rng.lognormal(11.0, 0.5)))

    def _category(self, person: int, day: int) -> int:
        w = self.w
        logit = w.people.category_logit[person] + w.calendar.season_boost(day)
        p = np.exp(logit) * w.nonempty
        return int(np.searchsorted(np.cumsum(p), self.rng.random() * p.sum()))

    def _browse(self, s: _Session, cat: int, context: int | None) -> tuple[int, float]:
        """An item of ``cat`` the shopper navigates to, with probability proportional to
        ``exp(u)`` (the context adds the same amount to every item of a category, so
        only the viewed item's own variants are set aside)."""
        pool = s.pools.get(cat)
        if pool is None:
            members = self.w.browse_pool[cat][0]
            u = s.base[members]
            pool = s.pools[cat] = (members, np.cumsum(np.exp(u - u.max())))
        members, cum = pool
        c = self.w.catalog
        for _ in range(3):
            item = int(members[int(np.searchsorted(cum, self.rng.random() * cum[-1]))])
            if context is None or c.group[item] != c.group[context]:
                break
        return item, self.w.truth.scalar_utility(s.base, item, context)

    def _slate(
        self, s: _Session, person: int, day: int, t: int, placement: str, viewed: int | None
    ) -> tuple[int, str] | None:
        """Show a slate; return the clicked item and the rec_id, if any."""
        w = self.w
        assert self.policy is not None
        ctx = RequestContext(
            placement=placement,
            now=datetime.fromtimestamp(t / 1000, UTC),
            anonymous_id=s.common["anonymous_id"],
            session_id=s.common["session_id"],
            customer_id=s.common.get("customer_id"),
            item=w.ids[viewed] if viewed is not None else None,
            cart=tuple(w.ids[i] for i in s.cart),
            platform=s.common["platform"],
        )
        slate: Slate = self.policy.recommend(ctx)
        known = [(pos, w.index[p]) for pos, p in enumerate(slate.product_ids, 1) if p in w.index]
        if not slate.product_ids:
            return None
        extra = {"experiment_id": slate.experiment_id, "arm": slate.arm} if slate.arm else {}
        shown = [
            {"product_id": s.pid(p), "position": k} for k, p in enumerate(slate.product_ids, 1)
        ]
        self.emit(
            s, t, "rec_impression", rec_id=slate.rec_id, placement=placement, items=shown, **extra
        )
        if not known:
            return None
        items: IntArray = np.array([i for _, i in known])
        cart = tuple(s.cart)
        p = w.truth.click_prob(person, items, day, placement, viewed, cart, base=s.base)
        draws = self._clicks if self._clicks is not None else self.rng
        hits = np.flatnonzero(draws.random(len(items)) < p)
        if len(hits) == 0:
            return None
        pos, item = known[int(hits[0])]
        self.emit(
            s,
            t + 1_000,
            "rec_click",
            rec_id=slate.rec_id,
            placement=placement,
            product_id=s.pid(w.ids[item]),
            position=pos,
        )
        return item, slate.rec_id

    def _view(
        self,
        s: _Session,
        day: int,
        t: int,
        item: int,
        u: float,
        placement: str | None,
        rec: str | None,
    ) -> None:
        w, rng = self.w, self.rng
        price = float(w.calendar.price(day)[item])
        currency = w.catalog.spec.currency
        where = {"placement": placement, "rec_id": rec} if rec else {}
        self.emit(
            s,
            t,
            "product_view",
            product_id=s.pid(w.ids[item]),
            price=price,
            currency=currency,
            **where,
        )
        ok = bool(w.calendar.available(day)[item])
        p_add = ok / (1.0 + math.exp(ADD_OFFSET - u))
        if item not in s.cart and rng.random() < p_add:
            s.cart[item] = rec
            if s.lose_cart:
                self.log.add_to_cart_dropped += 1
            else:
                self.emit(
                    s,
                    t + 8_000,
                    "add_to_cart",
                    product_id=s.pid(w.ids[item]),
                    quantity=1,
                    unit_price=price,
                    currency=currency,
                    **where,
                )
        if s.cart and rng.random() < 0.06:
            gone = list(s.cart)[int(rng.integers(len(s.cart)))]
            del s.cart[gone]
            self.emit(s, t + 12_000, "remove_from_cart", product_id=s.pid(w.ids[gone]), quantity=1)

    def _purchase(self, s: _Session, person: int, day: int, t: int) -> None:
        w, rng = self.w, self.rng
        self.orders += 1
        order = f"{self.prefix}-o{self.orders:07d}"
        prices = w.calendar.price(day)
        lines = []
        for item, rec in s.cart.items():
            qty = 1 if rng.random() < 0.85 else 2
            line: Event = {
                "product_id": s.pid(w.ids[item]),
                "quantity": qty,
                "unit_price": float(prices[item]),
            }
            if rec:
                line["rec_id"] = rec
            lines.append(line)
        revenue = round(sum(ln["quantity"] * ln["unit_price"] for ln in lines), 2)
        self.emit(
            s,
            t,
            "purchase",
            order_id=order,
            lines=lines,
            currency=w.catalog.spec.currency,
            revenue=revenue,
        )
        items = np.array(list(s.cart))
        fit = s.base[items]
        back = rng.random(len(items)) < 0.03 + 0.2 / (1 + np.exp(fit))
        when = t + int(rng.integers(2, 21)) * DAY_MS
        returned = [
            {k: v for k, v in ln.items() if k != "rec_id"}
            for ln, b in zip(lines, back, strict=True)
            if b
        ]
        if returned and (self.horizon_ms is None or when < self.horizon_ms):
            self.emit(s, when, "return", order_id=order, lines=returned)
