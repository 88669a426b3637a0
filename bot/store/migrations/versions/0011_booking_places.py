"""Appointments hold places: booking_places, one row per (slot, place), unique, so two patients
can never hold the same last place; bookings get their treatment, end and when their reminder
was queued; a booking waiting for staff is "held" (was "requested").

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from bot.store.storage import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "booking_places",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("slot_at", UTCDateTime(), nullable=False),
        sa.Column("place", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["bookings.id"], name="fk_booking_places_booking_id_bookings", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_booking_places"),
        sa.UniqueConstraint("slot_at", "place", name="uq_booking_places_slot_place"),
    )
    op.create_index("ix_booking_places_booking_id", "booking_places", ["booking_id"])
    with op.batch_alter_table("bookings") as batch:
        batch.add_column(sa.Column("treatment", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("end_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("reminded_at", UTCDateTime(), nullable=True))
    op.execute("UPDATE bookings SET status = 'held' WHERE status = 'requested'")


def downgrade() -> None:
    op.execute("UPDATE bookings SET status = 'requested' WHERE status = 'held'")
    with op.batch_alter_table("bookings") as batch:
        batch.drop_column("reminded_at")
        batch.drop_column("end_at")
        batch.drop_column("treatment")
    op.drop_index("ix_booking_places_booking_id", table_name="booking_places")
    op.drop_table("booking_places")
