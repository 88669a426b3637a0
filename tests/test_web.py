"""The app factory (bot/web.py) and what operators ask of it: refusing to start for real with the
shipped example clinic facts (as a Flask app, as `python -m bot serve` and under gunicorn),
/healthz and /readyz."""

import os
import re
import subprocess
import sys

import pytest
import servers
from conftest import ROOT, app_config
from helpers import say
from sqlalchemy.engine import make_url

from bot.core.knowledge import ExampleValuesError
from bot.store import migrate, storage
from bot.web import create_app

CLINIC = ROOT / "knowledge" / "clinic.yaml"


def line_of(path, needle: str) -> int:
    """The number of the first line that is not a comment and holds `needle`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, start=1) if needle in line and not line.startswith("#"))


EXAMPLE_LINES = (
    f"knowledge/clinic.yaml:{line_of(CLINIC, 'example_values:')}: example_values: true",
    f"knowledge/clinic.yaml:{line_of(CLINIC, 'address:')}: address:"
    " 'Jl. Contoh Sehat No. 8, Jakarta Barat (contoh)' is an example value",
)


def own_clinic_facts(kb_copy, keep: str = "") -> None:
    """The clinic's own facts in the copy: every "(contoh)" gone but in the line holding `keep`,
    and example_values: false."""
    path = kb_copy / "clinic.yaml"
    lines = [
        line if keep and keep in line else line.replace(" (contoh)", "")
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    path.write_text("\n".join(lines).replace("example_values: true", "example_values: false") + "\n", encoding="utf-8")


def test_outside_dev_mode_the_example_clinic_facts_are_refused_with_file_line_and_field(tmp_path, kb_copy):
    database_url = servers.sqlite_database(tmp_path)
    with pytest.raises(ExampleValuesError) as refused:
        create_app(app_config(database_url, knowledge_dir=kb_copy, allow_example_values=False))
    report = refused.value.report()
    assert report.startswith("Refusing to start: the clinic facts are still the shipped EXAMPLE values")
    assert all(line in report for line in EXAMPLE_LINES)
    assert (
        f"knowledge/clinic.yaml:{line_of(CLINIC, 'Rp250.000')}: prices[1].price:"
        " 'Rp250.000 (contoh)' is an example value" in report
    )
    # example_values: false is not enough while a value still says "(contoh)".
    own_clinic_facts(kb_copy, keep="parking")
    with pytest.raises(ExampleValuesError) as refused:
        create_app(app_config(database_url, knowledge_dir=kb_copy, allow_example_values=False))
    (problem,) = refused.value.problems
    assert (problem.line, problem.message) == (
        line_of(CLINIC, "parking:"),
        "parking: 'motor dan mobil di halaman klinik (contoh)' is an example value",
    )
    own_clinic_facts(kb_copy)
    app = create_app(app_config(database_url, knowledge_dir=kb_copy, allow_example_values=False))
    replies = "\n".join(say(app, "alamat klinik dimana ya", "SMown1"))
    assert "Jl. Contoh Sehat No. 8, Jakarta Barat" in replies and "(contoh)" not in replies
    app.extensions["klinik_database"].dispose()


def test_dev_mode_runs_with_the_examples_and_patients_see_them_marked(tmp_path):
    app = create_app(app_config(servers.sqlite_database(tmp_path), dev_mode=True, allow_example_values=False))
    assert any(
        "Jl. Contoh Sehat No. 8, Jakarta Barat (contoh)" in reply
        for reply in say(app, "alamat klinik dimana ya", "SMdev1")
    )
    app.extensions["klinik_database"].dispose()


def production_environment(tmp_path) -> dict:
    return dict(os.environ, DATABASE_URL=servers.sqlite_database(tmp_path), TWILIO_AUTH_TOKEN=servers.AUTH_TOKEN,
                BOT_DEV_MODE="", ALLOW_EXAMPLE_VALUES="", SECRET_KEY="k")  # fmt: skip


def test_python_m_bot_serve_refuses_the_examples_without_a_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bot", "serve", "--port", "0"], cwd=ROOT,
                            env=production_environment(tmp_path), capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert all(line in result.stderr for line in EXAMPLE_LINES), result.stderr


def test_gunicorn_refuses_the_examples_and_stops_instead_of_booting_workers_forever(tmp_path):
    """It used to exit the worker with code 1, which gunicorn answers by booting another."""
    env = production_environment(tmp_path) | {
        "HOST": "127.0.0.1",
        "PORT": str(servers.free_port()),
        "WEB_CONCURRENCY": "1",
    }
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    result = subprocess.run([gunicorn, "app:app"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 4, result.stderr  # gunicorn's "App failed to load"
    assert all(line in result.stderr for line in EXAMPLE_LINES), result.stderr
    assert len(re.findall(r"Booting worker", result.stderr)) == 1 and "Traceback" not in result.stderr


# -- /healthz and /readyz ---------------------------------------------------------------------


def test_readyz_says_what_it_checked(client):
    app = client.application
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json == {
        "status": "ready", "database": "ok", "migrations": migrate.head_revision(), "knowledge": "ok",
        "intents": len(app.extensions["klinik_engine"].current().kb.intents),
    }  # fmt: skip


def test_readyz_fails_while_the_database_is_down_and_recovers_with_it(request):
    """PostgreSQL behind a forwarding port that goes away and comes back, as a database server
    restarting or a network cut looks to the app."""
    url = make_url(request.getfixturevalue("postgres_url"))
    forwarder = servers.TcpForwarder(url.host, url.port)
    forwarder.start()
    app = create_app(app_config(url.set(port=forwarder.port).render_as_string(hide_password=False)))
    client = app.test_client()
    try:
        assert client.get("/readyz").status_code == 200
        forwarder.stop()
        down = client.get("/readyz")
        assert down.status_code == 503
        assert down.json == {"status": "not ready", "reason": "database unreachable", "database": "unreachable"}
        assert client.get("/healthz").status_code == 200  # the process is fine: no restart wanted
        forwarder.start()
        assert client.get("/readyz").json["status"] == "ready"
    finally:
        forwarder.stop()
        app.extensions["klinik_database"].dispose()


def test_readyz_fails_on_a_database_that_is_unreachable_from_the_start():
    app = create_app(app_config("postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=1"))
    assert app.test_client().get("/healthz").status_code == 200
    down = app.test_client().get("/readyz")
    assert (down.status_code, down.json["reason"]) == (503, "database unreachable")


def test_readyz_fails_while_the_schema_is_behind_the_code(tmp_path):
    """A deploy whose release step (`python -m bot db upgrade`) did not run."""
    database_url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = storage.make_engine(database_url)
    migrate.upgrade(engine, "0007")
    app = create_app(app_config(database_url))
    behind = app.test_client().get("/readyz")
    assert behind.status_code == 503
    assert behind.json == {
        "status": "not ready", "database": "ok", "migrations": "0007", "knowledge": "ok",
        "reason": "database schema is not at the code's migration head: run `python -m bot db upgrade`",
    }  # fmt: skip
    migrate.upgrade(engine)
    assert app.test_client().get("/readyz").status_code == 200
    engine.dispose()
    app.extensions["klinik_database"].dispose()
