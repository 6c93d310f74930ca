"""monitoring: leases, so one server worker runs a scheduled job at a time

Revision ID: 0012_leases
Revises: 0010_serving
"""

import sqlalchemy as sa
from alembic import op

from shelfwise.store.types import UTCDateTime

revision = "0012_leases"
down_revision = "0010_serving"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )


def downgrade() -> None:
    op.drop_table("leases")
