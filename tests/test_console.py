"""The staff console and its JSON API through the real Flask app, on SQLite and PostgreSQL:
accounts and their protections, the queue, claims, replies that reach the Twilio recorder,
bookings, closing, the 24-hour window, and teaching the bot from unanswered messages."""

import html
import io
import os
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
import yaml
from conftest import ROOT, app_config, signed_post
from helpers import PASSWORD, PATIENT, StaffBrowser, book, make_worker, rows, say

from bot.cli import cmd_staff
from bot.services.accounts import Accounts
from bot.services.learning import LearningError
from bot.store.storage import (
    Booking,
    BookingPlace,
    Conversation,
    HandoffCase,
    LearnedExample,
    Message,
    OutboxItem,
    Review,
)
from bot.web import create_app


@pytest.fixture
def config(database_url, recorder, kb_copy):
    return app_config(
        database_url,
        twilio_api_base_url=recorder.url,
        secret_key="test-secret-key",
        knowledge_dir=kb_copy,
        knowledge_reload_seconds=0,
    )


@pytest.fixture
def app(config, clock):
    application = create_app(config)
    application.extensions["klinik_inbox"].clock = clock
    application.extensions["klinik_console"].clock = clock
    accounts = application.extensions["klinik_accounts"]
    accounts.add("sari", PASSWORD)
    accounts.add("budi", PASSWORD)
    yield application
    application.extensions["klinik_database"].dispose()


@pytest.fixture
def sari(app):
    browser = StaffBrowser(app)
    assert browser.login().status_code == 302
    return browser


@pytest.fixture
def worker(config, app, clock):
    return make_worker(config, app, clock)


def api(app, method, path, token, json=None):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return getattr(app.test_client(), method)(f"/staff/api{path}", json=json, headers=headers)


def ask_for_staff(app, text="sambungkan ke admin dong", sid="SMhuman1"):
    say(app, text, sid)
    (case,) = rows(app, HandoffCase)
    return case.id


# -- access -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/staff/", "/staff/queue.part", "/staff/cases/1", "/staff/cases/1/transcript.part", "/staff/unanswered"]
)
def test_nothing_under_staff_is_reachable_without_login(app, path):
    response = StaffBrowser(app).get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/staff/login")


def test_actions_without_login_change_nothing(app):
    case_id = ask_for_staff(app)
    browser = StaffBrowser(app)
    for action in ("claim", "close"):
        browser.get("/staff/login")  # a valid CSRF token, but nobody logged in
        response = browser.post(f"/staff/cases/{case_id}/{action}")
        assert response.status_code == 302 and response.headers["Location"].startswith("/staff/login")
    (case,) = rows(app, HandoffCase)
    assert (case.status, case.claimed_by) == ("open", None)


def test_login_logout_and_a_wrong_password(app):
    browser = StaffBrowser(app)
    assert browser.login(password="salah-sekali-123").status_code == 401
    assert browser.get("/staff/").status_code == 302
    assert browser.login().status_code == 302
    assert browser.get("/staff/").status_code == 200
    cookie = browser.client.get_cookie("klinik_staff", domain="localhost")
    assert cookie.secure and cookie.http_only and cookie.same_site == "Lax"
    browser.post("/staff/logout")
    assert browser.get("/staff/").status_code == 302


def test_repeated_failed_logins_are_throttled_even_with_the_right_password(app):
    browser = StaffBrowser(app)
    for _ in range(5):
        assert browser.login(password="tebak-tebakan-99").status_code == 401
    response = browser.login()
    assert response.status_code == 429
    assert "Terlalu banyak percobaan" in response.get_data(as_text=True)
    assert browser.get("/staff/").status_code == 302
    # Sari at her own desk (another address) is not locked out by someone guessing elsewhere.
    desk = StaffBrowser(app)
    desk.client.environ_base["REMOTE_ADDR"] = "10.0.0.7"
    assert desk.login().status_code == 302


def test_a_lockout_ends_by_itself_after_the_window_and_says_when(app, clock):
    """Five failures at 10:00, 10:01 ... 10:04 (Jakarta): locked until 10:15, when the first of
    them is older than the window; refused attempts meanwhile do not extend it."""
    accounts = app.extensions["klinik_accounts"]
    accounts.clock = clock
    browser = StaffBrowser(app)
    for _ in range(5):
        assert browser.login(password="tebak-tebakan-99").status_code == 401
        clock.advance(minutes=1)
    clock.advance(minutes=5)  # 10:10
    refused = browser.login()
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "300"
    assert "Coba lagi pukul 10.15 (5 menit lagi)" in html.unescape(refused.get_data(as_text=True))
    clock.advance(minutes=5, seconds=-1)
    assert accounts.login("sari", PASSWORD, "127.0.0.1").locked_until == clock() + timedelta(seconds=1)
    clock.advance(seconds=1)
    assert browser.login().status_code == 302


