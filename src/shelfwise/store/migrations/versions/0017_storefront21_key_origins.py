"""storefront keys: api_keys.origins and api_keys.rate_limit

Revision ID: 0017_storefront21_key_origins
Revises: 0016_dead_letters
"""

import sqlalchemy as sa
from alembic import op

from shelfwise.store.types import JSONType

revision = "0017_storefront21_key_origins"
down_revision = "0016_dead_letters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("origins", JSONType, nullable=True))
        batch.add_column(sa.Column("rate_limit", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("rate_limit")
        batch.drop_column("origins")
