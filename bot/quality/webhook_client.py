"""Talk to a running webhook over HTTP as Twilio would: a form POST, signed when a token is set.

Used by `python -m bot chat --via-webhook`, by replays against a live server, by the simulator
(in process, through the WSGI app) and by tests.
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

# No Indonesian number has a 0 right after the country code, so numbers in this range belong to
# nobody: simulated patients and live replays use them, and a message "sent" to one reaches no one.
TEST_NUMBER_PREFIX = "+6200"


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
    def __init__(self, url: str, auth_token: str = "", to: str = "whatsapp:+14155238886", timeout: float = 30):
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
        self, sender: str, text: str, profile_name: str | None = None, sid: str | None = None, **extra: str
    ) -> WebhookReply:
        """One WhatsApp message from `sender` ('whatsapp:+62...'), as Twilio would deliver it."""
        form = {
            "MessageSid": sid or f"SM{uuid.uuid4().hex}",
            "AccountSid": "ACLOCAL",
            "From": sender,
            "To": self.to,
            "Body": text,
            "NumMedia": str(extra.pop("NumMedia", "0")),
            "WaId": sender.removeprefix("whatsapp:").lstrip("+"),
        }
        if profile_name:
            form["ProfileName"] = profile_name
        form.update(extra)
        return self.post(form)


class WsgiWebhookClient(WebhookClient):
    """The same signed forms, handed to a WSGI app in this process instead of over a socket
    (the simulator: no second server, and no deadlock on a single-threaded one)."""

    def __init__(self, app, url: str, auth_token: str = "", to: str = "whatsapp:+14155238886"):
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
