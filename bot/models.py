"""Trained intent models cached on disk, keyed by a hash of everything they are trained from.

A cold start trains (a few seconds) and writes the model here; every later start with the same
knowledge and settings reads it back in milliseconds, without importing scikit-learn. A file
that cannot be read or does not make a model is retrained and replaced; files are written
whole (a temporary file renamed into place), so a crash never leaves half a model. Models are
numpy archives read with allow_pickle=False: a cache file can never run code.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from bot.core.understand import IntentModel, ModelSource, Training, train

log = logging.getLogger("klinik.models")
PREFIX = "intent-model-"
# Older models kept beside the newest (a reload may go back to the previous knowledge).
KEEP = 4


class DiskModels(ModelSource):
    """Models in memory first, then in `directory`, then trained (and written there)."""

    def __init__(self, directory: str | Path):
        super().__init__()
        self.directory = Path(directory)
        # What the last load did, for `python -m bot kb check`.
        self.last = ""

    def path(self, key: str) -> Path:
        return self.directory / f"{PREFIX}{key}.npz"

    def load(self, key: str, training: Training) -> IntentModel:
        path = self.path(key)
        why = "not cached yet"
        try:
            with np.load(path, allow_pickle=False) as arrays:
                model = IntentModel.from_arrays(arrays)
            self.last = f"read from {path}"
            return model
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            why = f"the cached file was unreadable ({str(error)[:120]})"
            log.warning(
                "cached intent model unreadable; training it again",
                extra={"fields": {"file": path.name, "error": str(error)[:200]}},
            )
        started = time.perf_counter()
        model = train(training)
        self._save(path, model)
        self.last = f"trained in {time.perf_counter() - started:.1f} s ({why}), cached in {path}"
        return model

    def _save(self, path: Path, model: IntentModel) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".npz")
            try:
                with os.fdopen(handle, "wb") as file:
                    np.savez(file, **model.arrays())
                os.replace(temporary, path)
            finally:
                if os.path.exists(temporary):
                    os.unlink(temporary)
        except OSError as error:
            log.warning(
                "intent model not cached",
                extra={"fields": {"directory": str(self.directory), "error": str(error)[:200]}},
            )
            return
        self._prune(path)

    def _prune(self, newest: Path) -> None:
        """Keep the newest few models; older ones belong to knowledge that is gone."""
        try:
            models = sorted(self.directory.glob(f"{PREFIX}*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
            for old in [p for p in models if p != newest][KEEP:]:
                old.unlink(missing_ok=True)
        except OSError:
            pass  # another worker pruned at the same time
