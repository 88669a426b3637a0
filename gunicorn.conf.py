"""gunicorn settings from the environment (gunicorn reads this file from the working directory)."""

import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# Twilio gives a webhook 15 seconds; a slow request should fail early and be retried.
graceful_timeout = 20
accesslog = None  # the app logs each message itself, with the phone number masked
errorlog = "-"
