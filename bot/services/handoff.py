"""Handing a chat to staff: the case, its booking request, and the alerts (via the outbox).

Everything here runs inside the caller's transaction, so a case and its alerts are stored
together or not at all; the outbox worker sends the alerts afterwards.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.core import dates
from bot.core.dialogue import Engine
from bot.core.messages import BookingDetails, ConversationState, Handoff, HandoffReason, local_id
from bot.core.render import fill
from bot.core.schedule import NO_FULL, CalendarView
from bot.logs import mask_phone
from bot.services import insights
from bot.services.live import LiveEngine, live
from bot.store import storage
from bot.store.storage import (
    ALERT_FAILED,
    ALERT_NONE,
    ALERT_PENDING,
    ALERT_SENT,
    BOOKING_CANCELLED,
    BOOKING_CONFIRMED,
    BOOKING_HELD,
    CASE_CLOSED,
    OUTBOUND,
    OUTBOX_PENDING,
    OUTBOX_SENDING,
    OUTBOX_SENT,
    PATIENT_MESSAGE,
    STAFF_ALERT,
    Booking,
    Conversation,
    HandoffCase,
    Message,
    OutboxItem,
)

log = logging.getLogger("klinik.handoff")
_MAX_QUOTE = 200


@dataclass(frozen=True)
class DeliveryRules:
    """What each channel takes, by the scheme of the patient's address, as the channel packages
    declare it (bot.channels.delivery_rules): how long after the patient's last message a
    free-form message may still go (WhatsApp: 24 hours; later only an approved template), and
    the longest message. A scheme not listed has neither limit."""

    windows: Mapping[str, timedelta] = field(default_factory=dict)
    lengths: Mapping[str, int] = field(default_factory=dict)

    def window_open(self, conversation: Conversation, now: datetime) -> bool:
        """Whether the patient's channel still takes a free-form message."""
        window = self.windows.get(conversation.address.partition(":")[0])
        if window is None:
            return True
        return conversation.last_inbound_at is not None and now - conversation.last_inbound_at < window

    def max_length(self, address: str, default: int) -> int:
        return min(self.lengths.get(address.partition(":")[0], default), default)


NO_LIMITS = DeliveryRules()


@dataclass(frozen=True)
class StaffSettings:
    numbers: tuple[str, ...] = ()
    template_id: str = ""
    console_base_url: str = ""


