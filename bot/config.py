"""Configuration from environment variables, with defaults that run locally with no accounts."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Config:
    knowledge_dir: Path = field(default_factory=lambda: Path(os.environ.get("KNOWLEDGE_DIR", ROOT / "knowledge")))
