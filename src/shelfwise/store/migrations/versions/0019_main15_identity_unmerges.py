"""identity_unmerges: one row per undone merge, on the identity graph's change clock

Revision ID: 0019_main15_identity_unmerges
Revises: 0018_bundles21_shared_bundles
"""

import sqlalchemy as sa
from alembic import op

from shelfwise.store.types import UTCDateTime

revision = "0019_main15_identity_unmerges"
down_revision = "0018_bundles21_shared_bundles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_unmerges",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("link_id", sa.BigInteger, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_identity_unmerges"),
    )


def downgrade() -> None:
    op.drop_table("identity_unmerges")