class HandoffDesk:
    def __init__(self, engine: Engine | LiveEngine, staff: StaffSettings):
        self.engines = live(engine)
        self.staff = staff

    @property
    def engine(self) -> Engine:
        return self.engines.current()

    def hand_over(
        self, session: Session, conversation: Conversation, handoff: Handoff, now: datetime, tally: insights.Tally
    ) -> HandoffCase:
        """Open a case (with its booking request) and queue the staff alerts. With a case
        already open, an urgent handoff escalates it and alerts again; anything else only adds
        to it. The report's counts go to `tally`."""
        case = storage.open_case(session, conversation)
        if case is not None and handoff.booking is not None:
            # A new time for an appointment ("ganti jadwal") while staff have the chat: the
            # case now holds the new booking, and staff are told again.
            case.booking_id = self._book(session, conversation, handoff.booking, now, tally).id
            case.summary = self._summary(session, conversation, handoff)
            self._queue_alerts(session, conversation, case, handoff, now)
            return case
        if case is not None:
            if handoff.reason is HandoffReason.URGENT:
                # Every emergency alerts staff again, never deduplicated away.
                case.reason = HandoffReason.URGENT.value
                case.summary = self._summary(session, conversation, handoff)
                self._queue_alerts(session, conversation, case, handoff, now)
            return case
        booking = self._book(session, conversation, handoff.booking, now, tally) if handoff.booking else None
        case = HandoffCase(
            conversation_id=conversation.id,
            reason=handoff.reason.value,
            summary=self._summary(session, conversation, handoff),
            booking_id=booking.id if booking else None,
            opened_at=now,
        )
        session.add(case)
        session.flush()
        tally.add(now, insights.CASE_OPENED, case.reason)
        self._queue_alerts(session, conversation, case, handoff, now)
        log.info(
            "handoff",
            extra={"fields": {"case": case.id, "reason": case.reason, "from": mask_phone(conversation.address)}},
        )
        return case

    def book(
        self,
        session: Session,
        conversation: Conversation,
        details: BookingDetails,
        now: datetime,
        tally: insights.Tally,
    ) -> Booking:
        """An appointment confirmed at once (schedule.auto_confirm): booked, and staff told with
        a case already closed (nothing to take), so the chat stays with the bot. While staff have
        the chat anyway, it joins their case as a held one would."""
        if storage.open_case(session, conversation) is not None:
            case = self.hand_over(session, conversation, Handoff(HandoffReason.BOOKING, booking=details), now, tally)
            return session.get(Booking, case.booking_id)
        booking = self._book(session, conversation, details, now, tally)
        # A case closed from the start: staff find the booking in the console (and the alert
        # links it), the bot keeps the chat, and erasing the patient's data takes the alert too.
        case = HandoffCase(
            conversation_id=conversation.id,
            reason=HandoffReason.BOOKING.value,
            summary=self._summary(session, conversation, Handoff(HandoffReason.BOOKING, booking=details)),
            booking_id=booking.id,
            opened_at=now,
            status=CASE_CLOSED,
            closed_at=now,
        )
        session.add(case)
        session.flush()
        values = {
            "case": str(case.id),
            "reason": self.engine.text("staff_reason_booking_booked"),
            "patient": _alert_patient(conversation, details),
            "details": self._booking_details(details),
            "link": self._case_link(case.id),
        }
        case.alert_status = ALERT_PENDING if self.staff.numbers else ALERT_NONE
        self._alert_staff(session, case, values, now)
        log.info("booking confirmed at once", extra={"fields": {"booking": booking.id, "case": case.id}})
        return booking

    def calendar(
        self, session: Session, conversation_id: int | None, now: datetime, reading_slots: bool, moving: bool = False
    ) -> CalendarView:
        """The calendar as one message sees it: the patient's next appointment, and (while a
        booking is being made) the slots with no place left; while it is being `moving` to
        another time, its own places do not fill a slot (they are freed when the move is made)."""
        plan = self.engine.kb.clinic.schedule
        booking = storage.upcoming_details(session, conversation_id, now)
        ignoring = booking.id if moving and booking is not None else None
        full = storage.full_slots(session, now, plan.places, ignoring) if reading_slots else NO_FULL
        if booking is None:
            return CalendarView(full)
        start = booking.start_at.astimezone(dates.JAKARTA)
        minutes = storage.appointment_minutes(booking.start_at, booking.end_at, plan.slot_minutes)
        details = BookingDetails(
            booking.name,
            booking.complaint,
            start,
            booking.treatment or "",
            minutes,
            booking.status == BOOKING_CONFIRMED,
        )
        return CalendarView(full, details)

    def cancel(
        self, session: Session, conversation: Conversation, now: datetime, tally: insights.Tally, moved: bool = False
    ) -> None:
        """The patient cancelled their next appointment, or `moved` it (the new one is booked
        next, and counted as a request): its places go back."""
        booking = storage.upcoming_booking(session, conversation.id, now)
        if booking is None:
            return
        booking.status = BOOKING_CANCELLED
        booking.updated_at = now
        storage.release_booking(session, booking)
        if not moved:
            tally.add(now, insights.BOOKING, BOOKING_CANCELLED)
            self._alert_cancelled(session, conversation, booking, now)
        log.info("booking cancelled by the patient", extra={"fields": {"booking": booking.id}})

    def attending(self, session: Session, conversation: Conversation, now: datetime) -> None:
        """The patient said they will come to their next appointment: staff see it beside it."""
        booking = storage.upcoming_booking(session, conversation.id, now)
        if booking is not None:
            booking.attending_at = now
            log.info("patient will attend", extra={"fields": {"booking": booking.id}})

    def _alert_cancelled(self, session: Session, conversation: Conversation, booking: Booking, now: datetime) -> None:
        """Staff hear of a cancellation as of a request: the place is free again, and a held
        booking's case need not wait for them."""
        case = session.scalars(
            select(HandoffCase).where(HandoffCase.booking_id == booking.id).order_by(HandoffCase.id.desc())
        ).first()
        values = {
            "case": str(case.id) if case is not None else "-",
            "reason": self.engine.text("staff_reason_booking_cancelled"),
            "patient": _alert_patient(conversation, booking),
            "details": self.engine.text("staff_booking_cancelled_details").replace(
                "{when}", dates.describe(booking.start_at)
            ),
            "link": self._case_link(case.id if case is not None else None),
        }
        self._alert_staff(session, case, values, now)

    def _book(self, session: Session, conversation: Conversation, details, now: datetime, tally) -> Booking:
        """The booking, holding a place in each slot it covers (SlotTaken when one has none left)."""
        booking = Booking(
            conversation_id=conversation.id,
            name=details.name,
            complaint=details.complaint,
            start_at=details.start,
            end_at=details.start + timedelta(minutes=details.minutes),
            treatment=details.treatment or None,
            status=BOOKING_CONFIRMED if details.confirmed else BOOKING_HELD,
            created_at=now,
            updated_at=now,
        )
        session.add(booking)
        session.flush()
        plan = self.engine.kb.clinic.schedule
        storage.hold_places(session, booking, plan.cells(details.start, details.minutes), plan.places)
        tally.add(now, insights.BOOKING, "requested")
        if details.confirmed:
            tally.add(now, insights.BOOKING, BOOKING_CONFIRMED)
        return booking

    def _queue_alerts(
        self, session: Session, conversation: Conversation, case: HandoffCase, handoff: Handoff, now: datetime
    ) -> None:
        if not self.staff.numbers:
            case.alert_status = ALERT_NONE
            log.warning(
                "no STAFF_WHATSAPP_NUMBERS: case is only in the staff console", extra={"fields": {"case": case.id}}
            )
            return
        case.alert_status = ALERT_PENDING
        self._alert_staff(session, case, self._alert_values(session, conversation, case, handoff), now)

    def _alert_staff(self, session: Session, case: HandoffCase | None, values: dict[str, str], now: datetime) -> None:
        """One alert per staff number through the outbox (the staff template when set)."""
        if not self.staff.numbers:
            return
        body = fill(self.engine.text("staff_alert"), values)
        # WhatsApp template variables may hold no newline, tab or run of spaces (Twilio 21656).
        variables = {
            str(n): " ".join(values[key].split())
            for n, key in enumerate(("case", "reason", "patient", "details", "link"), start=1)
        }
        for number in self.staff.numbers:
            session.add(
                OutboxItem(
                    kind=STAFF_ALERT,
                    case_id=case.id if case is not None else None,
                    to_address=number,
                    body=body.strip(),
                    template_id=self.staff.template_id or None,
                    content_variables=variables if self.staff.template_id else None,
                    status=OUTBOX_PENDING,
                    next_attempt_at=now,
                    created_at=now,
                )
            )

    def _alert_values(self, session, conversation, case, handoff: Handoff) -> dict[str, str]:
        reason = self.engine.text(f"staff_reason_{case.reason}")
        patient = _alert_patient(conversation, handoff.booking)
        if handoff.booking is not None and case.reason == HandoffReason.BOOKING.value:
            details = self._booking_details(handoff.booking)
        else:
            quoted = " | ".join(m.body[:_MAX_QUOTE] for m in storage.recent_inbound(session, conversation) if m.body)
            details = self.engine.text("staff_last_messages").replace("{messages}", quoted or "-")
        return {
            "case": str(case.id),
            "reason": reason,
            "patient": patient,
            "details": details.strip(),
            "link": self._case_link(case.id),
        }

    def _booking_details(self, booking: BookingDetails) -> str:
        status = "staff_booking_confirmed_now" if booking.confirmed else "staff_booking_held"
        return (
            self.engine.text("staff_booking_details")
            .replace("{when}", dates.describe(booking.start))
            .replace("{complaint}", booking.complaint[:_MAX_QUOTE])
            .replace("{status}", self.engine.text(status))
        )

    def _case_link(self, case_id: int | None) -> str:
        """The console page of a case (its queue without one); "#N" when the console's address is not set."""
        base = self.staff.console_base_url
        if case_id is None:
            return f"{base}/staff/" if base else "-"
        return f"{base}/staff/cases/{case_id}" if base else f"#{case_id}"

    def _summary(self, session, conversation, handoff: Handoff) -> str:
        """One paragraph for the staff queue: reason, who, and what they asked for."""
        values = {
            "reason": handoff.reason.value,
            "patient": patient_name(conversation.profile_name, handoff.booking),
            "number": mask_phone(local_id(conversation.address)),
        }
        if handoff.detail:
            values["triage"] = handoff.detail
        if handoff.booking is not None:
            values["booking"] = f"{dates.describe(handoff.booking.start)}; {handoff.booking.complaint[:_MAX_QUOTE]}"
        else:
            recent = storage.recent_inbound(session, conversation)
            values["last_messages"] = " | ".join(m.body[:_MAX_QUOTE] for m in recent if m.body)
        return "; ".join(f"{key}: {value}" for key, value in values.items())


