"""Examples taught by staff live in the database (every web process and every deploy sees them)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from bot.store.storage import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "learned_examples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("intent", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("by", sa.String(length=80), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name="fk_learned_examples_message_id_messages", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_learned_examples"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_learned_examples_message_id", "learned_examples", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_learned_examples_message_id", table_name="learned_examples")
    op.drop_table("learned_examples")
