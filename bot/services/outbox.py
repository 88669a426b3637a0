"""The outbox worker: sends what the app queued, at least once, with retries.

Items are written in the same transaction as what caused them (a handoff case, a staff reply),
so nothing is lost if the app or the channel fails. The worker claims due items with a lease, sends
them, and records the result; a network error, 429 or 5xx is retried with exponential backoff,
and after `max_attempts` the item fails visibly (its case shows the alert failed).

Delivery is at least once: if the worker dies (or stalls past its lease) after the channel accepted a
message but before the result was stored, the lease expires and the message is sent again. No
other duplicate is possible: items are claimed one at a time under a lease that covers one send,
and only the holder of the current claim token may record the result.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from bot.logs import mask_phone
from bot.services import metrics
from bot.services.handoff import refresh_alert_status
from bot.store import storage
from bot.store.storage import (
    OUTBOX_FAILED,
    OUTBOX_PENDING,
    OUTBOX_SENDING,
    OUTBOX_SENT,
    HandoffCase,
    Message,
    OutboxItem,
)

log = logging.getLogger("klinik.outbox")


class SendError(Exception):
    """A message could not be sent (by any channel's sender). `retryable`: worth trying again later."""

    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Sent:
    """A message a channel accepted: its id there and its first status."""

    channel_message_id: str
    status: str


class OutboxWorker:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        sender,
        *,
        max_attempts: int = 8,
        base_delay: float = 2.0,
        max_delay: float = 300.0,
        lease: float = 60.0,
        clock: Callable[[], datetime] = storage.utcnow,
    ):
        self.sessions = sessions
        self.sender = sender
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.lease = timedelta(seconds=lease)
        self.clock = clock

    def backoff(self, attempts: int) -> timedelta:
        """2 s, 4 s, 8 s, ... capped at max_delay."""
        return timedelta(seconds=min(self.max_delay, self.base_delay * 2 ** max(attempts - 1, 0)))

    def run_once(self, limit: int = 20) -> int:
        """Send what is due now, one item at a time; returns how many items were tried."""
        tried = 0
        while tried < limit:
            claimed = self._claim()
            if claimed is None:
                break
            tried += 1
            item_id, token, to, body, template_id, variables = claimed
            try:
                sent = self.sender.send(to, body, template_id, variables, outbox_id=item_id)
            except SendError as error:
                self._failed(item_id, token, str(error), error.retryable)
            except Exception as error:  # noqa: BLE001 - an unexpected client error must not kill the worker
                log.exception("unexpected send error")
                self._failed(item_id, token, f"{type(error).__name__}: {error}", retryable=True)
            else:
                self._sent(item_id, token, sent.channel_message_id, sent.status)
        return tried

    def _claim(self) -> tuple | None:
        """Take the next due item (or one whose worker's lease ran out) for this worker alone."""
        now = self.clock()
        with self.sessions.begin() as session:
            due = (
                select(OutboxItem)
                .where(
                    or_(
                        (OutboxItem.status == OUTBOX_PENDING) & (OutboxItem.next_attempt_at <= now),
                        (OutboxItem.status == OUTBOX_SENDING) & (OutboxItem.lease_until < now),
                    )
                )
                .order_by(OutboxItem.next_attempt_at, OutboxItem.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            item = session.execute(due).scalar_one_or_none()
            if item is None:
                return None
            item.status = OUTBOX_SENDING
            item.lease_until = now + self.lease
            item.claim_token = uuid.uuid4().hex
            item.attempts += 1
            return item.id, item.claim_token, item.to_address, item.body, item.template_id, item.content_variables

    def _mine(self, session: Session, item_id: int, token: str) -> OutboxItem | None:
        """The item, if this worker still holds it (its lease may have passed to another)."""
        item = session.get(OutboxItem, item_id, with_for_update=True)
        if item is None or item.claim_token != token or item.status != OUTBOX_SENDING:
            log.warning("lease lost before the result was stored", extra={"fields": {"outbox": item_id}})
            return None
        return item

    def _sent(self, item_id: int, token: str, channel_message_id: str, status: str) -> None:
        now = self.clock()
        with self.sessions.begin() as session:
            item = self._mine(session, item_id, token)
            if item is None:
                return
            item.status = OUTBOX_SENT
            item.channel_message_id = channel_message_id
            item.delivery_status = item.delivery_status or status
            item.sent_at = now
            item.lease_until = None
            item.last_error = None
            if item.message_id is not None:
                message = session.get(Message, item.message_id)
                message.channel_message_id = message.channel_message_id or channel_message_id
                storage.update_status(session, message, status, None, now)
            if item.case_id is not None:
                refresh_alert_status(session, session.get(HandoffCase, item.case_id))
            to, kind = item.to_address, item.kind
        metrics.outbox_sent(kind)
        log.info("sent", extra={"fields": {"outbox": item_id, "message": channel_message_id, "to": mask_phone(to)}})

    def _failed(self, item_id: int, token: str, error: str, retryable: bool) -> None:
        now = self.clock()
        with self.sessions.begin() as session:
            item = self._mine(session, item_id, token)
            if item is None:
                return
            item.last_error = error[:1000]
            item.lease_until = None
            if retryable and item.attempts < self.max_attempts:
                item.status = OUTBOX_PENDING
                item.next_attempt_at = now + self.backoff(item.attempts)
                gave_up = False
            else:
                item.status = OUTBOX_FAILED
                gave_up = True
                if item.message_id is not None:
                    storage.update_status(session, session.get(Message, item.message_id), "failed", None, now)
            if item.case_id is not None:
                refresh_alert_status(session, session.get(HandoffCase, item.case_id))
            kind = item.kind
        metrics.outbox_failed(kind, final=gave_up)
        level = logging.ERROR if gave_up else logging.WARNING
        log.log(level, "send failed", extra={"fields": {"outbox": item_id, "error": error[:200], "gave_up": gave_up}})

    def run_forever(
        self, stop: threading.Event, poll_interval: float = 1.0, housekeeping: Callable[[], object] | None = None
    ) -> None:
        """Poll until `stop` is set; `housekeeping` (e.g. expiring bookings) runs every poll."""
        while not stop.is_set():
            try:
                busy = self.run_once()
                if housekeeping:
                    housekeeping()
            except Exception:  # noqa: BLE001 - the database may be down for a moment: keep going
                log.exception("outbox poll failed")
                busy = 0
            if not busy:
                stop.wait(poll_interval)
