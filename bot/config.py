"""Configuration from environment variables, with defaults that run locally with no accounts.

Secrets (channel tokens, the session key) come only from the environment, never from the
repository. A channel reads its own settings from `Config.environ` (bot/channels/<name>/), so
nothing here names a messaging platform.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE = ROOT / "instance" / "klinik.db"
DEFAULT_MODEL_CACHE = ROOT / "instance" / "model-cache"


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Config:
    knowledge_dir: Path = ROOT / "knowledge"
    database_url: str = f"sqlite:///{DEFAULT_DATABASE}"
    public_base_url: str = ""
    dev_mode: bool = False
    # Number of reverse proxies in front of the app whose X-Forwarded-Proto/Host to trust.
    trusted_proxies: int = 0
    rate_limit_per_minute: int = 20
    log_level: str = "INFO"
    # Staff alerted over WhatsApp when a chat is handed over ("whatsapp:+62..." or "+62...").
    staff_whatsapp_numbers: tuple[str, ...] = ()
    # An approved content template for staff alerts (needed outside WhatsApp's 24-hour window).
    staff_alert_template_id: str = ""
    booking_expiry_minutes: int = 120
    outbox_max_attempts: int = 8
    # Signs staff console session cookies; required outside dev mode for logins.
    secret_key: str = field(default="", repr=False)
    # An approved content template staff can send when the 24-hour window has closed.
    patient_reply_template_id: str = ""
    # Appointment reminders: days before (0: none), at this hour (Asia/Jakarta), and an approved
    # template ({{1}} name, {{2}} when, buttons to confirm, move or cancel) they go as; without
    # it a reminder is text, and none goes to patients whose last message is older than 24 hours.
    reminder_days_before: int = 1
    reminder_hour: int = 10
    reminder_template_id: str = ""
    # A quick-reply content template (buttons `helpful` and `not_helpful`) the satisfaction
    # question goes as; unset: it is sent as text, answered with 1 or 2.
    satisfaction_template_id: str = ""
    # Conversations are purged this many days after their last message (`python -m bot purge`).
    retention_days: int = 365
    # How often each worker looks for changed knowledge files (seconds).
    knowledge_reload_seconds: float = 2.0
    # Trained intent models, cached by a hash of their inputs (a warm start does not retrain).
    model_cache_dir: Path = DEFAULT_MODEL_CACHE
    # Start outside dev mode although knowledge/clinic.yaml holds the shipped example values:
    # for a staging server and the test suite only, never where patients write.
    allow_example_values: bool = False
    # When set, /metrics answers only `Authorization: Bearer <this>`.
    metrics_token: str = field(default="", repr=False)
    # The schedule's iCalendar feed is served at /calendar/<this>.ics (unset: no feed).
    calendar_feed_token: str = field(default="", repr=False)
    # `python -m bot worker` serves its own counters for Prometheus on this address (port 0: it does not).
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = 0
    # The environment this configuration was read from: each channel takes its settings (tokens,
    # sender ids) from here. Secrets inside, so never printed.
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        env = os.environ if environ is None else environ
        return cls(
            knowledge_dir=Path(env.get("KNOWLEDGE_DIR") or ROOT / "knowledge"),
            database_url=env.get("DATABASE_URL") or f"sqlite:///{DEFAULT_DATABASE}",
            public_base_url=(env.get("PUBLIC_BASE_URL") or "").rstrip("/"),
            dev_mode=_flag(env.get("BOT_DEV_MODE")),
            trusted_proxies=int(env.get("TRUSTED_PROXIES") or 0),
            rate_limit_per_minute=int(env.get("RATE_LIMIT_PER_MINUTE") or 20),
            log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
            staff_whatsapp_numbers=tuple(
                _whatsapp(n) for n in (env.get("STAFF_WHATSAPP_NUMBERS") or "").split(",") if n.strip()
            ),
            staff_alert_template_id=env.get("STAFF_ALERT_CONTENT_SID", ""),
            booking_expiry_minutes=int(env.get("BOOKING_EXPIRY_MINUTES") or 120),
            outbox_max_attempts=int(env.get("OUTBOX_MAX_ATTEMPTS") or 8),
            secret_key=env.get("SECRET_KEY", ""),
            patient_reply_template_id=env.get("PATIENT_REPLY_CONTENT_SID", ""),
            reminder_days_before=int(env.get("REMINDER_DAYS_BEFORE") or 1),
            reminder_hour=int(env.get("REMINDER_HOUR") or 10),
            reminder_template_id=env.get("REMINDER_CONTENT_SID", ""),
            satisfaction_template_id=env.get("SATISFACTION_CONTENT_SID", ""),
            retention_days=int(env.get("RETENTION_DAYS") or 365),
            knowledge_reload_seconds=float(env.get("KNOWLEDGE_RELOAD_SECONDS") or 2.0),
            model_cache_dir=Path(env.get("MODEL_CACHE_DIR") or DEFAULT_MODEL_CACHE),
            allow_example_values=_flag(env.get("ALLOW_EXAMPLE_VALUES")),
            metrics_token=env.get("METRICS_TOKEN", ""),
            calendar_feed_token=env.get("CALENDAR_FEED_TOKEN", ""),
            worker_metrics_host=env.get("WORKER_METRICS_HOST") or "127.0.0.1",
            worker_metrics_port=int(env.get("WORKER_METRICS_PORT") or 0),
            environ=dict(env),
        )


def _whatsapp(number: str) -> str:
    number = number.strip().replace(" ", "")
    return number if number.startswith("whatsapp:") else f"whatsapp:{number}"