def test_staff_unlock_from_the_command_line_lifts_a_lockout_at_once(app, database_url):
    accounts = app.extensions["klinik_accounts"]
    for n in range(5):
        accounts.login("Sari", f"tebakan-ke-{n}-xx", "203.0.113.7")  # the name as typed, any case
    for n in range(5):
        accounts.login("sari", f"tebakan-ke-{n}-yy", "198.51.100.4")
    assert accounts.login("sari", PASSWORD, "198.51.100.4").throttled
    unknown = bot_command("staff", "unlock", "siapa", database_url=database_url)
    assert unknown.returncode == 2 and "no staff member named 'siapa'" in unknown.stderr
    result = bot_command("staff", "unlock", "sari", database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert "'sari' may log in again now (10 failed attempt(s) forgotten)" in result.stdout
    assert accounts.login("sari", PASSWORD, "198.51.100.4").name == "sari"
    assert accounts.login("Sari", PASSWORD, "203.0.113.7").throttled is False


def bot_command(*args, database_url):
    """`python -m bot ...` in a subprocess, as an operator runs it."""
    env = dict(os.environ, DATABASE_URL=database_url)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )


def test_one_address_trying_many_names_is_throttled(app):
    accounts = app.extensions["klinik_accounts"]
    for n in range(20):
        assert accounts.login(f"tebak{n}", "salah-salah-123", "203.0.113.9").name is None
    assert accounts.login("sari", PASSWORD, "203.0.113.9").throttled
    assert accounts.login("sari", PASSWORD, "198.51.100.1").name == "sari"


def test_parallel_guesses_cannot_slip_past_the_limit(app):
    from bot.store.storage import LoginAttempt

    accounts = app.extensions["klinik_accounts"]
    start = threading.Barrier(12)

    def guess(n):
        start.wait()
        accounts.login("sari", f"tebakan-ke-{n}-xx", "203.0.113.50")

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(rows(app, LoginAttempt)) == 5  # the rest were refused before any password check


def test_logout_password_change_and_age_end_sessions(app, sari):
    cookie = sari.client.get_cookie("klinik_staff", domain="localhost").value
    sari.post("/staff/logout")
    copied = StaffBrowser(app)
    copied.client.set_cookie("klinik_staff", cookie, domain="localhost", secure=True)
    assert copied.get("/staff/").status_code == 302  # a cookie saved before logout is dead
    sari.login()
    assert sari.get("/staff/").status_code == 200
    app.extensions["klinik_accounts"].set_password("sari", "kata-sandi-baru-456")
    assert sari.get("/staff/").status_code == 302
    assert sari.login(password="kata-sandi-baru-456").status_code == 302
    with sari.client.session_transaction(base_url="https://localhost") as session:
        session["since"] -= 13 * 3600
    assert sari.get("/staff/").status_code == 302  # 12 hours at most, however active


def test_login_needs_a_secret_key_outside_dev_mode(database_url):
    app = create_app(app_config(database_url, secret_key=""))
    browser = StaffBrowser(app)
    for response in (browser.get("/staff/login"), browser.get("/staff/"), browser.get("/staff/cases/1"),
                     browser.post("/staff/login", {"name": "sari", "password": PASSWORD})):  # fmt: skip
        assert response.status_code == 503
        assert "SECRET_KEY" in response.get_data(as_text=True)


