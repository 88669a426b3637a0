"""Handoff to staff end to end: cases, booking requests, the pause, and staff alerts sent by the
real twilio client to a local recorder that can fail on demand; on SQLite and PostgreSQL."""

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from conftest import app_config, signed_post
from helpers import PATIENT, book, make_worker, rows, say

from bot.channels.twilio.sender import TwilioSender
from bot.services.handoff import close_case, sweep_expired_bookings
from bot.store.storage import Booking, Conversation, HandoffCase, Message, OutboxItem
from bot.web import create_app

STAFF = ("whatsapp:+6281100000001", "whatsapp:+6281100000002")


@pytest.fixture
def setup(database_url, recorder, clock):
    """The app (with the inbox on our clock) and a worker sending to the recorder."""
    config = app_config(database_url, staff_whatsapp_numbers=STAFF, twilio_api_base_url=recorder.url)
    app = create_app(config)
    inbox = app.extensions["klinik_inbox"]
    inbox.clock = clock
    worker = make_worker(config, app, clock)
    yield app, worker
    app.extensions["klinik_database"].dispose()


# -- cases and alerts -------------------------------------------------------------------------


def test_staff_hear_when_the_patient_cancels_the_appointment(setup, recorder):
    """Regression (issue 18): "batal janji" freed the places but told no one; staff waited on a
    case for a booking that was gone."""
    app, worker = setup
    book(app)
    worker.run_once()
    assert len(recorder.messages()) == len(STAFF)  # the request's alerts
    reply = " ".join(say(app, "batal janji", "SMcancel1"))
    assert "sudah dibatalkan" in reply
    (booking,) = rows(app, Booking)
    (case,) = rows(app, HandoffCase)
    assert booking.status == "cancelled"
    worker.run_once()
    cancelled = recorder.messages()[len(STAFF) :]
    assert sorted(m["To"] for m in cancelled) == sorted(STAFF)
    for message in cancelled:
        assert f"Kasus #{case.id}: Janji temu dibatalkan pasien" in message["Body"]
        assert "Kamis, 26 November 2026 pukul 15.00: tempatnya sudah dibuka lagi" in message["Body"]
        assert "+62812****7890" in message["Body"] and PATIENT.removeprefix("whatsapp:") not in message["Body"]
        assert f"/staff/cases/{case.id}" in message["Body"]


def test_a_confirmed_booking_becomes_a_request_a_case_and_one_alert_per_staff_member(setup, recorder):
    app, worker = setup
    reply = book(app)
    assert "terkirim" in reply[-1] and "mengonfirmasi" in reply[-1]
    (booking,) = rows(app, Booking)
    assert (booking.name, booking.status) == ("Budi", "held")
    assert booking.start_at == datetime(2026, 11, 26, 8, 0, tzinfo=UTC)  # 15:00 in Jakarta
    (case,) = rows(app, HandoffCase)
    assert (case.reason, case.status, case.booking_id, case.alert_status) == ("booking", "open", booking.id, "pending")
    assert "+62812****7890" in case.summary

    assert worker.run_once() == 2
    sent = recorder.messages()
    assert sorted(m["To"] for m in sent) == sorted(STAFF)
    for message in sent:
        assert message["From"] == "whatsapp:+14155238886"
        assert "Kasus #1: Permintaan janji" in message["Body"]
        assert "Budi (+62812****7890)" in message["Body"]
        assert "Kamis, 26 November 2026 pukul 15.00" in message["Body"]
        assert message["StatusCallback"].startswith("https://klinik.example/webhook/status?outbox=")
        assert "6281234567890" not in message["Body"]
    assert rows(app, HandoffCase)[0].alert_status == "sent"
    assert worker.run_once() == 0
    assert len(recorder.messages()) == 2  # exactly once


