"""The web package: Flask blueprints (staff.py, simulator.py, ops.py) and the app factory,
which wires configuration, knowledge, storage and the channels (bot.channels)."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from flask import Flask, jsonify
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from werkzeug.middleware.proxy_fix import ProxyFix

from bot import channels
from bot.config import Config
from bot.core import knowledge
from bot.core.dialogue import Engine
from bot.models import DiskModels
from bot.services.accounts import Accounts
from bot.services.console import Console, Templates
from bot.services.handoff import HandoffDesk, StaffSettings
from bot.services.inbox import Inbox
from bot.services.insights import Insights
from bot.services.learning import TaughtExamples, Teacher
from bot.services.live import LiveEngine
from bot.services.simulator import Simulator
from bot.store import migrate, storage
from bot.web import calendar_feed as calendar_web
from bot.web import ops as ops_web
from bot.web import simulator as simulator_web
from bot.web import staff as staff_web

# The package's templates/ and static/ folders are bot/'s (shared by the console and the simulator).
BOT_DIR = Path(__file__).resolve().parent.parent

log = logging.getLogger("klinik.app")


def create_app(config: Config | None = None) -> Flask:
    """Build the app. Refuses to start (KnowledgeError) on an invalid knowledge base, and
    outside dev mode (ExampleValuesError) on the shipped example clinic facts."""
    config = config or Config.from_env()
    _refuse_example_values(config)
    app = Flask(__name__, root_path=str(BOT_DIR))
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    if config.trusted_proxies:
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=config.trusted_proxies, x_proto=config.trusted_proxies, x_host=config.trusted_proxies
        )

    database = storage.make_engine(config.database_url)
    _prepare_database(config, database)
    sessions = storage.session_factory(database)
    expiry = timedelta(minutes=config.booking_expiry_minutes)
    models = DiskModels(config.model_cache_dir)
    engines = LiveEngine(
        config.knowledge_dir,
        lambda kb: Engine(kb, booking_expiry=expiry, models=models),
        config.knowledge_reload_seconds,
        taught=TaughtExamples(storage.read_only_sessions(database)),
    )
    staff = StaffSettings(config.staff_whatsapp_numbers, config.staff_alert_template_id, config.public_base_url)
    inbox = Inbox(
        sessions,
        engines,
        rate_limit_per_minute=config.rate_limit_per_minute,
        desk=HandoffDesk(engines, staff),
        retention_days=config.retention_days,
        satisfaction_template_id=config.satisfaction_template_id,
    )
    app.extensions["klinik_engine"] = engines
    app.extensions["klinik_database"] = database
    app.extensions["klinik_sessions"] = sessions
    channels.init_app(app, inbox, config)
    teacher = Teacher(sessions, engines)
    staff_web.init_app(
        app,
        config,
        Console(
            sessions,
            engines,
            Templates(config.patient_reply_template_id, config.satisfaction_template_id),
            rules=channels.delivery_rules(),
        ),
        teacher,
        Accounts(sessions),
        Insights(sessions, engines, teacher),
    )
    simulator_web.init_app(app, config, Simulator(sessions, engines))
    ops_web.init_app(app, config, storage.read_only_sessions(database))
    calendar_web.init_app(app, config, storage.read_only_sessions(database))

    @app.errorhandler(OperationalError)
    def database_unavailable(_error):
        # A channel retries a webhook that fails with 5xx: say so instead of showing a traceback.
        log.error("database unavailable", exc_info=True)
        return jsonify(error="database unavailable, retry later"), 503

    return app


def _refuse_example_values(config: Config) -> None:
    if config.dev_mode:
        return
    problems = knowledge.example_values(config.knowledge_dir)
    if problems and not config.allow_example_values:
        raise knowledge.ExampleValuesError(problems)
    if problems:
        log.warning("ALLOW_EXAMPLE_VALUES=1: patients read the shipped example clinic facts, marked (contoh)")


def _prepare_database(config: Config, database) -> None:
    if database.url.get_backend_name() == "sqlite" and database.url.database not in (None, "", ":memory:"):
        Path(database.url.database).parent.mkdir(parents=True, exist_ok=True)
    if config.dev_mode:
        migrate.upgrade(database)
        return
    try:
        current = migrate.current_revision(database)
    except SQLAlchemyError:
        log.error("database unreachable at start; /readyz will say so")
        return
    if current != migrate.head_revision():
        log.error(
            "database schema is not current: run `python -m bot db upgrade`",
            extra={"fields": {"current": current, "head": migrate.head_revision()}},
        )
