"""Insights: anonymous daily counts, answers to the satisfaction question, a case's first staff reply

The counts are filled from what is already stored (messages, cases, bookings), so the report
covers the time before this revision too; from then on they are kept as things happen. What the
old rows cannot tell is left out: doctor-level triage, booking conversations cancelled in the
chat, several questions' intents beyond the first, satisfaction answers.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from collections import Counter

import sqlalchemy as sa
from alembic import op

from bot.services import insights
from bot.store.storage import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# The columns read, as they are at this revision (later revisions may add others).
_messages = sa.table(
    "messages",
    sa.column("conversation_id", sa.Integer),
    sa.column("direction", sa.String),
    sa.column("staff_name", sa.String),
    sa.column("intent", sa.String),
    sa.column("decision", sa.String),
    sa.column("reason", sa.String),
    sa.column("actions", sa.JSON),
    sa.column("created_at", UTCDateTime()),
)
_cases = sa.table(
    "handoff_cases",
    sa.column("id", sa.Integer),
    sa.column("conversation_id", sa.Integer),
    sa.column("reason", sa.String),
    sa.column("opened_at", UTCDateTime()),
    sa.column("closed_at", UTCDateTime()),
    sa.column("first_reply_at", UTCDateTime()),
)
_bookings = sa.table(
    "bookings",
    sa.column("status", sa.String),
    sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
)
_DECIDED = ("confirmed", "rejected", "cancelled")


def upgrade() -> None:
    daily_counts = op.create_table(
        "daily_counts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "metric", "label", name="pk_daily_counts"),
    )
    with op.batch_alter_table("handoff_cases") as batch:
        batch.add_column(sa.Column("first_reply_at", UTCDateTime(), nullable=True))
    op.create_table(
        "feedback_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("rated_message_id", sa.Integer(), nullable=True),
        sa.Column("intent", sa.String(length=64), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("helpful", sa.Boolean(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_feedback_answers_conversation_id_conversations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name="fk_feedback_answers_message_id_messages", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["rated_message_id"],
            ["messages.id"],
            name="fk_feedback_answers_rated_message_id_messages",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["handoff_cases.id"], name="fk_feedback_answers_case_id_handoff_cases", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_feedback_answers"),
        sa.UniqueConstraint("message_id", name="uq_feedback_answers_message_id"),
    )
    op.create_index("ix_feedback_answers_conversation_id", "feedback_answers", ["conversation_id"])
    op.create_index("ix_feedback_answers_rated_message_id", "feedback_answers", ["rated_message_id"])
    counts = _stored_counts(op.get_bind())
    op.bulk_insert(
        daily_counts,
        [
            {"day": day, "metric": metric, "label": label, "count": n}
            for (day, metric, label), n in sorted(counts.items())
        ],
    )


def _stored_counts(bind) -> Counter:
    """The daily counts of what is stored, as bot.services.insights counts them when they happen; the
    cases' first staff replies are written on the cases too."""
    tally = insights.Tally()
    query = sa.select(_messages.c.direction, _messages.c.staff_name, _messages.c.intent, _messages.c.decision,
                      _messages.c.reason, _messages.c.actions, _messages.c.created_at)  # fmt: skip
    for direction, staff_name, intent, decision, reason, actions, at in bind.execute(query):
        if direction != "in":
            tally.add(at, insights.MESSAGES, insights.STAFF if staff_name else insights.BOT)
            continue
        tally.add(at, insights.MESSAGES, insights.PATIENT)
        kind = insights.outcome(decision, reason)
        tally.add(at, insights.OUTCOME, kind)
        if kind == insights.ANSWER and intent:
            tally.add(at, insights.INTENT, intent)
        if (reason or "").startswith("triage:"):
            tally.add(at, insights.TRIAGE, "emergency")
            tally.add(at, insights.DANGER_SIGN, reason.removeprefix("triage:"))
        if "start_booking" in (actions or ()):
            tally.add(at, insights.BOOKING, "started")
    for status, created_at, updated_at in bind.execute(
        sa.select(_bookings.c.status, _bookings.c.created_at, _bookings.c.updated_at)
    ):
        tally.add(created_at, insights.BOOKING, "requested")
        if status in _DECIDED:
            tally.add(updated_at, insights.BOOKING, status)
    cases = bind.execute(
        sa.select(_cases.c.id, _cases.c.conversation_id, _cases.c.reason, _cases.c.opened_at, _cases.c.closed_at)
    ).all()
    for case_id, conversation_id, reason, opened_at, closed_at in cases:
        tally.add(opened_at, insights.CASE_OPENED, reason)
        if closed_at is not None:
            tally.add(closed_at, insights.CASE_CLOSED, reason)
        first = sa.select(sa.func.min(_messages.c.created_at)).where(
            _messages.c.conversation_id == conversation_id,
            _messages.c.direction == "out",
            _messages.c.staff_name.is_not(None),
            _messages.c.created_at >= opened_at,
            _messages.c.created_at <= closed_at if closed_at is not None else sa.true(),
        )
        replied = bind.execute(first).scalar()
        if replied is not None:
            bind.execute(sa.update(_cases).where(_cases.c.id == case_id).values(first_reply_at=replied))
            tally.add(opened_at, insights.FIRST_REPLY, str(int((replied - opened_at).total_seconds())))
    return tally.counts


def downgrade() -> None:
    op.drop_table("feedback_answers")
    with op.batch_alter_table("handoff_cases") as batch:
        batch.drop_column("first_reply_at")
    op.drop_table("daily_counts")
