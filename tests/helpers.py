"""Helpers shared by the handoff, console, simulator, replay and browser tests: a controllable
clock, a worker sending to the Twilio recorder, a patient talking to the webhook, the app served
over HTTP, and checks of pages at phone size."""

import re
import struct
import threading
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import signed_post
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from bot.channels.twilio.sender import TwilioSender
from bot.config import Config
from bot.services.outbox import OutboxWorker

PATIENT = "whatsapp:+6281234567890"
BASE = "https://localhost"
PASSWORD = "kata-sandi-uji-123"


class Clock:
    def __init__(self):
        self.now = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 10:00 in Jakarta, a Wednesday

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)


def make_worker(config: Config, app, clock, **options) -> OutboxWorker:
    return OutboxWorker(
        app.extensions["klinik_sessions"],
        TwilioSender(config, timeout=5),
        clock=clock,
        max_attempts=options.pop("max_attempts", 5),
        **options,
    )


def say(app, text, sid, sender=PATIENT, name="Budi"):
    response = signed_post(
        app.test_client(), "/webhook/whatsapp", {"MessageSid": sid, "From": sender, "Body": text, "ProfileName": name}
    )
    assert response.status_code == 200, response.data
    return [m.text or "" for m in ET.fromstring(response.data).iter("Message")]


def book(app, prefix="SMbook"):
    """A complete booking conversation (Thursday 26 November 2026, 15:00)."""
    say(app, "mau booking akupuntur besok jam 3", f"{prefix}1")
    say(app, "ya", f"{prefix}2")
    say(app, "betis kanan kedutan terus sudah seminggu", f"{prefix}3")
    return say(app, "ya", f"{prefix}4")


def rows(app, model, *criteria):
    with Session(app.extensions["klinik_database"]) as session:
        return list(session.execute(select(model).where(*criteria).order_by(model.id)).scalars())


class StaffBrowser:
    """The Flask test client used the way a browser uses the console: over https (the session
    cookie is Secure), sending a Referer (CSRF checks it on https), and posting forms (or, as
    the simulator's script does, JSON) with the CSRF token of the page it last loaded."""

    TOKEN = re.compile(r'(?:name="csrf_token" value|data-csrf)="([^"]+)"')

    def __init__(self, app):
        self.client = app.test_client()
        self.token = ""

    def get(self, path, **options):
        response = self.client.get(path, base_url=BASE, **options)
        found = self.TOKEN.search(response.get_data(as_text=True))
        if found:
            self.token = found.group(1)
        return response

    def post(self, path, data=None, csrf=True, **options):
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf_token", self.token)
        return self.client.post(path, data=form, base_url=BASE, headers={"Referer": f"{BASE}/staff/"}, **options)

    def post_json(self, path, body, csrf=True):
        headers = {"Referer": f"{BASE}/staff/", **({"X-CSRFToken": self.token} if csrf else {})}
        return self.client.post(path, json=body, base_url=BASE, headers=headers)

    def login(self, name="sari", password=PASSWORD):
        self.get("/staff/login")
        response = self.post("/staff/login", {"name": name, "password": password})
        if response.status_code == 302:
            self.get("/staff/")  # a new session: take its CSRF token
        return response


@contextmanager
def serving(app, host="127.0.0.1"):
    """The app over real HTTP on a free loopback port (threaded werkzeug server); yields its
    base URL."""
    server = make_server(host, 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()


PHONE = {"width": 375, "height": 740}


def png_size(path: Path) -> tuple[int, int]:
    with path.open("rb") as handle:
        header = handle.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


# -- two days at the clinic, for the report's tests ------------------------------------------

SEEDED = {
    "ani": "whatsapp:+6281100000001", "bayu": "whatsapp:+6281100000002", "citra": "whatsapp:+6281100000003",
    "dedi": "whatsapp:+6281100000004", "eka": "whatsapp:+6281100000005", "fajar": "whatsapp:+6281100000006",
}  # fmt: skip


def seed_two_days(app, clock) -> dict:
    """Wednesday 25 and Thursday 26 November 2026 (from 10:00 Jakarta), through the webhook and
    the console, a minute between messages. Day 1: Ani asks why her calf twitches, thanks, and
    rates the answer 👎; Bayu is not understood twice (a case), staff reply after 10 minutes
    and close it, he rates their help 👍; Citra books, staff confirm 30 minutes after the case
    opened and close it (she does not answer the question). Day 2: Dedi has chest pain (an
    urgent case, staff reply after 2 minutes); Ani is asked back ("kaki"), asks about cramps,
    thanks and rates 👍; Eka starts a booking and calls it off; Fajar's twitching for three
    weeks is for a doctor. Returns the cases by patient."""
    console = app.extensions["klinik_console"]

    def said(who, *texts):
        for text in texts:
            say(app, text, f"SM{who}{clock().timestamp():.0f}", sender=SEEDED[who], name=who.capitalize())
            clock.advance(minutes=1)

    def case_of(who):
        from bot.store.storage import Conversation, HandoffCase

        (case,) = rows(
            app,
            HandoffCase,
            HandoffCase.conversation_id == rows(app, Conversation, Conversation.address == SEEDED[who])[0].id,
        )
        return case

    start = clock()
    said("ani", "knp betis kedutan trs", "oke makasih infonya kak", "👎")
    said("bayu", "jual kuota internet?", "harga emas hari ini brp")
    bayu = case_of("bayu")
    clock.now = bayu.opened_at + timedelta(minutes=10)
    console.reply(bayu.id, "sari", "Halo Bayu, ada yang bisa kami bantu?")
    console.close(bayu.id, "sari")
    clock.advance(minutes=1)
    said("bayu", "1")
    said("citra", "mau booking akupuntur besok jam 3", "ya", "betis kanan kedutan terus sudah seminggu", "ya")
    citra = case_of("citra")
    clock.now = citra.opened_at + timedelta(minutes=30)
    console.decide_booking(citra.id, "sari", confirm=True)
    console.close(citra.id, "sari")

    clock.now = start + timedelta(days=1)
    said("dedi", "dada saya nyeri bgt dan sesak")
    dedi = case_of("dedi")
    clock.now = dedi.opened_at + timedelta(minutes=2)
    console.reply(dedi.id, "sari", "Pak Dedi, mohon segera ke IGD terdekat.")
    clock.advance(minutes=1)
    said("ani", "kaki", "kalau kram betis kenapa?", "makasih", "ya membantu")
    said("eka", "mau booking akupuntur besok jam 3", "batal")
    said("fajar", "betis kedutan udah 3 minggu ga ilang2, padahal kopi udah stop. kenapa ya?")
    return {"bayu": bayu.id, "citra": citra.id, "dedi": dedi.id}
