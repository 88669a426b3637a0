"""Channel-neutral column names: what was named after Twilio and WhatsApp is named for what it is

conversations.wa_id -> address ('whatsapp:+62...': the patient's address on a channel),
messages.twilio_sid -> channel_message_id, messages.button_payload/button_text -> choice_id/choice_text,
outbox.twilio_sid -> channel_message_id, outbox.content_sid -> template_id, outbox.to_number -> to_address.
The values are unchanged; the unique constraints are renamed with their columns.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# (table, old column, new column, unique constraint on it or None)
RENAMES = (
    ("conversations", "wa_id", "address", True),
    ("messages", "twilio_sid", "channel_message_id", True),
    ("messages", "button_payload", "choice_id", False),
    ("messages", "button_text", "choice_text", False),
    ("outbox", "twilio_sid", "channel_message_id", True),
    ("outbox", "content_sid", "template_id", False),
    ("outbox", "to_number", "to_address", False),
)


def _rename(forward: bool) -> None:
    """Each table in two batches (on SQLite each is a copy of the table): the columns renamed, with
    their unique constraints dropped, then the constraints created under their new names."""
    for table in dict.fromkeys(t for t, *_ in RENAMES):
        renames = [(old, new) if forward else (new, old) for name, old, new, _ in RENAMES if name == table]
        unique = [(old, new) if forward else (new, old) for name, old, new, u in RENAMES if name == table and u]
        with op.batch_alter_table(table) as batch:
            for before, _ in unique:
                batch.drop_constraint(f"uq_{table}_{before}", type_="unique")
            for before, after in renames:
                batch.alter_column(before, new_column_name=after)
        with op.batch_alter_table(table) as batch:
            for _, after in unique:
                batch.create_unique_constraint(f"uq_{table}_{after}", [after])


def upgrade() -> None:
    _rename(forward=True)


def downgrade() -> None:
    _rename(forward=False)
