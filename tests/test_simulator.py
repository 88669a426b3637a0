"""The WhatsApp simulator through the real Flask app, on SQLite and PostgreSQL: who may use it,
messages through the signed webhook, what the bot understood, staff replies, and conversations
recorded as replay fixtures that replay green."""

import pytest
import yaml
from conftest import AUTH_TOKEN, app_config
from helpers import PASSWORD, StaffBrowser, rows

from bot.quality import replay
from bot.store.storage import HandoffCase, Message
from bot.web import create_app
from bot.web.staff import CSP

PATIENT = "+6200111222333"


@pytest.fixture
def dev_app(database_url, tmp_path, clock):
    """Dev mode, but with an auth token: the webhook still checks every signature."""
    application = create_app(app_config(database_url, dev_mode=True, secret_key="test-secret-key"))
    application.config["SIMULATOR_FIXTURES_DIR"] = tmp_path / "fixtures"
    application.extensions["klinik_inbox"].clock = clock
    application.extensions["klinik_console"].clock = clock
    application.extensions["klinik_accounts"].add("sari", PASSWORD)
    yield application
    application.extensions["klinik_database"].dispose()


@pytest.fixture
def prod_app(database_url):
    application = create_app(app_config(database_url, secret_key="test-secret-key"))
    application.extensions["klinik_accounts"].add("sari", PASSWORD)
    yield application
    application.extensions["klinik_database"].dispose()


@pytest.fixture
def dev(dev_app):
    browser = StaffBrowser(dev_app)
    assert browser.get("/simulator/").status_code == 200
    return browser


def chat(browser, text, number=PATIENT, name="Budi Santoso", media=None):
    response = browser.post_json("/simulator/send", {"number": number, "name": name, "text": text, "media": media})
    assert response.status_code == 200, response.json
    return response.json


def replies(turn):
    return [r["text"] for r in turn["replies"]]


# -- who may use it ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [("get", "/simulator"), ("get", "/simulator/"), ("post", "/simulator/send"),
     ("get", f"/simulator/messages?number={PATIENT}"), ("get", f"/simulator/fixture.yaml?number={PATIENT}"),
     ("post", "/simulator/fixture")],
)  # fmt: skip
def test_outside_dev_mode_it_does_not_exist_for_anyone_but_staff(prod_app, method, path):
    browser = StaffBrowser(prod_app)
    browser.get("/staff/login")
    response = browser.client.open(path, method=method.upper(), base_url="https://localhost", json={})
    assert response.status_code == 404


def test_staff_may_use_it_outside_dev_mode_with_test_numbers_only(prod_app):
    sari = StaffBrowser(prod_app)
    assert sari.login().status_code == 302
    page = sari.get("/simulator/")
    assert page.status_code == 200
    assert "Simulator WhatsApp" in page.get_data(as_text=True)
    real = sari.post_json("/simulator/send", {"number": "+6281234567890", "name": "Budi", "text": "halo"})
    assert real.status_code == 400 and real.json["error"] == "real_number"
    assert "nomor uji (+6200…)" in real.json["message"]
    assert rows(prod_app, Message) == []
    assert "asisten otomatis" in replies(chat(sari, "halo"))[0]
    written = sari.post_json("/simulator/fixture", {"number": PATIENT, "name": "x", "path": "conversations/x.yaml"})
    assert written.status_code == 403 and written.json["error"] == "dev_only"


def test_the_page_keeps_the_console_policy_and_never_sees_the_token(dev_app, dev):
    response = dev.get("/simulator/")
    page = response.get_data(as_text=True)
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["Cache-Control"] == "no-store"
    assert AUTH_TOKEN not in page
    assert '<script src="/static/simulator.js" defer></script>' in page
    assert '<script type="application/json" id="sim-texts">' in page  # data, not code


def test_the_page_is_titled_as_the_simulator_not_the_staff_console(dev_app, dev):
    page = dev.get("/simulator/").get_data(as_text=True)
    assert "<title>Simulator WhatsApp · Klinik Ben Yuan Dao</title>" in page
    assert '<a class="brand" href="/simulator/">Simulator WhatsApp</a>' in page
    assert "Konsol Staf Klinik" not in page


def test_posts_need_the_pages_csrf_token(dev_app, dev):
    response = dev.post_json("/simulator/send", {"number": PATIENT, "text": "halo"}, csrf=False)
    assert response.status_code == 400 and response.json["error"] == "csrf"
    assert rows(dev_app, Message) == []


# -- chatting ---------------------------------------------------------------------------------


