"""signals: quarantine, identity merge log and findings, product aliases

Revision ID: 0003_signals
Revises: 0002_events
"""

import sqlalchemy as sa
from alembic import op

from shelfwise.store.types import JSONType, UTCDateTime

revision = "0003_signals"
down_revision = "0002_events"
branch_labels = None
depends_on = None


def _id() -> sa.Column[int]:
    return sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False, autoincrement=True
    )


def upgrade() -> None:
    op.create_table(
        "quarantine",
        _id(),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=True),
        sa.Column("type", sa.String(32), nullable=True),
        sa.Column("reasons", JSONType, nullable=False),
        sa.Column("payload", JSONType, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("seen_count", sa.Integer, nullable=False),
        sa.Column("first_seen_at", UTCDateTime, nullable=False),
        sa.Column("last_seen_at", UTCDateTime, nullable=False),
        sa.Column("replayed_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_quarantine"),
        sa.UniqueConstraint("fingerprint", name="uq_quarantine_fingerprint"),
    )
    op.create_index("ix_quarantine_status", "quarantine", ["status"])
    op.create_table(
        "identity_links",
        _id(),
        sa.Column("a", sa.String(200), nullable=False),
        sa.Column("b", sa.String(200), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("undone_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_identity_links"),
    )
    op.create_index("uq_identity_links_a_b", "identity_links", ["a", "b"], unique=True)
    op.create_index("ix_identity_links_b", "identity_links", ["b"])
    op.create_table(
        "identity_findings",
        _id(),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("a", sa.String(200), nullable=False),
        sa.Column("b", sa.String(200), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("event_id", sa.String(128), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_identity_findings"),
    )
    op.create_index("uq_identity_findings_a_b", "identity_findings", ["a", "b"], unique=True)
    op.create_table(
        "product_aliases",
        sa.Column("alias", sa.String(128), nullable=False),
        sa.Column("product_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("alias", name="pk_product_aliases"),
    )


def downgrade() -> None:
    op.drop_table("product_aliases")
    op.drop_table("identity_findings")
    op.drop_table("identity_links")
    op.drop_table("quarantine")
