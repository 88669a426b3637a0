"""gunicorn settings from the environment (gunicorn reads this file from the working directory)."""

import glob
import os
import shutil
import tempfile

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# Twilio gives a webhook 15 seconds; a slow request should fail early and be retried.
graceful_timeout = 20
accesslog = None  # the app logs each message itself, with the phone number masked
errorlog = "-"

# Prometheus counts of every worker (prometheus_client's multiprocess mode): each worker writes
# its own files in this directory and /metrics, in whichever worker answers, adds them all up.
# Set here, in the master, so that the workers see it before they import the app. A directory
# of our own unless PROMETHEUS_MULTIPROC_DIR names one (it must be this server's alone).
_own_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _own_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="klinik-metrics-")
_metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]


def on_starting(server):
    """Counts start from zero with each server (Prometheus reads that as a counter reset)."""
    os.makedirs(_metrics_dir, exist_ok=True)
    for path in glob.glob(os.path.join(_metrics_dir, "*.db")):
        os.remove(path)


def child_exit(server, worker):
    """A worker ended: its counts stay (they happened), its live gauges go."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, _metrics_dir)


def on_exit(server):
    if _own_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
