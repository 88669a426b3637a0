"""Appointment reminders through the outbox, sent by the real twilio client to the local
recorder: the day before, once, none for cancelled or past appointments or after "stop"; as the
approved template with buttons (also outside the 24-hour window), or as text inside it; the
buttons' taps confirm, move or cancel the appointment; on SQLite and PostgreSQL."""

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from conftest import app_config, signed_post
from helpers import PASSWORD, PATIENT, StaffBrowser, book, make_worker, rows, say

from bot import channels
from bot.core.dates import JAKARTA
from bot.services.reminders import ReminderSettings, due_at, queue_reminders
from bot.store.storage import OUTBOUND, Booking, HandoffCase, Message, OutboxItem
from bot.web import create_app

SETTINGS = ReminderSettings(days_before=1, hour=10, template_id="HXreminder", rules=channels.delivery_rules())
TEXT_ONLY = ReminderSettings(days_before=1, hour=10, rules=channels.delivery_rules())
# The appointment book() makes: Thursday 26 November 2026, 15:00 in Jakarta.
DUE = datetime(2026, 11, 25, 10, 0, tzinfo=JAKARTA)


@pytest.fixture
def setup(database_url, recorder, clock):
    config = app_config(database_url, twilio_api_base_url=recorder.url, secret_key="test-secret-key")
    app = create_app(config)
    app.extensions["klinik_inbox"].clock = clock
    app.extensions["klinik_console"].clock = clock
    app.extensions["klinik_accounts"].add("sari", PASSWORD)
    yield app, config
    app.extensions["klinik_database"].dispose()


def _remind(app, now, settings=SETTINGS) -> int:
    kb = app.extensions["klinik_engine"].current().kb
    return queue_reminders(app.extensions["klinik_sessions"], kb, settings, now)


def tap(app, choice, title, sid):
    """The patient taps one of the reminder's buttons: WhatsApp sends its id and its title."""
    form = {"MessageSid": sid, "From": PATIENT, "Body": title, "ButtonPayload": choice, "ButtonText": title}
    response = signed_post(app.test_client(), "/webhook/whatsapp", form)
    assert response.status_code == 200, response.data
    return " ".join(m.text or "" for m in ET.fromstring(response.data).iter("Message"))


def test_the_reminder_is_due_the_day_before_at_the_hour(setup):
    assert due_at(datetime(2026, 11, 26, 15, 0, tzinfo=JAKARTA), SETTINGS) == DUE


def test_one_reminder_the_day_before_survives_a_restart_and_goes_once(setup, recorder, clock):
    app, config = setup
    book(app)
    assert _remind(app, DUE - timedelta(minutes=1), TEXT_ONLY) == 0  # not yet
    assert _remind(app, DUE, TEXT_ONLY) == 1
    assert _remind(app, DUE + timedelta(hours=1), TEXT_ONLY) == 0  # never a second one
    # The worker that queued it is gone; a new one (a restart) sends what is in the outbox.
    clock.now = DUE.astimezone(UTC)
    make_worker(config, app, clock).run_once()
    make_worker(config, app, clock).run_once()
    reminders = [m for m in recorder.messages() if "Pengingat" in m.get("Body", "")]
    assert len(reminders) == 1 and reminders[0]["To"] == PATIENT
    assert "janji temu atas nama *Budi* pada Kamis, 26 November 2026 pukul 15.00" in reminders[0]["Body"]
    assert "balas *hadir*" in reminders[0]["Body"]  # without buttons, it says what to type
    assert "ContentSid" not in reminders[0]  # no template: text, as the window is open


def test_no_reminder_for_a_cancelled_or_past_appointment(setup):
    app, _ = setup
    book(app)
    say(app, "batal janji", "SMcancel1")
    assert [b.status for b in rows(app, Booking)] == ["cancelled"]
    assert _remind(app, DUE) == 0
    assert _remind(app, datetime(2026, 11, 26, 16, 0, tzinfo=JAKARTA)) == 0
    assert rows(app, OutboxItem, OutboxItem.kind == "patient_message") == []


def test_no_reminder_after_stop_and_the_opt_out_is_kept(setup):
    app, _ = setup
    book(app)
    say(app, "STOP", "SMstop1")
    assert _remind(app, DUE) == 0
    (booking,) = rows(app, Booking)
    assert booking.reminded_at is not None  # decided once: not asked again every sweep
    assert rows(app, OutboxItem, OutboxItem.kind == "patient_message") == []


