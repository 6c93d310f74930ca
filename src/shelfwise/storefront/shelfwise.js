// shelfwise storefront tracker: a dependency-free ES module (docs/storefront.md).
//
//   import { init } from "https://api.example.com/shelfwise.js";
//   const sw = init({ endpoint: "https://api.example.com", key: "sw_..." });
//   sw.page("home"); sw.renderSlate("home", document.querySelector("#recs"));
//
// Events are queued in localStorage (they outlive the page), sent in batches and
// on pagehide / visibilitychange with navigator.sendBeacon: WebKit does not fire
// beforeunload or unload reliably, so a tracker waiting for those loses what a
// shopper did just before leaving (an add-to-cart that navigates to the cart).
// A batch that fails is sent again later with the same event ids: the server
// answers a repeat as a duplicate, never stores it twice.
//
// A signed-in customer: the store's backend mints a customer token and the page
// passes it (init({ customerToken }) or setCustomer(token)); slates are then the
// customer's, and events carry their customer_id. Without one, slates are asked for
// the browser's anonymous id, which the server refuses (customer_token_required) once
// a customer signed in with it: the tracker then asks without it for the session.

export const VERSION = "1.1.0";

const PREFIX = "shelfwise:";
const SESSION_IDLE_MS = 30 * 60 * 1000;
const MAX_QUEUE = 500;

function randomId() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID();
  let s = "";
  for (let i = 0; i < 32; i++) s += Math.floor(Math.random() * 16).toString(16);
  return s;
}

// localStorage where the browser allows it (Safari's private mode may not), else memory.
function storage(persist) {
  const memory = new Map();
  const mem = {
    get: (k) => (memory.has(k) ? memory.get(k) : null),
    set: (k, v) => memory.set(k, v),
    remove: (k) => memory.delete(k),
  };
  if (!persist) return mem;
  try {
    const ls = globalThis.localStorage;
    ls.setItem(PREFIX + "probe", "1");
    ls.removeItem(PREFIX + "probe");
    return {
      get: (k) => ls.getItem(PREFIX + k),
      set: (k, v) => ls.setItem(PREFIX + k, v),
      remove: (k) => ls.removeItem(PREFIX + k),
    };
  } catch (_) {
    return mem;
  }
}

// The customer id a token names (its second part, base64url of the UTF-8 id).
function customerOf(token) {
  try {
    const part = token.split(".")[1];
    const bin = atob(part.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((part.length + 3) % 4));
    return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))) || null;
  } catch (_) {
    return null;
  }
}

function readJson(store, key, fallback) {
  try {
    const raw = store.get(key);
    return raw ? JSON.parse(raw) : fallback;
  } catch (_) {
    return fallback;
  }
}

export class Tracker {
  constructor(options) {
    const o = options || {};
    if (!o.key) throw new Error("shelfwise: init({ key }) needs a storefront key");
    this.endpoint = (o.endpoint || "").replace(/\/+$/, "");
    this.key = o.key;
    this.batchSize = o.batchSize || 20;
    this.flushInterval = o.flushInterval ?? 2000;
    this.retryMaxMs = o.retryMaxMs || 60000;
    this.currency = o.currency || null;
    this.appVersion = o.appVersion || null;
    // How the queue leaves a closing page; ["beforeunload"] is what loses events on WebKit.
    this.unloadEvents = o.unloadEvents || ["pagehide", "visibilitychange"];
    this.store = storage(o.persist !== false);
    // persistQueue: false keeps unsent events in memory only (they die with the page).
    this.queueStore = o.persistQueue === false ? storage(false) : this.store;
    this._consent = o.consent === undefined ? true : o.consent;
    this.setCustomer(o.customerToken || null);
    this._timer = null;
    this._backoff = 0;
    this._sending = null;
    this._onLeave = (e) => {
      if (e.type === "visibilitychange" && document.visibilityState !== "hidden") return;
      this.flush({ beacon: true });
    };
    for (const type of this.unloadEvents) {
      const target = type === "visibilitychange" ? document : window;
      target.addEventListener(type, this._onLeave);
    }
    if (this.consented()) this._schedule(0);
  }

