"""bundles in the database: bundle_blobs, bundle_chunks, bundles, bundle_promotions

Revision ID: 0018_bundles21_shared_bundles
Revises: 0017_storefront21_key_origins
"""

import sqlalchemy as sa
from alembic import op

from shelfwise.store.types import UTCDateTime

revision = "0018_bundles21_shared_bundles"
down_revision = "0017_storefront21_key_origins"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bundle_blobs",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_bundle_blobs"),
    )
    op.create_table(
        "bundle_chunks",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("start", sa.BigInteger, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("sha256", "start", name="pk_bundle_chunks"),
    )
    op.create_table(
        "bundles",
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("manifest", sa.Text, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_bundles"),
    )
    op.create_table(
        "bundle_promotions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("promoted_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bundle_promotions"),
    )


def downgrade() -> None:
    op.drop_table("bundle_promotions")
    op.drop_table("bundles")
    op.drop_table("bundle_chunks")
    op.drop_table("bundle_blobs")
