"""WSGI entry point: `gunicorn app:app`. Only calls the factory."""

import sys

from bot import logs
from bot.config import Config
from bot.core.knowledge import KnowledgeError
from bot.web import create_app

config = Config.from_env()
logs.configure(config.log_level)
try:
    app = create_app(config)
except KnowledgeError as exc:  # refuse to start, with the same report as `python -m bot kb check`
    sys.exit(exc.report())
