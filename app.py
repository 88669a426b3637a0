"""WSGI entry point: `gunicorn app:app`. Only calls the factory."""

from gunicorn.errors import AppImportError

from bot import logs
from bot.config import Config
from bot.core.knowledge import KnowledgeError
from bot.web import create_app

config = Config.from_env()
logs.configure(config.log_level)
try:
    app = create_app(config)
except KnowledgeError as exc:
    # Refuse to start, with the same report as `python -m bot kb check`. As AppImportError,
    # gunicorn prints it and stops, instead of booting a new worker every few seconds.
    raise AppImportError(exc.report()) from None