def test_alerts_use_the_content_template_when_configured(database_url, recorder, clock):
    config = app_config(
        database_url,
        staff_whatsapp_numbers=STAFF[:1],
        twilio_api_base_url=recorder.url,
        staff_alert_template_id="HX0123456789abcdef",
    )
    app = create_app(config)
    app.extensions["klinik_inbox"].clock = clock
    say(app, "saya mau bicara dengan admin", "SMtpl1")
    make_worker(config, app, clock).run_once()
    (message,) = recorder.messages()
    assert message["ContentSid"] == "HX0123456789abcdef"
    assert "Body" not in message
    variables = json.loads(message["ContentVariables"])
    assert variables["1"] == "1" and variables["2"] == "Pasien ingin bicara dengan staf"
    assert not any("\n" in value or "    " in value for value in variables.values())
    assert variables["5"] == "https://klinik.example/staff/cases/1"
    app.extensions["klinik_database"].dispose()


@pytest.mark.parametrize(
    "text, reason", [("tolong sambungkan ke admin", "human_agent"), ("dada saya nyeri sekali", "urgent")]
)
def test_each_handoff_reason_opens_a_case(setup, recorder, text, reason):
    app, worker = setup
    say(app, text, "SMreason")
    (case,) = rows(app, HandoffCase)
    assert case.reason == reason
    worker.run_once()
    assert len(recorder.messages()) == 2


def test_two_misses_in_a_row_open_a_human_agent_case(setup):
    app, _ = setup
    say(app, "jual kuota internet?", "SMmiss1")
    say(app, "harga emas hari ini", "SMmiss2")
    (case,) = rows(app, HandoffCase)
    assert case.reason == "human_agent"
    assert "harga emas" in case.summary


def test_duplicate_deliveries_never_make_a_second_case_or_alert(setup, recorder):
    app, worker = setup
    book(app)
    # Twilio retries the confirming message, once in sequence and eight times at once.
    say(app, "ya", "SMbook4")
    start = threading.Barrier(8)

    def retry():
        start.wait()
        say(app, "ya", "SMbook4")

    threads = [threading.Thread(target=retry) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(rows(app, HandoffCase)) == 1 and len(rows(app, Booking)) == 1
    assert len(rows(app, OutboxItem)) == 2
    worker.run_once()
    assert len(recorder.messages()) == 2


# -- the pause --------------------------------------------------------------------------------


def test_while_a_case_is_open_the_bot_answers_what_it_may_and_resumes_when_it_closes(setup, recorder, clock):
    """Who has the chat is the case's status: while it is open, practical questions and thanks
    are answered, health questions wait for staff and each is acknowledged (never silence), and
    an emergency is answered and alerts staff again."""
    app, worker = setup
    say(app, "bisa chat sama admin?", "SMp1")
    (hello,) = say(app, "halo?", "SMp2")
    assert "Staf klinik akan membalas" in hello
    (address,) = say(app, "alamatnya di mana ya?", "SMp2a")
    assert "Jl." in address and "tetap akan membalas" in address
    (waits,) = say(app, "kenapa betis kedutan", "SMp3")  # the handover said staff will reply
    assert "teruskan juga ke staf" in waits and "elektrolit" not in waits
    clock.advance(minutes=5)
    case_id = rows(app, HandoffCase)[0].id
    console = app.extensions["klinik_console"]
    console.clock = clock
    console.reply(case_id, "sari", "Halo, saya Sari dari klinik")
    clock.advance(minutes=5)
    (holding,) = say(app, "kalau kopi ngaruh ga?", "SMp3a")
    assert "sudah kami terima" in holding
    (again,) = say(app, "kalau teh?", "SMp3b")
    assert "teruskan juga ke staf" in again
    assert len(rows(app, Message, Message.direction == "in")) == 6  # every one stored, for staff to read
    urgent = say(app, "tolong kaki saya tiba2 lumpuh", "SMp4")
    assert "119" in urgent[0]
    (case,) = rows(app, HandoffCase)
    assert case.reason == "urgent" and "triage: paralysis" in case.summary  # escalated, staff told why
    again = say(app, "tolong kaki saya masih lumpuh", "SMp4b")
    assert "119" in again[0]
    assert len([i for i in rows(app, OutboxItem) if i.kind == "staff_alert"]) == 6  # every emergency alerts
    worker.run_once()
    assert sum("DARURAT" in m["Body"] for m in recorder.messages()) == 4

    assert close_case(app.extensions["klinik_sessions"], case.id, clock(), by="staf")
    assert not close_case(app.extensions["klinik_sessions"], case.id, clock())
    answer = say(app, "kenapa betis kedutan", "SMp5")
    assert answer and "elektrolit" in answer[-1]


def test_on_a_sunday_two_misses_open_a_case_and_the_bot_keeps_answering(setup, clock):
    """Never silent: on a Sunday (closed until Monday) two messages the bot cannot place open
    a case, and the address and thanks are still answered, with when staff are back."""
    app, _ = setup
    clock.now = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)  # Sunday 11:00 in Jakarta
    say(app, "jual kuota internet?", "SMsun1")
    handed = say(app, "harga emas hari ini brp", "SMsun2")
    assert "Senin, 30 November 2026 pukul 09.00" in handed[-1]
    (case,) = rows(app, HandoffCase)
    assert (case.reason, case.status) == ("human_agent", "open")
    (address,) = say(app, "alamatnya di mana?", "SMsun3")
    assert "Jl." in address and "tetap akan membalas" in address
    (thanks,) = say(app, "makasih kak", "SMsun4")
    assert "Staf klinik akan membalas" in thanks and "Senin, 30 November 2026 pukul 09.00" in thanks


