"""What operators and load balancers ask: /healthz (the process answers), /readyz (it can serve
patients: database reachable, schema at the code's migration head, knowledge loaded) and
/metrics (Prometheus; behind a bearer token when METRICS_TOKEN is set)."""

from __future__ import annotations

import hmac

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Config
from bot.services import metrics
from bot.store import migrate

bp = Blueprint("ops", __name__)
# Why /readyz says no, by the first check that failed.
NOT_READY = {
    "database": "database unreachable",
    "migrations": "database schema is not at the code's migration head: run `python -m bot db upgrade`",
}


def init_app(app: Flask, config: Config, read_sessions: sessionmaker[Session]) -> None:
    app.extensions["klinik_head_revision"] = migrate.head_revision()
    app.extensions["klinik_metrics"] = metrics.database_registry(read_sessions)
    app.extensions["klinik_metrics_token"] = config.metrics_token
    app.register_blueprint(bp)


@bp.get("/healthz")
def healthz():
    """Liveness: the process serves requests. Nothing else, so a database outage never gets
    the web processes restarted."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    checks = dict(_checks())
    failed = next((name for name, (ok, _) in checks.items() if not ok), None)
    body = {name: value for name, (_, value) in checks.items()}
    if failed:
        return jsonify(status="not ready", reason=NOT_READY[failed], **body), 503
    return jsonify(status="ready", intents=len(current_app.extensions["klinik_engine"].current().kb.intents), **body)


def _checks():
    """(name, (ok, what was found)) in order; a check that cannot run is left out."""
    try:
        revision = migrate.current_revision(current_app.extensions["klinik_database"])
    except SQLAlchemyError:
        yield "database", (False, "unreachable")
        return
    yield "database", (True, "ok")
    yield "migrations", (revision == current_app.extensions["klinik_head_revision"], revision or "empty")
    engines = current_app.extensions["klinik_engine"]
    yield "knowledge", (True, "invalid: still serving the previous version" if engines.last_error else "ok")


@bp.get("/metrics")
def scrape():
    token = current_app.extensions["klinik_metrics_token"]
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if token and not (scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())):
        return Response("unauthorized\n", 401, {"WWW-Authenticate": 'Bearer realm="metrics"'}, mimetype="text/plain")
    return Response(metrics.exposition(current_app.extensions["klinik_metrics"]), content_type=metrics.CONTENT_TYPE)