def _alert_patient(conversation: Conversation, booking) -> str:
    """Who an alert is about, with the masked number: "Budi Santoso (+62812****7890)"."""
    return f"{patient_name(conversation.profile_name, booking)} ({mask_phone(local_id(conversation.address))})"


def patient_name(profile_name: str | None, booking) -> str:
    """Who the case is about: the booking's patient, with the WhatsApp profile name when it
    differs ("Budi Santoso (WhatsApp: Probe)": a booking made for someone else)."""
    name = booking.name if booking is not None and booking.name else None
    if name is None:
        return profile_name or "-"
    if profile_name and profile_name.strip().lower() != name.strip().lower():
        return f"{name} (WhatsApp: {profile_name})"
    return name


def close_case(
    sessions: sessionmaker[Session],
    case_id: int,
    now: datetime,
    by: str | None = None,
    check: Callable | None = None,
    engine: Engine | None = None,
    satisfaction_template_id: str = "",
    rules: DeliveryRules = NO_LIMITS,
) -> bool:
    """Staff are done: close the case and let the bot talk to the patient again. `check(session,
    case)` runs once the case is locked and may refuse by raising, so that nothing can change
    between the check and the closing. With the `engine`, the patient is sent the satisfaction
    question about staff's help when it may come (bot.core.feedback) and the channel's window
    (`rules`) is open: as the quick-reply template `satisfaction_template_id` when set."""
    with sessions.begin() as session:
        # The inbox locks the conversation and then its case: take them in the same order.
        conversation_id = session.execute(
            select(HandoffCase.conversation_id).where(HandoffCase.id == case_id)
        ).scalar_one_or_none()
        if conversation_id is None:
            return False
        conversation = session.get(Conversation, conversation_id, with_for_update=True)
        case = session.get(HandoffCase, case_id, with_for_update=True, populate_existing=True)
        if case.status == CASE_CLOSED:
            return False
        if check is not None:
            check(session, case)
        case.status = CASE_CLOSED
        case.closed_at = now
        if by:
            case.claimed_by = case.claimed_by or by
        state = ConversationState.from_dict(conversation.state).resumed()
        tally = insights.Tally()
        tally.add(now, insights.CASE_CLOSED, case.reason)
        if engine is not None and rules.window_open(conversation, now):
            state, question = engine.feedback.after_case(
                state, now, case.id, urgent=case.reason == HandoffReason.URGENT.value
            )
            if question:
                template_id = satisfaction_template_id or None
                send_to_patient(session, case, conversation, question, now, template_id=template_id)
                tally.add(now, insights.MESSAGES, insights.BOT)
                tally.add(now, insights.FEEDBACK_ASKED, insights.case_label(case.reason))
        conversation.state = state.to_dict()
        conversation.booking_expires_at = None
        conversation.updated_at = now
        tally.save(session)
    log.info("case closed", extra={"fields": {"case": case_id}})
    return True


