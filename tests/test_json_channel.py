"""The JSON channel (bot/channels/json/) end to end: the Flask client signs and posts as another
system would, the real inbox and database answer, and a real HTTP server on loopback receives
the signed callback."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import app_config
from helpers import rows

from bot.store.storage import Conversation, HandoffCase, Message, OutboxItem
from bot.web import create_app

SECRET = "json-channel-test-secret"
PATH = "/webhook/json"


class Receiver:
    """A real HTTP server on 127.0.0.1 that records what is POSTed to it."""

    def __init__(self):
        self.received: list[tuple[dict, bytes]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/replies"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


def make_app(database_url, monkeypatch, secret=SECRET, callback="", **config):
    monkeypatch.setenv("JSON_CHANNEL_SECRET", secret)
    monkeypatch.setenv("JSON_CHANNEL_CALLBACK_URL", callback)
    return create_app(app_config(database_url, **config))


@pytest.fixture
def app(database_url, monkeypatch):
    application = make_app(database_url, monkeypatch)
    yield application
    application.extensions["klinik_database"].dispose()


def signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(app, message, secret: str = SECRET, forged: bool = False):
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    sent = signature(body, secret)
    headers = {"Content-Type": "application/json", "X-Klinik-Signature": sent[:-4] + "beef" if forged else sent}
    return app.test_client().post(PATH, data=body, headers=headers)


def test_a_signed_message_is_answered_and_stored_under_the_channels_address(app):
    response = post(app, {"id": "m-1", "from": "crm-42", "text": "knp betis kedutan trs", "name": "Budi"})
    assert response.status_code == 200
    answer = response.get_json()
    assert (answer["id"], answer["to"], answer["duplicate"]) == ("m-1", "crm-42", False)
    assert any("kedutan" in reply["text"].lower() for reply in answer["replies"])
    (conversation,) = rows(app, Conversation)
    assert (conversation.address, conversation.profile_name) == ("json:crm-42", "Budi")
    (inbound,) = rows(app, Message, Message.direction == "in")
    assert (inbound.channel_message_id, inbound.body, inbound.intent) == ("json:m-1", "knp betis kedutan trs", "causes")
    replies = rows(app, Message, Message.direction == "out")
    assert [r.body for r in replies] == [r["text"] for r in answer["replies"]]
    assert [r.id for r in replies] == [r["id"] for r in answer["replies"]]


def test_a_retried_id_gets_the_same_replies_and_is_stored_once(app):
    message = {"id": "m-retry", "from": "crm-43", "text": "mau booking akupuntur besok jam 3"}
    first, again = post(app, message), post(app, message)
    assert first.status_code == again.status_code == 200
    assert again.get_json()["replies"] == first.get_json()["replies"]
    assert (first.get_json()["duplicate"], again.get_json()["duplicate"]) == (False, True)
    assert len(rows(app, Message, Message.direction == "in")) == 1


@pytest.mark.parametrize("forged", [True, False], ids=["forged", "other secret"])
def test_a_forged_signature_is_refused_and_nothing_is_stored(app, forged):
    message = {"id": "m-forged", "from": "crm-44", "text": "halo"}
    response = post(app, message, forged=True) if forged else post(app, message, secret="not-the-secret")
    assert response.status_code == 403
    assert "signature" in response.get_json()["error"]
    assert rows(app, Message) == [] and rows(app, Conversation) == []


def test_an_unsigned_request_is_refused(app):
    response = app.test_client().post(PATH, json={"id": "m-2", "from": "crm-45", "text": "halo"})
    assert response.status_code == 403
    assert rows(app, Message) == []


@pytest.mark.parametrize(
    "body, says",
    [
        (b"", "empty body"),
        (b"   ", "empty body"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"from": "crm-46", "text": "halo"}).encode(), "id and from are required"),
        (json.dumps({"id": "m-3", "text": "halo"}).encode(), "id and from are required"),
    ],
)
def test_bad_bodies_get_a_clear_400_and_store_nothing(app, body, says):
    response = post(app, body)
    assert response.status_code == 400
    assert says in response.get_json()["error"]
    assert rows(app, Message) == []


def test_5000_characters_are_stored_whole_and_answered(app):
    text = ("betis saya kedutan terus dari kemarin " * 140)[:5000]
    response = post(app, {"id": "m-long", "from": "crm-47", "text": text})
    assert response.status_code == 200
    assert response.get_json()["replies"]
    (inbound,) = rows(app, Message, Message.direction == "in")
    assert inbound.body == text and len(inbound.body) == 5000


def test_no_secret_outside_dev_mode_refuses_everything(database_url, monkeypatch):
    application = make_app(database_url, monkeypatch, secret="")
    response = application.test_client().post(PATH, json={"id": "m-4", "from": "crm-48", "text": "halo"})
    assert response.status_code == 403
    assert "JSON_CHANNEL_SECRET" in response.get_json()["error"]
    application.extensions["klinik_database"].dispose()


def test_replies_are_posted_signed_to_the_callback_url(database_url, monkeypatch, receiver):
    application = make_app(database_url, monkeypatch, callback=receiver.url)
    response = post(application, {"id": "m-cb", "from": "crm-49", "text": "alamat klinik dimana"})
    assert response.status_code == 200
    ((headers, body),) = receiver.received
    assert headers["X-Klinik-Signature"] == signature(body)
    assert json.loads(body) == response.get_json()
    post(application, {"id": "m-cb", "from": "crm-49", "text": "alamat klinik dimana"})  # a retry
    assert len(receiver.received) == 1  # answered from storage, not called back again
    application.extensions["klinik_database"].dispose()


def test_a_staff_reply_reaches_a_json_patient_through_the_callback(database_url, monkeypatch, receiver):
    """Outbound on the second channel: the worker the Procfile runs (bot.worker.build_worker)
    routes by the address's scheme, so the staff reply goes to the callback, not to Twilio."""
    from bot.worker import build_worker

    application = make_app(database_url, monkeypatch, callback=receiver.url)
    post(application, {"id": "m-staff", "from": "crm-7", "text": "sambungkan ke admin dong"})
    receiver.received.clear()
    (case,) = rows(application, HandoffCase)
    application.extensions["klinik_console"].reply(case.id, "sari", "Halo, saya Sari dari klinik.")
    config = application.extensions["klinik_config"]
    worker = build_worker(config, application.extensions["klinik_sessions"])
    assert worker.run_once() == 1
    ((headers, body),) = receiver.received
    assert headers["X-Klinik-Signature"] == signature(body)
    (item,) = rows(application, OutboxItem)
    assert json.loads(body) == {
        "to": "crm-7",
        "replies": [{"id": f"outbox-{item.id}", "text": "Halo, saya Sari dari klinik."}],
    }
    assert (item.status, item.to_address) == ("sent", "json:crm-7")
    (staff_message,) = [m for m in rows(application, Message) if m.staff_name]
    assert staff_message.status == "delivered"
    application.extensions["klinik_database"].dispose()


