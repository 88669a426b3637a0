"""What staff do with handoff cases, independent of how they reach it (web page or JSON API).

Every action runs in one transaction. Claims are settled by the database (a conditional UPDATE:
of two staff members claiming at once, exactly one changes the row). Replies to the patient are
stored as outbound messages and queued in the outbox in the same transaction, so the worker
sends them through the channel with retries and their delivery status comes back on the message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import case as sql_case
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.core import dates
from bot.core.messages import ConversationState, local_id
from bot.logs import mask_phone
from bot.services import insights, privacy
from bot.services.handoff import NO_LIMITS, DeliveryRules, close_case, patient_name, send_to_patient
from bot.services.live import LiveEngine
from bot.store import storage
from bot.store.storage import (
    BOOKING_CANCELLED,
    BOOKING_CONFIRMED,
    BOOKING_HELD,
    BOOKING_REJECTED,
    CASE_CLOSED,
    CASE_OPEN,
    AuditEntry,
    Booking,
    Conversation,
    HandoffCase,
    Message,
)

log = logging.getLogger("klinik.console")
# What staff may decide about a booking: from which statuses, to which, and what the patient reads.
_BOOKING_DECISIONS = {
    "confirm": (frozenset({BOOKING_HELD}), BOOKING_CONFIRMED, "staff_booking_confirmed"),
    "reject": (frozenset({BOOKING_HELD}), BOOKING_REJECTED, "staff_booking_rejected"),
    "cancel": (frozenset({BOOKING_HELD, BOOKING_CONFIRMED}), BOOKING_CANCELLED, "staff_booking_cancelled"),
}
# The longest staff reply the console takes; a channel with a shorter limit lowers it.
MAX_REPLY = 4096
VIEWS = ("waiting", "mine", "open", "closed", "all")


class ConsoleError(Exception):
    """A refused action; `code` is stable (API, tests), the console shows its Indonesian text."""

    status = {"not_found": 404, "claimed_by_other": 409, "closed": 409, "window_closed": 409,
              "no_booking": 409, "booking_decided": 409, "empty": 400, "too_long": 400,
              "no_template": 409, "bad_view": 400, "erased": 410, "booking_undecided": 409,
              "other_case_open": 409}  # fmt: skip

    def __init__(self, code: str, **details):
        super().__init__(code)
        self.code = code
        self.details = details

    @property
    def http_status(self) -> int:
        return self.status.get(self.code, 400)


@dataclass(frozen=True)
class Templates:
    """Content templates (optional): an approved one for replies outside the 24-hour window, and
    the quick-reply satisfaction question sent when a case is closed."""

    reply_template_id: str = ""
    satisfaction_template_id: str = ""


class Console:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        engines: LiveEngine,
        templates: Templates = Templates(),
        clock=storage.utcnow,
        rules: DeliveryRules = NO_LIMITS,
    ):
        self.sessions = sessions
        self.rules = rules
        # The queue and the periodic refreshes only read: on SQLite they then never wait for,
        # or hold up, the webhook's writes.
        self.read_sessions = storage.read_only_sessions(sessions)
        self.engines = engines
        self.templates = templates
        self.clock = clock

    # -- reading ----------------------------------------------------------------------------

    def queue(self, view: str, me: str) -> list[dict]:
        """Open cases waiting for someone (`waiting`), claimed by me (`mine`), all `open`
        ones (urgent first, then the longest waiting); or `closed` / `all` (newest 200 first)."""
        if view not in VIEWS:
            raise ConsoleError("bad_view")
        now = self.clock()
        urgent_first = sql_case((HandoffCase.reason == "urgent", 0), else_=1)
        query = select(HandoffCase, Conversation).join(Conversation, Conversation.id == HandoffCase.conversation_id)
        if view == "waiting":
            query = query.where(HandoffCase.status == CASE_OPEN, HandoffCase.claimed_by.is_(None))
        elif view == "mine":
            query = query.where(HandoffCase.status == CASE_OPEN, HandoffCase.claimed_by == me)
        elif view in ("open", "closed"):
            query = query.where(HandoffCase.status == (CASE_OPEN if view == "open" else CASE_CLOSED))
        if view in ("all", "closed"):
            query = query.order_by(
                (HandoffCase.status == CASE_OPEN).desc(), urgent_first, HandoffCase.opened_at.desc()
            ).limit(200)
        else:
            query = query.order_by(urgent_first, HandoffCase.opened_at, HandoffCase.id)
        with self.read_sessions() as session:
            return [self._case_row(session, case, conversation, now) for case, conversation in session.execute(query)]

    def case(self, case_id: int, viewer: str | None = None) -> dict:
        """A case with its booking and the whole transcript, oldest first. A `viewer` is
        recorded in the audit log (the page and the API; not the periodic refreshes)."""
        now = self.clock()
        with self.sessions.begin() if viewer else self.read_sessions() as session:
            case, conversation = self._load(session, case_id)
            if viewer:
                privacy.audit(session, viewer, "view_transcript", conversation.id, now, case=case_id)
            row = self._case_row(session, case, conversation, now)
            messages = session.execute(
                select(Message)
                .where(Message.conversation_id == conversation.id)
                .order_by(Message.created_at, Message.id)
            ).scalars()
            row["messages"] = [self._with_reason(message_dict(m)) for m in messages]
            row["window_open"] = self._window_open(conversation, now)
            row["max_reply"] = self.rules.max_length(conversation.address, MAX_REPLY)
            row["template_available"] = bool(self.templates.reply_template_id)
            return row

    def _with_reason(self, message: dict) -> dict:
        """An answered patient message with the example it was closest to, as the reason the
        bot chose that topic (staff see why, and what to teach when it chose wrong)."""
        if message["sender"] == "patient" and message["decision"] == "answer" and message["intent"] and message["text"]:
            nearest = self.engines.current().matcher.nearest_example(message["text"], message["intent"])
            message["nearest_example"] = nearest[0] if nearest else None
        return message

    def other_open_case(self, case_id: int) -> int | None:
        """The patient's open case beside this closed one (it has the chat), if any."""
        with self.read_sessions() as session:
            case, conversation = self._load(session, case_id)
            other = storage.open_case(session, conversation) if case.status != CASE_OPEN else None
            return other.id if other is not None else None

    def _case_row(self, session: Session, case: HandoffCase, conversation: Conversation, now: datetime) -> dict:
        booking = session.get(Booking, case.booking_id) if case.booking_id else None
        end = case.closed_at or now
        return {
            "id": case.id,
            "reason": case.reason,
            "status": case.status,
            "summary": case.summary,
            "patient": {
                "name": conversation.profile_name,
                "number": mask_phone(local_id(conversation.address)),
                "last_message_at": _iso(conversation.last_inbound_at),
            },
            "opened_at": _iso(case.opened_at),
            "closed_at": _iso(case.closed_at),
            "waiting_seconds": int((end - case.opened_at).total_seconds()),
            "claimed_by": case.claimed_by,
            "claimed_at": _iso(case.claimed_at),
            "alert_status": case.alert_status,
            "booking": _booking_dict(booking, now) if booking else None,
            # The booking's patient (with the WhatsApp profile name when it differs).
            "shown_name": patient_name(conversation.profile_name, booking),
            "erased": conversation.erased_at is not None,
        }

    def _load(self, session: Session, case_id: int, lock: bool = False) -> tuple[HandoffCase, Conversation]:
        """The case and its conversation; with `lock`, both locked (conversation first, as the
        inbox does, so the two never deadlock)."""
        conversation_id = session.execute(
            select(HandoffCase.conversation_id).where(HandoffCase.id == case_id)
        ).scalar_one_or_none()
        if conversation_id is None:
            raise ConsoleError("not_found")
        conversation = session.get(Conversation, conversation_id, with_for_update=lock)
        case = session.get(HandoffCase, case_id, with_for_update=lock, populate_existing=lock)
        return case, conversation

    def _window_open(self, conversation: Conversation, now: datetime) -> bool:
        return self.rules.window_open(conversation, now)

    # -- acting -----------------------------------------------------------------------------

    def claim(self, case_id: int, me: str) -> None:
        """Take the case. Exactly one of two simultaneous claims wins; the other is told who."""
        now = self.clock()
        with self.sessions.begin() as session:
            won = session.execute(
                update(HandoffCase)
                .where(HandoffCase.id == case_id, HandoffCase.status == CASE_OPEN, HandoffCase.claimed_by.is_(None))
                .values(claimed_by=me, claimed_at=now)
            ).rowcount
            if won:
                log.info("case claimed", extra={"fields": {"case": case_id}})
                return
            case = session.get(HandoffCase, case_id)
            if case is None:
                raise ConsoleError("not_found")
            if case.status != CASE_OPEN:
                raise ConsoleError("closed")
            if case.claimed_by != me:
                raise ConsoleError("claimed_by_other", by=case.claimed_by)

    def reply(self, case_id: int, me: str, text: str) -> int:
        """Send a free-form message to the patient (claiming the case if nobody has)."""
        text = (text or "").strip()
        if not text:
            raise ConsoleError("empty")
        now = self.clock()
        with self.sessions.begin() as session:
            case, conversation = self._own(session, case_id, me, now)
            limit = self.rules.max_length(conversation.address, MAX_REPLY)
            if len(text) > limit:
                raise ConsoleError("too_long", limit=limit)
            if not self._window_open(conversation, now):
                raise ConsoleError("window_closed")
            return self._send(session, case, conversation, text, me, now)

    def send_template(self, case_id: int, me: str) -> int:
        """Outside the 24-hour window: the approved template inviting the patient to reply."""
        if not self.templates.reply_template_id:
            raise ConsoleError("no_template")
        now = self.clock()
        with self.sessions.begin() as session:
            case, conversation = self._own(session, case_id, me, now)
            engine = self.engines.current()
            name = " ".join((conversation.profile_name or "").split()) or engine.text("staff_template_no_name")
            body = engine.text("staff_template_reply").replace("{name}", name)
            return self._send(
                session,
                case,
                conversation,
                body,
                me,
                now,
                template_id=self.templates.reply_template_id,
                variables={"1": name},
            )

    def decide_booking(self, case_id: int, me: str, confirm: bool, note: str = "") -> int | None:
        """Confirm or reject the held booking; the patient is told in the same transaction.
        Outside WhatsApp's 24-hour window the decision is still recorded, but no message can go:
        returns None, and staff are told to reach the patient another way (or the template)."""
        return self.decide(case_id, me, "confirm" if confirm else "reject", note)

    def decide(self, case_id: int, me: str, decision: str, note: str = "") -> int | None:
        """A decision of _BOOKING_DECISIONS on the case's booking (confirm, reject, cancel).
        An upcoming confirmed appointment can be cancelled from a closed case too (see _reopen)."""
        allowed, status, key = _BOOKING_DECISIONS[decision]
        now = self.clock()
        with self.sessions.begin() as session:
            case, conversation, booking = self._case_booking(session, case_id, me, now, reopen=decision == "cancel")
            if booking.status not in allowed:
                raise ConsoleError("booking_decided", status=booking.status)
            booking.status = status
            if status != BOOKING_CONFIRMED:
                storage.release_booking(session, booking)
            booking.decided_by = me
            booking.updated_at = now
            if status != BOOKING_CANCELLED:  # the report counts the patients' cancellations only
                tally = insights.Tally()
                tally.add(now, insights.BOOKING, booking.status)
                tally.save(session)
            log.info("booking decided", extra={"fields": {"case": case_id, "status": booking.status}})
            return self._tell(session, case, conversation, booking, key, note, me, now)

    def move_booking(self, case_id: int, me: str, start: datetime, note: str = "") -> int | None:
        """Move the case's upcoming appointment (held or confirmed; it keeps its status) to
        `start`, checked as the patient's own choice is: the clinic open for its whole length,
        a place free in every slot (its own places do not count). Its reminder goes again for
        the new time. From a closed case as a cancellation is (see _reopen). The patient is
        told; None when they cannot be (WhatsApp's 24 hours)."""
        now = self.clock()
        plan = self.engines.current().kb.clinic.schedule
        with self.sessions.begin() as session:
            case, conversation, booking = self._case_booking(session, case_id, me, now, reopen=True)
            if booking.status not in (BOOKING_HELD, BOOKING_CONFIRMED) or booking.start_at <= now:
                raise ConsoleError("booking_decided", status=booking.status)
            if start <= now:
                raise ConsoleError("move_past")
            minutes = booking.minutes(plan.slot_minutes)
            full = storage.full_slots(session, now, plan.places, ignoring=booking.id)
            check = plan.check(start, minutes, now, full)
            if not check.ok:
                raise ConsoleError(f"move_{check.reason}")
            storage.release_booking(session, booking)
            booking.start_at, booking.end_at = start, start + timedelta(minutes=minutes)
            booking.reminded_at = booking.attending_at = None  # the new time: reminded and confirmed afresh
            booking.decided_by, booking.updated_at = me, now
            try:
                storage.hold_places(session, booking, plan.cells(start, minutes), plan.places)
            except storage.SlotTaken:
                raise ConsoleError("move_full") from None
            log.info("booking moved", extra={"fields": {"case": case_id, "status": booking.status}})
            return self._tell(session, case, conversation, booking, "staff_booking_moved", note, me, now)

    def _case_booking(
        self, session: Session, case_id: int, me: str, now: datetime, reopen: bool
    ) -> tuple[HandoffCase, Conversation, Booking]:
        """The case (claimed by `me`, or opened again when `reopen` allows and it is closed), its
        conversation and its booking, locked."""
        case, conversation = self._load(session, case_id, lock=True)
        if case.status != CASE_OPEN and reopen:
            self._reopen(session, case, conversation, me, now)
        else:
            self._claim(case, me, now)
        booking = session.get(Booking, case.booking_id, with_for_update=True) if case.booking_id else None
        if booking is None:
            raise ConsoleError("no_booking")
        return case, conversation, booking

    def _tell(self, session, case, conversation, booking: Booking, key: str, note: str, me: str, now) -> int | None:
        """The patient told of staff's decision on the booking (text `key`, staff's note after
        it); None when WhatsApp's 24 hours have passed and no free message can go."""
        engine = self.engines.current()
        body = engine.text(key).replace("{when}", dates.describe(booking.start_at)).replace("{name}", booking.name)
        note = " ".join(note.split())[:500]
        if note:
            body = f"{body}\n{engine.text('staff_note').replace('{note}', note)}"
        if not self._window_open(conversation, now):
            return None
        return self._send(session, case, conversation, body, me, now)

    def close(self, case_id: int, me: str) -> None:
        """Close the case (the bot resumes). Not someone else's case, and not with a booking
        request still undecided: the patient would never hear back."""

        def allowed(session: Session, case: HandoffCase) -> None:
            if case.claimed_by and case.claimed_by != me:
                raise ConsoleError("claimed_by_other", by=case.claimed_by)
            booking = session.get(Booking, case.booking_id) if case.booking_id else None
            if booking is not None and booking.status == BOOKING_HELD:
                raise ConsoleError("booking_undecided")

        with self.read_sessions() as session:
            self._load(session, case_id)  # 404 for an unknown case
        closed = close_case(
            self.sessions,
            case_id,
            self.clock(),
            by=me,
            check=allowed,
            engine=self.engines.current(),
            satisfaction_template_id=self.templates.satisfaction_template_id,
            rules=self.rules,
        )
        if not closed:
            raise ConsoleError("closed")

    def export_patient(self, case_id: int, me: str) -> dict:
        """Everything stored about the case's patient (JSON), recorded in the audit log."""
        now = self.clock()
        with self.sessions.begin() as session:
            _, conversation = self._load(session, case_id)
            if conversation.erased_at is not None:
                raise ConsoleError("erased")
            privacy.audit(session, me, "export", conversation.id, now, case=case_id)
            return privacy.export(session, conversation)

    def erase_patient(self, case_id: int, me: str) -> None:
        """Erase the case's patient's data (on their request by phone or at the desk)."""
        now = self.clock()
        with self.sessions.begin() as session:
            _, conversation = self._load(session, case_id, lock=True)
            if conversation.erased_at is not None:
                raise ConsoleError("erased")
            privacy.erase(session, conversation, now, me, self.engines.current().text("erased_by_staff_case"))
        storage.scrub(self.sessions)

    def audit_log(self, limit: int = 200) -> list[dict]:
        with self.read_sessions() as session:
            entries = session.execute(
                select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
            ).scalars()
            return [
                {
                    "at": e.at.isoformat(),
                    "actor": e.actor,
                    "action": e.action,
                    "conversation_id": e.conversation_id,
                    "detail": e.detail,
                }
                for e in entries
            ]

    def _own(self, session: Session, case_id: int, me: str, now: datetime) -> tuple[HandoffCase, Conversation]:
        """Lock the case for an action by `me`: it must be open and not someone else's."""
        case, conversation = self._load(session, case_id, lock=True)
        self._claim(case, me, now)
        return case, conversation

    @staticmethod
    def _claim(case: HandoffCase, me: str, now: datetime) -> None:
        if case.status != CASE_OPEN:
            raise ConsoleError("closed")
        if case.claimed_by and case.claimed_by != me:
            raise ConsoleError("claimed_by_other", by=case.claimed_by)
        if not case.claimed_by:
            case.claimed_by, case.claimed_at = me, now

    def _reopen(self, session: Session, case: HandoffCase, conversation: Conversation, me: str, now: datetime) -> None:
        """Cancelling an upcoming confirmed appointment from its closed case (one booked at once
        with auto-confirm, or a case closed after confirming) opens the case again for `me`, so
        the patient's answer to the cancellation reaches staff. Refused for a past appointment
        and while another case of the patient is open (that one has the chat: close it first).
        When the patient cannot be written to (outside WhatsApp's 24 hours) the case stays
        closed: the cancellation is recorded and staff are told to reach the patient."""
        booking = session.get(Booking, case.booking_id) if case.booking_id else None
        if booking is None or booking.status != BOOKING_CONFIRMED or booking.start_at <= now:
            raise ConsoleError("closed")
        other = storage.open_case(session, conversation)
        if other is not None:
            raise ConsoleError("other_case_open", case=other.id)
        if not self._window_open(conversation, now):
            return
        case.status, case.closed_at, case.claimed_by, case.claimed_at = CASE_OPEN, None, me, now
        # Staff write first in a reopened case: no waiting time for the report's first reply.
        case.first_reply_at = case.first_reply_at or now
        tally = insights.Tally()
        tally.add(now, insights.CASE_OPENED, case.reason)
        tally.save(session)
        session.flush()

    def _send(self, session, case, conversation, body, me, now, template_id=None, variables=None) -> int:
        state = ConversationState.from_dict(conversation.state)
        if state.erase_asked_at:
            # Staff wrote since: the patient's next "ya" answers staff, not the erase question.
            conversation.state = replace(state, erase_asked_at=None).to_dict()
        message = send_to_patient(
            session, case, conversation, body, now, staff=me, template_id=template_id, variables=variables
        )
        tally = insights.Tally()
        tally.add(now, insights.MESSAGES, insights.STAFF)
        if case.first_reply_at is None:
            case.first_reply_at = now
            waited = int((now - case.opened_at).total_seconds())
            tally.add(case.opened_at, insights.FIRST_REPLY, str(max(waited, 0)))
        tally.save(session)
        log.info("staff reply queued", extra={"fields": {"case": case.id, "to": mask_phone(conversation.address)}})
        return message.id


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _booking_dict(booking: Booking, now: datetime) -> dict:
    return {
        "id": booking.id,
        "name": booking.name,
        "complaint": booking.complaint,
        "start_at": booking.start_at.astimezone(dates.JAKARTA).isoformat(),
        "when": dates.describe(booking.start_at),
        "status": booking.status,
        "decided_by": booking.decided_by,
        "upcoming": booking.start_at > now,
        "attending": dates.describe(booking.attending_at) if booking.attending_at else None,
    }


def message_dict(message: Message) -> dict:
    return {
        "id": message.id,
        "sender": message.sender,
        "staff_name": message.staff_name,
        "text": message.body,
        "media": [{"url": m.get("url"), "content_type": m.get("content_type")} for m in (message.media or [])],
        "location": {"latitude": message.latitude, "longitude": message.longitude, "label": message.location_label}
        if message.latitude is not None
        else None,
        "intent": message.intent,
        "decision": message.decision,
        "status": message.status,
        "error_code": message.error_code,
        "created_at": message.created_at.isoformat(),
    }
