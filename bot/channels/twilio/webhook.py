"""The Twilio WhatsApp webhook: signature check, form -> InboundMessage, replies -> TwiML."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, abort, current_app, request
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)
from twilio.twiml.messaging_response import MessagingResponse

from bot.config import Config
from bot.headers import (
    ACTIONS_HEADER,
    BOOKING_STEP_HEADER,
    DECISION_HEADER,
    INTENT_HEADER,
    PAUSED_HEADER,
    REASON_HEADER,
    SCORE_HEADER,
)
from bot.logs import mask_phone
from bot.services.inbox import InboundMessage, Inbox, Outcome

from .content import ContentTemplates
from .settings import WEBHOOK_PATH, Settings, settings

# WhatsApp refuses messages longer than this; longer replies are split.
WHATSAPP_MAX_LENGTH = 1600
# How many media items a single Twilio message can carry.
_MAX_MEDIA = 10
# The X-Klinik-* headers (bot/headers.py) go on every response; only a caller holding the auth
# token (or dev mode) gets a response.

log = logging.getLogger("klinik.webhook")
bp = Blueprint("twilio_webhook", __name__)


def init_app(app: Flask, inbox: Inbox, config: Config) -> None:
    app.extensions["klinik_inbox"] = inbox
    app.extensions["klinik_config"] = config
    app.extensions["klinik_content_templates"] = ContentTemplates.from_config(config)
    app.register_blueprint(bp)
    if not settings(config).auth_token:
        if config.dev_mode:
            log.warning(
                "BOT_DEV_MODE=1 and no TWILIO_AUTH_TOKEN: webhook requests are NOT signature-checked. "
                "Never run like this where the internet can reach it."
            )
        else:
            log.error("TWILIO_AUTH_TOKEN is not set: every webhook request will be refused (403)")


def _inbox() -> Inbox:
    return current_app.extensions["klinik_inbox"]


def _config() -> Config:
    return current_app.extensions["klinik_config"]


def _settings() -> Settings:
    return settings(_config())


def signed_url() -> str:
    """The URL Twilio signed: PUBLIC_BASE_URL + path + query when configured, else the URL this
    request arrived at (behind a proxy, trusted X-Forwarded-* headers via ProxyFix)."""
    query = request.query_string.decode("utf-8")
    base = _config().public_base_url or request.host_url.rstrip("/")
    return f"{base}{request.path}" + (f"?{query}" if query else "")


def _check_signature() -> None:
    """403 unless the request carries a valid X-Twilio-Signature. Fails closed: without an
    auth token only dev mode (BOT_DEV_MODE=1) accepts unsigned requests."""
    token = _settings().auth_token
    if not token:
        if _config().dev_mode:
            return
        log.error("webhook refused: TWILIO_AUTH_TOKEN is not set and BOT_DEV_MODE is off")
        abort(403)
    signature = request.headers.get(SIGNATURE_HEADER, "")
    algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
    validator = RequestValidator(token)
    if not signature or not validator.validate(signed_url(), request.form, signature, algorithm):
        log.warning(
            "webhook refused: bad signature",
            extra={
                "fields": {
                    "path": request.path,
                    "signature": "missing" if not signature else "invalid",
                    "from": mask_phone(request.form.get("From")),
                }
            },
        )
        abort(403)


def parse_inbound(raw_form) -> InboundMessage:
    """Twilio's form fields -> InboundMessage; 400 when the fields every message has are missing.

    NUL characters (which PostgreSQL cannot store) become U+FFFD; everything else is kept."""
    form = {key: value.replace("\x00", "\ufffd") for key, value in raw_form.items()}
    sid = (form.get("MessageSid") or form.get("SmsMessageSid") or "").strip()
    sender = (form.get("From") or "").strip()
    if not sid or not sender:
        abort(400)
    media = []
    try:
        count = min(int(form.get("NumMedia") or 0), _MAX_MEDIA)
    except ValueError:
        count = 0
    for index in range(count):
        url = form.get(f"MediaUrl{index}")
        if url:
            media.append((url, form.get(f"MediaContentType{index}") or "application/octet-stream"))
    return InboundMessage(
        message_id=sid[:64],
        sender=sender[:64],
        body=form.get("Body") or "",
        profile_name=(form.get("ProfileName") or "")[:200] or None,
        media=tuple(media),
        latitude=_float(form.get("Latitude")),
        longitude=_float(form.get("Longitude")),
        location_label=(form.get("Label") or form.get("Address") or "")[:500] or None,
        # A tapped quick-reply button, or a row picked from a list.
        choice_id=(form.get("ButtonPayload") or form.get("ListId") or "")[:500] or None,
        choice_text=(form.get("ButtonText") or form.get("ListTitle") or "")[:500] or None,
    )


def _float(value: str | None) -> float | None:
    try:
        number = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is not None and -180.0 <= number <= 180.0 else None


def _int_arg(name: str) -> int | None:
    try:
        return int(request.args[name]) if name in request.args else None
    except ValueError:
        return None


def status_callback_url(outbound_id: int) -> str:
    base = _config().public_base_url or request.host_url.rstrip("/")
    return f"{base}/webhook/status?{urlencode({'out': outbound_id})}"


@bp.post(WEBHOOK_PATH)
def whatsapp() -> Response:
    _check_signature()
    templates = current_app.extensions["klinik_content_templates"]
    outcome = _inbox().receive(parse_inbound(request.form), max_reply_length=WHATSAPP_MAX_LENGTH, templates=templates)
    twiml = MessagingResponse()
    for reply in outcome.replies:
        # statusCallback, not action: a <Message> with an action URL hands the rest of the
        # conversation to that URL, and the <Message> verbs after it would never be sent.
        twiml.message(reply.text, status_callback=status_callback_url(reply.id))
    return Response(str(twiml), mimetype="application/xml", headers=understood_headers(outcome))


def understood_headers(outcome: Outcome) -> dict[str, str]:
    """The X-Klinik-* headers; none for a duplicate delivery (answered from storage)."""
    if outcome.duplicate:
        return {}
    match = outcome.match
    return {
        INTENT_HEADER: match.intent if match else "",
        DECISION_HEADER: match.decision.value if match else "",
        SCORE_HEADER: f"{match.score:.4f}" if match else "",
        REASON_HEADER: match.reason if match else "",
        ACTIONS_HEADER: ",".join(outcome.actions),
        PAUSED_HEADER: "" if outcome.paused is None else str(int(outcome.paused)),
        BOOKING_STEP_HEADER: outcome.booking_step or "",
    }


@bp.post("/webhook/status")
def status() -> Response:
    _check_signature()
    form = request.form
    channel_message_id = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    status_value = (form.get("MessageStatus") or form.get("SmsStatus") or "").strip().lower()
    if not channel_message_id or not status_value:
        abort(400)
    known = _inbox().record_status(
        channel_message_id=channel_message_id[:64],
        status=status_value[:16],
        error_code=(form.get("ErrorCode") or None),
        outbound_id=_int_arg("out"),
        outbox_id=_int_arg("outbox"),
    )
    # 200 even for an unknown message: a retry would not make it known.
    return Response(status=204 if known else 200)
