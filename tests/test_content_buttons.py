"""WhatsApp buttons and lists through Twilio's Content API (issue 18): the templates of
knowledge/content.yaml registered by `python -m bot content register`, a reply's choices sent as
ContentSid + ContentVariables through the outbox, and a tapped button (ButtonPayload) or list row
(ListId) mapped back exactly; all through the real twilio client against the local recorder."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from conftest import KNOWLEDGE, ROOT, app_config, signed_post
from helpers import PATIENT, make_worker, rows, say

from bot.channels.twilio.content import load_definitions, shorten
from bot.store.storage import Conversation, Message, OutboxItem
from bot.web import create_app

DEFINITIONS = load_definitions(KNOWLEDGE / "content.yaml")
REMINDER = DEFINITIONS.reminder.name
NAMES = [d.name for d in DEFINITIONS.templates] + [REMINDER]
STALE = "Maaf, pilihan itu sudah tidak berlaku"
PROMPT = DEFINITIONS.prompt


@pytest.fixture
def sids_path(tmp_path, monkeypatch, recorder):
    """Where the command writes the ContentSids (and the app reads them), for this test."""
    path = tmp_path / "instance" / "content_sids.json"
    monkeypatch.setenv("CONTENT_SIDS_FILE", str(path))
    monkeypatch.setenv("TWILIO_CONTENT_BASE_URL", recorder.url)
    return path


def register(command="register", **env) -> str:
    """`python -m bot content register` (or `status`), as an operator runs it."""
    environment = {**os.environ, "TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "token", **env}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "content", command],
        capture_output=True, text=True, cwd=ROOT, timeout=120, env=environment,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def make_app(database_url, recorder, clock):
    config = app_config(database_url, twilio_api_base_url=recorder.url)
    application = create_app(config)
    application.extensions["klinik_inbox"].clock = clock
    return application, make_worker(config, application, clock)


@pytest.fixture
def buttons(sids_path, database_url, recorder, clock):
    register()
    application, worker = make_app(database_url, recorder, clock)
    yield application, worker, json.loads(sids_path.read_text())
    application.extensions["klinik_database"].dispose()


def tap(app, sid, form):
    response = signed_post(app.test_client(), "/webhook/whatsapp", {"MessageSid": sid, "From": PATIENT, **form})
    assert response.status_code == 200, response.data
    return [m.text or "" for m in ET.fromstring(response.data).iter("Message")]


def flushed(recorder, worker) -> int:
    """How many messages were sent once the outbox is empty."""
    worker.run_once()
    return len(recorder.messages())


def sent_since(recorder, worker, before: int) -> list[dict]:
    worker.run_once()
    return recorder.messages()[before:]


def test_register_creates_each_template_once_and_writes_the_sids(sids_path, recorder):
    out = register()
    created = recorder.contents()
    assert [c["friendly_name"] for c in created] == NAMES
    assert NAMES[:2] == ["klinik_quick_reply_2", "klinik_quick_reply_3"] and len(NAMES) == 10
    three = created[1]["types"]["twilio/quick-reply"]
    assert three["body"] == "{{1}}"
    assert three["actions"] == [
        {"type": "QUICK_REPLY", "title": "{{2}}", "id": "{{3}}"},
        {"type": "QUICK_REPLY", "title": "{{4}}", "id": "{{5}}"},
        {"type": "QUICK_REPLY", "title": "{{6}}", "id": "{{7}}"},
    ]
    ten = created[-2]["types"]["twilio/list-picker"]
    assert ten["button"] == "Lihat pilihan" and len(ten["items"]) == 10
    assert ten["items"][9] == {"item": "{{29}}", "id": "{{30}}", "description": "{{31}}"}
    assert created[-2]["variables"]["29"] == "Pilihan 10" and created[-2]["language"] == "id"
    sids = json.loads(sids_path.read_text())
    assert list(sids) == sorted(NAMES) and all(s.startswith("HX") and len(s) == 34 for s in sids.values())
    assert "klinik_list_picker_10: HX" in out and "(created)" in out
    again = register()
    assert len(recorder.contents()) == len(NAMES)  # nothing created twice
    assert json.loads(sids_path.read_text()) == sids and "already registered" in again


def test_the_reminder_template_has_its_text_and_three_buttons_and_asks_for_approval_once(sids_path, recorder):
    out = register()
    (reminder,) = [c for c in recorder.contents() if c["friendly_name"] == REMINDER]
    body = reminder["types"]["twilio/quick-reply"]["body"]
    assert body.startswith("⏰ Pengingat dari Klinik") and "atas nama *{{1}}* pada {{2}}." in body
    assert "{name}" not in body and "{clinic_name}" not in body
    assert reminder["types"]["twilio/quick-reply"]["actions"] == [
        {"type": "QUICK_REPLY", "title": "Ya, saya hadir", "id": "appointment:attend"},
        {"type": "QUICK_REPLY", "title": "Ganti jadwal", "id": "appointment:move"},
        {"type": "QUICK_REPLY", "title": "Batalkan janji", "id": "appointment:cancel"},
    ]
    assert reminder["variables"] == {"1": "Budi Santoso", "2": "Kamis, 26 November 2026 pukul 15.00"}
    sid = json.loads(sids_path.read_text())[REMINDER]
    assert recorder.approval_requests() == [(sid, {"name": REMINDER, "category": "UTILITY"})]
    assert "needs WhatsApp's approval" in out
    register()  # asked already: not again
    assert len(recorder.approval_requests()) == 1


def test_content_status_shows_whatsapps_decision_and_what_to_set(sids_path, recorder):
    register()
    sid = json.loads(sids_path.read_text())[REMINDER]
    assert f"{REMINDER}: {sid} received" in register("status")
    recorder.approvals[sid] = "rejected"
    assert "rejected: Tidak sesuai kebijakan (uji)" in register("status")
    recorder.approvals[sid] = "approved"
    out = register("status")
    assert f"{sid} approved" in out and f"REMINDER_CONTENT_SID={sid} is set" in out
    assert "is set" not in register("status", REMINDER_CONTENT_SID=sid)  # already set: nothing to do


def test_each_reminder_button_is_read_as_its_command(buttons):
    """The buttons' titles are what a tap counts as: each must say its command."""
    app, _, _ = buttons
    engine = app.extensions["klinik_engine"].current()
    for choice, title in engine.appointment_choices().items():
        tokens = engine.matcher.normalize.tokens(title)
        assert engine._appointment_command(title, tokens) == choice.removeprefix("appointment:"), title