@pytest.mark.parametrize("token", [None, "", "not-a-token", "Bearer"])
def test_api_refuses_missing_or_wrong_tokens(app, token):
    response = api(app, "get", "/cases", token)
    assert response.status_code == 401
    assert response.json["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_api_does_not_accept_a_session_cookie(app, sari):
    response = sari.client.get("/staff/api/cases", base_url="https://localhost")
    assert response.status_code == 401


def test_forms_without_a_valid_csrf_token_are_rejected(app, sari):
    case_id = ask_for_staff(app)
    sari.get(f"/staff/cases/{case_id}")
    missing = sari.post(f"/staff/cases/{case_id}/reply", {"text": "halo"}, csrf=False)
    forged = sari.post(f"/staff/cases/{case_id}/reply", {"text": "halo", "csrf_token": "forged"})
    assert missing.status_code == forged.status_code == 400
    assert "kedaluwarsa" in forged.get_data(as_text=True)
    assert [m for m in rows(app, Message) if m.staff_name] == []
    assert sari.post(f"/staff/cases/{case_id}/reply", {"text": "halo"}).status_code == 302
    assert [m.body for m in rows(app, Message) if m.staff_name] == ["halo"]


def test_patient_text_is_rendered_inert_and_security_headers_are_set(app, sari):
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)>"\'><a href="javascript:alert(1)">k</a>'
    say(app, "sambungkan ke admin", "SMxss1", name='<b onmouseover="alert(1)">Budi</b>')
    say(app, payload, "SMxss2")
    signed_post(app.test_client(), "/webhook/whatsapp", {"MessageSid": "SMxss3", "From": PATIENT, "Body": "",
                "NumMedia": "1", "MediaUrl0": "javascript:alert(document.cookie)",
                "MediaContentType0": "image/jpeg"})  # fmt: skip
    (case,) = rows(app, HandoffCase)
    for path in (f"/staff/cases/{case.id}", f"/staff/cases/{case.id}/transcript.part", "/staff/", "/staff/queue.part"):
        response = sari.get(path)
        page = response.get_data(as_text=True)
        assert "<script>alert" not in page and "<img src=x" not in page and "<b onmouseover" not in page
        assert 'href="javascript:' not in page
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    page = sari.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    assert "Lampiran: image/jpeg (javascript:alert(document.cookie))" in page
    forged = sari.get(f"/staff/cases/{case.id}?error=claimed_by_other&by=admin.+Masuk+lagi+di+evil.example").get_data(
        as_text=True
    )
    assert "evil.example" not in forged and "sudah diambil oleh -" in forged
    assert "Teks palsu" not in sari.get(f"/staff/cases/{case.id}?error=Teks+palsu").get_data(as_text=True)
    assert html.escape(payload, quote=False).replace('"', "&#34;").replace("'", "&#39;") in page
    assert "<script" not in page.replace('<script src="/static/console.js" defer></script>', "")


# -- queue and claims -------------------------------------------------------------------------


def test_queue_shows_urgent_first_with_waiting_time(app, sari, clock):
    say(app, "sambungkan ke admin", "SMq1", sender="whatsapp:+6281200000001", name="Ani")
    clock.advance(minutes=5)
    say(app, "tolong betis bengkak merah panas dan sesak napas", "SMq2", sender="whatsapp:+6281200000002", name="Citra")
    clock.advance(minutes=7)
    cases = sari.client.get("/staff/queue.part", base_url="https://localhost").get_data(as_text=True)
    assert cases.index("Citra") < cases.index("Ani")
    assert "DARURAT" in cases
    assert "menunggu 12 mnt" in cases and "menunggu 7 mnt" in cases
    assert "+62812****0001" in cases and "6281200000001" not in cases


def test_claim_moves_a_case_from_waiting_to_mine(app, sari):
    case_id = ask_for_staff(app)
    sari.get(f"/staff/cases/{case_id}")
    response = sari.post(f"/staff/cases/{case_id}/claim")
    assert response.status_code == 302
    page = sari.get(response.headers["Location"]).get_data(as_text=True)
    assert "Kasus diambil" in page and "Ditangani: <strong>sari</strong>" in page
    assert "Tidak ada kasus" in sari.get("/staff/queue.part?view=waiting").get_data(as_text=True)
    assert f"#{case_id}" in sari.get("/staff/queue.part?view=mine").get_data(as_text=True)


