"""The knowledge base, reloaded while the app runs.

Every gunicorn worker holds its own Engine. When a file under the knowledge directory changes
(someone edited the YAML) or staff taught the bot an example from the console (kept in the
database, read through `taught`), the next request that looks notices it within `interval`
seconds and builds a new Engine, intent model included (from the cache on disk when another
worker trained it already). A broken file or a model that fails to train never takes the bot
down: the old engine keeps serving and the problem is logged and kept in `last_error` for
/healthz and the console.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Protocol

from bot.core import knowledge
from bot.core.dialogue import Engine
from bot.core.knowledge import KnowledgeError

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


class TaughtSource(Protocol):
    def version(self) -> Hashable:
        """Changes whenever the taught examples change (cheap: asked every `interval`)."""

    def load(self) -> Sequence[knowledge.Taught] | None:
        """Every taught example; None when they cannot be read now."""


class LiveEngine:
    def __init__(
        self,
        directory: Path,
        build: Callable[[knowledge.KnowledgeBase], Engine],
        interval: float = 2.0,
        taught: TaughtSource | None = None,
    ):
        self.directory = Path(directory)
        self.build = build
        self.interval = interval
        self.taught = taught
        self._lock = threading.Lock()
        self._taught: Sequence[knowledge.Taught] = ()
        self._signature: tuple = ((), None)
        self._signature = self._current_signature()
        self._engine = build(self._load())  # at start, an invalid KB is fatal
        self._checked = time.monotonic()
        self.last_error: str | None = None

    def current(self) -> Engine:
        if time.monotonic() - self._checked >= self.interval:
            self.refresh()
        return self._engine

    def refresh(self) -> bool:
        """Reload if the files or the taught examples changed; True when a new engine is serving."""
        with self._lock:
            self._checked = time.monotonic()
            signature = self._current_signature()
            if signature == self._signature:
                return False
            self._signature = signature
            try:
                engine = self.build(self._load())
            except KnowledgeError as error:
                self.last_error = error.report()
                log.error(
                    "knowledge base invalid; still serving the previous one",
                    extra={"fields": {"problems": len(error.problems)}},
                )
                return False
            except Exception as error:  # a model that failed to train: the last good one answers
                self.last_error = f"the intent model could not be built: {error}"
                log.exception("intent model not rebuilt; still serving the previous one")
                return False
            self._engine, self.last_error = engine, None
            log.info("knowledge base reloaded", extra={"fields": {"intents": len(engine.kb.intents)}})
            return True

    def _current_signature(self) -> tuple:
        taught = self.taught.version() if self.taught else None
        if taught is None:
            taught = self._signature[1]  # the database cannot tell: keep what is loaded
        return _signature(self.directory), taught

    def _load(self) -> knowledge.KnowledgeBase:
        kb = knowledge.load(self.directory)
        if self.taught is None:
            return kb
        taught = self.taught.load()
        if taught is None:
            # Unreadable now: keep the examples loaded last, and forget the version, so that
            # the first version read once the database answers again brings a reload.
            self._signature = (self._signature[0], None)
        else:
            self._taught = taught
        kb, skipped = knowledge.with_taught(kb, self._taught)
        for item, why in skipped:
            log.warning("taught example left out", extra={"fields": {"id": item.id, "intent": item.intent, "why": why}})
        return kb


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
