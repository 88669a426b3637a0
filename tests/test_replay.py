"""Conversation fixtures replayed against the engine, and the replay checker itself."""

import pytest

from bot import replay
from bot.core.knowledge import REQUIRED_INTENTS
from conftest import FIXTURES

FIXTURE_FILES = replay.fixture_paths(FIXTURES / "conversations")


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.stem)
def test_fixture_replays_green(engine, path):
    fixture = replay.load_fixture(path)
    results = replay.run_fixture(fixture, replay.engine_conversation(engine))
    assert all(r.passed for r in results), replay.format_results(results)


def test_fixtures_cover_every_intent_and_dialogue_feature():
    turns = [turn for path in FIXTURE_FILES for turn in replay.load_fixture(path).turns]
    intents = {turn.expect.get("intent") for turn in turns}
    assert set(REQUIRED_INTENTS) <= intents
    reasons = {str(turn.expect.get("reason")) for turn in turns}
    decisions = {turn.expect.get("decision") for turn in turns}
    actions = {a for turn in turns for a in turn.expect.get("actions") or []}
    assert {"answer", "clarify", "fallback"} <= decisions
    assert {"option", "empty", "media"} <= reasons
    assert {"handoff:urgent", "handoff:human_agent", "start_booking"} <= actions


def test_checker_reports_each_kind_of_mismatch():
    observed = replay.Observed(("Halo! Ada yang bisa dibantu?",), "greeting", "answer", "fuzzy", ("handoff:urgent",))
    expect = {"intent": "menu", "decision": "clarify", "contains": ["jadwal"], "not_contains": ["halo"], "actions": [], "replies": 2}
    problems = replay.check_turn(expect, observed)
    assert problems == [
        "intent: expected 'menu', got 'greeting'",
        "decision: expected 'clarify', got 'answer'",
        "reply should contain 'jadwal'",
        "reply should not contain 'halo'",
        "actions: expected [], got ['handoff:urgent']",
        "replies: expected 2 messages, got 1",
    ]
    assert replay.check_turn({"intent": "greeting", "contains": "HALO"}, observed) == []


def test_malformed_fixture_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nturns:\n  - user: halo\n    expect: {intnt: greeting}\n")
    with pytest.raises(replay.FixtureError, match=r"bad\.yaml:4: expect: unknown key 'intnt'"):
        replay.load_fixture(path)
