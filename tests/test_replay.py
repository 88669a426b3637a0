"""Conversation fixtures replayed against the engine and against a live webhook over HTTP, and
the replay checker itself."""

import dataclasses
import os
import subprocess
import sys

import pytest
from conftest import AUTH_TOKEN, FIXTURES, ROOT, app_config
from helpers import serving
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.channels.twilio.client import TEST_NUMBER_PREFIX, WebhookClient, WebhookReply, fake_patient_number
from bot.core.knowledge import REQUIRED_INTENTS
from bot.quality import replay
from bot.store.storage import Conversation
from bot.web import create_app

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


def test_every_intent_about_the_care_has_a_fixture_with_a_follow_up(kb):
    """Issue 19: each intent of knowledge/intents/care.yaml is answered, then asked further."""
    care = {i.id for i in kb.intents.values() if i.file.endswith("care.yaml")}
    followed = set()
    for path in FIXTURE_FILES:
        turns = replay.load_fixture(path).turns
        followed |= {turn.expect.get("intent") for turn in turns[:-1]}
    assert len(care) == 17 and care <= followed, care - followed


def test_checker_reports_each_kind_of_mismatch():
    observed = replay.Observed(("Halo! Ada yang bisa dibantu?",), "greeting", "answer", "fuzzy", ("handoff:urgent",))
    expect = {
        "intent": "menu",
        "decision": "clarify",
        "contains": ["jadwal"],
        "not_contains": ["halo"],
        "actions": [],
        "replies": 2,
    }
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


# -- clocks, and replaying against a live webhook -----------------------------------------------

FIXED_CLOCK = [p for p in FIXTURE_FILES if any(t.fixed_clock for t in replay.load_fixture(p).turns)]


@pytest.mark.parametrize("path", [p for p in FIXTURE_FILES if p not in FIXED_CLOCK], ids=lambda p: p.stem)
def test_fixtures_without_a_fixed_clock_behave_the_same_at_any_hour(engine, path):
    """What makes them replayable live: a fixture that depends on the time must say `now:`."""
    fixture = replay.load_fixture(path)
    for moment in replay.probe_moments():
        results = replay.run_fixture(replay.at_clock(fixture, moment), replay.engine_conversation(engine))
        assert all(r.passed for r in results), f"at {moment}:\n" + replay.format_results(results)


@pytest.fixture
def live(database_url):
    """A signed webhook over HTTP; PUBLIC_BASE_URL unset, so it checks the URL it is called at."""
    app = create_app(app_config(database_url, public_base_url=""))
    with serving(app) as base:
        yield app, f"{base}/webhook/whatsapp"
    app.extensions["klinik_database"].dispose()


def conversations(app) -> list[str]:
    with Session(app.extensions["klinik_database"]) as session:
        return list(session.execute(select(Conversation.address)).scalars())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_fixture_replays_live_and_what_cannot_be_seen_is_reported(live):
    app, url = live
    client = WebhookClient(url, auth_token=AUTH_TOKEN)
    results = []
    for path in FIXTURE_FILES:
        results += replay.run_fixture(
            replay.load_fixture(path), replay.webhook_conversation(client, fake_patient_number())
        )
    assert all(r.passed for r in results), replay.format_results(results)
    played = [r for r in results if not r.skipped]
    assert len(played) > 40
    for result in results:
        turn = result.turn
        if turn.fixed_clock:
            assert result.skipped == "needs a fixed clock (now/at): offline only"
        elif turn.event:
            assert result.skipped == "event case_closed is a staff action: offline only"
    # Checked from the headers, not skipped over: every kind of expectation but `booking`.
    checked = {key for r in played for key in r.turn.expect if key not in r.unchecked}
    assert {"intent", "decision", "reason", "actions", "contains", "replies", "paused"} <= checked
    assert all(r.unchecked == ["booking"] for r in played if "booking" in r.turn.expect)
    # One patient per fixture (the privacy fixture's erased conversation is anonymous).
    numbers = [n for n in conversations(app) if not n.startswith("erased:")]
    assert len(numbers) == len({r.fixture.path for r in played}) == len(set(numbers))
    assert all(n.startswith(f"whatsapp:{TEST_NUMBER_PREFIX}") for n in numbers)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_live_replay_from_the_command_line_reports_per_turn(live, tmp_path):
    _, url = live
    (tmp_path / "a_wrong.yaml").write_text(
        "name: a wrong expectation, seen in the headers\n"
        "turns:\n"
        '  - user: "knp betis kedutan trs"\n'
        "    expect: {intent: pricing, decision: answer}\n"
        '  - user: "mau booking"\n'
        '    profile_name: "Tono"\n'
        "    expect: {booking_step: name_confirm, actions: [start_booking], booking: {}}\n"
        '  - user: "ya"\n'
        '    at: "2026-11-25 10:01"\n'
        "    expect: {booking_step: complaint}\n"
        '  - user: "batal"\n'
    )
    env = dict(os.environ, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    command = [sys.executable, "-m", "bot", "replay", str(tmp_path), "--url", url]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL turn 1 (line 3): 'knp betis kedutan trs'" in result.stdout
    assert "intent: expected 'pricing', got 'causes'" in result.stdout
    assert "PASS turn 2 (line 5): 'mau booking'\n" in result.stdout
    assert "not checked live: booking" in result.stdout
    assert "SKIP turn 3 (line 8) and the 1 after it: needs a fixed clock (now/at): offline only" in result.stdout
    assert result.stdout.rstrip().endswith(
        "1/2 turns passed in 1 fixtures; 2 turns skipped (offline only); 1 expectations not checked live; 1 FAILED"
    )

    forged = subprocess.run(
        command, capture_output=True, text=True, cwd=ROOT, env=dict(env, TWILIO_AUTH_TOKEN="not-the-token"), timeout=120
    )
    assert forged.returncode == 1
    assert "HTTP 403 from the webhook (is TWILIO_AUTH_TOKEN the server's" in forged.stdout


def test_a_turn_may_be_skipped_by_the_conversation_with_the_rest_of_its_fixture(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text('name: f\nturns:\n  - user: "a"\n  - user: "b"\n    at: "2026-11-25 11:00"\n  - user: "c"\n')
    fixture = replay.load_fixture(path)
    assert [t.fixed_clock for t in fixture.turns] == [False, True, False]

    def conversation(turn):
        if turn.fixed_clock:
            raise replay.Skip("needs a fixed clock")
        return dataclasses.replace(replay.NOTHING, replies=("ok",))

    results = replay.run_fixture(fixture, conversation)
    assert [r.skipped for r in results] == [None, "needs a fixed clock", "needs a fixed clock"]
    assert all(r.passed for r in results)
    assert (
        replay.format_results(results).splitlines()[-1]
        == "1/1 turns passed in 1 fixtures; 2 turns skipped (offline only)"
    )


def test_a_webhook_without_the_headers_leaves_all_but_the_replies_unchecked(tmp_path):
    class OlderServer:
        def send(self, sender, text, profile_name=None, **fields):
            return WebhookReply(200, ("Halo! Ada yang bisa dibantu?",), "<Response/>")

    path = tmp_path / "f.yaml"
    path.write_text('name: f\nturns:\n  - user: "halo"\n    expect: {intent: menu, contains: ["ada yang bisa"]}\n')
    (result,) = replay.run_fixture(
        replay.load_fixture(path), replay.webhook_conversation(OlderServer(), fake_patient_number())
    )
    assert result.passed and result.unchecked == ["intent"]
    assert "not checked live: intent" in replay.format_results([result])
