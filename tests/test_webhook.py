"""The Twilio webhook through the real Flask app, on SQLite and on PostgreSQL.

Requests are signed with Twilio's own RequestValidator algorithm; replies are checked by
parsing the TwiML as XML.
"""

import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlparse

import pytest
from conftest import AUTH_TOKEN, PUBLIC_BASE, app_config, sign, signed_post
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from bot.channels.twilio import webhook as twilio_webhook
from bot.store.storage import Conversation, Message
from bot.web import create_app

PATIENT = "whatsapp:+6281234567890"
WEBHOOK = "/webhook/whatsapp"


def form(body="knp betis kedutan trs", sid="SM00000000000000000000000000000001", sender=PATIENT, **extra):
    data = {
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "AccountSid": "ACtest",
        "From": sender,
        "To": "whatsapp:+14155238886",
        "Body": body,
        "NumMedia": "0",
        "ProfileName": "Budi",
        "WaId": sender.removeprefix("whatsapp:+"),
    }
    data.update(extra)
    return data


def twiml(response) -> list[ET.Element]:
    assert response.status_code == 200, response.data
    assert response.mimetype == "application/xml"
    root = ET.fromstring(response.data)
    assert root.tag == "Response"
    return list(root.iter("Message"))


def texts(response) -> list[str]:
    return [element.text or "" for element in twiml(response)]


def rows(app, *criteria):
    with Session(app.extensions["klinik_database"]) as session:
        return list(session.execute(select(Message).where(*criteria).order_by(Message.id)).scalars())


def count(app, model=Message) -> int:
    with Session(app.extensions["klinik_database"]) as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


# -- signatures -------------------------------------------------------------------------------


