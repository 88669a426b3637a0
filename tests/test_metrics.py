"""Prometheus metrics (bot/services/metrics.py, /metrics): counted from a real conversation through the
webhook and a real outbox worker sending to the Twilio recorder; the database's gauges; the
bearer token; no personal data; and the counts of two gunicorn workers added up."""

import os
import signal
import subprocess
import sys
import threading
import time
from urllib.request import Request, urlopen

import pytest
import servers
from conftest import AUTH_TOKEN, ROOT, app_config
from helpers import PATIENT, make_worker, say
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from bot.channels.twilio.client import WebhookClient
from bot.store import storage
from bot.web import create_app

STAFF = ("whatsapp:+6281100000001", "whatsapp:+6281100000002")
# Every label value /metrics may show: small fixed sets, nothing a patient wrote or is.
LABEL_VALUES = {
    "outcome": {"processed", "duplicate", "rate_limited", "failed"},
    "decision": {"answer", "clarify", "fallback", "none"},
    "triage": {"emergency", "doctor", "none"},
    "kind": {"reply", "staff_alert", "patient_message"},
    "final": {"true", "false"},
    "reason": {"booking", "human_agent", "urgent"},
}


def scrape(client, **headers) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of the klinik_* samples (histogram buckets left out)."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.data
    assert response.content_type.startswith("text/plain; version=0.0.4")
    return parse(response.get_data(as_text=True))


def parse(text: str) -> dict[tuple, float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("klinik_") and "le" not in sample.labels
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def grown(before: dict, after: dict) -> dict[tuple, float]:
    """How much each counter grew in between."""
    return {
        key: after[key] - before.get(key, 0.0)
        for key in after
        if key[0].endswith(("_total", "_count")) and after[key] != before.get(key, 0.0)
    }


@pytest.fixture
def config(database_url, recorder):
    return app_config(database_url, twilio_api_base_url=recorder.url, staff_whatsapp_numbers=STAFF)


@pytest.fixture
def app(config):
    application = create_app(config)
    yield application
    application.extensions["klinik_database"].dispose()


def test_a_conversation_and_the_outbox_are_counted_by_decision_triage_and_kind(app, config, recorder):
    client = app.test_client()
    before = scrape(client)
    replies = []
    for n, text in enumerate(["halo kak", "knp betis kedutan trs", "yoga tiap pagi ngaruh ga ke betis",
                              "harga saham hari ini berapa", "kaki kiri tiba2 lumpuh dan bicara pelo"]):  # fmt: skip
        replies += say(app, text, f"SMm{n}")
    say(app, "kaki kiri tiba2 lumpuh dan bicara pelo", "SMm4")  # Twilio retrying: answered from storage
    queued = scrape(client)
    assert grown(before, queued) == {
        ("klinik_messages_received_total", (("outcome", "processed"),)): 5,
        ("klinik_messages_received_total", (("outcome", "duplicate"),)): 1,
        ("klinik_replies_total", (("decision", "answer"), ("triage", "none"))): 2,
        ("klinik_replies_total", (("decision", "clarify"), ("triage", "none"))): 1,
        ("klinik_replies_total", (("decision", "fallback"), ("triage", "none"))): 1,
        ("klinik_replies_total", (("decision", "answer"), ("triage", "emergency"))): 1,
        ("klinik_messages_sent_total", (("kind", "reply"),)): len(replies),
        ("klinik_reply_seconds_count", ()): 5,
    }
    assert (
        value(queued, "klinik_cases_open", reason="urgent") == 1
        and value(queued, "klinik_cases_open", reason="booking") == 0
    )
    assert value(queued, "klinik_outbox_backlog", kind="staff_alert") == 2
    assert value(queued, "klinik_outbox_oldest_waiting_seconds") >= 0 and value(queued, "klinik_database_up") == 1

    recorder.fail_next(1, 500)  # the first alert fails, and with one attempt allowed it is given up
    make_worker(config, app, storage.utcnow, max_attempts=1).run_once()
    sent = scrape(client)
    assert grown(queued, sent) == {
        ("klinik_messages_sent_total", (("kind", "staff_alert"),)): 1,
        ("klinik_outbox_failures_total", (("final", "true"), ("kind", "staff_alert"))): 1,
    }
    assert value(sent, "klinik_outbox_backlog", kind="staff_alert") == 0
    assert value(sent, "klinik_outbox_failed", kind="staff_alert") == 1


def test_metrics_hold_no_personal_data(app):
    say(app, "knp betis kedutan trs, saya Budi Santoso", "SMp1", name="Budi Santoso")
    text = app.test_client().get("/metrics").get_data(as_text=True)
    number = PATIENT.removeprefix("whatsapp:+")
    for personal in (number, number[-8:], "Budi", "kedutan", "SMp1"):
        assert personal not in text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for label, shown in sample.labels.items():
                assert label == "le" or shown in LABEL_VALUES[label], (sample.name, label, shown)


def test_with_a_metrics_token_only_its_bearer_may_scrape(database_url):
    app = create_app(app_config(database_url, metrics_token="scrape-secret-123"))
    client = app.test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "scrape-secret-123"}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert b"klinik_" not in refused.data
    assert scrape(client, Authorization="Bearer scrape-secret-123")
    app.extensions["klinik_database"].dispose()


