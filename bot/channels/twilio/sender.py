"""Outbound WhatsApp messages through Twilio's REST API (`client.messages.create`)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from bot.config import Config
from bot.services.outbox import SendError, Sent

from .settings import settings

# Twilio answers 429 when we send too fast and 5xx when it is unwell: both pass with time.
_RETRYABLE_STATUS = {429, 500, 502, 503, 504}
REQUIREMENT = "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_WHATSAPP_FROM"


class TwilioSender:
    """The real twilio client, pointed at TWILIO_API_BASE_URL (Twilio itself by default)."""

    def __init__(self, config: Config, timeout: float = 10.0):
        own = settings(config)
        if not own.can_send:
            raise ValueError(f"sending needs {REQUIREMENT}")
        self.client = Client(own.account_sid, own.auth_token, http_client=TwilioHttpClient(timeout=timeout))
        self.client.api.base_url = own.api_base_url
        self.sender = own.whatsapp_from
        self.status_callback_base = config.public_base_url

    def send(
        self,
        to: str,
        body: str = "",
        template_id: str | None = None,
        content_variables: dict | None = None,
        outbox_id: int | None = None,
    ) -> Sent:
        """Through the REST API; Twilio reports the delivery of outbox item `outbox_id` to the
        status webhook (when PUBLIC_BASE_URL says where that is)."""
        options = {"to": to, "from_": self.sender}
        if template_id:
            options["content_sid"] = template_id  # a Content template, by its Twilio SID
            if content_variables:
                options["content_variables"] = json.dumps(content_variables, ensure_ascii=False)
        else:
            options["body"] = body
        if outbox_id is not None and self.status_callback_base:
            query = urlencode({"outbox": outbox_id})
            options["status_callback"] = f"{self.status_callback_base}/webhook/status?{query}"
        try:
            message = self.client.messages.create(**options)
        except TwilioRestException as error:
            retryable = error.status in _RETRYABLE_STATUS
            raise SendError(f"Twilio {error.status} {error.code or ''} {error.msg}".strip(), retryable) from error
        except (requests.ConnectionError, requests.Timeout) as error:
            raise SendError(f"network: {type(error).__name__}", retryable=True) from error
        return Sent(message.sid, message.status or "queued")