def test_the_first_message_after_a_handoff_out_of_hours_says_when_staff_answer(setup, clock):
    app, _ = setup
    clock.now = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)  # Saturday 15:00 in Jakarta: closed
    reply = say(app, "mau bicara dengan staf", "SMooh1")
    assert "Senin, 30 November 2026 pukul 09.00" in reply[-1]


# -- when Twilio fails ------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["drop", 503, 429, 500])
def test_alerts_survive_a_failing_api_and_arrive_once_it_recovers(setup, recorder, clock, how):
    app, worker = setup
    say(app, "sambungkan ke admin", "SMfail1")
    recorder.fail_next(4, how)  # both alerts fail twice
    worker.run_once()
    assert recorder.messages() == []
    items = rows(app, OutboxItem)
    assert [(i.status, i.attempts) for i in items] == [("pending", 1), ("pending", 1)]
    assert all(i.next_attempt_at == clock() + timedelta(seconds=2) for i in items)
    assert worker.run_once() == 0  # not due yet
    clock.advance(seconds=2)
    worker.run_once()
    assert recorder.messages() == []
    assert all(i.next_attempt_at == clock() + timedelta(seconds=4) for i in rows(app, OutboxItem))
    clock.advance(seconds=4)
    assert worker.run_once() == 2
    assert sorted(m["To"] for m in recorder.messages()) == sorted(STAFF)
    assert {(i.status, i.attempts) for i in rows(app, OutboxItem)} == {("sent", 3)}
    clock.advance(minutes=10)
    worker.run_once()
    assert len(recorder.messages()) == 2


def test_alerts_survive_a_slow_api_and_arrive_later(setup, recorder, clock, database_url):
    """Twilio too slow to answer within the client's timeout: retried with backoff, then sent."""
    app, worker = setup
    worker.sender = TwilioSender(app_config(database_url, twilio_api_base_url=recorder.url), timeout=0.3)
    say(app, "sambungkan ke admin", "SMslow1")
    recorder.fail_next(2, "slow")
    worker.run_once()
    items = rows(app, OutboxItem)
    assert [(i.status, i.attempts) for i in items] == [("pending", 1), ("pending", 1)]
    assert all("timed out" in (i.last_error or "").lower() or "timeout" in (i.last_error or "").lower() for i in items)
    clock.advance(seconds=2)
    assert worker.run_once() == 2
    assert sorted(m["To"] for m in recorder.messages()) == sorted(STAFF)
    assert {i.status for i in rows(app, OutboxItem)} == {"sent"}


def test_an_alert_that_keeps_failing_is_given_up_visibly(setup, recorder, clock):
    app, worker = setup
    say(app, "sambungkan ke admin", "SMgiveup")
    recorder.fail_next(100, 503)
    for _ in range(6):
        worker.run_once()
        clock.advance(minutes=10)
    items = rows(app, OutboxItem)
    assert {(i.status, i.attempts) for i in items} == {("failed", 5)}
    assert "503" in items[0].last_error
    assert rows(app, HandoffCase)[0].alert_status == "failed"


