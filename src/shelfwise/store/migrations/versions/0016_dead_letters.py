"""background work: dead_letters, the rows a background thread set aside

Revision ID: 0016_dead_letters
Revises: 0015_instance_secrets
"""

import sqlalchemy as sa
from alembic import op

from shelfwise.store.types import UTCDateTime

revision = "0016_dead_letters"
down_revision = "0015_instance_secrets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("thread", sa.String(64), nullable=False),
        sa.Column("item_key", sa.String(512), nullable=False),
        sa.Column("error", sa.String(256), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("failed_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
    )
    op.create_index("ix_dead_letters_failed_at", "dead_letters", ["failed_at"])


def downgrade() -> None:
    op.drop_index("ix_dead_letters_failed_at", table_name="dead_letters")
    op.drop_table("dead_letters")
