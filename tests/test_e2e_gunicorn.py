"""End to end: gunicorn with two workers on loopback, signed requests over real HTTP."""

import threading

import pytest
from conftest import AUTH_TOKEN
from servers import gunicorn
from sqlalchemy import func, select

from bot.channels.twilio.client import WebhookClient
from bot.store import storage
from bot.store.storage import Conversation, Message


@pytest.fixture
def server(database_url, tmp_path):
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(database_url, log_path, workers=2, threads=4) as base:
        yield base, database_url, log_path


def stored(database_url, *criteria) -> int:
    engine = storage.make_engine(database_url)
    try:
        with storage.session_factory(engine)() as session:
            return session.execute(select(func.count(Message.id)).where(*criteria)).scalar_one()
    finally:
        engine.dispose()


def test_signed_conversations_over_http_with_two_workers(server):
    base, database_url, log_path = server
    client = WebhookClient(f"{base}/webhook/whatsapp", auth_token=AUTH_TOKEN)
    patients = [f"whatsapp:+62812000{n:05d}" for n in range(6)]
    conversation = ["halo kak", "knp betis kedutan trs", "kalau kopi?", "menu", "8"]
    results: dict[str, list] = {}

    def talk(patient):
        results[patient] = [client.send(patient, text, profile_name="Uji") for text in conversation]

    threads = [threading.Thread(target=talk, args=(p,)) for p in patients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for patient in patients:
        replies = results[patient]
        assert [r.status for r in replies] == [200] * len(conversation)
        assert "asisten otomatis" in replies[0].messages[0]
        assert "elektrolit" in replies[1].messages[-1]
        assert "kopi" in replies[2].messages[-1].lower()
        assert "Jam buka" in replies[4].messages[-1]
    assert stored(database_url, Message.direction == "in") == len(patients) * len(conversation)
    engine = storage.make_engine(database_url)
    with storage.session_factory(engine)() as session:
        assert session.execute(select(func.count(Conversation.id))).scalar_one() == len(patients)
    engine.dispose()
    assert "+62812000" not in log_path.read_text()


def test_concurrent_duplicate_deliveries_across_workers(server):
    base, database_url, _ = server
    client = WebhookClient(f"{base}/webhook/whatsapp", auth_token=AUTH_TOKEN)
    replies = []
    start = threading.Barrier(8)

    def deliver():
        start.wait()
        replies.append(client.send("whatsapp:+6281299999999", "mau booking akupuntur besok jam 3", sid="SMdup-e2e"))

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [r.status for r in replies] == [200] * 8
    assert len({r.messages for r in replies}) == 1
    assert stored(database_url, Message.direction == "in") == 1


def test_forged_requests_are_refused_over_http(server):
    base, database_url, _ = server
    forged = WebhookClient(f"{base}/webhook/whatsapp", auth_token="not-the-token")
    assert forged.send("whatsapp:+6281200000099", "halo").status == 403
    unsigned = WebhookClient(f"{base}/webhook/whatsapp")
    assert unsigned.send("whatsapp:+6281200000099", "halo").status == 403
    assert stored(database_url) == 0
