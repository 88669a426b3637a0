"""Appointment reminders through the outbox, sent by the real twilio client to the local
recorder: the day before, once, none for cancelled or past appointments or after "stop", a
template outside the 24-hour window; on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

import pytest
from conftest import app_config
from helpers import PATIENT, book, make_worker, rows, say

from bot import channels
from bot.core.dates import JAKARTA
from bot.services.reminders import ReminderSettings, due_at, queue_reminders
from bot.store.storage import Booking, OutboxItem
from bot.web import create_app

SETTINGS = ReminderSettings(days_before=1, hour=10, template_id="HXreminder", rules=channels.delivery_rules())
# The appointment book() makes: Thursday 26 November 2026, 15:00 in Jakarta.
DUE = datetime(2026, 11, 25, 10, 0, tzinfo=JAKARTA)


@pytest.fixture
def setup(database_url, recorder, clock):
    config = app_config(database_url, twilio_api_base_url=recorder.url)
    app = create_app(config)
    app.extensions["klinik_inbox"].clock = clock
    yield app, config
    app.extensions["klinik_database"].dispose()


def _remind(app, now) -> int:
    kb = app.extensions["klinik_engine"].current().kb
    return queue_reminders(app.extensions["klinik_sessions"], kb, SETTINGS, now)


def test_the_reminder_is_due_the_day_before_at_the_hour(setup):
    assert due_at(datetime(2026, 11, 26, 15, 0, tzinfo=JAKARTA), SETTINGS) == DUE


def test_one_reminder_the_day_before_survives_a_restart_and_goes_once(setup, recorder, clock):
    app, config = setup
    book(app)
    assert _remind(app, DUE - timedelta(minutes=1)) == 0  # not yet
    assert _remind(app, DUE) == 1
    assert _remind(app, DUE + timedelta(hours=1)) == 0  # never a second one
    # The worker that queued it is gone; a new one (a restart) sends what is in the outbox.
    clock.now = DUE.astimezone(UTC)
    make_worker(config, app, clock).run_once()
    make_worker(config, app, clock).run_once()
    reminders = [m for m in recorder.messages() if "Pengingat" in m.get("Body", "")]
    assert len(reminders) == 1 and reminders[0]["To"] == PATIENT
    assert "janji temu atas nama *Budi* besok" in reminders[0]["Body"]
    assert "Kamis, 26 November 2026 pukul 15.00" in reminders[0]["Body"]
    assert "ContentSid" not in reminders[0]  # the window is open: free-form


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