def send_to_patient(
    session: Session,
    case: HandoffCase,
    conversation: Conversation,
    body: str,
    now: datetime,
    staff: str | None = None,
    template_id: str | None = None,
    variables: dict | None = None,
) -> Message:
    """A message to the patient about a case: stored, and queued in the outbox in the same
    transaction (the worker sends it through the channel); from staff, or from the bot."""
    return queue_to_patient(
        session, conversation.id, conversation.address, body, now, staff, template_id, variables, case_id=case.id
    )


def queue_to_patient(
    session: Session,
    conversation_id: int,
    address: str,
    body: str,
    now: datetime,
    staff: str | None = None,
    template_id: str | None = None,
    variables: dict | None = None,
    case_id: int | None = None,
    booking_id: int | None = None,
) -> Message:
    """A message to the patient, stored and queued in the outbox in the caller's transaction
    (with a template, `body` is what the transcript shows and the fallback text)."""
    message = Message(conversation_id=conversation_id, direction=OUTBOUND, body=body, staff_name=staff, created_at=now)
    session.add(message)
    session.flush()
    session.add(
        OutboxItem(
            kind=PATIENT_MESSAGE,
            case_id=case_id,
            booking_id=booking_id,
            message_id=message.id,
            to_address=address,
            body=body,
            template_id=template_id,
            content_variables=variables,
            status=OUTBOX_PENDING,
            next_attempt_at=now,
            created_at=now,
        )
    )
    return message


def sweep_expired_bookings(sessions: sessionmaker[Session], now: datetime) -> int:
    """Forget unfinished bookings past their expiry, so no stale state stays behind."""
    cleared = 0
    with sessions.begin() as session:
        query = select(Conversation).where(
            Conversation.booking_expires_at.is_not(None), Conversation.booking_expires_at < now
        )
        for conversation in session.execute(query.with_for_update(skip_locked=True)).scalars():
            state = ConversationState.from_dict(conversation.state)
            conversation.state = dataclasses.replace(state, booking=None).to_dict()
            conversation.booking_expires_at = None
            cleared += 1
    if cleared:
        log.info("expired bookings cleared", extra={"fields": {"count": cleared}})
    return cleared


def refresh_alert_status(session: Session, case: HandoffCase) -> None:
    """A case's alert is sent if any staff member's alert went out and did not fail, pending
    while any may still go, and failed only when every one failed."""
    items = list(
        session.execute(
            select(OutboxItem).where(OutboxItem.case_id == case.id, OutboxItem.kind == STAFF_ALERT)
        ).scalars()
    )
    if not items:
        return
    if any(i.status == OUTBOX_SENT and i.delivery_status not in storage.FINAL_FAILURES for i in items):
        case.alert_status = ALERT_SENT
    elif any(i.status in (OUTBOX_PENDING, OUTBOX_SENDING) for i in items):
        case.alert_status = ALERT_PENDING
    else:
        case.alert_status = ALERT_FAILED
