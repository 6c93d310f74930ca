"""privacy: the audit log of erased people

Revision ID: 0013_privacy
Revises: 0012_leases
"""

import sqlalchemy as sa
from alembic import op

from shelfwise.store.types import JSONType, UTCDateTime

revision = "0013_privacy"
down_revision = "0012_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("erasure_id", sa.String(32), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("who", sa.String(128), nullable=False),
        sa.Column("subject_hash", sa.String(64), nullable=True),
        sa.Column("ids", sa.Integer, nullable=False),
        sa.Column("counts", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_erasures"),
        sa.UniqueConstraint("erasure_id", name="uq_erasures_erasure_id"),
    )


def downgrade() -> None:
    op.drop_table("erasures")
