"""The satisfaction question as WhatsApp quick-reply buttons (SATISFACTION_CONTENT_SID): sent
through the outbox after the turn's TwiML replies, and when staff close a case; a tapped button
is a rating like a typed 1 or 2; without the setting, the question stays text."""

import xml.etree.ElementTree as ET

import pytest
from conftest import app_config, signed_post
from helpers import PASSWORD, PATIENT, make_worker, rows, say

from bot.store.storage import FeedbackAnswer, HandoffCase, Message, OutboxItem
from bot.web import create_app

TEMPLATE = "HX00000000000000000000000000000021"
OTHER = "whatsapp:+6281299990000"


def make_app(database_url, recorder, clock, template):
    config = app_config(
        database_url, secret_key="k", twilio_api_base_url=recorder.url, satisfaction_template_id=template
    )
    application = create_app(config)
    for key in ("klinik_inbox", "klinik_console", "klinik_insights"):
        application.extensions[key].clock = clock
    application.extensions["klinik_accounts"].add("sari", PASSWORD)
    return application, make_worker(config, application, clock)


@pytest.fixture
def buttons(database_url, recorder, clock):
    application, worker = make_app(database_url, recorder, clock, TEMPLATE)
    yield application, worker
    application.extensions["klinik_database"].dispose()


def tap(app, sid, payload, body):
    form = {"MessageSid": sid, "From": PATIENT, "Body": body, "ButtonPayload": payload, "ButtonText": body}
    response = signed_post(app.test_client(), "/webhook/whatsapp", form)
    assert response.status_code == 200, response.data
    return [m.text or "" for m in ET.fromstring(response.data).iter("Message")]


def unanswered(app) -> dict[str, int]:
    token = app.extensions["klinik_accounts"].issue_token("sari")
    response = app.test_client().get(
        "/staff/api/report?from=2026-11-25&to=2026-11-25", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.data
    return {item["text"]: item["rated_down"] for item in response.json["unanswered"]}


def test_after_a_topic_the_question_comes_as_the_template_after_the_twiml_reply(buttons, recorder):
    app, worker = buttons
    say(app, "knp betis kedutan trs", "SMb1")
    thanks = say(app, "oke makasih infonya kak", "SMb2")
    assert len(thanks) == 1 and "membantu?" not in thanks[0] and thanks[0].strip()
    (item,) = rows(app, OutboxItem)
    assert (item.template_id, item.to_address, item.case_id) == (TEMPLATE, PATIENT, None)
    assert item.body.startswith("Apakah jawaban tentang") and "1. 👍" in item.body  # the transcript, the fallback
    stored = rows(app, Message, Message.id == item.message_id)[0]
    assert (stored.direction, stored.body) == ("out", item.body)
    assert recorder.messages() == []  # the worker sends it, after the webhook answered
    assert worker.run_once() == 1
    (sent,) = recorder.messages()
    assert (sent["ContentSid"], sent["To"]) == (TEMPLATE, PATIENT)
    assert "Body" not in sent


@pytest.mark.parametrize(
    "payload, body, helpful",
    [
        ("not_helpful", "👎 Tidak", False),
        ("not_helpful", "", False),
        ("helpful", "👍 Membantu", True),
        ("helpful", "", True),
    ],
)
def test_a_tapped_button_is_a_rating_and_a_thumbs_down_reaches_the_unanswered_inbox(buttons, payload, body, helpful):
    app, _ = buttons
    say(app, "knp betis kedutan trs", "SMr1")
    say(app, "makasih", "SMr2")
    (reply,) = tap(app, "SMr3", payload, body)
    assert ("Terima kasih atas penilaiannya" in reply) is helpful
    (answer,) = rows(app, FeedbackAnswer)
    assert (answer.helpful, answer.intent) == (helpful, "causes")
    assert rows(app, Message, Message.id == answer.rated_message_id)[0].body == "knp betis kedutan trs"
    tapped = rows(app, Message, Message.id == answer.message_id)[0]
    assert (tapped.choice_id, tapped.reason) == (payload, "feedback_up" if helpful else "feedback_down")
    assert unanswered(app).get("knp betis kedutan trs") == (None if helpful else 1)


def test_closing_a_case_sends_the_template(buttons, recorder):
    app, worker = buttons
    say(app, "bisa chat sama admin?", "SMc1")
    (case,) = rows(app, HandoffCase)
    app.extensions["klinik_console"].close(case.id, "sari")
    (question,) = [i for i in rows(app, OutboxItem) if i.kind == "patient_message"]
    assert (question.template_id, question.case_id) == (TEMPLATE, case.id)
    assert "Apakah bantuan kami membantu?" in question.body
    worker.run_once()
    (sent,) = [m for m in recorder.messages() if m["To"] == PATIENT]
    assert sent["ContentSid"] == TEMPLATE and "Body" not in sent


def test_without_the_setting_the_question_stays_text(database_url, recorder, clock):
    app, worker = make_app(database_url, recorder, clock, "")
    say(app, "knp betis kedutan trs", "SMt1")
    (thanks,) = say(app, "makasih", "SMt2")
    assert "Apakah jawaban tentang" in thanks and "2. 👎 Kurang membantu" in thanks
    assert rows(app, OutboxItem) == []
    say(app, "bisa chat sama admin?", "SMt3", sender=OTHER)  # asked today already: another patient
    app.extensions["klinik_console"].close(rows(app, HandoffCase)[0].id, "sari")
    worker.run_once()
    (sent,) = recorder.messages()
    assert sent["To"] == OTHER and "ContentSid" not in sent and "Apakah bantuan kami membantu?" in sent["Body"]
    app.extensions["klinik_database"].dispose()
