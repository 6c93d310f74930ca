"""access: secrets the installation generates for itself (dashboard sessions)

Revision ID: 0015_instance_secrets
Revises: 0014_lean_event_indexes
"""

import sqlalchemy as sa
from alembic import op

from shelfwise.store.types import UTCDateTime

revision = "0015_instance_secrets"
down_revision = "0014_lean_event_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instance_secrets",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_instance_secrets"),
    )


def downgrade() -> None:
    op.drop_table("instance_secrets")