def test_outside_the_24_hour_window_the_template_goes(setup, recorder, clock):
    app, config = setup
    say(app, "mau booking akupuntur jumat depan jam 10", "SMw1")
    say(app, "ya", "SMw2")
    say(app, "betis kram", "SMw3")
    say(app, "ya", "SMw4")
    due = datetime(2026, 12, 3, 10, 0, tzinfo=JAKARTA)  # the appointment: Friday 4 December
    assert _remind(app, due) == 1
    (item,) = rows(app, OutboxItem, OutboxItem.kind == "patient_message")
    assert item.template_id == "HXreminder"
    assert item.content_variables == {"1": "Budi", "2": "Jumat, 4 Desember 2026 pukul 10.00"}
    clock.now = due.astimezone(UTC)
    make_worker(config, app, clock).run_once()
    (sent,) = [m for m in recorder.messages() if m.get("ContentSid")]
    assert sent["ContentSid"] == "HXreminder" and "Desember" in sent["ContentVariables"]


def test_a_reminder_whose_appointment_was_erased_never_goes(setup, recorder, clock):
    """Bad input (issue 18): the reminder is queued, then the patient erases their data before
    the worker sends it: the booking and the queued reminder are gone, nothing reaches them."""
    app, config = setup
    book(app)
    assert _remind(app, DUE) == 1
    say(app, "hapus data saya", "SMerase1")
    assert "sudah kami hapus" in " ".join(say(app, "ya hapus", "SMerase2"))
    assert rows(app, Booking) == [] and [o for o in rows(app, OutboxItem) if o.to_address == PATIENT] == []
    clock.now = DUE.astimezone(UTC)
    make_worker(config, app, clock).run_once()
    assert [m for m in recorder.messages() if "Pengingat" in m.get("Body", "")] == []
    assert _remind(app, DUE + timedelta(hours=1)) == 0


def test_without_a_template_no_reminder_goes_outside_the_window(setup):
    app, _ = setup
    say(app, "mau booking akupuntur jumat depan jam 10", "SMt1")
    say(app, "ya", "SMt2")
    say(app, "betis kram", "SMt3")
    say(app, "ya", "SMt4")  # 24 November: by 3 December the patient's window has closed
    assert _remind(app, datetime(2026, 12, 3, 10, 0, tzinfo=JAKARTA), TEXT_ONLY) == 0
    (booking,) = rows(app, Booking)
    assert booking.reminded_at is not None  # decided: skipped and logged, not tried every sweep
    assert rows(app, OutboxItem, OutboxItem.kind == "patient_message") == []


def test_with_a_template_the_reminder_has_buttons_inside_the_window_too(setup, recorder, clock):
    app, config = setup
    book(app)
    assert _remind(app, DUE) == 1
    clock.now = DUE.astimezone(UTC)
    make_worker(config, app, clock).run_once()
    (sent,) = [m for m in recorder.messages() if m.get("ContentSid")]
    assert sent["ContentSid"] == "HXreminder" and sent["To"] == PATIENT
    assert json.loads(sent["ContentVariables"]) == {"1": "Budi", "2": "Kamis, 26 November 2026 pukul 15.00"}
    # The transcript staff read shows the reminder's text.
    assert any("Pengingat" in m.body and "Budi" in m.body for m in rows(app, Message, Message.direction == OUTBOUND))


def _reminded(app, clock):
    """A booked patient (held: staff have the chat) who got the reminder."""
    book(app)
    assert _remind(app, DUE) == 1
    clock.now = DUE.astimezone(UTC) + timedelta(minutes=5)


def test_the_attend_button_records_that_the_patient_will_come(setup, clock):
    app, _ = setup
    _reminded(app, clock)
    reply = tap(app, "appointment:attend", "Ya, saya hadir", "SMtap1")
    assert "kehadiran Anda Kamis, 26 November 2026 pukul 15.00 sudah kami catat" in reply
    (booking,) = rows(app, Booking)
    assert booking.attending_at is not None and booking.status == "held"
    staff = StaffBrowser(app)
    staff.login()
    (case,) = rows(app, HandoffCase)
    page = staff.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    assert "pasien memastikan akan hadir" in page


