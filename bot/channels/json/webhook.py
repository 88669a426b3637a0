"""The JSON channel: POST /webhook/json with a JSON message, signed with HMAC-SHA256.

Request body: {"id": "...", "from": "...", "text": "...", and optionally "name", "media":
[{"url", "content_type"}], "location": {"latitude", "longitude", "label"}, "choice": {"id",
"text"}}. The header X-Klinik-Signature is "sha256=" + the hex HMAC-SHA256 of the raw body with
the secret JSON_CHANNEL_SECRET (without it, only dev mode accepts unsigned requests). The
answer: {"id", "duplicate", "replies": [{"id", "text"}]}; a retried id gets the stored replies.
With JSON_CHANNEL_CALLBACK_URL set, the replies are also POSTed there, signed the same way, and
so is every later message (a staff reply, a reminder) the outbox sends: {"to", "replies"}.
The patient's address is "json:" + `from`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.request
from dataclasses import dataclass, field

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from bot.config import Config
from bot.core.messages import InboundMessage
from bot.logs import mask_phone
from bot.services.inbox import Inbox, Outcome

SIGNATURE_HEADER = "X-Klinik-Signature"
PREFIX = "json"
# Lengths as the storage columns hold them.
_LIMITS = {"id": 64, "from": 58, "name": 200, "label": 500, "choice": 500}
_MAX_MEDIA = 10
_EXTENSION = "klinik_json_channel"

log = logging.getLogger("klinik.channel.json")
bp = Blueprint("json_channel", __name__)


@dataclass(frozen=True)
class Settings:
    """The channel's own settings, from the environment."""

    secret: str = field(default="", repr=False)
    callback_url: str = ""
    callback_timeout: float = 5.0

    @classmethod
    def from_env(cls, env) -> Settings:
        return cls(env.get("JSON_CHANNEL_SECRET", ""), env.get("JSON_CHANNEL_CALLBACK_URL", ""))


def init_app(app: Flask, inbox: Inbox, config: Config, settings: Settings | None = None) -> None:
    settings = settings or Settings.from_env(config.environ)
    app.extensions[_EXTENSION] = (inbox, config, settings)
    app.register_blueprint(bp)


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class BadRequest(ValueError):
    """The body is not a message this channel reads; the text says why."""


def parse(body: bytes) -> InboundMessage:
    """The JSON body -> InboundMessage, or BadRequest saying what is wrong."""
    if not body.strip():
        raise BadRequest("empty body: send a JSON object with id, from and text")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadRequest(f"not JSON: {error}") from error
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    message_id, sender = _text(data, "id"), _text(data, "from")
    if not message_id or not sender:
        raise BadRequest("id and from are required (non-empty strings)")
    location = data.get("location") if isinstance(data.get("location"), dict) else {}
    choice = data.get("choice") if isinstance(data.get("choice"), dict) else {}
    return InboundMessage(
        message_id=f"{PREFIX}:{message_id[: _LIMITS['id'] - len(PREFIX) - 1]}",
        sender=f"{PREFIX}:{sender[: _LIMITS['from']]}",
        body=_text(data, "text"),
        profile_name=_text(data, "name")[: _LIMITS["name"]] or None,
        media=_media(data.get("media")),
        latitude=_coordinate(location.get("latitude")),
        longitude=_coordinate(location.get("longitude")),
        location_label=_text(location, "label")[: _LIMITS["label"]] or None,
        choice_id=_text(choice, "id")[: _LIMITS["choice"]] or None,
        choice_text=_text(choice, "text")[: _LIMITS["choice"]] or None,
    )


def _text(data: dict, key: str) -> str:
    """A string field (a number is read as its text); NUL, which PostgreSQL cannot store, as U+FFFD."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""
    return str(value).replace("\x00", "\ufffd").strip()


def _media(items) -> tuple[tuple[str, str], ...]:
    if not isinstance(items, list):
        return ()
    media = [
        (_text(i, "url"), _text(i, "content_type") or "application/octet-stream") for i in items if isinstance(i, dict)
    ]
    return tuple((url, kind) for url, kind in media if url)[:_MAX_MEDIA]


def _coordinate(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if -180.0 <= value <= 180.0 else None


def _refused(why: str) -> Response:
    log.warning("json webhook refused", extra={"fields": {"why": why}})
    return _error(403, "signature missing or invalid" if why != "no secret" else "JSON_CHANNEL_SECRET is not set")


def _error(status: int, message: str) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    return response


@bp.post("/webhook/json")
def receive() -> Response:
    inbox, config, settings = current_app.extensions[_EXTENSION]
    body = request.get_data(cache=False)
    if settings.secret:
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not hmac.compare_digest(signature, sign(settings.secret, body)):
            return _refused("missing" if not signature else "invalid")
    elif not config.dev_mode:
        return _refused("no secret")  # fails closed, as every channel does
    try:
        inbound = parse(body)
    except BadRequest as error:
        return _error(400, str(error))
    outcome = inbox.receive(inbound)
    answer = _answer(inbound, outcome)
    if settings.callback_url and outcome.replies and not outcome.duplicate:
        _call_back(settings, answer, inbound.sender)
    return jsonify(answer)


def _answer(inbound: InboundMessage, outcome: Outcome) -> dict:
    return {
        "id": inbound.message_id.removeprefix(f"{PREFIX}:"),
        "to": inbound.sender.removeprefix(f"{PREFIX}:"),
        "duplicate": outcome.duplicate,
        "replies": [{"id": reply.id, "text": reply.text} for reply in outcome.replies],
    }


def _call_back(settings: Settings, answer: dict, sender: str) -> None:
    """POST the replies to the configured URL. They are stored and in the response already, so
    a failing receiver is logged, not retried."""
    try:
        post(settings, answer)
    except OSError as error:
        log.warning("json callback failed", extra={"fields": {"to": mask_phone(sender), "error": str(error)[:200]}})


def post(settings: Settings, payload: dict) -> None:
    """POST `payload` to the callback URL, signed; OSError (urllib's HTTPError among them) when
    it does not take it."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    outgoing = urllib.request.Request(
        settings.callback_url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(settings.secret, body)},
    )
    with urllib.request.urlopen(outgoing, timeout=settings.callback_timeout) as response:
        response.read()
