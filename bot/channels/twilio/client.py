"""Talk to a running webhook over HTTP as Twilio would: a form POST, signed when a token is set.

The channel's patient side (bot.channels.patient_side): used by `python -m bot chat
--via-webhook`, by replays against a live server, by the simulator (in process, through the WSGI
app) and by tests.
"""

from __future__ import annotations

import itertools
import secrets
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.error import HTTPError
from urllib.parse import urlencode, urlsplit
from urllib.request import Request, urlopen

from twilio.request_validator import SIGNATURE_HEADER, RequestValidator

from bot.config import Config
from bot.core.messages import TEST_NUMBER_PREFIX

from .settings import SANDBOX_NUMBER, WEBHOOK_PATH, settings


def fake_patient_number() -> str:
    """A fresh number in the test range, as Twilio writes it ('whatsapp:+6200...')."""
    return f"whatsapp:{TEST_NUMBER_PREFIX}{secrets.randbelow(10**9):09d}"


def media_fields(content_types) -> dict[str, str]:
    """Form fields of a message carrying media of these types (placeholder URLs that resolve
    nowhere: the bot reads only the content type)."""
    fields = {"NumMedia": str(len(content_types))}
    for index, content_type in enumerate(content_types):
        fields[f"MediaUrl{index}"] = f"https://media.invalid/{uuid.uuid4().hex}"
        fields[f"MediaContentType{index}"] = content_type
    return fields


def choice_fields(choice_id: str, title: str) -> dict[str, str]:
    """Form fields of a tapped quick-reply button (none without a choice)."""
    return {"ButtonPayload": choice_id, "ButtonText": title} if choice_id else {}


@dataclass(frozen=True)
class WebhookReply:
    status: int
    messages: tuple[str, ...]
    raw: str
    headers: Mapping[str, str] = field(default_factory=dict)


def parse_twiml(document: str) -> tuple[str, ...]:
    """The text of every <Message> of a TwiML response, in order."""
    if not document.strip():
        return ()
    root = ET.fromstring(document)
    return tuple((element.text or "") for element in root.iter("Message"))


class WebhookClient:
    # What a 403 from the webhook most likely means, for whoever reads a failed replay.
    refused_hint = "is TWILIO_AUTH_TOKEN the server's, and the URL exactly the one it checks signatures against?"

    def __init__(self, url: str, auth_token: str = "", to: str = SANDBOX_NUMBER, timeout: float = 30):
        self.url = url
        self.validator = RequestValidator(auth_token) if auth_token else None
        self.to = to
        self.timeout = timeout
        self._counter = itertools.count(1)

    def signature_header(self, url: str, form: dict[str, str], signature: str | None = None) -> dict[str, str]:
        """Twilio's signature of `url` + `form` (when a token is set, or the one given)."""
        if signature is None and self.validator is not None:
            signature = self.validator.compute_signature(url, form)
        return {SIGNATURE_HEADER: signature} if signature is not None else {}

    def post(self, form: dict[str, str], url: str | None = None, signature: str | None = None) -> WebhookReply:
        url = url or self.url
        headers = {
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            **self.signature_header(url, form, signature),
        }
        request = Request(url, data=urlencode(form).encode("utf-8"), headers=headers, method="POST")
        try:
            with urlopen(request, timeout=self.timeout) as response:
                body = response.read().decode("utf-8")
                return WebhookReply(response.status, parse_twiml(body), body, dict(response.headers.items()))
        except HTTPError as error:
            return WebhookReply(error.code, (), error.read().decode("utf-8", "replace"), dict(error.headers.items()))

    def send(
        self,
        sender: str,
        text: str,
        profile_name: str | None = None,
        sid: str | None = None,
        media: tuple[str, ...] | list[str] = (),
        choice_id: str = "",
        **extra: str,
    ) -> WebhookReply:
        """One WhatsApp message from `sender` ('whatsapp:+62...'), as Twilio would deliver it,
        with attachments of the `media` content types, or as the tap of the button `choice_id`
        titled `text`; `extra`: more form fields, as given."""
        form = {
            "MessageSid": sid or f"SM{uuid.uuid4().hex}",
            "AccountSid": "ACLOCAL",
            "From": sender,
            "To": self.to,
            "Body": text,
            "NumMedia": "0",
            "WaId": sender.removeprefix("whatsapp:").lstrip("+"),
        }
        if profile_name:
            form["ProfileName"] = profile_name
        form.update(media_fields(media) if media else {})
        form.update(choice_fields(choice_id, text))
        form.update(extra)
        return self.post(form)


class WsgiWebhookClient(WebhookClient):
    """The same signed forms, handed to a WSGI app in this process instead of over a socket
    (the simulator: no second server, and no deadlock on a single-threaded one)."""

    def __init__(self, app, url: str, auth_token: str = "", to: str = SANDBOX_NUMBER):
        super().__init__(url, auth_token, to)
        self.app = app

    def post(self, form: dict[str, str], url: str | None = None, signature: str | None = None) -> WebhookReply:
        from werkzeug.test import Client

        url = url or self.url
        parts = urlsplit(url)  # given whole, werkzeug's test client would drop the port
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = self.signature_header(url, form, signature)
        response = Client(self.app).post(path, base_url=f"{parts.scheme}://{parts.netloc}", data=form, headers=headers)
        body = response.get_data(as_text=True)
        messages = parse_twiml(body) if response.status_code == 200 else ()
        return WebhookReply(response.status_code, messages, body, dict(response.headers.items()))


class PatientSide:
    """How a simulated patient reaches this channel (bot.channels.patient_side): the webhook's
    path, and clients that sign as Twilio does with the configured auth token."""

    webhook_path = WEBHOOK_PATH

    def __init__(self, config: Config):
        self.settings = settings(config)

    @property
    def verifies(self) -> bool:
        """Whether the webhook checks signatures (else only a dev-mode server takes requests)."""
        return bool(self.settings.auth_token)

    def client(self, url: str) -> WebhookClient:
        return WebhookClient(url, self.settings.auth_token, self.settings.whatsapp_from or SANDBOX_NUMBER)

    def loopback(self, app, base_url: str) -> WsgiWebhookClient:
        """A client for `app`'s own webhook in this process, signing the URL under `base_url`."""
        to = self.settings.whatsapp_from or SANDBOX_NUMBER
        return WsgiWebhookClient(app, base_url + WEBHOOK_PATH, self.settings.auth_token, to)

    @staticmethod
    def address(number: str) -> str:
        """'+62812...' -> the patient's address on this channel."""
        return f"whatsapp:{number}"

    @staticmethod
    def fake_address() -> str:
        return fake_patient_number()

    def describe(self) -> dict[str, str]:
        """For the dev server's banner: where replies go, and which requests the webhook takes."""
        return {
            "sends": "through Twilio" if self.settings.can_send else "nowhere (no Twilio credentials)",
            "webhook": "signed requests only (TWILIO_AUTH_TOKEN is set)"
            if self.verifies
            else "unsigned requests accepted",
            "unsigned": "TWILIO_AUTH_TOKEN is not set (only a dev-mode server accepts them)",
        }