def test_a_refused_message_is_not_retried(setup, recorder):
    app, worker = setup
    say(app, "sambungkan ke admin", "SMrefused")
    recorder.fail_next(2, 400)
    worker.run_once()
    assert {(i.status, i.attempts) for i in rows(app, OutboxItem)} == {("failed", 1)}
    assert rows(app, HandoffCase)[0].alert_status == "failed"


def test_a_crash_between_storing_and_sending_loses_nothing(database_url, recorder, clock):
    """The app stores the case and its alerts, then every process dies before sending.
    A worker started later (new engine, new sessions) sends them."""
    config = app_config(database_url, staff_whatsapp_numbers=STAFF, twilio_api_base_url=recorder.url)
    app = create_app(config)
    app.extensions["klinik_inbox"].clock = clock
    say(app, "sambungkan ke admin", "SMcrash")
    app.extensions["klinik_database"].dispose()
    del app

    later = create_app(config)
    make_worker(config, later, clock).run_once()
    assert sorted(m["To"] for m in recorder.messages()) == sorted(STAFF)
    later.extensions["klinik_database"].dispose()


def test_a_worker_killed_mid_send_is_taken_over_after_its_lease(setup, recorder, clock):
    """At-least-once: a claimed item whose worker died is sent by another once the lease ends."""
    app, worker = setup
    say(app, "sambungkan ke admin", "SMlease")
    claimed = [worker._claim(), worker._claim()]  # claimed, then the process dies before sending
    assert all(claimed) and worker._claim() is None
    other = make_worker(app.extensions["klinik_config"], app, clock)
    assert other.run_once() == 0  # still leased
    clock.advance(seconds=61)
    assert other.run_once() == 2
    assert len(recorder.messages()) == 2
    # The first worker wakes up late: its results are refused, nothing moves backwards.
    item_id, token = claimed[0][:2]
    worker._failed(item_id, token, "late", retryable=True)
    worker._sent(item_id, token, "SMlate", "queued")
    item = rows(app, OutboxItem, OutboxItem.id == item_id)[0]
    assert item.status == "sent" and item.channel_message_id != "SMlate"


def test_a_failed_delivery_report_marks_the_alert_failed(setup, recorder):
    """Twilio accepted the alerts, then reports both undelivered (staff outside the 24 h window)."""
    app, worker = setup
    say(app, "sambungkan ke admin", "SMundelivered")
    worker.run_once()
    assert rows(app, HandoffCase)[0].alert_status == "sent"
    for item in rows(app, OutboxItem):
        form = {"MessageSid": item.channel_message_id, "MessageStatus": "undelivered", "ErrorCode": "63016"}
        signed_post(app.test_client(), f"/webhook/status?outbox={item.id}", form)
    assert rows(app, HandoffCase)[0].alert_status == "failed"
    assert {i.error_code for i in rows(app, OutboxItem)} == {"63016"}


def test_delivery_status_of_an_alert_is_recorded(setup, recorder):
    app, worker = setup
    say(app, "sambungkan ke admin", "SMstatus")
    worker.run_once()
    item = rows(app, OutboxItem)[0]
    path = f"/webhook/status?outbox={item.id}"
    response = signed_post(
        app.test_client(), path, {"MessageSid": item.channel_message_id, "MessageStatus": "delivered"}
    )
    assert response.status_code == 204
    assert rows(app, OutboxItem, OutboxItem.id == item.id)[0].delivery_status == "delivered"


# -- expiry -----------------------------------------------------------------------------------


def test_an_abandoned_booking_is_swept_away(setup, clock):
    app, _ = setup
    say(app, "mau booking", "SMexp1")
    (conversation,) = rows(app, Conversation)
    assert conversation.state["booking"]["step"] == "name_confirm"
    assert conversation.booking_expires_at == clock() + timedelta(hours=2)
    sessions = app.extensions["klinik_sessions"]
    assert sweep_expired_bookings(sessions, clock() + timedelta(hours=1)) == 0
    assert sweep_expired_bookings(sessions, clock() + timedelta(hours=2, seconds=1)) == 1
    (conversation,) = rows(app, Conversation)
    assert conversation.state["booking"] is None and conversation.booking_expires_at is None
