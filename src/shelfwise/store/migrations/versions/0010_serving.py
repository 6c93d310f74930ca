"""serving: the decision log of served slates

Revision ID: 0010_serving
Revises: 0003_signals
"""

import sqlalchemy as sa
from alembic import op

from shelfwise.store.types import JSONType, UTCDateTime

revision = "0010_serving"
down_revision = "0003_signals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decisions",
        sa.Column("rec_id", sa.String(64), nullable=False),
        sa.Column("served_at", UTCDateTime, nullable=False),
        sa.Column("placement", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(128), nullable=True),
        sa.Column("session_id", sa.String(128), nullable=True),
        sa.Column("experiment_id", sa.String(128), nullable=True),
        sa.Column("arm", sa.String(128), nullable=True),
        sa.Column("mode", sa.String(32), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=True),
        sa.Column("rulebook_version", sa.String(64), nullable=True),
        sa.Column("request", JSONType, nullable=False),
        sa.Column("items", JSONType, nullable=False),
        sa.Column("trace", JSONType, nullable=True),
        sa.PrimaryKeyConstraint("rec_id", name="pk_decisions"),
    )
    op.create_index("ix_decisions_served_at", "decisions", ["served_at"])
    op.create_index("ix_decisions_placement_served_at", "decisions", ["placement", "served_at"])
    op.create_index("ix_decisions_person_id", "decisions", ["person_id"])


def downgrade() -> None:
    op.drop_table("decisions")
