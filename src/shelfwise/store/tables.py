"""All tables on one MetaData. Each stage owns its own section; Alembic migrations
in ``store/migrations/versions`` create them, and a test checks the two agree."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from shelfwise.store.types import JSONType, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def not_null(column: str) -> dict[str, Any]:
    """Keyword arguments making an index partial (only non-null values) on both backends."""
    where = text(f"{column} IS NOT NULL")
    return {"sqlite_where": where, "postgresql_where": where}


# --- catalog -----------------------------------------------------------------

products = Table(
    "products",
    metadata,
    Column("product_id", String(128), primary_key=True),
    Column("parent_id", String(128), nullable=True),
    Column("variant_group", String(128), nullable=True),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=True),
    Column("category_path", String(512), nullable=True),
    Column("brand", String(256), nullable=True),
    Column("price", Float, nullable=True),
    Column("currency", String(3), nullable=True),
    Column("cost", Float, nullable=True),
    Column("margin_band", String(16), nullable=True),
    Column("stock_qty", Integer, nullable=True),
    Column("availability", String(16), nullable=False),
    Column("shipping_sla_days", Integer, nullable=True),
    Column("tags", JSONType, nullable=False),
    Column("season_tags", JSONType, nullable=False),
    Column("attributes", JSONType, nullable=False),
    Column("image_url", Text, nullable=True),
    Column("active", Boolean, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Every change to a product, in order. ``seq`` is the catalog's change clock:
# a snapshot that has seen seq N only needs the rows after N to be current.
product_changes = Table(
    "product_changes",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("product_id", String(128), nullable=False),
    Column("source", String(32), nullable=False),
    Column("changes", JSONType, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Index("ix_product_changes_product_id", "product_id"),
)

# --- events ------------------------------------------------------------------

# Accepted events, append-only, one row per event. ``payload`` holds the event's
# fields that have no column here (``contracts.eventstore.stored_event`` puts the
# whole event back together; rows from before 0014 carry the whole event).
# ``customer_id`` and ``rec_id`` are null for most events (anonymous browsing, no
# recommendation), and every reader looks them up by value (erasure, the funnel's
# served placement), so their indexes hold only the non-null rows: each index
# entry an event does not need is a B-tree insert the write path does not pay.
events = Table(
    "events",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("type", String(32), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("anonymous_id", String(128), nullable=False),
    Column("customer_id", String(128), nullable=True),
    Column("session_id", String(128), nullable=True),
    Column("device_id", String(128), nullable=True),
    Column("platform", String(32), nullable=True),
    Column("os", String(256), nullable=True),
    Column("browser", String(256), nullable=True),
    Column("app_version", String(256), nullable=True),
    Column("placement", String(64), nullable=True),
    Column("rec_id", String(128), nullable=True),
    Column("order_id", String(128), nullable=True),
    Column("payload", JSONType, nullable=False),
    Index("ix_events_occurred_at", "occurred_at"),
    Index("ix_events_anonymous_id", "anonymous_id"),
    Index("ix_events_customer_id", "customer_id", **not_null("customer_id")),
    Index("ix_events_session_id", "session_id"),
    Index("ix_events_rec_id", "rec_id", **not_null("rec_id")),
)

# One row per (event, product): what training, attribution and metrics scan.
# Denormalised from ``events`` so the batch path reads one narrow table.
interactions = Table(
    "interactions",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("type", String(32), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("anonymous_id", String(128), nullable=False),
    Column("customer_id", String(128), nullable=True),
    Column("session_id", String(128), nullable=True),
    Column("product_id", String(128), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", Float, nullable=True),
    Column("position", Integer, nullable=True),
    Column("placement", String(64), nullable=True),
    Column("rec_id", String(128), nullable=True),
    Index("ix_interactions_occurred_at", "occurred_at"),
    Index("ix_interactions_product_id", "product_id"),
)

# --- access ------------------------------------------------------------------

# API keys created at run time (besides the ones in Settings). Only the SHA-256
# of a secret is stored; the secret is shown once, when the key is created.
api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("roles", JSONType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    # Storefront keys only: the origins their pages run on, their own rate limit.
    Column("origins", JSONType, nullable=True),
    Column("rate_limit", String(32), nullable=True),
)

# Secrets the installation makes for itself (the dashboard's cookie-signing key):
# generated on first use and inserted only if absent, so every worker reads the same.
instance_secrets = Table(
    "instance_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# --- experiments ---------------------------------------------------------------

# The current version of each experiment; ``version`` is the optimistic-concurrency
# token (the HTTP ETag): a write names the version it read and fails on a newer one.
experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("placement", String(64), nullable=False),
    Column("spec", JSONType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Every version ever written, for audit and for reading out an old configuration.
experiment_versions = Table(
    "experiment_versions",
    metadata,
    Column("experiment_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("status", String(16), nullable=False),
    Column("spec", JSONType, nullable=False),
    Column("changed_by", String(64), nullable=True),
    Column("changed_at", UTCDateTime, nullable=False),
)

# --- monitoring --------------------------------------------------------------

# Cost-weighted alerts: at most one open alert per (placement, category) series;
# a later evaluation updates it (money, severity) or resolves it.
alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", String(64), primary_key=True),
    Column("placement", String(64), nullable=False),
    Column("category", String(512), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("stage", String(32), nullable=False),
    Column("since", UTCDateTime, nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("at_risk_per_hour", Float, nullable=False),
    Column("expected_per_hour", Float, nullable=False),
    Column("observed_per_hour", Float, nullable=False),
    Column("burn_rate", Float, nullable=False),
    Column("p_value", Float, nullable=False),
    Column("window_hours", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("dashboard_path", Text, nullable=False),
    Column("notified_at", UTCDateTime, nullable=True),
    Index("ix_alerts_status", "status"),
    Index("ix_alerts_opened_at", "opened_at"),
)

# A named lease: the worker holding it (until expires_at) runs the named job.
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# --- rules -------------------------------------------------------------------

# The current version of every rule (``body`` is the full rule as JSON).
rules = Table(
    "rules",
    metadata,
    Column("rule_id", String(128), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("type", String(32), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("body", JSONType, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(128), nullable=False),
)

# Every change to a rule: who, when, why, the diff and the rule as it became
# (``body`` is null for a delete). ``max(seq)`` is the rulebook version.
rule_audit = Table(
    "rule_audit",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("rule_id", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("action", String(16), nullable=False),
    Column("who", String(128), nullable=False),
    Column("why", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("body", JSONType, nullable=True),
    Column("diff", JSONType, nullable=False),
    Index("ix_rule_audit_rule_id", "rule_id"),
)

# --- signals -----------------------------------------------------------------

# Every rejected event with the raw payload as sent and the reasons; nothing is
# dropped. ``fingerprint`` (SHA-256 of the canonical payload) makes a re-sent bad
# event bump ``seen_count`` instead of adding a row.
quarantine = Table(
    "quarantine",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("fingerprint", String(64), nullable=False, unique=True),
    Column("source", String(32), nullable=False),
    Column("event_id", String(128), nullable=True),
    Column("type", String(32), nullable=True),
    Column("reasons", JSONType, nullable=False),
    Column("payload", JSONType, nullable=True),
    Column("status", String(16), nullable=False),
    Column("seen_count", Integer, nullable=False),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("replayed_at", UTCDateTime, nullable=True),
    Index("ix_quarantine_status", "status"),
)

# Events received again after they were stored (same event_id): the duplicate
# rate per segment of the signal-quality report.
duplicate_events = Table(
    "duplicate_events",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("type", String(32), nullable=False),
    Column("platform", String(32), nullable=True),
    Column("browser", String(256), nullable=True),
    Column("app_version", String(256), nullable=True),
    Column("seen_count", Integer, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
)

# The identity merge log: one row per link between two ids ("kind:value").
# ``undone_at`` set = unmerged; an undone link is never re-created automatically.
identity_links = Table(
    "identity_links",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("a", String(200), nullable=False),
    Column("b", String(200), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("event_id", String(128), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("undone_at", UTCDateTime, nullable=True),
    Index("uq_identity_links_a_b", "a", "b", unique=True),
    Index("ix_identity_links_b", "b"),
)

# One row per undone merge. An unmerge changes a merge-log row without adding one, so
# the identity graph's version on the change clock (``serving.freshness``) counts these:
# every worker re-reads its links on its next request. No person id is kept here.
identity_unmerges = Table(
    "identity_unmerges",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("link_id", BigInteger, nullable=False),
    Column("at", UTCDateTime, nullable=False),
)

# Merges refused by a guard (a profile would grow past the configured size).
identity_findings = Table(
    "identity_findings",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("kind", String(32), nullable=False),
    Column("a", String(200), nullable=False),
    Column("b", String(200), nullable=False),
    Column("size", Integer, nullable=False),
    Column("event_id", String(128), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("uq_identity_findings_a_b", "a", "b", unique=True),
)

# Known aliases of catalog product ids (old ids, feed formatting, variant ids).
product_aliases = Table(
    "product_aliases",
    metadata,
    Column("alias", String(128), primary_key=True),
    Column("product_id", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# --- serving -----------------------------------------------------------------

# Every served slate: what was asked, what was shown and why. Clicks and orders
# carrying the ``rec_id`` are attributed to it; ``trace`` is kept for every
# slate or a sample of them (``settings.decision_trace``).
decisions = Table(
    "decisions",
    metadata,
    Column("rec_id", String(64), primary_key=True),
    Column("served_at", UTCDateTime, nullable=False),
    Column("placement", String(64), nullable=False),
    Column("person_id", String(128), nullable=True),
    Column("session_id", String(128), nullable=True),
    Column("experiment_id", String(128), nullable=True),
    Column("arm", String(128), nullable=True),
    Column("mode", String(32), nullable=False),
    Column("model_version", String(64), nullable=True),
    Column("rulebook_version", String(64), nullable=True),
    Column("request", JSONType, nullable=False),
    Column("items", JSONType, nullable=False),
    Column("trace", JSONType, nullable=True),
    Index("ix_decisions_served_at", "served_at"),
    Index("ix_decisions_placement_served_at", "placement", "served_at"),
    Index("ix_decisions_person_id", "person_id"),
)

# --- privacy -----------------------------------------------------------------

# One row per erased person: who asked, when, how many rows of each table went.
# No personal id is kept: ``erasure_id`` is opaque, ``subject_hash`` is an HMAC of
# the id as asked under ``settings.privacy_salt`` (null when no salt is set).
# ``max(seq)`` tells every worker to forget its in-memory identity links.
erasures = Table(
    "erasures",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("erasure_id", String(32), nullable=False, unique=True),
    Column("at", UTCDateTime, nullable=False),
    Column("who", String(128), nullable=False),
    Column("subject_hash", String(64), nullable=True),
    Column("ids", Integer, nullable=False),
    Column("counts", JSONType, nullable=False),
)

# --- background work -----------------------------------------------------------

# Rows a background thread could not store because the store refused them (a value
# PostgreSQL cannot hold, a constraint): set aside here so the thread goes on with
# the next row. ``item_key`` and ``payload`` are ASCII JSON (NULs and other
# unstorable characters escaped); ``error`` names the refusal, never a value.
dead_letters = Table(
    "dead_letters",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("thread", String(64), nullable=False),
    Column("item_key", String(512), nullable=False),
    Column("error", String(256), nullable=False),
    Column("payload", Text, nullable=False),
    Column("failed_at", UTCDateTime, nullable=False),
    Index("ix_dead_letters_failed_at", "failed_at"),
)

# --- bundles (BUNDLE_STORE=database: shelfwise.bundles.shared) ----------------

# A file's content, addressed by its SHA-256: written once, never rewritten, shared
# by every bundle that holds the same bytes. Its chunks come first; this row, written
# after the last chunk, says the content is complete.
bundle_blobs = Table(
    "bundle_blobs",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("bytes", BigInteger, nullable=False),
)

# The content in pieces of a few MiB: no value near PostgreSQL's 1 GB bytea limit, and
# no writer or reader holds a whole file in memory. Keyed by the byte offset where the
# piece starts: a row is right whichever writer (and chunk size) wrote it.
bundle_chunks = Table(
    "bundle_chunks",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("start", BigInteger, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

# A complete bundle: its manifest (every file's path, size and SHA-256), written
# after every blob it names. Inserted once, never updated.
bundles = Table(
    "bundles",
    metadata,
    Column("version", String(128), primary_key=True),
    Column("manifest", Text, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Every promotion, in order: the latest row names the promoted bundle; the others
# are what a server may fall back to when it refuses the promoted one.
bundle_promotions = Table(
    "bundle_promotions",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("version", String(128), nullable=False),  # a row of bundles
    Column("promoted_at", UTCDateTime, nullable=False),
)
