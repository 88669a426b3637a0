"""The simulator in real headless Chromium against the app served over HTTP (dev mode, but with
an auth token, so every message is signed server-side): a patient says hello, sends a photo and
a question with markup in it, books an appointment; staff answer through the console's JSON
API and the outbox worker sends it to the Twilio recorder; the answer appears in the simulator;
the conversation is saved as a fixture, which then replays green offline and against the same
running server, from the command line.

With KLINIK_SCREENSHOTS=docs (`make screenshots`) it also writes the README's screenshots."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import AUTH_TOKEN, ROOT, app_config
from helpers import PHONE, fits_the_screen, make_worker, png_size, serving

from bot.quality import replay
from bot.store import storage
from bot.web import create_app

DESKTOP = {"width": 1280, "height": 800}
BOOKING = ("mau booking akupunktur senin depan jam 10", "ya", "betis kanan kedutan terus sudah seminggu", "ya")
STAFF_REPLY = "Halo Budi <b>ini bukan HTML</b>, Senin jam 10 bisa 👍"
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def served(database_url, recorder, tmp_path):
    """The real clock: the recorded fixture must replay at any hour, and does."""
    config = app_config(
        database_url, dev_mode=True, public_base_url="", twilio_api_base_url=recorder.url, secret_key="browser-test-key"
    )
    app = create_app(config)
    app.config["SIMULATOR_FIXTURES_DIR"] = tmp_path / "fixtures"
    app.extensions["klinik_accounts"].add("sari", "kata-sandi-uji-123")
    with serving(app, "localhost") as base:
        yield app, base, make_worker(config, app, storage.utcnow)
    app.extensions["klinik_database"].dispose()


def say(page, text, answer):
    """Type like a patient (Enter sends) and wait for the bot's reply containing `answer`."""
    page.fill("#sim-text", text)
    page.press("#sim-text", "Enter")
    page.locator("#sim-log .from-bot", has_text=answer).last.wait_for(timeout=15_000)


def bot(*args, env=None):
    environment = dict(os.environ, TWILIO_AUTH_TOKEN=AUTH_TOKEN, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, cwd=ROOT, env=environment, timeout=120
    )


def screenshot(page, tmp_path, name, width, full_page=False):
    page.evaluate("window.scrollTo(0, 0)")
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=full_page)
    assert png_size(path)[0] == width
    if os.environ.get("KLINIK_SCREENSHOTS"):
        target = ROOT / os.environ["KLINIK_SCREENSHOTS"] / name
        target.write_bytes(path.read_bytes())


