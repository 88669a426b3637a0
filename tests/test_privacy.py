"""Patients' data (UU 27/2022): the first-contact notice, "data saya", "hapus data saya", staff
export and erasure with an audit log, and retention purges; on SQLite and PostgreSQL."""

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
import servers
from conftest import app_config
from helpers import PASSWORD, PATIENT, StaffBrowser, book, make_worker, rows, say
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from bot.cli import cmd_purge
from bot.services import privacy
from bot.store import storage
from bot.store.storage import AuditEntry, Booking, Conversation, HandoffCase, Message, OutboxItem
from bot.web import create_app

NUMBER = PATIENT.removeprefix("whatsapp:+")  # 6281234567890
NAME = "Budi Santoso Wijaya"
STAFF = ("whatsapp:+6281100000001",)


@pytest.fixture
def config(database_url, recorder, kb_copy):
    return app_config(
        database_url,
        twilio_api_base_url=recorder.url,
        secret_key="k",
        knowledge_dir=kb_copy,
        staff_whatsapp_numbers=STAFF,
    )


@pytest.fixture
def app(config, clock):
    application = create_app(config)
    application.extensions["klinik_inbox"].clock = clock
    application.extensions["klinik_console"].clock = clock
    application.extensions["klinik_accounts"].add("sari", PASSWORD)
    yield application
    application.extensions["klinik_database"].dispose()


def everything_stored(app) -> str:
    """Every value of every row of every table, as one string."""
    engine = app.extensions["klinik_database"]
    with engine.connect() as connection:
        parts = []
        for table in storage.Base.metadata.sorted_tables:
            for row in connection.execute(table.select()):
                parts.extend(json.dumps(value, default=str, ensure_ascii=False) for value in row)
    return "\n".join(parts)


def a_full_history(app, config, clock):
    """A patient with a booking, an open case, a staff alert, a staff reply and a free question."""
    say(app, "kenapa betis saya kedutan terus sejak kemarin", "SMh1", name=NAME)
    book(app, prefix="SMh-book")
    make_worker(config, app, clock).run_once()
    (case,) = rows(app, HandoffCase)
    app.extensions["klinik_console"].reply(case.id, "sari", "Halo Pak Budi Santoso Wijaya, jadwal Kamis bisa.")
    say(app, "rahasia: saya juga punya asam urat", "SMh2", name=NAME)
    return case


def test_the_first_reply_says_what_is_stored_and_how_to_erase_it_once(app, clock):
    first = say(app, "halo", "SMn1")
    assert "asisten otomatis" in first[0] and "kami simpan" in first[0] and "hapus data saya" in first[0]
    (conversation,) = rows(app, Conversation)
    shown = conversation.notice_shown_at
    assert shown == clock()
    clock.advance(minutes=5)
    second = say(app, "kenapa betis kedutan", "SMn2")
    assert not any("hapus data saya" in reply for reply in second)
    assert rows(app, Conversation)[0].notice_shown_at == shown


def test_data_saya_tells_the_patient_what_is_stored(app):
    say(app, "halo", "SMd1")
    book(app, prefix="SMd-book")
    case_id = rows(app, HandoffCase)[0].id
    app.extensions["klinik_console"].decide_booking(case_id, "sari", confirm=True)
    app.extensions["klinik_console"].close(case_id, "sari")
    (reply,) = say(app, "data saya", "SMd2")
    assert "{" not in reply
    # 6 inbound (this one included), 6 replies, the staff's confirmation, the question sent on closing
    assert "Pesan: 14" in reply
    assert "sejak Rabu, 25 November 2026" in reply
    assert "Permintaan janji: 1" in reply and "Percakapan dengan staf: 1" in reply
    assert "365 hari" in reply


def test_hapus_data_saya_leaves_nothing_of_the_patient_anywhere(app, config, clock):
    case = a_full_history(app, config, clock)
    before = everything_stored(app)
    assert NUMBER in before and NAME in before and "asam urat" in before
    (question,) = say(app, "hapus data saya", "SMe1", name=NAME)
    assert "ya hapus" in question
    assert NUMBER in everything_stored(app)  # nothing happens before the confirmation
    (done,) = say(app, "ya hapus", "SMe2", name=NAME)
    assert "sudah kami hapus" in done
    after = everything_stored(app)
    for secret in (
        NUMBER,
        NUMBER[-9:],
        NAME,
        "Budi",
        "asam urat",
        "kedutan terus sejak kemarin",
        "betis kanan kedutan",
        "jadwal Kamis",
    ):
        assert secret not in after, secret
    (closed,) = rows(app, HandoffCase)
    assert (closed.id, closed.status, closed.booking_id) == (case.id, "closed", None)
    assert "menarik diri" in closed.summary
    assert rows(app, Booking) == [] and rows(app, OutboxItem) == []
    (entry,) = [e for e in rows(app, AuditEntry) if e.action == "erase"]
    assert (entry.actor, entry.conversation_id) == ("patient", closed.conversation_id)
    # A retry of the confirmation gets the same answer and brings nothing back.
    assert say(app, "ya hapus", "SMe2", name=NAME) == [done]
    assert NUMBER not in everything_stored(app)
    # Writing again starts afresh, with the notice.
    assert "asisten otomatis" in say(app, "halo", "SMe3")[0]


