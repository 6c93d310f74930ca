"""events: the customer_id and rec_id indexes hold only non-null values

Most events have neither a customer id (anonymous browsing) nor a rec_id, and
every query using these indexes looks a value up, so the null entries were pure
write cost on the ingestion path.

Revision ID: 0014_lean_event_indexes
Revises: 0013_privacy
"""

from alembic import op

from shelfwise.store.tables import not_null

revision = "0014_lean_event_indexes"
down_revision = "0013_privacy"
branch_labels = None
depends_on = None

_PARTIAL = ("customer_id", "rec_id")


def upgrade() -> None:
    for col in _PARTIAL:
        op.drop_index(f"ix_events_{col}", table_name="events")
        op.create_index(f"ix_events_{col}", "events", [col], **not_null(col))


def downgrade() -> None:
    for col in _PARTIAL:
        op.drop_index(f"ix_events_{col}", table_name="events")
        op.create_index(f"ix_events_{col}", "events", [col])
