"""The outbox's messages to "json:" addresses, POSTed to JSON_CHANNEL_CALLBACK_URL."""

from __future__ import annotations

import urllib.error
import uuid

from bot.services.outbox import SendError, Sent

from .webhook import PREFIX, Settings, post

REQUIREMENT = "JSON_CHANNEL_CALLBACK_URL and JSON_CHANNEL_SECRET"
# A receiver answering these may take the message later; any other refusal is final.
_RETRYABLE_STATUS = {408, 429, 500, 502, 503, 504}


class CallbackSender:
    def __init__(self, settings: Settings):
        self.settings = settings

    def send(self, to: str, body: str = "", template_id=None, content_variables=None, outbox_id=None) -> Sent:
        """The text only: a template is a WhatsApp notion, and every queued message has its text."""
        message_id = f"outbox-{outbox_id}" if outbox_id is not None else uuid.uuid4().hex
        try:
            post(self.settings, {"to": to.removeprefix(f"{PREFIX}:"), "replies": [{"id": message_id, "text": body}]})
        except urllib.error.HTTPError as error:
            raise SendError(f"callback answered {error.code}", error.code in _RETRYABLE_STATUS) from error
        except OSError as error:
            raise SendError(f"callback unreachable: {type(error).__name__}", retryable=True) from error
        # Not "json:…", the inbound messages' ids: a patient's message id "outbox-7" is no reply.
        return Sent(f"{PREFIX}-out:{message_id}", "delivered")