def database_files(database_url: str) -> dict[str, bytes]:
    """The bytes of a SQLite database's files on disk: the database, its -wal and -shm."""
    main = Path(database_url.removeprefix("sqlite:///"))
    return {path.name: path.read_bytes() for path in (main, Path(f"{main}-wal"), Path(f"{main}-shm")) if path.exists()}


def test_after_hapus_data_saya_no_sqlite_file_holds_the_patients_words(recorder, kb_copy, tmp_path, clock):
    """Greps the files while the app is still running (its connections open, the -wal file in
    use), as someone copying them off the server would read them."""
    database_url = servers.sqlite_database(tmp_path)
    config = app_config(
        database_url,
        twilio_api_base_url=recorder.url,
        secret_key="k",
        knowledge_dir=kb_copy,
        staff_whatsapp_numbers=STAFF,
    )
    app = create_app(config)
    app.extensions["klinik_inbox"].clock = clock
    app.extensions["klinik_console"].clock = clock
    app.extensions["klinik_accounts"].add("sari", PASSWORD)
    a_full_history(app, config, clock)
    secrets = [
        word.encode()
        for word in (NUMBER, NAME, "asam urat", "kedutan terus sejak kemarin", "betis kanan kedutan", "jadwal Kamis")
    ]
    before = b"".join(database_files(database_url).values())
    assert all(secret in before for secret in secrets)  # the grep finds them while they are stored
    say(app, "hapus data saya", "SMw1", name=NAME)
    (done,) = say(app, "ya hapus", "SMw2", name=NAME)
    assert "sudah kami hapus" in done
    files = database_files(database_url)
    assert {"klinik.db", "klinik.db-wal", "klinik.db-shm"} <= set(files)
    assert files["klinik.db-wal"] == b""  # checkpointed into the database and emptied
    for name, content in files.items():
        for secret in secrets:
            assert secret not in content, f"{secret!r} is still readable in {name}"
    app.extensions["klinik_database"].dispose()


def test_staff_erasure_and_purge_leave_nothing_readable_in_the_sqlite_files(recorder, kb_copy, tmp_path, clock):
    database_url = servers.sqlite_database(tmp_path)
    config = app_config(
        database_url,
        twilio_api_base_url=recorder.url,
        secret_key="k",
        knowledge_dir=kb_copy,
        staff_whatsapp_numbers=STAFF,
    )
    app = create_app(config)
    app.extensions["klinik_inbox"].clock = clock
    app.extensions["klinik_console"].clock = clock
    case = a_full_history(app, config, clock)
    say(app, "kalau minum kopi pahit tiap pagi gimana", "SMp1", sender="whatsapp:+6281300000077")
    app.extensions["klinik_console"].erase_patient(case.id, "sari")
    privacy.purge(app.extensions["klinik_sessions"], clock() + timedelta(days=1), clock())
    everything = b"".join(database_files(database_url).values())
    for secret in (NUMBER, NAME, "asam urat", "6281300000077", "kopi pahit tiap pagi"):
        assert secret.encode() not in everything, secret
    app.extensions["klinik_database"].dispose()


def test_saying_no_keeps_everything(app):
    say(app, "kenapa betis kedutan", "SMk1")
    say(app, "hapus data saya", "SMk2")
    (reply,) = say(app, "tidak jadi", "SMk3")
    assert "tidak* dihapus" in reply
    assert len(rows(app, Message, Message.direction == "in")) == 3
    assert rows(app, AuditEntry) == []