def test_twilio_published_test_vector():
    """Twilio's documented example: the algorithm our validation relies on."""
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    validator = RequestValidator("12345")
    assert validator.compute_signature(url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert validator.validate(url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


def test_our_signature_check_accepts_the_test_vector_and_nothing_else():
    """Our check (PUBLIC_BASE_URL + path + query) on Twilio's vector, mounted at its path."""
    app = Flask(__name__)
    app.extensions["klinik_config"] = app_config(
        "sqlite://", twilio_auth_token="12345", public_base_url="https://mycompany.com"
    )

    @app.post("/myapp.php")
    def vector():
        twilio_webhook._check_signature()
        return "ok"

    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    client = app.test_client()
    good = client.post(
        "/myapp.php?foo=1&bar=2", data=params, headers={"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="}
    )
    assert (good.status_code, good.data) == (200, b"ok")
    tampered = client.post(
        "/myapp.php?foo=1&bar=3", data=params, headers={"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="}
    )
    assert tampered.status_code == 403


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Twilio-Signature": ""},
        {"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
        {"X-Twilio-Signature": "not base64 at all"},
    ],
    ids=["missing", "empty", "other-request", "garbage"],
)
def test_missing_or_forged_signature_is_refused_and_nothing_is_stored(app, client, headers):
    response = client.post(WEBHOOK, data=form(), headers=headers)
    assert response.status_code == 403
    assert count(app) == 0 and count(app, Conversation) == 0


def test_signature_of_other_params_or_url_is_refused(app, client):
    original = form()
    signature = sign(WEBHOOK, original)
    tampered = dict(original, Body="bisa chat sama admin")
    assert client.post(WEBHOOK, data=tampered, headers={"X-Twilio-Signature": signature}).status_code == 403
    http_signature = sign(WEBHOOK, original, base="http://klinik.example")
    assert client.post(WEBHOOK, data=original, headers={"X-Twilio-Signature": http_signature}).status_code == 403
    wrong_key = sign(WEBHOOK, original, token="another-token")
    assert client.post(WEBHOOK, data=original, headers={"X-Twilio-Signature": wrong_key}).status_code == 403
    assert count(app) == 0


def test_without_auth_token_the_webhook_fails_closed(database_url):
    app = create_app(app_config(database_url, twilio_auth_token=""))
    response = app.test_client().post(WEBHOOK, data=form())
    assert response.status_code == 403
    assert count(app) == 0


def test_dev_mode_accepts_unsigned_requests(database_url, caplog):
    with caplog.at_level("WARNING"):
        app = create_app(app_config(database_url, twilio_auth_token="", dev_mode=True))
    assert any("NOT signature-checked" in r.getMessage() for r in caplog.records)
    assert texts(app.test_client().post(WEBHOOK, data=form()))


def test_behind_a_proxy_the_forwarded_url_is_what_is_checked(database_url):
    app = create_app(app_config(database_url, public_base_url="", trusted_proxies=1))
    data = form()
    signature = RequestValidator(AUTH_TOKEN).compute_signature("https://bot.klinik.example" + WEBHOOK, data)
    headers = {"X-Twilio-Signature": signature, "X-Forwarded-Proto": "https", "X-Forwarded-Host": "bot.klinik.example"}
    assert texts(app.test_client().post(WEBHOOK, data=data, headers=headers))
    untrusted = create_app(app_config(database_url, public_base_url="", trusted_proxies=0))
    assert untrusted.test_client().post(WEBHOOK, data=data, headers=headers).status_code == 403


# -- replies and storage ----------------------------------------------------------------------


def test_a_message_is_answered_with_twiml_and_stored(app, client):
    messages = twiml(signed_post(client, WEBHOOK, form()))
    assert "asisten otomatis" in messages[0].text
    assert "elektrolit" in messages[1].text
    inbound, *outbound = rows(app)
    assert (inbound.direction, inbound.channel_message_id, inbound.intent, inbound.decision) == (
        "in",
        form()["MessageSid"],
        "causes",
        "answer",
    )
    assert [m.body for m in outbound] == [m.text for m in messages]
    assert all(m.in_reply_to_id == inbound.id for m in outbound)
    assert inbound.created_at.tzinfo is not None
    for element, stored in zip(messages, outbound, strict=True):
        assert element.get("action") is None  # an action URL would cut off the messages after it
        action = urlparse(element.get("statusCallback"))
        assert f"{action.scheme}://{action.netloc}" == PUBLIC_BASE and action.path == "/webhook/status"
        assert parse_qs(action.query) == {"out": [str(stored.id)]}


def test_conversation_keeps_profile_and_dialogue_state(app, client):
    signed_post(client, WEBHOOK, form("menu", sid="SM1"))
    reply = texts(signed_post(client, WEBHOOK, form("8", sid="SM2")))
    assert "Jam buka" in reply[0]
    with Session(app.extensions["klinik_database"]) as session:
        conversation = session.execute(select(Conversation)).scalar_one()
    assert (conversation.address, conversation.profile_name) == (PATIENT, "Budi")
    assert conversation.state["last_intent"] == "clinic_info"
    assert conversation.last_inbound_at is not None


def test_a_retried_message_gets_the_same_reply_and_no_second_side_effect(app, client):
    data = form("mau booking akupuntur besok jam 3", sid="SMretry")
    first = signed_post(client, WEBHOOK, data)
    second = signed_post(client, WEBHOOK, data)
    assert first.data == second.data
    inbound = rows(app, Message.direction == "in")
    assert len(inbound) == 1
    assert inbound[0].actions == ["start_booking"]
    assert count(app) == 1 + len(texts(first))


def test_responses_say_what_the_bot_understood_in_headers(app, client):
    understood = signed_post(client, WEBHOOK, form("mau booking akupuntur besok jam 3", sid="SMh1"))
    headers = {k: v for k, v in understood.headers.items() if k.startswith("X-Klinik-")}
    assert headers == {
        "X-Klinik-Intent": "booking",
        "X-Klinik-Decision": "answer",
        "X-Klinik-Score": headers["X-Klinik-Score"],
        "X-Klinik-Reason": headers["X-Klinik-Reason"],
        "X-Klinik-Actions": "start_booking",
        "X-Klinik-Paused": "0",
        "X-Klinik-Booking-Step": "name_confirm",
    }
    assert 0 < float(headers["X-Klinik-Score"]) <= 1
    inbound = rows(app, Message.channel_message_id == "SMh1")[0]
    assert (headers["X-Klinik-Reason"], float(headers["X-Klinik-Score"])) == (inbound.reason, inbound.score)
    retried = signed_post(client, WEBHOOK, form("mau booking akupuntur besok jam 3", sid="SMh1"))
    assert retried.data == understood.data
    assert not [k for k, _ in retried.headers if k.startswith("X-Klinik-")]  # answered from storage


def test_patients_are_kept_apart(app, client):
    signed_post(client, WEBHOOK, form("menu", sid="SMa1", sender="whatsapp:+6281111111111"))
    other = texts(signed_post(client, WEBHOOK, form("8", sid="SMb1", sender="whatsapp:+6282222222222")))
    assert "asisten otomatis" in other[0]  # a new patient: no menu was offered to them
    assert count(app, Conversation) == 2


@pytest.mark.parametrize(
    "content_type, url, said",
    [
        (
            "image/jpeg",
            "https://api.twilio.com/2010-04-01/Accounts/ACtest/Messages/MM1/Media/ME1",
            "hanya bisa membaca",
        ),
        # A voice note: a kind request to type the question.
        ("audio/ogg", "https://api.twilio.com/2010-04-01/Accounts/ACtest/Messages/MM2/Media/ME2", "diketik"),
        (
            "image/webp",
            "https://api.twilio.com/2010-04-01/Accounts/ACtest/Messages/MM3/Media/ME3",
            "hanya bisa membaca",
        ),
        ("application/pdf", "https://api.twilio.com/2010-04-01/Accounts/ACtest/Messages/MM4/Media/ME4", "hanya bisa"),
    ],
    ids=["image", "voice-note", "sticker", "document"],
)
def test_media_without_text_is_stored_and_answered_in_indonesian(app, client, content_type, url, said):
    data = form("", sid="SMmedia", NumMedia="1", MediaUrl0=url, MediaContentType0=content_type)
    reply = texts(signed_post(client, WEBHOOK, data))
    assert said in reply[-1] and "admin" in reply[-1]
    inbound = rows(app, Message.direction == "in")[0]
    assert inbound.media == [{"url": url, "content_type": content_type}]


def test_several_media_with_a_caption(app, client):
    data = form(
        "betis saya bengkak merah begini",
        sid="SMcaption",
        NumMedia="2",
        MediaUrl0="https://example.invalid/a",
        MediaContentType0="image/jpeg",
        MediaUrl1="https://example.invalid/b",
        MediaContentType1="image/png",
    )
    reply = texts(signed_post(client, WEBHOOK, data))
    assert "119" in reply[0]  # urgent advice before the first-contact notice
    inbound = rows(app, Message.direction == "in")[0]
    assert [m["content_type"] for m in inbound.media] == ["image/jpeg", "image/png"]
    assert inbound.actions == ["handoff:urgent"]


def test_a_photo_with_a_caption_is_acknowledged_and_the_caption_answered(app, client):
    """Regression (issue 18): the caption of a photo was answered with no word about the photo."""
    data = form(
        "ini foto betis saya, knp kedutan terus ya?",
        sid="SMphoto",
        NumMedia="1",
        MediaUrl0="https://example.invalid/a",
        MediaContentType0="image/jpeg",
    )
    reply = texts(signed_post(client, WEBHOOK, data))
    answer = next(r for r in reply if "Fotonya sudah kami terima" in r)
    assert "Kedutan di betis" in answer
    assert rows(app, Message.direction == "in")[0].intent == "causes"


def test_location_is_stored_and_answered(app, client):
    data = form("", sid="SMloc", Latitude="-6.1754", Longitude="106.8272", Address="Monas, Jakarta", Label="Monas")
    reply = texts(signed_post(client, WEBHOOK, data))
    assert "hanya bisa membaca pesan teks" in reply[-1]
    inbound = rows(app, Message.direction == "in")[0]
    assert (inbound.latitude, inbound.longitude, inbound.location_label) == (-6.1754, 106.8272, "Monas")


def test_quick_reply_button_is_read_as_text(app, client):
    data = form("", sid="SMbtn", ButtonPayload="causes", ButtonText="Penyebab kedutan betis")
    reply = texts(signed_post(client, WEBHOOK, data))
    assert "elektrolit" in reply[-1]
    inbound = rows(app, Message.direction == "in")[0]
    assert (inbound.choice_id, inbound.choice_text, inbound.intent) == (
        "causes",
        "Penyebab kedutan betis",
        "causes",
    )


@pytest.mark.parametrize(
    "body",
    [
        "betis kedutan " * 400,
        "🙏" * 1700,
        "‏مرحبا 你好 Привет \u200b\u200d betis kedutan kenapa",
        "a\x00b\x01c",
        "",
    ],
    ids=["5600-chars", "emoji-1700", "many-scripts", "control-chars", "empty"],
)
def test_any_body_is_handled_and_stored_whole(app, client, body):
    reply = texts(signed_post(client, WEBHOOK, form(body, sid="SMbody")))
    assert reply
    # Kept whole; only NUL, which PostgreSQL cannot store, becomes U+FFFD.
    assert rows(app, Message.direction == "in")[0].body == body.replace("\x00", "\ufffd")


def test_missing_required_fields_is_a_clear_400(app, client):
    data = {"Body": "halo"}
    response = client.post(WEBHOOK, data=data, headers={"X-Twilio-Signature": sign(WEBHOOK, data)})
    assert response.status_code == 400
    assert b"Traceback" not in response.data


def test_long_replies_are_split_on_paragraphs_in_order(database_url, kb_copy):
    path = kb_copy / "intents" / "twitching.yaml"
    paragraphs = [f"Paragraf {n}: " + "kalimat panjang tentang kedutan betis. " * 12 for n in range(1, 9)]
    long_answer = "\n\n".join(paragraphs)
    text = path.read_text(encoding="utf-8")
    start = text.index("  - id: prevention")
    answer_at = text.index("    answer: |", start)
    end = text.index("    follow_up:", answer_at)
    indented = "\n".join("      " + line if line else "" for line in long_answer.splitlines())
    path.write_text(text[:answer_at] + "    answer: |\n" + indented + "\n" + text[end:], encoding="utf-8")
    app = create_app(app_config(database_url, knowledge_dir=kb_copy))
    reply = texts(signed_post(app.test_client(), WEBHOOK, form("gmn cara mencegah kedutan betis", sid="SMlong")))
    body = reply[1:]  # after the first-contact notice
    assert len(body) >= 2
    assert all(len(part) <= twilio_webhook.WHATSAPP_MAX_LENGTH for part in reply)
    joined = "\n\n".join(body)
    for n in range(1, 9):
        assert f"Paragraf {n}:" in joined
    assert joined.index("Paragraf 1:") < joined.index("Paragraf 8:")
    assert all(part.startswith("Paragraf") for part in body[:-1])


# -- delivery status --------------------------------------------------------------------------


def status_form(sid, status, **extra):
    return {"MessageSid": sid, "MessageStatus": status, "AccountSid": "ACtest", **extra}


def test_delivery_statuses_are_stored_and_never_go_backwards(app, client):
    signed_post(client, WEBHOOK, form("halo", sid="SMin"))
    reply = rows(app, Message.direction == "out")[0]
    path = f"/webhook/status?out={reply.id}"
    for status in ("queued", "sent", "delivered", "sent", "queued"):
        assert signed_post(client, path, status_form("SMreply1", status)).status_code == 204
    stored = rows(app, Message.id == reply.id)[0]
    assert (stored.status, stored.channel_message_id) == ("delivered", "SMreply1")
    signed_post(client, path, status_form("SMreply1", "read"))
    assert rows(app, Message.id == reply.id)[0].status == "read"


def test_failed_delivery_keeps_its_error_code(app, client):
    signed_post(client, WEBHOOK, form("halo", sid="SMin2"))
    reply = rows(app, Message.direction == "out")[0]
    path = f"/webhook/status?out={reply.id}"
    signed_post(client, path, status_form("SMreply2", "sent"))
    signed_post(client, path, status_form("SMreply2", "undelivered", ErrorCode="63016"))
    signed_post(client, path, status_form("SMreply2", "delivered"))
    stored = rows(app, Message.id == reply.id)[0]
    assert (stored.status, stored.error_code) == ("undelivered", "63016")


def test_status_of_an_unknown_message_is_acknowledged(app, client):
    assert signed_post(client, "/webhook/status", status_form("SMnobody", "delivered")).status_code == 200
    assert signed_post(client, "/webhook/status?out=999999", status_form("SMnobody", "delivered")).status_code == 200


def test_forged_status_callback_is_refused(app, client):
    signed_post(client, WEBHOOK, form("halo", sid="SMin3"))
    reply = rows(app, Message.direction == "out")[0]
    response = client.post(
        f"/webhook/status?out={reply.id}", data=status_form("SMx", "failed"), headers={"X-Twilio-Signature": "forged"}
    )
    assert response.status_code == 403
    assert rows(app, Message.id == reply.id)[0].status is None


# -- flooding ---------------------------------------------------------------------------------


def test_flooding_gets_one_notice_then_silence_and_everything_is_stored(database_url):
    app = create_app(app_config(database_url, rate_limit_per_minute=5))
    client = app.test_client()
    replies = [texts(signed_post(client, WEBHOOK, form(f"halo {n}", sid=f"SMflood{n}"))) for n in range(9)]
    assert all(replies[n] for n in range(5))
    assert len(replies[5]) == 1 and "banyak sekali" in replies[5][0]
    assert replies[6:] == [[], [], []]
    inbound = rows(app, Message.direction == "in")
    assert len(inbound) == 9
    assert [m.rate_limited for m in inbound] == [False] * 5 + [True] * 4
    # A danger sign is answered even while flooding.
    urgent = texts(signed_post(client, WEBHOOK, form("tolong dada nyeri sesak napas", sid="SMflood-urgent")))
    assert "119" in urgent[0]


def test_a_sign_told_over_two_messages_is_answered_even_while_flooding(database_url):
    """The first half of the sign is silenced by the flood limit but still remembered."""
    app = create_app(app_config(database_url, rate_limit_per_minute=3))
    client = app.test_client()
    for n in range(3):
        signed_post(client, WEBHOOK, form(f"halo {n}", sid=f"SMhalf{n}"))
    assert "banyak sekali" in texts(signed_post(client, WEBHOOK, form("betis kiri sakit bgt", sid="SMhalf3")))[0]
    urgent = texts(signed_post(client, WEBHOOK, form("minggu lalu abis operasi lutut", sid="SMhalf4")))
    assert urgent and "119" in urgent[0]
    assert [m.reason for m in rows(app, Message.channel_message_id == "SMhalf4")] == ["triage:leg_pain_after_surgery"]


def test_the_flood_window_ends_after_a_minute_and_a_new_flood_gets_a_new_notice(database_url, clock):
    app = create_app(app_config(database_url, rate_limit_per_minute=3))
    app.extensions["klinik_inbox"].clock = clock
    client = app.test_client()

    def burst(label: str, count: int) -> list[list[str]]:
        sent = []
        for n in range(count):
            sent.append(texts(signed_post(client, WEBHOOK, form(f"halo {n}", sid=f"SM{label}{n}"))))
            clock.advance(seconds=5)
        return sent

    first = burst("a", 5)  # 0 s .. 20 s: three answered, a notice, silence
    assert [bool(r) for r in first] == [True, True, True, True, False]
    assert "banyak sekali" in first[3][0]
    clock.advance(seconds=40)  # the window that began at 0 s is over
    second = burst("b", 5)
    assert [bool(r) for r in second] == [True, True, True, True, False]
    assert "banyak sekali" in second[3][0] and "banyak sekali" not in second[0][0]
    # A retry of a silenced message is not counted again and stays silent.
    assert texts(signed_post(client, WEBHOOK, form("halo 4", sid="SMb4"))) == []
    notices = rows(app, Message.reason == "rate_limit_notice")
    assert [m.channel_message_id for m in notices] == ["SMa3", "SMb3"]


# -- the database down ------------------------------------------------------------------------


def test_webhook_answers_503_when_the_database_is_down():
    """Twilio retries on 5xx: a clear 503, never a traceback."""
    app = create_app(app_config("postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=1"))
    response = signed_post(app.test_client(), WEBHOOK, form())
    assert response.status_code == 503
    assert b"Traceback" not in response.data


def test_a_bug_in_processing_keeps_the_message_and_apologises(app, client, monkeypatch):
    """An unexpected error in the dialogue: the message is stored, the patient gets an apology,
    a retry gets the same apology, and the next message is answered normally."""
    inbox = app.extensions["klinik_inbox"]

    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(inbox.engine, "step", broken)
    first = signed_post(client, WEBHOOK, form("betis kedutan", sid="SMbug1"))
    assert texts(first) == [inbox.engine.text("error")]
    assert texts(signed_post(client, WEBHOOK, form("betis kedutan", sid="SMbug1"))) == texts(first)
    (stored,) = rows(app, Message.channel_message_id == "SMbug1")
    assert (stored.body, stored.reason) == ("betis kedutan", "processing_failed")
    monkeypatch.undo()
    after = texts(signed_post(client, WEBHOOK, form("kenapa betis kedutan", sid="SMbug2")))
    assert after and after != texts(first)
    assert [m.channel_message_id for m in rows(app, Message.direction == "in")] == ["SMbug1", "SMbug2"]


def test_a_database_outage_mid_message_writes_nothing_and_the_retry_is_stored_once(app, client, monkeypatch):
    """The database drops the connection half-way through a message: 503 (Twilio retries),
    the transaction is rolled back, and Twilio's retry is stored and answered exactly once."""
    from sqlalchemy.exc import OperationalError

    from bot.store import storage

    real = storage.insert_messages
    calls = []

    def dropped_once(*args, **kwargs):
        # The first message's second insert (its replies), after its conversation and the
        # message itself were written.
        calls.append(1)
        if len(calls) == 2:
            raise OperationalError("INSERT ...", {}, Exception("server closed the connection unexpectedly"))
        return real(*args, **kwargs)

    monkeypatch.setattr(storage, "insert_messages", dropped_once)
    failed = signed_post(client, WEBHOOK, form("kenapa betis kedutan", sid="SMoutage"))
    assert failed.status_code == 503 and b"Traceback" not in failed.data
    assert count(app) == 0 and count(app, Conversation) == 0
    retried = texts(signed_post(client, WEBHOOK, form("kenapa betis kedutan", sid="SMoutage")))
    assert retried and "Kedutan" in retried[-1]
    assert [m.channel_message_id for m in rows(app, Message.direction == "in")] == ["SMoutage"]
