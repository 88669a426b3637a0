"""WSGI entry point: `gunicorn app:app`. Only calls the factory."""

from bot.web import create_app

app = create_app()