  // --- consent -----------------------------------------------------------------

  // consent: true/false, or a function asked before anything is recorded or sent.
  consented() {
    return typeof this._consent === "function" ? !!this._consent() : !!this._consent;
  }

  setConsent(granted) {
    this._consent = !!granted;
    if (!granted) {
      // Withdrawn: forget the ids and whatever was not sent.
      for (const k of ["aid", "sid", "seen", "recs"]) this.store.remove(k);
      this.queueStore.remove("queue");
    } else {
      this._schedule(0);
    }
  }

  // --- identity ----------------------------------------------------------------

  // The signed-in customer's token (from the store's backend), or null when nobody is.
  setCustomer(token) {
    this.customerToken = token || null;
    this.customerId = token ? customerOf(token) : null;
    if (token && !this.customerId) console.warn("shelfwise: the customer token is malformed");
  }

  // Sign-out: forget the customer, the ids and the attribution memory, so that the next
  // shopper on this browser is not taken for the last one.
  reset() {
    this.setCustomer(null);
    for (const k of ["aid", "sid", "seen", "recs", "anon"]) this.store.remove(k);
  }

  anonymousId() {
    let id = this.store.get("aid");
    if (!id) {
      id = randomId();
      this.store.set("aid", id);
    }
    return id;
  }

  // A session ends after 30 minutes without an event.
  sessionId() {
    const now = Date.now();
    const seen = Number(this.store.get("seen") || 0);
    let id = this.store.get("sid");
    if (!id || now - seen > SESSION_IDLE_MS) {
      id = randomId();
      this.store.set("sid", id);
    }
    this.store.set("seen", String(now));
    return id;
  }

  // --- events ------------------------------------------------------------------

  track(type, fields) {
    if (!this.consented()) return null;
    const event = {
      event_id: randomId(),
      type,
      occurred_at: new Date().toISOString(),
      anonymous_id: this.anonymousId(),
      session_id: this.sessionId(),
      user_agent: navigator.userAgent.slice(0, 1024),
    };
    if (this.customerId) event.customer_id = this.customerId;
    if (this.appVersion) event.app_version = this.appVersion;
    for (const [k, v] of Object.entries(fields || {})) if (v !== undefined && v !== null) event[k] = v;
    const queue = this._queue();
    queue.push(event);
    this._save(queue.slice(-MAX_QUEUE));
    if (queue.length >= this.batchSize) this.flush();
    else this._schedule(this.flushInterval);
    return event.event_id;
  }

  page(pageType, extra) {
    return this.track("page_view", { page_type: pageType || "other", ...(extra || {}) });
  }

  productView(p) {
    return this.track("product_view", {
      product_id: p.product_id,
      price: p.price,
      currency: p.currency || this.currency,
      ...this._attribution(p.product_id),
    });
  }

  addToCart(p) {
    const attributed = this._attribution(p.product_id);
    return this.track("add_to_cart", {
      product_id: p.product_id,
      quantity: p.quantity || 1,
      unit_price: p.unit_price ?? p.price,
      currency: p.currency || this.currency,
      ...attributed,
    });
  }

  // lines: [{product_id, quantity, unit_price}]; each line gets the rec_id of the
  // slate whose click led to its product, when there was one.
  purchase(order) {
    const recs = readJson(this.store, "recs", {});
    const lines = order.lines.map((l) => {
      const line = { product_id: l.product_id, quantity: l.quantity || 1, unit_price: l.unit_price };
      const rec = l.rec_id || (recs[l.product_id] && recs[l.product_id].rec_id);
      if (rec) line.rec_id = rec;
      return line;
    });
    const revenue = order.revenue ?? lines.reduce((s, l) => s + l.quantity * l.unit_price, 0);
    const id = this.track("purchase", {
      order_id: order.order_id,
      lines,
      currency: order.currency || this.currency,
      revenue: Math.round(revenue * 100) / 100,
    });
    this.store.remove("recs");
    return id;
  }