def test_the_cancel_button_cancels_the_appointment_even_while_staff_have_the_chat(setup, clock):
    app, _ = setup
    _reminded(app, clock)
    reply = tap(app, "appointment:cancel", "Batalkan janji", "SMtap2")
    assert "Janji temu Kamis, 26 November 2026 pukul 15.00 sudah dibatalkan" in reply
    assert [b.status for b in rows(app, Booking)] == ["cancelled"]
    # The same button again, or any reminder button now: there is no appointment left.
    assert "Belum ada janji temu" in tap(app, "appointment:cancel", "Batalkan janji", "SMtap3")
    assert "Belum ada janji temu" in tap(app, "appointment:attend", "Ya, saya hadir", "SMtap4")
    assert [b.attending_at for b in rows(app, Booking)] == [None]


def test_the_move_button_asks_for_the_new_time_and_keeps_the_old_until_then(setup, clock):
    app, _ = setup
    _reminded(app, clock)
    reply = tap(app, "appointment:move", "Ganti jadwal", "SMtap5")
    assert "kita ganti jadwal janji Kamis, 26 November 2026 pukul 15.00" in reply
    assert [b.status for b in rows(app, Booking)] == ["held"]
    say(app, "jumat jam 10", "SMtap6")
    assert any("terkirim" in r for r in say(app, "ya", "SMtap7"))
    old, new = rows(app, Booking)
    assert (old.status, new.status) == ("cancelled", "held")
    assert new.start_at == datetime(2026, 11, 27, 10, 0, tzinfo=JAKARTA)


@pytest.mark.parametrize(
    ("typed", "attends"),
    [
        ("ya saya hadir", True),
        ("Hadir", True),
        ("konfirmasi janji besok", True),
        ("saya tidak bisa hadir", False),
        ("jadwal dokter hadir?", False),
        ("dokternya hadir hari apa aja ya", False),
    ],
)
def test_typed_attendance_is_read_like_the_button(setup, clock, typed, attends):
    app, _ = setup
    _reminded(app, clock)
    reply = " ".join(say(app, typed, "SMtyped1"))
    (booking,) = rows(app, Booking)
    assert (booking.attending_at is not None) is attends, reply
    assert ("sudah kami catat" in reply) is attends


def test_a_forged_or_unknown_reminder_button_changes_nothing(setup, clock):
    """Bad input: a reminder button whose id the bot never gave, from a patient with an
    appointment, is read as its text (staff have the chat: it waits for them)."""
    app, _ = setup
    _reminded(app, clock)
    tap(app, "appointment:delete_everything", "Hapus", "SMforged1")
    (booking,) = rows(app, Booking)
    assert booking.status == "held" and booking.attending_at is None


def test_a_reminder_not_yet_sent_is_withdrawn_when_the_patient_cancels(setup, recorder, clock):
    """The reminder is queued while Twilio is failing; the patient cancels before it goes: it
    never goes, and the transcript does not show it."""
    app, config = setup
    book(app)
    recorder.fail_next(1, 503)
    assert _remind(app, DUE) == 1
    clock.now = DUE.astimezone(UTC)
    make_worker(config, app, clock).run_once()  # the first attempt fails: it waits to be tried again
    (waiting,) = rows(app, OutboxItem, OutboxItem.template_id == "HXreminder")
    assert waiting.status == "pending" and waiting.attempts == 1
    say(app, "batal janji", "SMw1")
    assert rows(app, OutboxItem, OutboxItem.template_id == "HXreminder") == []
    assert not any("Pengingat" in m.body for m in rows(app, Message))
    clock.now += timedelta(hours=1)
    make_worker(config, app, clock).run_once()
    assert [m for m in recorder.messages() if m.get("ContentSid") == "HXreminder"] == []


def test_staff_moving_an_appointment_withdraws_the_unsent_reminder_and_a_new_one_goes(setup, recorder, clock):
    app, config = setup
    book(app)
    (case,) = rows(app, HandoffCase)
    sari = StaffBrowser(app)
    sari.login()
    sari.post(f"/staff/cases/{case.id}/booking", {"decision": "confirm"})
    assert _remind(app, DUE) == 1  # queued, not sent yet
    response = sari.post(f"/staff/cases/{case.id}/booking/move", {"day": "2026-11-27", "time": "10:00"})
    assert response.status_code in (200, 302), response.data
    (booking,) = rows(app, Booking)
    assert booking.start_at == datetime(2026, 11, 27, 10, 0, tzinfo=JAKARTA)
    assert rows(app, OutboxItem, OutboxItem.template_id == "HXreminder") == []
    assert _remind(app, datetime(2026, 11, 26, 10, 0, tzinfo=JAKARTA)) == 1  # for the new time
    (item,) = rows(app, OutboxItem, OutboxItem.template_id == "HXreminder")
    assert item.content_variables["2"] == "Jumat, 27 November 2026 pukul 10.00"
