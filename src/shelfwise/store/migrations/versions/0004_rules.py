"""rules: current rules and their audit log

Revision ID: 0004_rules
Revises: 0002_events
"""

import sqlalchemy as sa
from alembic import op

from shelfwise.store.types import JSONType, UTCDateTime

revision = "0004_rules"
down_revision = "0002_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rules",
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("body", JSONType, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("rule_id", name="pk_rules"),
    )
    op.create_table(
        "rule_audit",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("who", sa.String(128), nullable=False),
        sa.Column("why", sa.Text, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("body", JSONType, nullable=True),
        sa.Column("diff", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_rule_audit"),
    )
    op.create_index("ix_rule_audit_rule_id", "rule_audit", ["rule_id"])


def downgrade() -> None:
    op.drop_table("rule_audit")
    op.drop_table("rules")
