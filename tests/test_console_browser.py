"""The staff console in real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright) against the app served over HTTP on loopback: a staff member logs in, sees a new
case appear without reloading, claims it, reads the transcript, replies (the reply reaches the
Twilio recorder once and its delivery status appears), confirms the booking and closes the case.
And the pages fit a phone screen."""

import pytest
from conftest import app_config, signed_post
from helpers import PASSWORD, PATIENT, PHONE, book, fits_the_screen, make_worker, png_size, serving
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.storage import Booking, HandoffCase, OutboxItem
from bot.web import create_app

# The browser sees the same pages whatever the database; the storage paths are tested on both.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def served(database_url, recorder, kb_copy, clock):
    """The app over real HTTP on a free loopback port (threaded werkzeug server)."""
    config = app_config(
        database_url, twilio_api_base_url=recorder.url, secret_key="browser-test-key", knowledge_dir=kb_copy
    )
    app = create_app(config)
    app.extensions["klinik_inbox"].clock = clock
    app.extensions["klinik_console"].clock = clock
    app.extensions["klinik_accounts"].add("sari", PASSWORD)
    with serving(app, "localhost") as base:
        yield app, base, make_worker(config, app, clock)
    app.extensions["klinik_database"].dispose()


def test_staff_handle_a_booking_from_first_sight_to_closing(browser, served, recorder, tmp_path):
    app, base, worker = served
    context = browser.new_context(viewport=PHONE, locale="id-ID")
    page = context.new_page()
    page.goto(f"{base}/staff/")
    assert page.url.startswith(f"{base}/staff/login")
    page.fill("input[name=name]", "sari")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/staff/")
    assert "Tidak ada kasus" in page.inner_text("#queue")

    # A patient books while the queue is open: the case appears without a reload.
    book(app)
    page.wait_for_selector("#queue li.case", timeout=15_000)
    assert "Budi" in page.inner_text("#queue li.case")
    assert fits_the_screen(page)

    page.click("#queue li.case a")
    page.wait_for_selector("#claim")
    transcript = page.inner_text("#transcript")
    assert "mau booking akupuntur besok jam 3" in transcript and "Permintaan janji terkirim" in transcript
    assert "Kamis, 26 November 2026 pukul 15.00" in page.inner_text("#booking")
    page.click("#claim")
    page.wait_for_selector("text=Kasus diambil")
    assert "sari" in page.inner_text("#claim-state")

    page.fill("textarea[name=text]", "Halo Budi, jadwal Kamis jam 3 bisa. Sampai jumpa!")
    page.click("#send")
    page.wait_for_selector("text=Pesan masuk antrean")
    assert "belum terkirim" in page.inner_text("#transcript")
    assert worker.run_once() == 1
    (sent,) = recorder.messages()
    assert (sent["To"], sent["Body"]) == (PATIENT, "Halo Budi, jadwal Kamis jam 3 bisa. Sampai jumpa!")
    with Session(app.extensions["klinik_database"]) as session:
        item = session.execute(select(OutboxItem)).scalar_one()
    signed_post(
        app.test_client(),
        f"/webhook/status?outbox={item.id}",
        {"MessageSid": item.channel_message_id, "MessageStatus": "delivered"},
    )
    page.locator("#transcript .from-staff .delivery", has_text="sampai").wait_for(timeout=15_000)

    page.click("#confirm-booking")
    page.wait_for_selector("text=Janji dikonfirmasi")
    assert "dikonfirmasi (sari)" in page.inner_text("#booking-status")
    assert fits_the_screen(page)
    shot = tmp_path / "case-phone.png"
    page.screenshot(path=str(shot), full_page=True)
    assert png_size(shot)[0] == PHONE["width"]

    page.click("#close")
    page.wait_for_selector("text=Kasus ditutup")
    with Session(app.extensions["klinik_database"]) as session:
        case = session.execute(select(HandoffCase)).scalar_one()
        booking = session.execute(select(Booking)).scalar_one()
    assert (case.status, case.claimed_by, booking.status) == ("closed", "sari", "confirmed")
    worker.run_once()
    assert [m["Body"][:10] for m in recorder.messages()] == [
        "Halo Budi,",
        "Janji temu",
        "Percakapan",
    ]  # and the satisfaction question
    context.close()


def test_every_console_page_fits_a_phone(browser, served, tmp_path):
    app, base, _ = served
    book(app)
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(f"{base}/staff/login")
    page.fill("input[name=name]", "sari")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/staff/")
    for path in ("/staff/", "/staff/?view=all", "/staff/cases/1", "/staff/unanswered", "/staff/report"):
        page.goto(base + path)
        assert fits_the_screen(page), path
        shot = tmp_path / "page.png"
        page.screenshot(path=str(shot), full_page=True)
        assert png_size(shot)[0] == PHONE["width"], path
    context.close()
