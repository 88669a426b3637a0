"""Prometheus metrics: what the bot did, counted where it happens (the inbox, the outbox
worker), and what waits in the database, read at each scrape.

Labels hold only small fixed sets of values (outcome, decision, triage level, message kind, case
reason): never a number, a name or a text, so /metrics holds no personal data.

Under gunicorn every worker counts into its own files in PROMETHEUS_MULTIPROC_DIR
(prometheus_client's multiprocess mode, set up by gunicorn.conf.py before the app is imported)
and the worker that answers a scrape adds them all up. Without that variable the counts are this
process's own.
"""

from __future__ import annotations

import os
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.core.messages import HandoffReason
from bot.store import storage
from bot.store.storage import (
    CASE_OPEN,
    OUTBOX_FAILED,
    OUTBOX_PENDING,
    OUTBOX_SENDING,
    PATIENT_MESSAGE,
    STAFF_ALERT,
    HandoffCase,
    OutboxItem,
)

# The text format generate_latest writes, as prometheus_client's own server labels it.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
REGISTRY = CollectorRegistry()
# No *_created timestamps: multiprocess mode has none, so one process alone should not either.
disable_created_metrics()
OUTBOX_KINDS = (STAFF_ALERT, PATIENT_MESSAGE)

MESSAGES_RECEIVED = Counter(
    "klinik_messages_received_total",
    "Patient messages received: processed by the bot, duplicate deliveries, silenced by the flood limit, failed"
    " (stored with an apology)",
    ["outcome"],
    registry=REGISTRY,
)
MESSAGES_SENT = Counter(
    "klinik_messages_sent_total",
    "Messages to patients and staff: the bot's replies (reply), and what the outbox worker handed to the channel"
    " (staff_alert, patient_message)",
    ["kind"],
    registry=REGISTRY,
)
REPLIES = Counter(
    "klinik_replies_total",
    "Patient messages the bot read, by its decision (answer, clarify, fallback; none: a booking step, media,"
    " a menu pick) and triage level",
    ["decision", "triage"],
    registry=REGISTRY,
)
REPLY_SECONDS = Histogram(
    "klinik_reply_seconds",
    "From receiving a patient message to its replies stored (a channel waits about 15 s for a webhook)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0),
    registry=REGISTRY,
)
OUTBOX_FAILURES = Counter(
    "klinik_outbox_failures_total",
    "Failed sends of the outbox worker, by kind; final=true when it gave up on the message",
    ["kind", "final"],
    registry=REGISTRY,
)


def message_received(outcome: str, decision: str | None, triage: str | None, replies: int, seconds: float) -> None:
    """One patient message, as the inbox handled it."""
    MESSAGES_RECEIVED.labels(outcome=outcome).inc()
    if outcome == "duplicate":
        return  # answered from storage: counted when it was first processed
    REPLY_SECONDS.observe(seconds)
    MESSAGES_SENT.labels(kind="reply").inc(replies)
    if outcome == "processed":
        REPLIES.labels(decision=decision or "none", triage=triage or "none").inc()


def outbox_sent(kind: str) -> None:
    MESSAGES_SENT.labels(kind=kind).inc()


def outbox_failed(kind: str, final: bool) -> None:
    OUTBOX_FAILURES.labels(kind=kind, final=str(final).lower()).inc()


class DatabaseCollector:
    """Gauges read from the database at each scrape: the outbox backlog and its failures, and
    the open cases. Every web process reports the same figures (use max, not sum, across them)."""

    def __init__(self, sessions: sessionmaker[Session], clock=storage.utcnow):
        self.sessions = sessions
        self.clock = clock

    def collect(self):
        up = GaugeMetricFamily("klinik_database_up", "Whether the last scrape could read the database")
        try:
            gauges = self._read(self.clock())
        except SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from gauges

    def _read(self, now: datetime) -> list[GaugeMetricFamily]:
        with self.sessions() as session:
            outbox = dict.fromkeys(
                ((kind, status) for kind in OUTBOX_KINDS for status in (OUTBOX_PENDING, OUTBOX_SENDING, OUTBOX_FAILED)),
                0,
            )
            counted = select(OutboxItem.kind, OutboxItem.status, func.count()).where(
                OutboxItem.status.in_((OUTBOX_PENDING, OUTBOX_SENDING, OUTBOX_FAILED))
            )
            for kind, status, count in session.execute(counted.group_by(OutboxItem.kind, OutboxItem.status)):
                outbox[kind, status] = count
            oldest = session.execute(
                select(func.min(OutboxItem.created_at)).where(OutboxItem.status.in_((OUTBOX_PENDING, OUTBOX_SENDING)))
            ).scalar()
            cases = dict.fromkeys((reason.value for reason in HandoffReason), 0)
            cases.update(
                session.execute(
                    select(HandoffCase.reason, func.count())
                    .where(HandoffCase.status == CASE_OPEN)
                    .group_by(HandoffCase.reason)
                ).all()
            )
        backlog = GaugeMetricFamily(
            "klinik_outbox_backlog",
            "Outbox messages waiting to be sent (pending or being sent), by kind",
            labels=["kind"],
        )
        failed = GaugeMetricFamily(
            "klinik_outbox_failed",
            "Outbox messages the worker gave up on (shown on their case), by kind",
            labels=["kind"],
        )
        for kind in OUTBOX_KINDS:
            backlog.add_metric([kind], outbox[kind, OUTBOX_PENDING] + outbox[kind, OUTBOX_SENDING])
            failed.add_metric([kind], outbox[kind, OUTBOX_FAILED])
        age = GaugeMetricFamily(
            "klinik_outbox_oldest_waiting_seconds",
            "Age of the oldest outbox message waiting to be sent (0: none waits)",
        )
        age.add_metric([], (now - oldest).total_seconds() if oldest else 0.0)
        open_cases = GaugeMetricFamily(
            "klinik_cases_open", "Open handoff cases (staff have the chat), by reason", labels=["reason"]
        )
        for reason, count in cases.items():
            open_cases.add_metric([reason], count)
        return [backlog, failed, age, open_cases]


def exposition(database: CollectorRegistry) -> bytes:
    """The text a scrape gets: the counts (of every worker, in multiprocess mode) and the
    database's gauges."""
    counts = REGISTRY
    if os.environ.get(MULTIPROCESS_DIR):
        counts = CollectorRegistry()
        MultiProcessCollector(counts)
    return generate_latest(counts) + generate_latest(database)


def database_registry(sessions: sessionmaker[Session]) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(sessions))
    return registry
