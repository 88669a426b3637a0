"""Structured log lines, with phone numbers masked. Message bodies are never logged."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

# "+6281234565678", "whatsapp:+62 812-3456-5678", "6281234565678": anything that looks like a
# phone number of 8+ digits keeps its first 5 digits and last 4.
_PHONE = re.compile(r"(?<![\w])(\+?)(\d[\d\- ]{6,}\d)(?![\w])")


def mask_phone(value: str | None) -> str | None:
    """'whatsapp:+6281234565678' -> 'whatsapp:+62812****5678'."""
    if value is None:
        return None

    def masked(found: re.Match) -> str:
        digits = re.sub(r"\D", "", found.group(2))
        if len(digits) < 8:
            return found.group(0)
        return f"{found.group(1)}{digits[:5]}{'*' * 4}{digits[-4:]}"

    return _PHONE.sub(masked, value)


class StructuredFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event, and the record's `fields`.

    Every string value, and the message itself, passes through mask_phone, so a number that
    slips into a log call is still masked."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": mask_phone(record.getMessage()),
        }
        for key, value in (getattr(record, "fields", None) or {}).items():
            entry[key] = mask_phone(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["error"] = mask_phone(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(level: str = "INFO") -> None:
    """Send every log line of the process through the structured formatter."""
    handler = logging.StreamHandler()
    handler.setFormatter(StructuredFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Alembic announces every plugin and step at INFO; its warnings and errors are enough.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