# -- two gunicorn workers -----------------------------------------------------------------------


def received_per_worker(directory) -> dict[int, float]:
    """Messages each worker process counted, from its own file of the multiprocess directory."""
    counted = {}
    for path in directory.glob("counter_*.db"):
        pid = int(path.stem.removeprefix("counter_"))
        samples = [s for metric in MultiProcessCollector.merge([str(path)]) for s in metric.samples]
        counted[pid] = sum(s.value for s in samples if s.name == "klinik_messages_received_total")
    return counted


def scrape_url(base: str) -> dict[tuple, float]:
    with urlopen(Request(f"{base}/metrics")) as response:
        return parse(response.read().decode())


def test_two_gunicorn_workers_count_into_one_total_that_outlives_a_worker(tmp_path):
    """gunicorn.conf.py makes the multiprocess directory (under TMPDIR, here the test's own).
    Messages are sent eight at a time until both workers have handled some (each counts in its
    own file); every scrape, whichever worker answers it, shows the sum. A worker that ends
    takes nothing away (child_exit leaves its counts); the directory goes with the server."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    environment = {"TMPDIR": str(temporary), "PROMETHEUS_MULTIPROC_DIR": ""}
    with servers.gunicorn(
        servers.sqlite_database(tmp_path), tmp_path / "gunicorn.log", workers=2, threads=1, **environment
    ) as base:
        (metrics_dir,) = temporary.glob("klinik-metrics-*")
        client = WebhookClient(f"{base}/webhook/whatsapp", auth_token=AUTH_TOKEN)
        sent = 0
        while len([pid for pid, n in received_per_worker(metrics_dir).items() if n]) < 2:
            assert sent < 400, f"one worker took every message: {received_per_worker(metrics_dir)}"
            threads = [
                threading.Thread(target=client.send, args=(f"whatsapp:+62812777{sent + n:05d}", "halo kak"))
                for n in range(8)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            sent += 8
        per_worker = received_per_worker(metrics_dir)
        assert sum(per_worker.values()) == sent
        for _ in range(4):
            assert value(scrape_url(base), "klinik_messages_received_total", outcome="processed") == sent
        os.kill(max(per_worker, key=per_worker.get), signal.SIGTERM)
        for _ in range(4):
            assert value(scrape_url(base), "klinik_messages_received_total", outcome="processed") == sent
    assert not metrics_dir.exists()


def test_the_worker_process_serves_its_own_counts_on_worker_metrics_port(tmp_path):
    """`python -m bot worker` (dev mode: it sends nowhere) with WORKER_METRICS_PORT: the staff
    alert queued by a handoff is counted there once sent; the web's gauges see the outbox empty."""
    database_url = servers.sqlite_database(tmp_path)
    app = create_app(app_config(database_url, staff_whatsapp_numbers=STAFF[:1]))
    say(app, "sambungkan ke admin dong", "SMw1")
    assert value(scrape(app.test_client()), "klinik_outbox_backlog", kind="staff_alert") == 1
    port = servers.free_port()
    env = dict(
        os.environ, DATABASE_URL=database_url, BOT_DEV_MODE="1", TWILIO_AUTH_TOKEN="", WORKER_METRICS_PORT=str(port)
    )
    with (tmp_path / "worker.log").open("w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "bot", "worker"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 60
            while (counted := worker_counts(port)).get(("klinik_messages_sent_total", (("kind", "staff_alert"),))) != 1:
                assert worker.poll() is None and time.monotonic() < deadline, (
                    counted,
                    (tmp_path / "worker.log").read_text(),
                )
                time.sleep(0.2)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    assert value(scrape(app.test_client()), "klinik_outbox_backlog", kind="staff_alert") == 0
    app.extensions["klinik_database"].dispose()


def worker_counts(port: int) -> dict[tuple, float]:
    """The worker's metrics, or nothing while it is not listening yet."""
    try:
        return scrape_url(f"http://127.0.0.1:{port}")
    except OSError:
        return {}
