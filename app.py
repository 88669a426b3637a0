"""WSGI entry point: `gunicorn app:app`. Only calls the factory."""

import sys

from bot.core.knowledge import KnowledgeError
from bot.web import create_app

try:
    app = create_app()
except KnowledgeError as exc:  # refuse to start, with the same report as `python -m bot kb check`
    sys.exit(exc.report())
