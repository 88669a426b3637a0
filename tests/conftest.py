"""Shared fixtures: the shipped knowledge base, an engine over it, and editable copies."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest

from bot.core import knowledge
from bot.core.dialogue import Engine
from bot.core.matcher import Matcher

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge"
EVAL = ROOT / "tests" / "eval"
FIXTURES = ROOT / "tests" / "fixtures"


@functools.cache
def shipped_kb() -> knowledge.KnowledgeBase:
    """The shipped knowledge base, loaded once (also for strategies built at import time)."""
    return knowledge.load(KNOWLEDGE)


@pytest.fixture(scope="session")
def kb():
    return shipped_kb()


@pytest.fixture(scope="session")
def matcher(kb):
    return Matcher(kb)


@pytest.fixture(scope="session")
def engine(kb, matcher):
    return Engine(kb, matcher)


@pytest.fixture
def kb_copy(tmp_path) -> Path:
    """A writable copy of the shipped knowledge directory, for tests that break or edit it."""
    target = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, target)
    return target


# -- databases --------------------------------------------------------------------------------

import os  # noqa: E402
import warnings  # noqa: E402

# No test sends choices as templates unless it registers them itself (tests/test_content_buttons.py):
# a content_sids.json registered on this machine must not change the other tests' replies.
os.environ["CONTENT_SIDS_FILE"] = str(ROOT / "tests" / "no-content-sids.json")

import servers  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bot.store import storage  # noqa: E402

_POSTGRES_SKIPPED: list[str] = []


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server: $TEST_DATABASE_URL, or one started by scripts/test-postgres.

    Skipped (loudly) only outside CI when PostgreSQL is not installed; in CI it must run."""
    url = os.environ.get("TEST_DATABASE_URL")
    own_database = not url
    if not url:
        try:
            url = servers.postgres_server(f"klinik_test_{os.getpid()}")
        except RuntimeError as error:
            reason = str(error)
            if os.environ.get("CI"):
                pytest.fail(f"{reason} (CI must test PostgreSQL)")
            _POSTGRES_SKIPPED.append(reason)
            warnings.warn(reason, stacklevel=2)
            pytest.skip(reason)
    servers.reset_postgres(url)
    yield url
    if own_database:
        _drop_database(url)


def _drop_database(url: str) -> None:
    """This run's database goes with it (another checkout's run may be using the server)."""
    server = storage.make_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    server.dispose()


def _empty_postgres(url: str) -> None:
    engine = storage.make_engine(url)
    with engine.begin() as connection:
        tables = ", ".join(table.name for table in storage.Base.metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


def fresh_database(request, kind: str, directory: Path) -> str:
    """An empty, migrated database: a SQLite file in `directory`, or the PostgreSQL server."""
    if kind == "sqlite":
        return servers.sqlite_database(directory)
    url = request.getfixturevalue("postgres_url")
    _empty_postgres(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """An empty, migrated database: a SQLite file, then the real PostgreSQL server."""
    return fresh_database(request, request.param, tmp_path)


def pytest_terminal_summary(terminalreporter):
    if _POSTGRES_SKIPPED:
        terminalreporter.write_sep("!", "PostgreSQL tests were SKIPPED", red=True, bold=True)
        terminalreporter.write_line(_POSTGRES_SKIPPED[0], red=True)
        terminalreporter.write_line("Install it (apt-get install -y postgresql) or set TEST_DATABASE_URL.", red=True)


# -- the web app ------------------------------------------------------------------------------

from twilio.request_validator import RequestValidator  # noqa: E402

from bot.config import Config  # noqa: E402
from bot.web import create_app  # noqa: E402

AUTH_TOKEN = servers.AUTH_TOKEN
PUBLIC_BASE = "https://klinik.example"


def app_config(database_url: str, **overrides) -> Config:
    """The tests' configuration. The Twilio channel's settings are environment variables (it
    reads them from Config.environ): give them as twilio_auth_token="..." and the like."""
    environ = dict(
        os.environ,
        TWILIO_ACCOUNT_SID="ACtest",
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_WHATSAPP_FROM="whatsapp:+14155238886",
    )
    for key in [key for key in overrides if key.startswith("twilio_")]:
        environ[key.upper()] = overrides.pop(key)
    values = dict(
        knowledge_dir=KNOWLEDGE,
        database_url=database_url,
        environ=environ,
        public_base_url=PUBLIC_BASE,
        dev_mode=False,
        # The tests answer with the shipped knowledge, example clinic facts included
        # (tests/test_web.py checks that production refuses them).
        allow_example_values=True,
    )
    values.update(overrides)
    return Config(**values)


@pytest.fixture
def app(database_url):
    application = create_app(app_config(database_url))
    yield application
    application.extensions["klinik_database"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


def sign(path: str, form: dict, token: str = AUTH_TOKEN, base: str = PUBLIC_BASE) -> str:
    return RequestValidator(token).compute_signature(base + path, form)


def signed_post(client, path: str, form: dict, **sign_options):
    return client.post(path, data=form, headers={"X-Twilio-Signature": sign(path, form, **sign_options)})


# -- Twilio's REST API and time ---------------------------------------------------------------


@pytest.fixture
def recorder():
    """A local stand-in for Twilio's REST API (tests/twilio_recorder.py)."""
    from twilio_recorder import start_recorder

    recorder, server = start_recorder()
    yield recorder
    server.shutdown()


@pytest.fixture
def clock():
    from helpers import Clock

    return Clock()


# -- no unmasked phone number in any log line of the whole run ---------------------------------

import logging  # noqa: E402
import re  # noqa: E402

from bot.logs import StructuredFormatter  # noqa: E402

# An Indonesian mobile number in full (+62 8xx..., 62 8xx..., 08xx...), not inside a longer word.
UNMASKED_PHONE = re.compile(r"(?<![\w*])(?:\+?62|0)8\d{7,12}(?![\d*])")


class PhoneWatch(logging.Handler):
    """Sees every log record of the run at INFO and above. A leak is an unmasked number in a
    formatted line (what production writes), or in the raw message or fields our own code
    passed to a `klinik.*` logger (numbers must be masked before they reach the logger)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.formatter_ = StructuredFormatter()
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        texts = [self.formatter_.format(record)]
        if record.name.startswith("klinik"):
            fields = getattr(record, "fields", None) or {}
            texts.append(" ".join([record.getMessage(), *(str(v) for v in fields.values())]))
        for line in texts:
            if UNMASKED_PHONE.search(line):
                self.leaks.append(f"{record.name}: {line[:300]}")


PHONE_WATCH = PhoneWatch()


def pytest_configure(config):
    root = logging.getLogger()
    root.addHandler(PHONE_WATCH)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)


def pytest_sessionfinish(session, exitstatus):
    if PHONE_WATCH.leaks:
        session.exitstatus = 1
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter:
            reporter.write_sep(
                "!", f"UNMASKED PHONE NUMBERS IN {len(PHONE_WATCH.leaks)} LOG LINES", red=True, bold=True
            )
            for leak in PHONE_WATCH.leaks[:20]:
                reporter.write_line(leak, red=True)


# -- a real browser ---------------------------------------------------------------------------

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven by Playwright (no browser download); in CI it must run."""
    if not Path(CHROMIUM).exists():
        reason = f"Chromium not found at {CHROMIUM} (apt-get install -y chromium; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()
