"""Per-patient flood window kept on the conversation row (no count query per message)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from bot.store.storage import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("rate_window_start", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("rate_window_count", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("rate_notice_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("rate_notice_at")
        batch.drop_column("rate_window_count")
        batch.drop_column("rate_window_start")
