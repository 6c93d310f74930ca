"""events: accepted events and their per-product interaction rows

Revision ID: 0002_events
Revises: 0001_catalog
"""

import sqlalchemy as sa
from alembic import op

from shelfwise.store.types import JSONType, UTCDateTime

revision = "0002_events"
down_revision = "0001_catalog"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("occurred_at", UTCDateTime, nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("anonymous_id", sa.String(128), nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=True),
        sa.Column("session_id", sa.String(128), nullable=True),
        sa.Column("device_id", sa.String(128), nullable=True),
        sa.Column("platform", sa.String(32), nullable=True),
        sa.Column("os", sa.String(256), nullable=True),
        sa.Column("browser", sa.String(256), nullable=True),
        sa.Column("app_version", sa.String(256), nullable=True),
        sa.Column("placement", sa.String(64), nullable=True),
        sa.Column("rec_id", sa.String(128), nullable=True),
        sa.Column("order_id", sa.String(128), nullable=True),
        sa.Column("payload", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_events"),
    )
    for col in ("occurred_at", "anonymous_id", "customer_id", "session_id", "rec_id"):
        op.create_index(f"ix_events_{col}", "events", [col])
    op.create_table(
        "interactions",
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("occurred_at", UTCDateTime, nullable=False),
        sa.Column("anonymous_id", sa.String(128), nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=True),
        sa.Column("session_id", sa.String(128), nullable=True),
        sa.Column("product_id", sa.String(128), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("unit_price", sa.Float, nullable=True),
        sa.Column("position", sa.Integer, nullable=True),
        sa.Column("placement", sa.String(64), nullable=True),
        sa.Column("rec_id", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("event_id", "line", name="pk_interactions"),
    )
    op.create_index("ix_interactions_occurred_at", "interactions", ["occurred_at"])
    op.create_index("ix_interactions_product_id", "interactions", ["product_id"])


def downgrade() -> None:
    op.drop_table("interactions")
    op.drop_table("events")