def test_register_resumes_after_a_partial_run(sids_path, recorder):
    sids_path.parent.mkdir(parents=True)
    sids_path.write_text(json.dumps({"klinik_quick_reply_2": "HX" + "a" * 32}))
    register()
    assert [c["friendly_name"] for c in recorder.contents()] == NAMES[1:]
    assert json.loads(sids_path.read_text())["klinik_quick_reply_2"] == "HX" + "a" * 32


def test_the_slot_offer_leaves_as_buttons_and_a_tap_picks_exactly_that_slot(buttons, recorder):
    app, worker, sids = buttons
    say(app, "mau booking besok sore", "SMk1")
    say(app, "ya", "SMk2")
    before = flushed(recorder, worker)
    offer = say(app, "betis kram tiap malam", "SMk3")[-1]
    # The offer itself goes as text in the webhook's answer; its buttons follow on their own.
    assert "2. Kamis, 26 November 2026 pukul 16.00" in offer
    item = rows(app, OutboxItem)[-1]
    assert item.template_id == sids["klinik_quick_reply_3"] and item.body == PROMPT
    (sent,) = sent_since(recorder, worker, before)
    assert sent["ContentSid"] == sids["klinik_quick_reply_3"] and "Body" not in sent
    variables = json.loads(sent["ContentVariables"])
    assert variables == {
        "1": PROMPT,
        "2": "Kam 26 Nov 15.00",
        "3": "slot:2026-11-26T15:00:00+07:00",
        "4": "Kam 26 Nov 16.00",
        "5": "slot:2026-11-26T16:00:00+07:00",
        "6": "Kam 26 Nov 17.30",
        "7": "slot:2026-11-26T17:30:00+07:00",
    }
    assert not any("\n" in value for value in variables.values())  # WhatsApp refuses line breaks there
    before = flushed(recorder, worker)
    summary_text = tap(app, "SMk4", {"Body": "Kam 26 Nov 16.00", "ButtonPayload": variables["5"], "ButtonText": "x"})[
        -1
    ]
    assert "Kamis, 26 November 2026 pukul 16.00" in summary_text
    booking = rows(app, Conversation)[0].state["booking"]
    assert (booking["step"], booking["day"], booking["at"]) == ("confirm", "2026-11-26", "16:00")
    (summary,) = sent_since(recorder, worker, before)
    confirm = json.loads(summary["ContentVariables"])
    assert summary["ContentSid"] == sids["klinik_quick_reply_3"]
    assert [confirm[k] for k in ("2", "3", "4", "5", "6", "7")] == [
        "Ya", "confirm:yes", "Ubah", "confirm:change", "Batal", "confirm:cancel",
    ]  # fmt: skip
    tapped = rows(app, Message, Message.channel_message_id == "SMk4")[0]
    assert (tapped.choice_id, tapped.body) == ("slot:2026-11-26T16:00:00+07:00", "Kam 26 Nov 16.00")