def test_a_refusing_callback_is_retried_later_and_a_scheme_no_channel_sends_to_fails(
    database_url, monkeypatch, receiver
):
    from bot.channels import Outbound
    from bot.services.outbox import SendError
    from bot.worker import build_worker

    application = make_app(database_url, monkeypatch, callback=receiver.url.replace("/replies", "/gone"))
    receiver.server.RequestHandlerClass.do_POST = lambda handler: (handler.send_response(503), handler.end_headers())
    post(application, {"id": "m-503", "from": "crm-8", "text": "sambungkan ke admin dong"})
    (case,) = rows(application, HandoffCase)
    application.extensions["klinik_console"].reply(case.id, "sari", "Halo dari klinik.")
    worker = build_worker(application.extensions["klinik_config"], application.extensions["klinik_sessions"])
    assert worker.run_once() == 1
    (item,) = rows(application, OutboxItem)
    assert (item.status, item.attempts) == ("pending", 1) and "503" in item.last_error
    with pytest.raises(SendError) as refused:
        Outbound(worker.sender.senders).send("telegram:123", "halo")
    assert not refused.value.retryable and "telegram:" in str(refused.value)
    application.extensions["klinik_database"].dispose()


def test_whatsapps_window_and_length_are_the_twilio_channels_not_the_json_channels(database_url, monkeypatch):
    """The 24-hour window and the 1,600 characters are declared by the Twilio channel
    (bot.channels.delivery_rules): three days after a JSON patient's last message staff can
    still write to them, and at length; a WhatsApp patient's reply is held to WhatsApp's rules."""
    from datetime import timedelta

    from helpers import say

    from bot.services.console import ConsoleError
    from bot.store import storage

    application = make_app(database_url, monkeypatch)
    post(application, {"id": "m-win", "from": "crm-9", "text": "sambungkan ke admin dong"})
    say(application, "sambungkan ke admin dong", "SMwin1")
    json_case, whatsapp_case = rows(application, HandoffCase)
    console = application.extensions["klinik_console"]
    later = storage.utcnow() + timedelta(days=3)
    console.clock = lambda: later
    assert console.reply(json_case.id, "sari", "x" * 2000)
    with pytest.raises(ConsoleError) as too_long:
        console.reply(whatsapp_case.id, "sari", "x" * 1601)
    assert too_long.value.code == "too_long" and too_long.value.details == {"limit": 1600}
    with pytest.raises(ConsoleError) as closed:
        console.reply(whatsapp_case.id, "sari", "Halo, masih ada keluhan?")
    assert closed.value.code == "window_closed"
    application.extensions["klinik_database"].dispose()


def test_outside_dev_mode_the_worker_needs_the_home_channels_sender(database_url, receiver):
    """Staff alerts (emergencies' among them) go over WhatsApp: a worker with only the JSON
    callback configured would fail each of them for good, so it refuses to start."""
    import dataclasses

    from bot.worker import DevSender, build_worker

    json_only = {"JSON_CHANNEL_SECRET": SECRET, "JSON_CHANNEL_CALLBACK_URL": receiver.url}
    config = dataclasses.replace(app_config(database_url), environ=json_only)
    with pytest.raises(SystemExit, match="TWILIO_ACCOUNT_SID"):
        build_worker(config)
    worker = build_worker(dataclasses.replace(config, dev_mode=True))  # dev mode: logged, not sent
    assert isinstance(worker.sender.senders["whatsapp"], DevSender)
    assert not isinstance(worker.sender.senders["json"], DevSender)
