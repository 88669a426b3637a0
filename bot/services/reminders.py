"""Appointment reminders, the day before, queued in the outbox.

A sweep (the worker's housekeeping) queues one reminder per held or confirmed appointment once
its time has come, and marks the booking reminded in the same transaction: a restart loses none
(the outbox keeps what was queued) and none is sent twice. Never for a cancelled or past
appointment, nor to a patient who asked for no more messages ("stop").

With an approved reminder template (REMINDER_CONTENT_SID, registered by `python -m bot content
register`), the reminder goes as that template, with the buttons to confirm, move or cancel (their taps come
back as bot.core.dialogue.APPOINTMENT_CHOICES); without one it goes as text, which says what to
type, and only while the channel's window is open: outside it the reminder is skipped and logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.core import dates
from bot.core.knowledge import KnowledgeBase
from bot.core.render import fill
from bot.logs import mask_phone
from bot.services.handoff import NO_LIMITS, DeliveryRules, queue_to_patient
from bot.store.storage import BOOKING_CONFIRMED, BOOKING_HELD, INBOUND, Booking, Conversation, Message

log = logging.getLogger("klinik.reminders")
# The intent of "stop", "unsubscribe", "jgn kirim2 pesan lg": no reminder after it.
STOP_INTENT = "stop_messages"


@dataclass(frozen=True)
class ReminderSettings:
    days_before: int = 1  # 0: no reminders
    hour: int = 10  # the hour (Asia/Jakarta) the reminder goes on that day
    template_id: str = ""  # an approved template: {{1}} name, {{2}} when, and three buttons
    rules: DeliveryRules = NO_LIMITS  # the channels' windows (bot.channels.delivery_rules)


def due_at(start: datetime, settings: ReminderSettings) -> datetime:
    """When an appointment's reminder goes: `days_before` days before its day, at `hour`."""
    day = start.astimezone(dates.JAKARTA).date() - timedelta(days=settings.days_before)
    return datetime.combine(day, time(settings.hour), dates.JAKARTA)


def queue_reminders(sessions: sessionmaker[Session], kb: KnowledgeBase, settings: ReminderSettings, now) -> int:
    """Queue the reminders due by `now`; returns how many were queued."""
    if settings.days_before <= 0:
        return 0
    queued = 0
    horizon = now + timedelta(days=settings.days_before + 1)
    query = (
        select(Booking, Conversation)
        .join(Conversation, Conversation.id == Booking.conversation_id)
        .where(
            Booking.status.in_((BOOKING_HELD, BOOKING_CONFIRMED)),
            Booking.reminded_at.is_(None),
            Booking.start_at > now,
            Booking.start_at < horizon,
        )
        .with_for_update(skip_locked=True, of=Booking)
    )
    with sessions.begin() as session:
        for booking, conversation in session.execute(query).all():
            if now < due_at(booking.start_at, settings):
                continue
            booking.reminded_at = now
            queued += _remind(session, kb, settings, booking, conversation, now)
    if queued:
        log.info("reminders queued", extra={"fields": {"count": queued}})
    return queued


def _remind(session: Session, kb, settings: ReminderSettings, booking: Booking, conversation, now) -> int:
    """One reminder in the outbox (1), or none for a patient who said stop or cannot be reached (0)."""
    who = {"booking": booking.id, "to": mask_phone(conversation.address)}
    if _said_stop(session, conversation):
        log.info("no reminder: the patient asked for no messages", extra={"fields": who})
        return 0
    when = dates.describe(booking.start_at)
    name = " ".join(booking.name.split())
    body = fill(kb.texts["booking_reminder"], {"clinic_name": kb.clinic.name, "name": name, "when": when}).strip()
    template_id = settings.template_id or None
    if not template_id and not settings.rules.window_open(conversation, now):
        log.warning("no reminder: outside the channel's window and no reminder template", extra={"fields": who})
        return 0
    variables = {"1": name, "2": when} if template_id else None
    queue_to_patient(
        session, conversation.id, conversation.address, body, now,
        template_id=template_id, variables=variables, booking_id=booking.id,
    )  # fmt: skip
    return 1


def _said_stop(session: Session, conversation: Conversation) -> bool:
    query = select(Message.id).where(
        Message.conversation_id == conversation.id, Message.direction == INBOUND, Message.intent == STOP_INTENT
    )
    return session.execute(query.limit(1)).first() is not None