def test_concurrent_claims_have_exactly_one_winner(app):
    case_id = ask_for_staff(app)
    accounts = app.extensions["klinik_accounts"]
    names = [f"staf{n}" for n in range(6)]
    for name in names:
        accounts.add(name, PASSWORD)
    tokens = {name: accounts.issue_token(name) for name in names}
    start = threading.Barrier(len(names))
    results = {}

    def claim(name):
        start.wait()
        results[name] = api(app, "post", f"/cases/{case_id}/claim", tokens[name])

    threads = [threading.Thread(target=claim, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [name for name, response in results.items() if response.status_code == 200]
    assert len(winners) == 1
    (case,) = rows(app, HandoffCase)
    assert case.claimed_by == winners[0]
    for name, response in results.items():
        if name != winners[0]:
            assert response.status_code == 409
            assert response.json["error"] == "claimed_by_other" and response.json["by"] == winners[0]
            assert winners[0] in response.json["message"]


def test_a_case_claimed_by_someone_else_cannot_be_answered(app, sari):
    case_id = ask_for_staff(app)
    app.extensions["klinik_console"].claim(case_id, "budi")
    sari.get(f"/staff/cases/{case_id}")
    response = sari.post(f"/staff/cases/{case_id}/reply", {"text": "halo"})
    page = sari.get(response.headers["Location"]).get_data(as_text=True)
    assert "sudah diambil oleh budi" in page
    assert [m for m in rows(app, Message) if m.staff_name] == []


# -- replies, bookings, closing ---------------------------------------------------------------


def test_a_staff_reply_reaches_twilio_once_and_shows_its_delivery_status(app, sari, worker, recorder):
    case_id = ask_for_staff(app)
    sari.get(f"/staff/cases/{case_id}")
    sari.post(f"/staff/cases/{case_id}/reply", {"text": "Halo Budi, saya Sari dari klinik. Ada yang bisa dibantu?"})
    assert "belum terkirim" in sari.get(f"/staff/cases/{case_id}/transcript.part").get_data(as_text=True)
    assert worker.run_once() == 1
    assert worker.run_once() == 0
    (sent,) = recorder.messages()
    assert (sent["To"], sent["Body"]) == (PATIENT, "Halo Budi, saya Sari dari klinik. Ada yang bisa dibantu?")
    (item,) = rows(app, OutboxItem)
    callback = {"MessageSid": item.channel_message_id, "MessageStatus": "delivered"}
    assert signed_post(app.test_client(), f"/webhook/status?outbox={item.id}", callback).status_code == 204
    transcript = sari.get(f"/staff/cases/{case_id}/transcript.part").get_data(as_text=True)
    assert "Staf · sari" in transcript and "sampai" in transcript
    (message,) = [m for m in rows(app, Message) if m.staff_name]
    assert (message.status, message.channel_message_id) == ("delivered", item.channel_message_id)
    # The patient's answer appears in the same transcript; the bot only acknowledges it.
    (acknowledged,) = say(app, "baik kak, terima kasih", "SMafter")
    assert "Staf klinik akan membalas" in acknowledged
    assert "baik kak, terima kasih" in sari.get(f"/staff/cases/{case_id}/transcript.part").get_data(as_text=True)


def test_confirming_a_booking_tells_the_patient(app, sari, worker, recorder):
    book(app)
    (case,) = rows(app, HandoffCase)
    page = sari.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    assert (
        "Budi" in page
        and "betis kanan kedutan terus sudah seminggu" in page
        and "Kamis, 26 November 2026 pukul 15.00" in page
    )
    sari.post(f"/staff/cases/{case.id}/booking", {"decision": "confirm", "note": "Bawa celana pendek ya"})
    (booking,) = rows(app, Booking)
    assert (booking.status, booking.decided_by) == ("confirmed", "sari")
    worker.run_once()
    (sent,) = recorder.messages()
    assert "sudah dikonfirmasi" in sent["Body"] and "Kamis, 26 November 2026 pukul 15.00" in sent["Body"]
    assert "Catatan dari staf: Bawa celana pendek ya" in sent["Body"]
    assert "dikonfirmasi (sari)" in sari.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    again = api(
        app,
        "post",
        f"/cases/{case.id}/booking",
        app.extensions["klinik_accounts"].issue_token("sari"),
        {"decision": "reject"},
    )
    assert again.status_code == 409 and again.json["error"] == "booking_decided"


def test_staff_cancel_a_confirmed_booking_its_places_go_back_and_the_patient_is_told(app, sari, worker, recorder):
    book(app)
    (case,) = rows(app, HandoffCase)
    sari.post(f"/staff/cases/{case.id}/booking", {"decision": "confirm"})
    assert len(rows(app, BookingPlace)) == 2  # an hour of acupuncture: two half-hour slots
    page = sari.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    assert 'id="cancel-booking"' in page and 'id="confirm-booking"' not in page
    response = sari.post(f"/staff/cases/{case.id}/booking", {"decision": "cancel", "note": "terapis sakit"})
    assert "notice=booking_cancelled" in response.headers["Location"]
    (booking,) = rows(app, Booking)
    assert (booking.status, booking.decided_by) == ("cancelled", "sari") and rows(app, BookingPlace) == []
    worker.run_once()
    cancelled = recorder.messages()[-1]["Body"]
    assert "dibatalkan oleh klinik" in cancelled and "Kamis, 26 November 2026 pukul 15.00" in cancelled
    assert "Catatan dari staf: terapis sakit" in cancelled
    again = api(
        app,
        "post",
        f"/cases/{case.id}/booking",
        app.extensions["klinik_accounts"].issue_token("sari"),
        {"decision": "cancel"},
    )
    assert again.status_code == 409 and again.json["error"] == "booking_decided"


def test_a_booking_decision_must_be_explicit_and_decided_before_closing(app, sari):
    book(app)
    (case,) = rows(app, HandoffCase)
    sari.get(f"/staff/cases/{case.id}")
    response = sari.post(f"/staff/cases/{case.id}/booking", {"note": "dokter cuti"})  # e.g. Enter in the note
    assert "error=bad_decision" in response.headers["Location"]
    closing = sari.post(f"/staff/cases/{case.id}/close")
    assert "error=booking_undecided" in closing.headers["Location"]
    assert (rows(app, Booking)[0].status, rows(app, HandoffCase)[0].status) == ("held", "open")


def test_after_24_hours_a_booking_is_still_decided_and_staff_told_the_patient_was_not(
    app, sari, worker, recorder, clock
):
    book(app)
    (case,) = rows(app, HandoffCase)
    clock.advance(hours=25)
    sari.get(f"/staff/cases/{case.id}")
    response = sari.post(f"/staff/cases/{case.id}/booking", {"decision": "confirm"})
    assert "notice=booking_confirmed_silent" in response.headers["Location"]
    assert "TIDAK diberi tahu" in sari.get(response.headers["Location"]).get_data(as_text=True)
    assert rows(app, Booking)[0].status == "confirmed"
    worker.run_once()
    assert recorder.messages() == []
    assert "notice=closed" in sari.post(f"/staff/cases/{case.id}/close").headers["Location"]


def test_a_case_claimed_by_someone_else_cannot_be_closed(app, sari):
    case_id = ask_for_staff(app)
    app.extensions["klinik_console"].claim(case_id, "budi")
    sari.get(f"/staff/cases/{case_id}")
    assert "error=claimed_by_other" in sari.post(f"/staff/cases/{case_id}/close").headers["Location"]
    assert rows(app, HandoffCase)[0].status == "open"


def test_rejecting_a_booking_tells_the_patient(app, sari, worker, recorder):
    book(app)
    (case,) = rows(app, HandoffCase)
    sari.get(f"/staff/cases/{case.id}")
    sari.post(f"/staff/cases/{case.id}/booking", {"decision": "reject"})
    assert rows(app, Booking)[0].status == "rejected"
    worker.run_once()
    assert "belum bisa kami terima" in recorder.messages()[0]["Body"]


def test_closing_a_case_lets_the_bot_answer_again(app, sari):
    case_id = ask_for_staff(app)
    (waits,) = say(app, "kenapa betis kedutan", "SMpaused")
    assert "teruskan juga ke staf" in waits and "elektrolit" not in waits
    sari.get(f"/staff/cases/{case_id}")
    sari.post(f"/staff/cases/{case_id}/close")
    (case,) = rows(app, HandoffCase)
    assert (case.status, case.claimed_by) == ("closed", "sari")
    assert "Kasus ini sudah ditutup" in sari.get(f"/staff/cases/{case_id}").get_data(as_text=True)
    assert "elektrolit" in " ".join(say(app, "kenapa betis kedutan", "SMresumed"))
    assert rows(app, Message, Message.channel_message_id == "SMresumed")[0].intent == "causes"


def test_after_24_hours_free_form_replies_are_refused_and_the_template_offered(database_url, recorder, kb_copy, clock):
    config = app_config(database_url, twilio_api_base_url=recorder.url, secret_key="k", knowledge_dir=kb_copy,
                        patient_reply_template_id="HX0123456789abcdef0123456789abcdef")  # fmt: skip
    app = create_app(config)
    app.extensions["klinik_inbox"].clock = clock
    app.extensions["klinik_console"].clock = clock
    app.extensions["klinik_accounts"].add("sari", PASSWORD)
    sari = StaffBrowser(app)
    sari.login()
    case_id = ask_for_staff(app)
    clock.advance(hours=25)
    page = sari.get(f"/staff/cases/{case_id}").get_data(as_text=True)
    assert "lebih dari 24 jam" in page and 'id="send-template"' in page and 'name="text"' not in page
    refused = sari.post(f"/staff/cases/{case_id}/reply", {"text": "halo"})
    assert "error=window_closed" in refused.headers["Location"]
    sari.post(f"/staff/cases/{case_id}/template")
    make_worker(config, app, clock).run_once()
    (sent,) = recorder.messages()
    assert sent["ContentSid"] == "HX0123456789abcdef0123456789abcdef"
    assert yaml.safe_load(sent["ContentVariables"]) == {"1": "Budi"}
    app.extensions["klinik_database"].dispose()


# -- the JSON API -----------------------------------------------------------------------------


def test_api_covers_the_whole_case(app, worker, recorder):
    book(app)
    token = app.extensions["klinik_accounts"].issue_token("sari")
    (listed,) = api(app, "get", "/cases?status=waiting", token).json["cases"]
    assert listed["reason"] == "booking" and listed["booking"]["status"] == "held"
    assert listed["patient"] == {
        "name": "Budi",
        "number": "+62812****7890",
        "last_message_at": "2026-11-25T03:00:00+00:00",
    }
    case_id = listed["id"]
    detail = api(app, "get", f"/cases/{case_id}", token).json
    assert [m["sender"] for m in detail["messages"]][:2] == ["patient", "bot"]
    assert api(app, "post", f"/cases/{case_id}/claim", token).json["claimed_by"] == "sari"
    assert api(app, "get", "/cases?status=mine", token).json["cases"][0]["id"] == case_id
    assert api(app, "post", f"/cases/{case_id}/reply", token, {"text": "  "}).json["error"] == "empty"
    assert api(app, "post", f"/cases/{case_id}/reply", token, {"text": "Siap, kami cek jadwalnya"}).status_code == 201
    decided = api(app, "post", f"/cases/{case_id}/booking", token, {"decision": "confirm"})
    assert decided.json["case"]["booking"]["status"] == "confirmed"
    closed = api(app, "post", f"/cases/{case_id}/close", token)
    assert closed.json["status"] == "closed"
    assert api(app, "post", f"/cases/{case_id}/close", token).status_code == 409
    assert api(app, "get", "/cases/999", token).status_code == 404
    assert api(app, "get", "/cases?status=bogus", token).status_code == 400
    worker.run_once()
    # The reply, the confirmation, and on closing the satisfaction question about staff's help.
    assert [m["Body"][:12] for m in recorder.messages()] == ["Siap, kami c", "Janji temu A", "Percakapan A"]


# -- teaching the bot -------------------------------------------------------------------------


def test_unanswered_messages_are_grouped_and_learning_one_teaches_the_bot(app, sari, config):
    say(app, "rajin pilates ngaruh ga", "SMu1", sender="whatsapp:+6281300000001")
    say(app, "kalo rajin pilates ngaruh ga", "SMu2", sender="whatsapp:+6281300000002")
    say(app, "jual pulsa murah", "SMu3", sender="whatsapp:+6281300000003")
    groups = app.extensions["klinik_teacher"].unanswered()
    assert [g["size"] for g in groups] == [2, 1]
    page = sari.get("/staff/unanswered").get_data(as_text=True)
    assert "2 pesan serupa" in page and "jual pulsa murah" in page
    swim = rows(app, Message, Message.channel_message_id == "SMu1")[0]
    response = sari.post(f"/staff/unanswered/{swim.id}", {"action": "learn", "intent": "prevention"})
    assert "notice=learned" in response.headers["Location"]
    assert [(t.intent, t.text, t.by, t.message_id) for t in rows(app, LearnedExample)] == [
        ("prevention", "rajin pilates ngaruh ga", "sari", swim.id)
    ]
    # Reloaded without a restart: the same question is now answered.
    replies = say(app, "rajin pilates ngaruh ga", "SMu4", sender="whatsapp:+6281300000004")
    assert rows(app, Message, Message.channel_message_id == "SMu4")[0].intent == "prevention"
    assert replies
    pulsa = rows(app, Message, Message.channel_message_id == "SMu3")[0]
    sari.post(f"/staff/unanswered/{pulsa.id}", {"action": "dismiss"})
    remaining = [m["text"] for g in app.extensions["klinik_teacher"].unanswered() for m in g["messages"]]
    assert remaining == ["kalo rajin pilates ngaruh ga"]
    assert [(r.outcome, r.intent, r.by) for r in rows(app, Review)] == [
        ("learned", "prevention", "sari"),
        ("dismissed", None, "sari"),
    ]
    again = sari.post(f"/staff/unanswered/{pulsa.id}", {"action": "dismiss"})
    assert "learn_already_reviewed" in again.headers["Location"]


def test_an_example_that_is_another_topics_example_is_refused_and_nothing_changes(app, sari):
    """An out-of-scope example of the knowledge base (which the bot rightly falls back on)
    cannot be taught as a topic: the matcher would then have one phrasing in two intents."""
    out_of_scope = app.extensions["klinik_engine"].current().kb.intents["fallback"].examples[0].text
    say(app, out_of_scope, "SMoos")
    message = rows(app, Message, Message.channel_message_id == "SMoos")[0]
    assert message.decision == "fallback"
    response = sari.post(f"/staff/unanswered/{message.id}", {"action": "learn", "intent": "prevention"})
    assert "learn_invalid" in response.headers["Location"]
    assert "contoh topik lain" in sari.get(response.headers["Location"]).get_data(as_text=True)
    assert rows(app, Review) == [] and rows(app, LearnedExample) == []
    assert "notice=dismissed" in sari.post(f"/staff/unanswered/{message.id}", {"action": "dismiss"}).headers["Location"]


def test_taught_examples_reach_every_worker_and_a_fresh_deploy(app, sari, config, kb_copy, tmp_path):
    """Kept in the database, not on one server's disk: another app (a second gunicorn worker,
    or a deploy on a fresh disk with a fresh checkout of knowledge/) answers with them too."""
    import shutil

    say(app, "rajin pilates ngaruh ga", "SMy1")
    swim = rows(app, Message, Message.channel_message_id == "SMy1")[0]
    sari.post(f"/staff/unanswered/{swim.id}", {"action": "learn", "intent": "prevention"})
    fresh = tmp_path / "deploy" / "knowledge"
    shutil.copytree(kb_copy, fresh)
    other = create_app(app_config(config.database_url, knowledge_dir=fresh, knowledge_reload_seconds=0))
    try:
        say(other, "rajin pilates ngaruh ga", "SMy2", sender="whatsapp:+6281300000009")
        assert rows(other, Message, Message.channel_message_id == "SMy2")[0].intent == "prevention"
    finally:
        other.extensions["klinik_database"].dispose()


def test_erasing_a_patient_removes_what_staff_taught_from_their_messages(app, sari):
    say(app, "rajin pilates ngaruh ga", "SMe1")
    swim = rows(app, Message, Message.channel_message_id == "SMe1")[0]
    sari.post(f"/staff/unanswered/{swim.id}", {"action": "learn", "intent": "prevention"})
    assert say(app, "rajin pilates ngaruh ga", "SMe2", sender="whatsapp:+6281300000008")
    assert rows(app, Message, Message.channel_message_id == "SMe2")[0].intent == "prevention"
    from bot.services import privacy

    with app.extensions["klinik_sessions"]() as session:
        exported = privacy.export(session, session.get(Conversation, swim.conversation_id))
    assert [(t["text"], t["intent"]) for t in exported["taught_examples"]] == [
        ("rajin pilates ngaruh ga", "prevention")
    ]
    say(app, "hapus data saya", "SMe3")
    say(app, "ya hapus", "SMe4")
    assert rows(app, LearnedExample) == []
    say(app, "rajin pilates ngaruh ga", "SMe5", sender="whatsapp:+6281300000007")
    assert rows(app, Message, Message.channel_message_id == "SMe5")[0].intent != "prevention"


def test_only_unanswered_messages_can_be_reviewed(app):
    say(app, "kenapa betis kedutan", "SManswered")
    answered = rows(app, Message, Message.channel_message_id == "SManswered")[0]
    token = app.extensions["klinik_accounts"].issue_token("sari")
    response = api(app, "post", f"/unanswered/{answered.id}/learn", token, {"intent": "prevention"})
    assert response.status_code == 404
    assert api(app, "post", f"/unanswered/{answered.id}/dismiss", token).status_code == 404


def test_a_clarify_settled_by_picking_an_option_is_not_unanswered(app):
    teacher = app.extensions["klinik_teacher"]
    engine = app.extensions["klinik_engine"].current()
    unclear = "yoga tiap pagi ngaruh ga ke betis"
    assert engine.matcher.match(unclear).decision.value == "clarify"
    say(app, unclear, "SMc1")
    assert len(teacher.unanswered()) == 1
    say(app, "1", "SMc2")
    assert teacher.unanswered() == []


def test_a_broken_knowledge_file_while_running_keeps_the_old_one_serving(app, config, sari):
    (config.knowledge_dir / "intents" / "calf.yaml").write_text("- id: [broken\n", encoding="utf-8")
    assert say(app, "betis pegal linu setelah jalan jauh", "SMkb1")
    assert (
        rows(app, Message, Message.channel_message_id == "SMkb1")[0].intent == "calf_pain"
    )  # an intent of the broken file
    ready = app.test_client().get("/readyz").json
    assert ready["status"] == "ready" and "invalid" in ready["knowledge"]
    page = sari.get("/staff/unanswered").get_data(as_text=True)
    assert "calf.yaml" in page and "versi sebelumnya" in page


# -- the command line -------------------------------------------------------------------------


def test_staff_accounts_and_tokens_from_the_command_line(database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    out = io.StringIO()
    args = type("Args", (), {"staff_command": "add", "name": "dewi"})
    assert cmd_staff(args, out=out, read_password=lambda prompt: "rahasia-panjang-1") == 0
    args.staff_command = "token"
    cmd_staff(args, out=out)
    token = out.getvalue().strip().splitlines()[-1]
    app = create_app(app_config(database_url, secret_key="k"))
    assert api(app, "get", "/cases", token).status_code == 200
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from bot.store.storage import ApiToken, StaffUser

    with Session(app.extensions["klinik_database"]) as session:
        user = session.execute(select(StaffUser)).scalar_one()
        stored = session.execute(select(ApiToken.token_hash)).scalar_one()
    assert user.password_hash.startswith("scrypt:") and "rahasia" not in user.password_hash
    assert token not in stored
    accounts = Accounts(app.extensions["klinik_sessions"])
    assert accounts.login("dewi", "rahasia-panjang-1", "127.0.0.1").name == "dewi"
    args.staff_command = "disable"
    cmd_staff(args, out=out)
    assert api(app, "get", "/cases", token).status_code == 401
    assert accounts.login("dewi", "rahasia-panjang-1", "127.0.0.1").name is None
    app.extensions["klinik_database"].dispose()


def test_a_staff_reply_lapses_a_pending_erase_question(app, sari):
    """A patient asked to erase, then staff wrote: the patient's "ya" answers staff, it erases nothing."""
    case_id = ask_for_staff(app)
    say(app, "hapus data saya", "SMerase-ask")
    sari.get(f"/staff/cases/{case_id}")
    sari.post(f"/staff/cases/{case_id}/reply", {"text": "Halo Budi, bisa saya bantu jadwalkan?"})
    replies = say(app, "ya", "SMerase-ya")  # an answer to staff: at most "staff will reply"
    assert not any("dihapus" in reply for reply in replies)
    assert len(rows(app, Message, Message.direction == "in")) == 3  # nothing erased
    assert rows(app, HandoffCase)[0].status == "open"


def test_a_taught_example_goes_with_its_message_at_the_end_of_retention(app, sari, clock):
    from bot.services import privacy

    say(app, "rajin pilates ngaruh ga", "SMr1")
    swim = rows(app, Message, Message.channel_message_id == "SMr1")[0]
    sari.post(f"/staff/unanswered/{swim.id}", {"action": "learn", "intent": "prevention"})
    assert len(rows(app, LearnedExample)) == 1
    privacy.purge(app.extensions["klinik_sessions"], clock() + timedelta(days=1), clock())
    assert rows(app, Message, Message.channel_message_id == "SMr1") == [] and rows(app, LearnedExample) == []


def test_the_same_words_taught_for_two_topics_at_once_keep_only_the_first(app, sari):
    """Each worker checks against what is stored, not what it loaded: the second is refused."""
    say(app, "rajin pilates ngaruh ga", "SMc1", sender="whatsapp:+6281300000001")
    say(app, "rajin pilates ngaruh ga", "SMc2", sender="whatsapp:+6281300000002")
    first, second = (rows(app, Message, Message.channel_message_id == sid)[0] for sid in ("SMc1", "SMc2"))
    teacher = app.extensions["klinik_teacher"]
    teacher.engines.refresh = lambda: False  # this worker has not reloaded yet
    teacher.learn(first.id, "prevention", "sari")
    with pytest.raises(LearningError) as refused:
        teacher.learn(second.id, "causes", "budi")
    assert refused.value.code == "invalid"
    assert [(t.intent, t.by) for t in rows(app, LearnedExample)] == [("prevention", "sari")]
