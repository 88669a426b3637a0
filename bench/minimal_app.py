"""The baseline issue 17 names, "a minimal correct webhook": Twilio's signature checked (the same
RequestValidator, against PUBLIC_BASE_URL + path), the message inserted once into SQLite (its
MessageSid unique, so a retried delivery is not stored twice), a fixed TwiML reply. No dialogue,
no conversation state. Served by the same gunicorn settings as the bot
(`gunicorn bench.minimal_app:app`, DATABASE_URL=sqlite:///...)."""

import os
import sqlite3
import threading

from flask import Flask, Response, abort, request
from twilio.request_validator import RequestValidator

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Halo 👋</Message></Response>'
VALIDATOR = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
BASE = os.environ["PUBLIC_BASE_URL"].rstrip("/")
DATABASE = os.environ["DATABASE_URL"].removeprefix("sqlite:///")
_local = threading.local()

app = Flask(__name__)


def _connection() -> sqlite3.Connection:
    if not hasattr(_local, "connection"):
        connection = sqlite3.connect(DATABASE, timeout=10, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(
            "CREATE TABLE IF NOT EXISTS inbound (sid TEXT PRIMARY KEY, sender TEXT NOT NULL, body TEXT NOT NULL)"
        )
        _local.connection = connection
    return _local.connection


@app.post("/webhook/whatsapp")
def whatsapp() -> Response:
    signature = request.headers.get("X-Twilio-Signature", "")
    if not VALIDATOR.validate(BASE + request.path, request.form, signature):
        abort(403)
    form = request.form
    _connection().execute(
        "INSERT OR IGNORE INTO inbound (sid, sender, body) VALUES (?, ?, ?)",
        (form["MessageSid"], form["From"], form.get("Body", "")),
    )
    return Response(TWIML, mimetype="application/xml")


@app.get("/healthz")
def healthz() -> Response:
    return Response("ok")
