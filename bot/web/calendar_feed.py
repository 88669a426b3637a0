"""Blueprint: the schedule's iCalendar feed at /calendar/<token>.ics (CALENDAR_FEED_TOKEN).

The token in the URL is the only protection a calendar app can use; without the setting the
feed does not exist (404), and a wrong token gets the same 404."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from flask import Blueprint, Flask, Response, abort, current_app

from bot.config import Config
from bot.services import calendar_feed
from bot.store.storage import utcnow
from bot.web.staff import TEXTS

bp = Blueprint("calendar", __name__)


@dataclass
class FeedSettings:
    token: str
    sessions: object
    console_url: str
    clock: object = utcnow


def init_app(app: Flask, config: Config, sessions) -> None:
    app.extensions["klinik_calendar"] = FeedSettings(config.calendar_feed_token, sessions, config.public_base_url)
    app.register_blueprint(bp)


@bp.get("/calendar/<token>.ics")
def schedule(token: str):
    settings = current_app.extensions["klinik_calendar"]
    if not settings.token or not hmac.compare_digest(token.encode(), settings.token.encode()):
        abort(404)
    kb = current_app.extensions["klinik_engine"].current().kb
    now = settings.clock()
    body = calendar_feed.feed(settings.sessions, kb.clinic.schedule, TEXTS, kb.clinic.name, settings.console_url, now)
    return Response(body, mimetype="text/calendar", headers={"Cache-Control": "no-store"})
