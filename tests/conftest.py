"""Shared fixtures: the shipped knowledge base, an engine over it, and editable copies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.core import knowledge
from bot.core.dialogue import Engine
from bot.core.matcher import Matcher

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge"
EVAL = ROOT / "tests" / "eval"
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session")
def kb():
    return knowledge.load(KNOWLEDGE)


@pytest.fixture(scope="session")
def matcher(kb):
    return Matcher(kb)


@pytest.fixture(scope="session")
def engine(kb, matcher):
    return Engine(kb, matcher)


@pytest.fixture
def kb_copy(tmp_path) -> Path:
    """A writable copy of the shipped knowledge directory, for tests that break or edit it."""
    target = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, target)
    return target