def test_a_message_goes_through_the_signed_webhook_and_shows_what_the_bot_understood(dev_app, dev):
    turn = chat(dev, "knp betis kedutan trs")
    inbound, *outbound = rows(dev_app, Message)
    assert inbound.channel_message_id.startswith("SMsim") and inbound.body == "knp betis kedutan trs"
    assert [r["text"] for r in turn["replies"]] == [m.body for m in outbound]
    assert [r["id"] for r in turn["replies"]] == [m.id for m in outbound]
    assert "elektrolit" in replies(turn)[1]
    assert {k: turn["inbound"][k] for k in ("intent", "decision", "score", "sender")} == {
        "intent": "causes", "decision": "answer", "score": inbound.score, "sender": "patient",
    }  # fmt: skip
    assert 0 < inbound.score <= 1


def test_the_signature_holds_without_public_base_url_on_any_port(database_url):
    """Then the webhook checks the URL it was called at, port included."""
    app = create_app(app_config(database_url, dev_mode=True, public_base_url="", secret_key="test-secret-key"))
    client = app.test_client()
    base = "http://127.0.0.1:8123"
    token = StaffBrowser.TOKEN.search(client.get("/simulator/", base_url=base).get_data(as_text=True)).group(1)
    response = client.post(
        "/simulator/send", json={"number": PATIENT, "text": "halo"}, base_url=base, headers={"X-CSRFToken": token}
    )
    assert response.status_code == 200, response.json
    assert response.json["inbound"]["intent"] == "greeting"
    app.extensions["klinik_database"].dispose()


def test_numbers_are_read_as_patients_write_them(dev_app, dev):
    chat(dev, "halo", number="0812-3456 7890")
    assert dev.get("/simulator/messages?number=%2B6281234567890").json["messages"][0]["text"] == "halo"
    bad = dev.post_json("/simulator/send", {"number": "12ab", "text": "halo"})
    assert bad.status_code == 400 and bad.json["error"] == "bad_number"


@pytest.mark.parametrize(
    "media, content_type, said, reason",
    [
        ("image", "image/jpeg", "hanya bisa membaca pesan teks", "media"),
        ("voice", "audio/ogg", "belum bisa mendengarkan pesan suara", "voice_note"),  # asked to type it
    ],
)
def test_a_fake_image_or_voice_note_arrives_as_media(dev_app, dev, media, content_type, said, reason):
    turn = chat(dev, "", media=media)
    assert said in "\n".join(replies(turn))
    assert turn["inbound"]["reason"] == reason
    (inbound,) = rows(dev_app, Message, Message.direction == "in")
    assert inbound.media[0]["content_type"] == content_type
    assert dev.post_json("/simulator/send", {"number": PATIENT, "text": "  "}).json["error"] == "empty"


def test_staff_replies_appear_among_the_conversations_new_messages(dev_app, dev):
    for text in ("mau booking akupuntur besok jam 3", "ya", "betis kanan kedutan terus sudah seminggu"):
        chat(dev, text)
    last = chat(dev, "ya")
    assert "Permintaan janji terkirim" in replies(last)[0]
    seen = last["replies"][-1]["id"]
    assert dev.get(f"/simulator/messages?number={PATIENT}&after={seen}").json["messages"] == []
    (case,) = rows(dev_app, HandoffCase)
    dev_app.extensions["klinik_console"].reply(case.id, "sari", "Halo Budi, Kamis jam 3 bisa.")
    (staff,) = dev.get(f"/simulator/messages?number={PATIENT}&after={seen}").json["messages"]
    assert (staff["sender"], staff["staff_name"], staff["text"]) == ("staff", "sari", "Halo Budi, Kamis jam 3 bisa.")
    history = dev.get(f"/simulator/messages?number={PATIENT}").json["messages"]
    assert [m["sender"] for m in history].count("patient") == 4
    assert all(m["reply_to"] for m in history if m["sender"] == "bot")


# -- recording fixtures -----------------------------------------------------------------------


def record(browser, name="rekaman", **body):
    response = browser.post_json("/simulator/fixture", {"number": PATIENT, "name": name, **body})
    assert response.status_code == 200, response.json
    return response.json


def load(tmp_path, text):
    path = tmp_path / "recorded.yaml"
    path.write_text(text, encoding="utf-8")
    return replay.load_fixture(path)


def replays_green(engine, fixture, moments=(None,)):
    for moment in moments:
        played = replay.at_clock(fixture, moment) if moment else fixture
        results = replay.run_fixture(played, replay.engine_conversation(engine))
        assert all(r.passed for r in results), replay.format_results(results)


