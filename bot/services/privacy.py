"""Patients' data under UU 27/2022: what is stored, export, erasure, retention, and the audit log.

Erasure keeps the conversation row as an anonymous tombstone (no number, no name, no content),
so that staff still see that a case ended because the patient withdrew, and so that statistics
can count erasures; every message, booking, outbox item and review of the patient goes. Every
erasure, export and transcript view is written to the audit log: who, when, which conversation
id, never content.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, false, func, or_, select, true, update
from sqlalchemy.orm import Session, sessionmaker

from bot.core import dates
from bot.core.messages import ConversationState
from bot.store import storage
from bot.store.storage import (
    CASE_CLOSED,
    CASE_OPEN,
    AuditEntry,
    Booking,
    Conversation,
    FeedbackAnswer,
    HandoffCase,
    LearnedExample,
    Message,
    OutboxItem,
)

log = logging.getLogger("klinik.privacy")
ERASED_PREFIX = "erased:"
PATIENT = "patient"
SYSTEM = "system"


def audit(session: Session, actor: str, action: str, conversation_id: int | None, now: datetime, **detail) -> None:
    session.add(
        AuditEntry(at=now, actor=actor[:80], action=action, conversation_id=conversation_id, detail=detail or None)
    )


# The placeholders of the "data saya" reply, as a chat without storage fills them.
NOTHING_STORED = {"messages": "-", "since": "-", "bookings": "-", "cases": "-", "retention_days": "-"}


def summary_values(session: Session, conversation: Conversation, retention_days: int) -> dict[str, str]:
    """The figures of the "data saya" reply."""
    messages, first = session.execute(
        select(func.count(Message.id), func.min(Message.created_at)).where(Message.conversation_id == conversation.id)
    ).one()
    bookings = session.execute(
        select(func.count(Booking.id)).where(Booking.conversation_id == conversation.id)
    ).scalar_one()
    cases = session.execute(
        select(func.count(HandoffCase.id)).where(HandoffCase.conversation_id == conversation.id)
    ).scalar_one()
    since = dates.describe_day(first) if first else "-"
    return {
        "messages": str(messages),
        "since": since,
        "bookings": str(bookings),
        "cases": str(cases),
        "retention_days": str(retention_days),
    }


def export(session: Session, conversation: Conversation) -> dict:
    """Everything stored about one patient, as JSON-ready data (a subject access request)."""
    messages = session.execute(
        select(Message).where(Message.conversation_id == conversation.id).order_by(Message.created_at, Message.id)
    ).scalars()
    bookings = session.execute(
        select(Booking).where(Booking.conversation_id == conversation.id).order_by(Booking.id)
    ).scalars()
    cases = session.execute(
        select(HandoffCase).where(HandoffCase.conversation_id == conversation.id).order_by(HandoffCase.id)
    ).scalars()
    yours = select(Message.id).where(Message.conversation_id == conversation.id)
    taught = session.execute(
        select(LearnedExample).where(LearnedExample.message_id.in_(yours)).order_by(LearnedExample.id)
    ).scalars()
    ratings = session.execute(
        select(FeedbackAnswer).where(FeedbackAnswer.conversation_id == conversation.id).order_by(FeedbackAnswer.id)
    ).scalars()
    return {
        "patient": {
            "whatsapp": conversation.address,
            "profile_name": conversation.profile_name,
            "first_contact": _iso(conversation.created_at),
            "notice_shown_at": _iso(conversation.notice_shown_at),
            "last_message_at": _iso(conversation.last_inbound_at),
        },
        "messages": [
            {
                "direction": m.direction,
                "sender": m.sender,
                "text": m.body,
                "media": m.media,
                "location": [m.latitude, m.longitude] if m.latitude is not None else None,
                "created_at": _iso(m.created_at),
                "delivery_status": m.status,
            }
            for m in messages
        ],
        "bookings": [
            {
                "name": b.name,
                "complaint": b.complaint,
                "start_at": _iso(b.start_at),
                "status": b.status,
                "created_at": _iso(b.created_at),
            }
            for b in bookings
        ],
        "handoff_cases": [
            {"reason": c.reason, "status": c.status, "opened_at": _iso(c.opened_at), "closed_at": _iso(c.closed_at)}
            for c in cases
        ],
        "taught_examples": [{"text": t.text, "intent": t.intent, "at": _iso(t.at)} for t in taught],
        "satisfaction_answers": [
            {"helpful": r.helpful, "topic": r.intent, "case": r.case_id, "at": _iso(r.at)} for r in ratings
        ],
        "state": conversation.state,
    }


def erase(
    session: Session,
    conversation: Conversation,
    now: datetime,
    actor: str,
    withdrawn_summary: str,
    keep: Message | None = None,
) -> None:
    """Erase one patient's data, inside the caller's transaction (the conversation row locked).

    `keep` is the patient's own "ya hapus" message: it stays, emptied, with its reply, so that
    a retried delivery of it gets the same answer instead of starting a new conversation."""
    conversation_id = conversation.id
    kept = []
    if keep is not None:
        kept = [keep.id, *session.execute(select(Message.id).where(Message.in_reply_to_id == keep.id)).scalars()]
        keep.body, keep.media, keep.latitude, keep.longitude = "", None, None, None
        keep.location_label = keep.choice_id = keep.choice_text = None
    case_ids = list(
        session.execute(select(HandoffCase.id).where(HandoffCase.conversation_id == conversation_id)).scalars()
    )
    session.execute(
        delete(OutboxItem).where(
            or_(
                OutboxItem.case_id.in_(case_ids) if case_ids else false(),
                OutboxItem.message_id.in_(select(Message.id).where(Message.conversation_id == conversation_id)),
            )
        )
    )
    open_cases = session.execute(
        update(HandoffCase)
        .where(HandoffCase.conversation_id == conversation_id, HandoffCase.status == CASE_OPEN)
        .values(status=CASE_CLOSED, closed_at=now)
    ).rowcount
    session.execute(
        update(HandoffCase)
        .where(HandoffCase.conversation_id == conversation_id)
        .values(summary=withdrawn_summary, booking_id=None)
    )
    session.execute(delete(Booking).where(Booking.conversation_id == conversation_id))
    # Phrasings staff taught the bot from this patient's messages are the patient's words too.
    taught = session.execute(
        delete(LearnedExample).where(
            LearnedExample.message_id.in_(select(Message.id).where(Message.conversation_id == conversation_id))
        )
    ).rowcount
    erased = session.execute(
        delete(Message).where(Message.conversation_id == conversation_id, Message.id.not_in(kept) if kept else true())
    ).rowcount
    conversation.address = f"{ERASED_PREFIX}{uuid.uuid4().hex}"
    conversation.profile_name = None
    conversation.state = ConversationState().to_dict()
    conversation.booking_expires_at = None
    conversation.last_inbound_at = None
    conversation.erased_at = now
    conversation.updated_at = now
    audit(
        session, actor, "erase", conversation_id, now, messages=erased, cases_closed=open_cases, taught_examples=taught
    )
    log.info(
        "patient data erased", extra={"fields": {"conversation": conversation_id, "by": actor, "messages": erased}}
    )


@dataclass(frozen=True)
class PurgeReport:
    cutoff: datetime
    messages: int
    bookings: int
    cases: int
    conversations: int

    def __str__(self) -> str:
        return (
            f"purged everything older than {self.cutoff:%Y-%m-%d %H:%M} UTC: {self.messages} messages, "
            f"{self.bookings} bookings, {self.cases} closed cases, {self.conversations} conversations"
        )


def purge(sessions: sessionmaker[Session], cutoff: datetime, now: datetime) -> PurgeReport:
    """Delete what is older than `cutoff`: messages, bookings whose time has passed, closed
    cases, and conversations left with nothing newer. A conversation with an open case keeps
    everything (staff are working on it). Idempotent; safe to run from a scheduler."""
    with sessions.begin() as session:
        busy = select(HandoffCase.conversation_id).where(HandoffCase.status == CASE_OPEN)
        old = (Message.created_at < cutoff, Message.conversation_id.not_in(busy))
        # Counted first: replies go with their message by cascade, which rowcount does not see.
        messages = session.execute(select(func.count(Message.id)).where(*old)).scalar_one()
        session.execute(delete(OutboxItem).where(OutboxItem.message_id.in_(select(Message.id).where(*old))))
        session.execute(delete(Message).where(*old).execution_options(synchronize_session=False))
        old_cases = select(HandoffCase.id).where(HandoffCase.status == CASE_CLOSED, HandoffCase.closed_at < cutoff)
        session.execute(delete(OutboxItem).where(OutboxItem.case_id.in_(old_cases)))
        cases = session.execute(
            delete(HandoffCase).where(HandoffCase.id.in_(old_cases)).execution_options(synchronize_session=False)
        ).rowcount
        still_referenced = select(HandoffCase.booking_id).where(HandoffCase.booking_id.is_not(None))
        bookings = session.execute(
            delete(Booking)
            .where(Booking.start_at < cutoff, Booking.updated_at < cutoff, Booking.id.not_in(still_referenced))
            .execution_options(synchronize_session=False)
        ).rowcount
        empty = (
            select(Conversation.id)
            .where(Conversation.updated_at < cutoff)
            .where(~select(Message.id).where(Message.conversation_id == Conversation.id).exists())
            .where(~select(HandoffCase.id).where(HandoffCase.conversation_id == Conversation.id).exists())
            .where(~select(Booking.id).where(Booking.conversation_id == Conversation.id).exists())
        )
        conversations = session.execute(
            delete(Conversation).where(Conversation.id.in_(empty)).execution_options(synchronize_session=False)
        ).rowcount
        report = PurgeReport(cutoff, messages, bookings, cases, conversations)
        audit(
            session,
            SYSTEM,
            "purge",
            None,
            now,
            cutoff=cutoff.isoformat(),
            messages=messages,
            bookings=bookings,
            cases=cases,
            conversations=conversations,
        )
    storage.scrub(sessions)
    log.info(
        "purge",
        extra={"fields": {"messages": messages, "bookings": bookings, "cases": cases, "conversations": conversations}},
    )
    return report


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
