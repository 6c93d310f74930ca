"""catalog: products and their change log

Revision ID: 0001_catalog
Revises:
"""

import sqlalchemy as sa
from alembic import op

from shelfwise.store.types import JSONType, UTCDateTime

revision = "0001_catalog"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("product_id", sa.String(128), nullable=False),
        sa.Column("parent_id", sa.String(128), nullable=True),
        sa.Column("variant_group", sa.String(128), nullable=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("category_path", sa.String(512), nullable=True),
        sa.Column("brand", sa.String(256), nullable=True),
        sa.Column("price", sa.Float, nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("cost", sa.Float, nullable=True),
        sa.Column("margin_band", sa.String(16), nullable=True),
        sa.Column("stock_qty", sa.Integer, nullable=True),
        sa.Column("availability", sa.String(16), nullable=False),
        sa.Column("shipping_sla_days", sa.Integer, nullable=True),
        sa.Column("tags", JSONType, nullable=False),
        sa.Column("season_tags", JSONType, nullable=False),
        sa.Column("attributes", JSONType, nullable=False),
        sa.Column("image_url", sa.Text, nullable=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("product_id", name="pk_products"),
    )
    op.create_table(
        "product_changes",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            nullable=False,
            autoincrement=True,
        ),
        sa.Column("product_id", sa.String(128), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("changes", JSONType, nullable=False),
        sa.Column("changed_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_product_changes"),
    )
    op.create_index("ix_product_changes_product_id", "product_changes", ["product_id"])


def downgrade() -> None:
    op.drop_index("ix_product_changes_product_id", table_name="product_changes")
    op.drop_table("product_changes")
    op.drop_table("products")