def test_a_conversation_becomes_a_fixture_that_replays_green(dev_app, dev, engine, tmp_path, clock):
    for text, media in (("halo kak", None), ("", "image"), ("sambungkan ke admin", None), ("makasih", None)):
        chat(dev, text, media=media)
        clock.advance(seconds=30)
    (case,) = rows(dev_app, HandoffCase)
    console = dev_app.extensions["klinik_console"]
    console.reply(case.id, "sari", "Halo Budi, ada yang bisa dibantu?\nSaya Sari.")
    clock.advance(seconds=30)
    console.close(case.id, "sari")
    clock.advance(seconds=30)
    chat(dev, "knp betis kedutan trs")
    recording = record(dev, "dari simulator: admin lalu penyebab")
    fixture = load(tmp_path, recording["yaml"])
    assert recording["turns"] == len(fixture.turns) == 6
    assert recording["notes"] == []
    assert [t.user for t in fixture.turns] == [
        "halo kak",
        "",
        "sambungkan ke admin",
        "makasih",
        "",
        "knp betis kedutan trs",
    ]
    assert [t.event for t in fixture.turns] == [None, None, None, None, "case_closed", None]
    assert fixture.turns[0].profile_name == "Budi Santoso" and fixture.turns[1].media == ("image/jpeg",)
    assert not any(t.fixed_clock for t in fixture.turns)
    expects = [t.expect for t in fixture.turns]
    assert expects[0]["intent"] == "greeting" and expects[0]["decision"] == "answer"
    assert expects[2]["actions"] == ["handoff:human_agent"]
    assert expects[5]["intent"] == "causes"
    assert expects[3]["intent"] == "thanks" and expects[3]["contains"]  # acknowledged while staff have the chat
    for expect in expects[:3] + expects[5:]:
        (snippet,) = expect["contains"]
        assert 2 <= len(snippet.split()) <= 6 and not any(c.isdigit() for c in snippet)
    assert (
        "  # staff sari: Halo Budi, ada yang bisa dibantu? Saya Sari.\n"
        "  # sent: Percakapan Anda dengan staf klinik sudah selesai" in recording["yaml"]
    )
    assert (
        "Apakah bantuan kami membantu? 1. 👍 Ya, membantu 2. 👎 Kurang membantu\n  - event: case_closed\n"
        in recording["yaml"]
    )
    replays_green(engine, fixture, [None, *replay.probe_moments()])


def test_what_depends_on_the_clock_is_left_out_and_said(dev, engine, tmp_path):
    """Wednesday 10:00 (the test clock): "besok jam 3" is Thursday, open. Replayed on a Saturday
    afternoon, "besok" is a closed Sunday: that turn's expectations cannot hold at any hour."""
    for text in ("mau booking akupuntur besok jam 3", "ya", "betis kanan kedutan terus sudah seminggu", "ya"):
        chat(dev, text)
    recording = record(dev)
    assert {(n["turn"], n["clock"]) for n in recording["notes"]} >= {(3, "2026-11-28 13:30")}
    assert "not asserted: live" in recording["yaml"]
    fixture = load(tmp_path, recording["yaml"])
    assert fixture.turns[0].expect["actions"] == ["start_booking"]
    replays_green(engine, fixture, [None, *replay.probe_moments()])


def test_fixtures_are_downloaded_or_written_under_tests_fixtures_in_dev_mode(dev_app, dev, tmp_path):
    chat(dev, "halo")
    download = dev.get(f"/simulator/fixture.yaml?number={PATIENT}&name=Salam+pertama")
    assert download.headers["Content-Disposition"] == 'attachment; filename="salam_pertama.yaml"'
    assert yaml.safe_load(download.get_data(as_text=True))["name"] == "Salam pertama"
    written = record(dev, "salam", path="conversations/salam.yaml")
    target = tmp_path / "fixtures" / "conversations" / "salam.yaml"
    assert target.read_text(encoding="utf-8") == written["yaml"]
    assert written["written"].endswith("conversations/salam.yaml")
    again = dev.post_json("/simulator/fixture", {"number": PATIENT, "path": "conversations/salam.yaml"})
    assert again.status_code == 409 and again.json["error"] == "exists"
    for outside in ("../salam.yaml", "/tmp/salam.yaml", "conversations/salam.txt", "."):
        response = dev.post_json("/simulator/fixture", {"number": PATIENT, "path": outside})
        assert response.status_code == 400 and response.json["error"] == "bad_path", outside
    unknown = dev.post_json("/simulator/fixture", {"number": "+6200999999999"})
    assert unknown.status_code == 404 and unknown.json["error"] == "not_found"