# An old slot button of this chat; another chat's slot (Friday, never offered here).
@pytest.mark.parametrize("payload", ["slot:2026-11-26T15:00:00+07:00", "slot:2026-11-27T09:00:00+07:00"])
def test_a_stale_or_foreign_payload_gets_the_clear_answer_not_a_pick(buttons, recorder, payload):
    app, worker, _ = buttons
    for number, text in enumerate(("mau booking besok sore", "ya", "betis kram tiap malam", "2"), start=1):
        say(app, text, f"SMs{number}")
    kept = rows(app, Conversation)[0].state["booking"]
    stale = tap(app, "SMs9", {"Body": "Kam 26 Nov 15.00", "ButtonPayload": payload, "ButtonText": ""})
    assert stale[0].startswith(STALE) and "Kamis, 26 November 2026 pukul 16.00" in stale[-1]  # the summary again
    assert rows(app, Conversation)[0].state["booking"]["at"] == kept["at"] == "16:00"
    last = rows(app, OutboxItem)[-1]  # with its buttons
    assert last.body == PROMPT
    assert [last.content_variables[k] for k in ("3", "5", "7")] == ["confirm:yes", "confirm:change", "confirm:cancel"]


def test_the_menu_leaves_as_a_list_and_a_picked_row_answers_its_topic(buttons, recorder):
    app, worker, sids = buttons
    say(app, "halo", "SMm1")
    before = flushed(recorder, worker)
    say(app, "menu", "SMm2")
    (sent,) = sent_since(recorder, worker, before)
    assert sent["ContentSid"] == sids["klinik_list_picker_10"]
    variables = json.loads(sent["ContentVariables"])
    rows_ = [(variables[str(2 + 3 * i)], variables[str(3 + 3 * i)]) for i in range(10)]
    assert ("Biaya & pembayaran", "topic:pricing") in rows_
    assert all(len(title) <= 24 for title, _ in rows_)
    assert variables["11"] == "Apakah berbahaya…"  # 'Apakah berbahaya & kapan ke dokter', shortened
    assert variables["12"] == "topic:when_to_worry" and variables["13"] == "Apakah berbahaya & kapan ke dokter"
    answer = tap(
        app, "SMm3", {"Body": "Biaya & pembayaran", "ListId": "topic:pricing", "ListTitle": "Biaya & pembayaran"}
    )
    picked = rows(app, Message, Message.channel_message_id == "SMm3")[0]
    assert (picked.intent, picked.reason, picked.choice_id) == ("pricing", "option", "topic:pricing")  # as typing 9
    assert "Biaya" in " ".join(answer)


def test_without_registered_templates_the_text_is_unchanged(sids_path, database_url, recorder, clock):
    app, worker = make_app(database_url, recorder, clock)
    say(app, "mau booking besok sore", "SMt1")
    say(app, "ya", "SMt2")
    (offer,) = say(app, "betis kram tiap malam", "SMt3")
    assert offer.startswith("Waktu yang masih kosong") and "2. Kamis, 26 November 2026 pukul 16.00" in offer
    assert rows(app, OutboxItem) == [] and worker.run_once() == 0
    app.extensions["klinik_database"].dispose()


@pytest.mark.parametrize(
    "title, limit, short",
    [
        ("Kam 26 Nov 15.00", 20, "Kam 26 Nov 15.00"),
        ("Apakah berbahaya & kapan ke dokter", 24, "Apakah berbahaya…"),
        ("Alamat, jam buka & kontak", 24, "Alamat, jam buka…"),
        ("Akupunktur & herbal di klinik", 20, "Akupunktur & herbal…"),
        ("Pemeriksaanlengkapsekali", 20, "Pemeriksaanlengkaps…"),
    ],
)
def test_long_titles_are_shortened_at_a_word(title, limit, short):
    assert shorten(title, limit) == short and len(short) <= limit
