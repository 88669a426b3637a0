"""Flask application factory. The WhatsApp webhook is added by the webhook adapter."""

from __future__ import annotations

from flask import Flask, jsonify

from .config import Config
from .core import knowledge
from .core.dialogue import Engine


def create_app(config: Config | None = None) -> Flask:
    """Build the app; refuses to start (KnowledgeError) when the knowledge base is invalid."""
    config = config or Config()
    app = Flask(__name__)
    engine = Engine(knowledge.load(config.knowledge_dir))
    app.extensions["klinik_engine"] = engine

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok", intents=len(engine.kb.intents))

    return app
