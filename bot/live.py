"""The knowledge base, reloaded while the app runs.

Every gunicorn worker holds its own Engine. When a file under the knowledge directory changes
(staff taught the bot from the console, or someone edited the YAML), the next request that
looks notices it within `interval` seconds and builds a new Engine. A broken file never takes
the bot down: the old engine keeps serving and the problem is logged and kept in `last_error`
for /healthz and the console.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .core import knowledge
from .core.dialogue import Engine
from .core.knowledge import KnowledgeError

log = logging.getLogger("klinik.knowledge")


def _signature(directory: Path) -> tuple:
    files = []
    for path in sorted(directory.rglob("*.yaml")):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        files.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(files)


class LiveEngine:
    def __init__(self, directory: Path, build: Callable[[knowledge.KnowledgeBase], Engine], interval: float = 2.0):
        self.directory = Path(directory)
        self.build = build
        self.interval = interval
        self._lock = threading.Lock()
        self._signature = _signature(self.directory)
        self._engine = build(knowledge.load(self.directory))  # at start, an invalid KB is fatal
        self._checked = time.monotonic()
        self.last_error: str | None = None

    def current(self) -> Engine:
        if time.monotonic() - self._checked >= self.interval:
            self.refresh()
        return self._engine

    def refresh(self) -> bool:
        """Reload if the files changed; True when a new engine is serving."""
        with self._lock:
            self._checked = time.monotonic()
            signature = _signature(self.directory)
            if signature == self._signature:
                return False
            self._signature = signature
            try:
                engine = self.build(knowledge.load(self.directory))
            except KnowledgeError as error:
                self.last_error = error.report()
                log.error("knowledge base invalid; still serving the previous one", extra={"fields": {"problems": len(error.problems)}})
                return False
            self._engine, self.last_error = engine, None
            log.info("knowledge base reloaded", extra={"fields": {"intents": len(engine.kb.intents)}})
            return True


class FixedEngine:
    """The same interface over an engine that never changes (tests, the terminal chat)."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self.last_error = None

    def current(self) -> Engine:
        return self._engine

    def refresh(self) -> bool:
        return False


def live(engine_or_live) -> LiveEngine | FixedEngine:
    return engine_or_live if hasattr(engine_or_live, "current") else FixedEngine(engine_or_live)
