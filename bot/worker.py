"""Running the outbox worker: `python -m bot worker`, or a thread beside a dev server."""

from __future__ import annotations

import functools
import logging
import signal
import threading
import uuid
from functools import partial

import prometheus_client

from bot import channels
from bot.config import Config
from bot.core import knowledge
from bot.logs import mask_phone
from bot.services import metrics
from bot.services.handoff import sweep_expired_bookings
from bot.services.outbox import OutboxWorker, Sent
from bot.services.reminders import ReminderSettings, queue_reminders
from bot.store import storage

log = logging.getLogger("klinik.worker")


class DevSender:
    """Dev mode, for a channel without the settings to send: nothing leaves the machine; the
    message is logged (its text at DEBUG only: it may quote a patient)."""

    def send(self, to, body="", template_id=None, content_variables=None, outbox_id=None) -> Sent:
        log.info("dev mode: message not sent (channel not configured)", extra={"fields": {"to": mask_phone(to)}})
        log.debug("dev mode message", extra={"fields": {"body": body}})
        return Sent(f"SMdev{uuid.uuid4().hex}", "sent")


def build_worker(config: Config, sessions=None) -> OutboxWorker:
    if sessions is None:
        sessions = storage.session_factory(storage.make_engine(config.database_url))
    try:
        sender = channels.outbound(config, stand_in=DevSender() if config.dev_mode else None)
    except ValueError as error:
        raise SystemExit(f"the worker: {error}") from None
    return OutboxWorker(sessions, sender, max_attempts=config.outbox_max_attempts)


def start_in_background(config: Config, sessions) -> threading.Event:
    """The worker in a daemon thread (dev mode); set the returned event to stop it."""
    worker = build_worker(config, sessions)
    stop = threading.Event()
    thread = threading.Thread(
        target=worker.run_forever,
        args=(stop,),
        kwargs={"housekeeping": partial(_housekeeping, sessions, config)},
        daemon=True,
        name="outbox-worker",
    )
    thread.start()
    return stop


def _housekeeping(sessions, config: Config) -> None:
    now = storage.utcnow()
    sweep_expired_bookings(sessions, now)
    settings = ReminderSettings(
        config.reminder_days_before, config.reminder_hour, config.reminder_template_id, channels.delivery_rules()
    )
    if settings.days_before > 0:
        queue_reminders(sessions, _knowledge(config.knowledge_dir), settings, now)


@functools.cache
def _knowledge(directory):
    """The knowledge base for the reminders' text (read once per worker process)."""
    return knowledge.load(directory)


def run(config: Config) -> int:
    """Foreground worker until SIGTERM/SIGINT (the Procfile's `worker:` line)."""
    sessions = storage.session_factory(storage.make_engine(config.database_url))
    worker = build_worker(config, sessions)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if config.worker_metrics_port:
        # Its sends and failures; the backlog is in the web's /metrics (read from the database).
        prometheus_client.start_http_server(
            config.worker_metrics_port, addr=config.worker_metrics_host, registry=metrics.REGISTRY
        )
    log.info("worker started")
    worker.run_forever(stop, housekeeping=partial(_housekeeping, sessions, config))
    log.info("worker stopped")
    return 0
