"""Twilio WhatsApp: the only package that imports twilio (an import contract checks it).

The home channel: the simulator, `chat --via-webhook` and live replays speak through it."""

from datetime import timedelta

from .client import PatientSide
from .content import register_command as register_content
from .content import status_command as content_status
from .sender import REQUIREMENT as SENDER_NEEDS
from .sender import TwilioSender
from .settings import settings
from .webhook import WHATSAPP_MAX_LENGTH as MAX_MESSAGE_LENGTH
from .webhook import init_app

ADDRESS_SCHEME = "whatsapp"
HOME = True
# WhatsApp takes free-form messages only within 24 hours of the patient's last one.
REPLY_WINDOW = timedelta(hours=24)


def sender(config) -> TwilioSender | None:
    """The REST sender, when the credentials to send are set."""
    return TwilioSender(config) if settings(config).can_send else None


def patient_side(config) -> PatientSide:
    return PatientSide(config)


__all__ = [
    "ADDRESS_SCHEME",
    "HOME",
    "MAX_MESSAGE_LENGTH",
    "REPLY_WINDOW",
    "SENDER_NEEDS",
    "content_status",
    "init_app",
    "patient_side",
    "register_content",
    "sender",
]