def test_staff_export_view_and_erase_are_audited(app, config, clock):
    case = a_full_history(app, config, clock)
    sari = StaffBrowser(app)
    sari.login()
    page = sari.get(f"/staff/cases/{case.id}")
    assert "Ekspor data pasien" in page.get_data(as_text=True)
    exported = sari.get(f"/staff/cases/{case.id}/export.json")
    assert "attachment" in exported.headers["Content-Disposition"]
    data = exported.json
    assert data["patient"]["whatsapp"] == PATIENT and data["patient"]["profile_name"] == NAME
    assert [b["status"] for b in data["bookings"]] == ["held"]
    assert any(m["sender"] == "staff" for m in data["messages"])
    assert any("asam urat" in m["text"] for m in data["messages"])
    refused = sari.post(f"/staff/cases/{case.id}/erase")  # the confirmation box not ticked
    assert "erase_unconfirmed" in refused.headers["Location"]
    sari.get(f"/staff/cases/{case.id}")
    sari.post(f"/staff/cases/{case.id}/erase", {"confirm": "yes"})
    stored = everything_stored(app)
    assert NUMBER not in stored and NAME not in stored and "asam urat" not in stored
    page = sari.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    assert "Pasien menarik diri" in page and "Ekspor data pasien" not in page
    actions = [(e.actor, e.action) for e in rows(app, AuditEntry)]
    assert actions == [("sari", "view_transcript"), ("sari", "export"), ("sari", "view_transcript"),
                       ("sari", "erase"), ("sari", "view_transcript")]  # fmt: skip
    audit_page = sari.get("/staff/audit").get_data(as_text=True)
    assert "mengekspor data" in audit_page and "menghapus data" in audit_page
    assert "asam urat" not in json.dumps([e.detail for e in rows(app, AuditEntry)])


def test_api_export_and_erase(app, config, clock):
    case = a_full_history(app, config, clock)
    token = app.extensions["klinik_accounts"].issue_token("sari")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/staff/api/cases/{case.id}/export", headers=headers).json["patient"]["whatsapp"] == PATIENT
    assert client.post(f"/staff/api/cases/{case.id}/erase", headers=headers).json["erased"] is True
    assert client.get(f"/staff/api/cases/{case.id}/export", headers=headers).status_code == 410
    assert NUMBER not in everything_stored(app)


def test_purge_removes_exactly_what_is_older_than_the_cutoff(app, config, clock):
    sessions = app.extensions["klinik_sessions"]
    say(app, "kenapa betis kedutan", "SMold1", sender="whatsapp:+6281300000001")  # old, then silent
    say(app, "kalau kopi?", "SMold2", sender="whatsapp:+6281300000002")  # old, but writes again later
    say(app, "sambungkan ke admin", "SMold3", sender="whatsapp:+6281300000003")  # old, with an open case
    clock.advance(days=400)
    say(app, "halo lagi", "SMnew2", sender="whatsapp:+6281300000002")
    cutoff = clock() - timedelta(days=365)
    report = privacy.purge(sessions, cutoff, clock())
    # Two old first messages, each with its two replies (the notice and the answer).
    assert (report.messages, report.conversations, report.cases, report.bookings) == (6, 1, 0, 0)
    remaining = {m.channel_message_id for m in rows(app, Message, Message.direction == "in")}
    assert remaining == {"SMnew2", "SMold3"}
    assert all(
        m.created_at >= cutoff
        for m in rows(app, Message)
        if m.conversation_id != rows(app, HandoffCase)[0].conversation_id
    )
    assert {c.address for c in rows(app, Conversation)} == {"whatsapp:+6281300000002", "whatsapp:+6281300000003"}
    again = privacy.purge(sessions, cutoff, clock())
    assert (again.messages, again.conversations, again.cases, again.bookings) == (0, 0, 0, 0)
    purges = [e for e in rows(app, AuditEntry) if e.action == "purge"]
    assert [e.detail["messages"] for e in purges] == [6, 0]


def test_purge_takes_closed_cases_and_past_bookings(app, config, clock):
    book(app)
    (case,) = rows(app, HandoffCase)
    app.extensions["klinik_console"].decide_booking(case.id, "sari", confirm=False)
    app.extensions["klinik_console"].close(case.id, "sari")
    clock.advance(days=367)  # the appointment (the next day) is more than 365 days ago too
    report = privacy.purge(app.extensions["klinik_sessions"], clock() - timedelta(days=365), clock())
    assert (report.cases, report.bookings, report.conversations) == (1, 1, 1)
    assert everything_stored(app).count(NUMBER) == 0


def test_purge_from_the_command_line(database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    out = io.StringIO()
    args = type("Args", (), {"older_than": 30})
    assert cmd_purge(args, out=out) == 0
    assert "0 messages" in out.getvalue() and "0 conversations" in out.getvalue()
    engine = storage.make_engine(database_url)
    with Session(engine) as session:
        assert session.execute(select(AuditEntry.action)).scalars().all() == ["purge"]
        assert session.execute(text("SELECT COUNT(*) FROM conversations")).scalar_one() == 0
    engine.dispose()