  impression(slate) {
    if (!slate.items || !slate.items.length) return null;
    return this.track("rec_impression", {
      rec_id: slate.rec_id,
      placement: slate.placement,
      items: slate.items.map((i) => ({ product_id: i.product_id, position: i.position })),
      experiment_id: slate.experiment ? slate.experiment.experiment_id : undefined,
      arm: slate.experiment ? slate.experiment.arm : undefined,
    });
  }

  click(slate, item) {
    const recs = readJson(this.store, "recs", {});
    recs[item.product_id] = { rec_id: slate.rec_id, placement: slate.placement };
    this.store.set("recs", JSON.stringify(recs));
    return this.track("rec_click", {
      rec_id: slate.rec_id,
      placement: slate.placement,
      product_id: item.product_id,
      position: item.position,
    });
  }

  _attribution(productId) {
    const rec = readJson(this.store, "recs", {})[productId];
    return rec ? { rec_id: rec.rec_id, placement: rec.placement } : {};
  }

  // --- slates ------------------------------------------------------------------

  // A slate for a placement: {item, cart, k} as GET /v1/recommendations takes them.
  // The customer's slate with a customer token; else the anonymous id's, unless the
  // server said this session that the id is a customer's (then the session's only).
  async recommend(placement, params) {
    const p = params || {};
    let who = "anonymous";
    if (!this.consented()) who = "nobody";
    else if (this.customerToken) who = "customer";
    else if (this.store.get("anon") === this.sessionId()) who = "session";
    let r = await this._slate(placement, p, who);
    if (r.status === 403 && who !== "nobody" && who !== "session") {
      const code = await r
        .clone()
        .json()
        .then((b) => b.error.code, () => "");
      if (code.startsWith("customer_token_")) {
        console.warn(`shelfwise: no personal slate (${code}); asking for the session's`);
        if (code === "customer_token_required") this.store.set("anon", this.sessionId());
        r = await this._slate(placement, p, "session");
      }
    }
    if (!r.ok) throw new Error(`shelfwise: slate for ${placement} failed (${r.status})`);
    return r.json();
  }

  _slate(placement, p, who) {
    const q = new URLSearchParams({ placement, key: this.key });
    if (who === "customer") q.set("customer_token", this.customerToken);
    if (who === "anonymous") q.set("person", this.anonymousId());
    if (who !== "nobody") q.set("session", this.sessionId());
    for (const name of ["item", "cart"]) {
      const ids = [].concat(p[name] || []);
      if (ids.length) q.set(name, ids.join(","));
    }
    if (p.k) q.set("k", String(p.k));
    return fetch(`${this.endpoint}/v1/recommendations?${q}`, { credentials: "omit" });
  }

  // Fetch a slate, render it into element (or with options.render(slate, element)),
  // record its impression and its clicks. Returns the slate.
  async renderSlate(placement, element, options) {
    const o = options || {};
    const slate = await this.recommend(placement, o);
    if (o.render) o.render(slate, element);
    else this._render(slate, element, o.href || ((i) => `?product=${encodeURIComponent(i.product_id)}`));
    for (const a of element.querySelectorAll("[data-sw-product]")) {
      const item = slate.items.find((i) => i.product_id === a.dataset.swProduct);
      if (item) a.addEventListener("click", () => this.click(slate, item));
    }
    this.impression(slate);
    return slate;
  }