def test_a_booking_in_the_simulator_with_a_staff_answer_becomes_a_fixture_that_replays_live(
    browser, served, recorder, tmp_path
):
    app, base, worker = served
    context = browser.new_context(viewport=PHONE, locale="id-ID", accept_downloads=True)
    page = context.new_page()
    errors = []  # a CSP violation or a script error would show here (the browser's own favicon request does not count)
    page.on(
        "console",
        lambda m: (
            errors.append(m.text) if m.type == "error" and not m.location["url"].endswith("/favicon.ico") else None
        ),
    )
    page.goto(f"{base}/simulator/")
    number = page.input_value("#sim-number")
    assert number.startswith("+6200")
    page.fill("#sim-name", "Budi Santoso")

    say(page, "halo", "asisten otomatis")
    assert "topik: greeting · answer · skor 0." in page.inner_text("#sim-log .from-bot >> nth=-1")
    page.click("#sim-image")
    page.locator("#sim-log .from-bot", has_text="hanya bisa membaca pesan teks").wait_for(timeout=15_000)
    assert "📷 Gambar (contoh)" in page.inner_text("#sim-log .from-patient >> nth=-1")
    say(page, "kenapa betis kedutan? <img src=x onerror=alert(1)>", "elektrolit")
    assert "<img src=x onerror=alert(1)>" in page.inner_text("#sim-log .from-patient >> nth=-1")
    assert page.locator("#sim-log img").count() == 0
    assert "topik: causes · answer" in page.inner_text("#sim-log .from-bot >> nth=-1")

    for text, answer in zip(
        BOOKING, ("Atas nama", "Keluhan apa", "Mohon periksa", "Permintaan janji terkirim"), strict=True
    ):
        say(page, text, answer)
    assert (
        page.locator("#sim-log .from-bot strong", has_text="Budi Santoso").count() == 1
    )  # *bold*, as WhatsApp shows it
    assert "topik: booking · answer" in page.inner_text("#sim-log .from-bot >> nth=-1")

    # Staff answer from the console's JSON API; the worker sends it through "Twilio".
    staff = app.test_client()
    headers = {"Authorization": f"Bearer {app.extensions['klinik_accounts'].issue_token('sari')}"}
    (case,) = staff.get("/staff/api/cases?status=waiting", headers=headers).json["cases"]
    assert case["booking"]["name"] == "Budi Santoso"
    assert (
        staff.post(f"/staff/api/cases/{case['id']}/reply", json={"text": STAFF_REPLY}, headers=headers).status_code
        == 201
    )
    assert worker.run_once() == 1
    assert [(m["To"], m["Body"]) for m in recorder.messages()] == [(f"whatsapp:{number}", STAFF_REPLY)]
    answer = page.locator("#sim-log .from-staff", has_text=STAFF_REPLY)
    answer.wait_for(timeout=15_000)
    assert "Staf · sari" in answer.inner_text()
    assert page.locator("#sim-log .from-staff b").count() == 0
    assert fits_the_screen(page)
    screenshot(page, tmp_path, "simulator-phone.png", PHONE["width"])

    # Saved under tests/fixtures/ (here a temporary one), and downloaded: the same fixture.
    page.fill("#sim-fixture-name", "booking dari simulator, dijawab staf")
    page.fill("#sim-fixture-path", "conversations/simulator_booking.yaml")
    page.click("#sim-save")
    page.locator("#sim-fixture-status", has_text="Tersimpan").wait_for()
    saved = tmp_path / "fixtures" / "conversations" / "simulator_booking.yaml"
    assert "user: \"mau booking akupunktur senin depan jam 10\"" in page.inner_text("#sim-yaml")
    with page.expect_download() as download:
        page.click("#sim-download")
    downloaded = Path(download.value.path())
    assert download.value.suggested_filename == "booking_dari_simulator_dijawab_staf.yaml"
    assert [t.expect for t in replay.load_fixture(downloaded).turns] == [
        t.expect for t in replay.load_fixture(saved).turns
    ]
    assert errors == []

    # The same conversation on a desktop screen, picked by its number.
    desktop = browser.new_context(viewport=DESKTOP, locale="id-ID").new_page()
    desktop.goto(f"{base}/simulator/")
    desktop.fill("#sim-number", number)
    desktop.dispatch_event("#sim-number", "change")
    desktop.locator("#sim-log .from-staff", has_text=STAFF_REPLY).wait_for(timeout=15_000)
    assert desktop.locator("#sim-log .from-patient").count() == 3 + len(BOOKING)
    desktop.fill("#sim-fixture-name", "booking dari simulator, dijawab staf")
    desktop.click("#sim-preview")
    desktop.locator("#sim-fixture-status", has_text="Fixture 7 giliran siap").wait_for()
    assert desktop.input_value("#sim-name") == "Budi Santoso"  # from the list of recent conversations
    screenshot(desktop, tmp_path, "simulator-desktop.png", DESKTOP["width"], full_page=True)

    fixture = replay.load_fixture(saved)
    assert [t.user for t in fixture.turns] == [
        "halo",
        "",
        "kenapa betis kedutan? <img src=x onerror=alert(1)>",
        *BOOKING,
    ]
    assert all(t.expect.get("contains") for t in fixture.turns)
    offline = bot("replay", str(saved), "--verbose")
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert offline.stdout.rstrip().endswith("7/7 turns passed in 1 fixtures")
    live = bot("replay", str(saved), "--url", f"{base}/webhook/whatsapp")
    assert live.returncode == 0, live.stdout + live.stderr
    assert live.stdout.rstrip().endswith("7/7 turns passed in 1 fixtures")
    context.close()
