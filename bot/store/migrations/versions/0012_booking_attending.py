"""Bookings record when the patient said they will come (the reminder's button, "ya saya hadir");
a queued reminder names its booking, so that giving the booking's time up withdraws it unsent.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

from bot.store.storage import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bookings") as batch:
        batch.add_column(sa.Column("attending_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("booking_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_outbox_booking_id_bookings", "bookings", ["booking_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index("ix_outbox_booking_id", ["booking_id"])


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_booking_id")
        batch.drop_constraint("fk_outbox_booking_id_bookings", type_="foreignkey")
        batch.drop_column("booking_id")
    with op.batch_alter_table("bookings") as batch:
        batch.drop_column("attending_at")