  _render(slate, element, href) {
    element.textContent = "";
    const list = document.createElement("ol");
    list.className = "sw-slate";
    for (const item of slate.items) {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = href(item);
      a.dataset.swProduct = item.product_id;
      a.textContent = item.title;
      li.appendChild(a);
      if (item.price != null) {
        const price = document.createElement("span");
        price.className = "sw-price";
        price.textContent = ` ${item.price.toFixed(2)} ${item.currency || ""}`;
        li.appendChild(price);
      }
      if (item.reasons && item.reasons.length) {
        const why = document.createElement("small");
        why.className = "sw-reason";
        why.textContent = ` ${item.reasons[0].text}`;
        li.appendChild(why);
      }
      list.appendChild(li);
    }
    element.appendChild(list);
  }

  // --- sending -----------------------------------------------------------------

  _queue() {
    return readJson(this.queueStore, "queue", []);
  }

  _save(queue) {
    if (queue.length) this.queueStore.set("queue", JSON.stringify(queue));
    else this.queueStore.remove("queue");
  }

  _schedule(ms) {
    if (this._timer !== null || this.flushInterval < 0) return;
    this._timer = setTimeout(() => {
      this._timer = null;
      this.flush();
    }, ms);
  }

  _url() {
    const token = this.customerToken ? `&customer_token=${encodeURIComponent(this.customerToken)}` : "";
    return `${this.endpoint}/v1/events?key=${encodeURIComponent(this.key)}${token}`;
  }

  // The queue less the events of another customer than the one signed in now: their
  // token is gone with them, and the server would refuse the batch for them.
  _sendable() {
    const queue = this._queue();
    const ok = queue.filter((e) => !e.customer_id || e.customer_id === this.customerId);
    if (ok.length < queue.length) {
      console.warn(`shelfwise: dropped ${queue.length - ok.length} events of a signed-out customer`);
      this._save(ok);
    }
    return ok;
  }

  // Send the queue: by fetch (answers read; what failed is kept and sent again with
  // its same event ids), or by sendBeacon when the page is going away.
  flush(options) {
    if (!this.consented()) return Promise.resolve(0);
    const queue = this._sendable();
    if (!queue.length) return Promise.resolve(0);
    if (options && options.beacon && navigator.sendBeacon) {
      let sent = 0;
      while (sent < queue.length) {
        const batch = queue.slice(sent, sent + this.batchSize);
        // text/plain: a beacon of another type would need a CORS preflight it cannot make.
        const body = new Blob([JSON.stringify(batch)], { type: "text/plain" });
        if (!navigator.sendBeacon(this._url(), body)) break;
        sent += batch.length;
      }
      this._save(queue.slice(sent));
      return Promise.resolve(sent);
    }
    if (this._sending) return this._sending;
    const batch = queue.slice(0, this.batchSize);
    this._sending = fetch(this._url(), {
      method: "POST",
      body: JSON.stringify(batch),
      headers: { "Content-Type": "text/plain" },
      keepalive: true,
      credentials: "omit",
    })
      .then(async (r) => {
        // 4xx but 429: the batch will never be taken (its verdicts are in quarantine
        // when it was read); anything else is tried again. An expired customer token
        // too: the next page brings a fresh one (or setCustomer does).
        if (!r.ok && (r.status === 429 || r.status >= 500)) throw new Error(String(r.status));
        if (r.status === 403) {
          const code = await r.json().then((b) => b.error.code, () => "");
          if (code === "customer_token_expired") throw new Error(code);
        }
        if (!r.ok) console.warn(`shelfwise: events refused (${r.status})`);
        const ids = new Set(batch.map((e) => e.event_id));
        this._save(this._queue().filter((e) => !ids.has(e.event_id)));
        this._backoff = 0;
        return batch.length;
      })
      .catch(() => {
        this._backoff = Math.min(this.retryMaxMs, Math.max(1000, this._backoff * 2));
        return 0;
      })
      .finally(() => {
        this._sending = null;
        if (this._queue().length) this._schedule(this._backoff || 0);
      });
    return this._sending;
  }

  // What is still waiting to be sent (tests, debugging).
  pending() {
    return this._queue().length;
  }
}

export function init(options) {
  return new Tracker(options);
}
