"""The baseline of bench/webhook_throughput.py: a bare Flask app answering the webhook path with
a fixed TwiML reply, no signature check, storage or dialogue, served by the same gunicorn
settings as the bot (`gunicorn bench.bare_app:app`)."""

from flask import Flask, Response

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Halo 👋</Message></Response>'

app = Flask(__name__)


@app.post("/webhook/whatsapp")
def whatsapp() -> Response:
    return Response(TWIML, mimetype="application/xml")


@app.get("/healthz")
def healthz() -> Response:
    return Response("ok")
