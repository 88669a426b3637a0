"""The command line, run as a user runs it: `python -m bot ...` in a subprocess."""

import json
import os
import re
import subprocess
import sys
from http.cookiejar import CookieJar
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, build_opener, urlopen

import pytest
from conftest import EVAL, FIXTURES, ROOT


def bot(*args, stdin=None, knowledge=None, env=None):
    command = [sys.executable, "-m", "bot"]
    if knowledge:
        command += ["--knowledge", str(knowledge)]
    environment = dict(os.environ, **(env or {}))
    return subprocess.run(
        command + list(args), input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=120, env=environment
    )


def test_kb_check_passes_on_the_shipped_knowledge():
    result = bot("kb", "check")
    assert result.returncode == 0, result.stderr
    assert "OK: " in result.stdout
    assert "EXAMPLE values" in result.stdout


def test_kb_check_warns_at_the_line_of_an_answer_that_promises_a_cure(kb_copy):
    path = kb_copy / "intents" / "care.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("      Terasa nyeri tajam", "      Pasti sembuh. Terasa nyeri tajam", 1), encoding="utf-8"
    )
    line = next(n for n, t in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if "Pasti sembuh." in t)
    result = bot("kb", "check", knowledge=kb_copy)
    assert result.returncode == 0, result.stderr
    expected = (
        f"warning: knowledge/intents/care.yaml:{line}: intent 'acupuncture_pain' answer promises a cure: 'Pasti sembuh'"
    )
    assert expected in result.stdout


def test_kb_check_reports_file_and_line_without_a_traceback(kb_copy):
    path = kb_copy / "intents" / "calf.yaml"
    path.write_text(path.read_text().replace("    title: Kram betis\n", "    title: Kram betis\n    titel: x\n"))
    result = bot("kb", "check", knowledge=kb_copy)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "intents/calf.yaml:" in result.stderr and "unknown key 'titel'" in result.stderr


@pytest.mark.parametrize(
    "command", [["chat"], ["evaluate", str(EVAL / "tune.yaml")], ["replay", str(FIXTURES / "conversations")]]
)
def test_every_command_refuses_to_start_on_an_invalid_knowledge_base(kb_copy, command):
    (kb_copy / "clinic.yaml").write_text("name: [unclosed\n")
    result = bot(*command, stdin="", knowledge=kb_copy)
    assert result.returncode == 2
    assert "clinic.yaml:1: invalid YAML" in result.stderr
    assert "Traceback" not in result.stderr


def test_chat_reads_messages_and_prints_replies():
    result = bot("chat", "--debug", stdin="pagi kak\nknp betis kedutan trs\nkalau kopi?\nkaki tiba2 lumpuh\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "asisten otomatis" in out
    assert "[answer causes" in out
    assert "[answer cause_caffeine" in out
    assert "119" in out and "[action: handoff:urgent]" in out


def test_chat_without_storage_shows_no_raw_placeholders_for_the_stored_data():
    result = bot("chat", stdin="data saya\n")
    assert result.returncode == 0, result.stderr
    assert "Ringkasan data Anda" in result.stdout and "{" not in result.stdout


def test_chat_via_webhook_talks_to_a_dev_server_and_stores_the_conversation(tmp_path):
    database = tmp_path / "chat.db"
    env = {"DATABASE_URL": f"sqlite:///{database}", "TWILIO_AUTH_TOKEN": "", "BOT_DEV_MODE": ""}
    result = bot(
        "chat", "--via-webhook", "--phone", "+6281200000042", stdin="halo kak\nknp betis kedutan trs\n", env=env
    )
    assert result.returncode == 0, result.stderr
    assert "asisten otomatis" in result.stdout and "elektrolit" in result.stdout
    assert "NOT signature-checked" in result.stderr
    again = bot("chat", "--via-webhook", "--phone", "+6281200000042", stdin="8\n", env=env)
    assert "asisten otomatis" not in again.stdout  # the same patient, remembered in the database
    assert database.exists()


def test_dev_serves_simulator_console_and_webhook_and_prints_a_console_login(tmp_path):
    env = dict(
        os.environ,
        DATABASE_URL=f"sqlite:///{tmp_path / 'dev.db'}",
        TWILIO_AUTH_TOKEN="",
        BOT_DEV_MODE="",
        TWILIO_ACCOUNT_SID="",
    )
    with (tmp_path / "stderr").open("w") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "dev", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            cwd=ROOT,
            env=env,
        )
        try:
            banner = ""
            for line in process.stdout:
                banner += line
                if line.startswith("Ctrl-C"):
                    break
            urls = dict(
                re.findall(r"^  (WhatsApp simulator|staff console|webhook|health) +(\S+)", banner, re.MULTILINE)
            )
            assert set(urls) == {"WhatsApp simulator", "staff console", "webhook", "health"}, (
                banner + (tmp_path / "stderr").read_text()
            )
            assert "sending nowhere (no Twilio credentials)" in banner and "unsigned requests accepted" in banner
            password = re.search(r"login: dev / (\S+) +\(dev-only account", banner).group(1)
            assert "Simulator WhatsApp" in urlopen(urls["WhatsApp simulator"]).read().decode()  # dev mode: no login
            browser = build_opener(HTTPCookieProcessor(CookieJar()))
            login = browser.open(urls["staff console"])
            token = re.search(r'name="csrf_token" value="([^"]+)"', login.read().decode()).group(1)
            form = urlencode({"csrf_token": token, "name": "dev", "password": password}).encode()
            queue = browser.open(login.url, data=form)
            assert queue.url == urls["staff console"] and "Antrean" in queue.read().decode()
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert password not in (tmp_path / "stderr").read_text()  # shown once, never logged


def test_db_upgrade_creates_the_schema(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}
    assert bot("db", "current", env=env).stdout.strip() == "empty database"
    result = bot("db", "upgrade", env=env)
    assert result.returncode == 0 and "schema at revision" in result.stdout
    assert bot("db", "current", env=env).stdout.strip() == result.stdout.split()[-1]


def test_evaluate_prints_a_readable_table():
    result = bot("evaluate", str(EVAL / "tune.yaml"))
    assert result.returncode == 0, result.stderr
    for heading in (
        "accuracy",
        "wrong answers",
        "clarify rate",
        "red_flag recall",
        "out of scope handled",
        "precision",
        "targets:",
    ):
        assert heading in result.stdout


def test_evaluate_json_has_the_documented_shape(tmp_path):
    labelled = tmp_path / "set.yaml"
    labelled.write_text(
        '- {text: "knp betis kedutan", intent: causes}\n- {text: "jual pulsa murah", intent: fallback}\n'
        '- {text: "kedutan", intent: about_twitching}\n'
    )
    result = bot("evaluate", str(labelled), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"file", "summary", "results"}
    assert report["summary"]["total"] == 3
    for key in (
        "accuracy",
        "wrong_answer_rate",
        "clarify_rate",
        "per_intent",
        "confusions",
        "red_flag_recall",
        "out_of_scope_handled",
    ):
        assert key in report["summary"]
    first = report["results"][0]
    assert set(first) == {"text", "expected", "intent", "decision", "score", "candidates", "triage", "answered"}
    assert first["answered"] == ["causes"]
    assert first["triage"] in ("emergency", "doctor", "none")
    assert first["intent"] == "causes" and first["decision"] == "answer"
    assert {r["decision"] for r in report["results"]} <= {"answer", "clarify", "fallback"}
    assert report["results"][1]["decision"] == "fallback"


def test_evaluate_rejects_a_malformed_labelled_file(tmp_path):
    labelled = tmp_path / "bad.yaml"
    labelled.write_text('- {text: "halo", intent: greeting}\n- {txt: "oops", intent: greeting}\n')
    result = bot("evaluate", str(labelled))
    assert result.returncode == 2
    assert f"{labelled}:2:" in result.stderr


def test_replay_passes_on_the_shipped_fixtures():
    result = bot("replay", str(FIXTURES / "conversations"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "turns passed" in result.stdout and "FAILED" not in result.stdout


def test_replay_fails_with_a_readable_diff(tmp_path):
    fixture = tmp_path / "wrong.yaml"
    fixture.write_text(
        "name: deliberately wrong\n"
        "turns:\n"
        '  - user: "knp betis kedutan trs"\n'
        "    expect: {intent: pricing, contains: [\"tidak ada teks ini\"]}\n"
    )
    result = bot("replay", str(fixture))
    assert result.returncode == 1
    assert "FAIL turn 1 (line 3)" in result.stdout
    assert "intent: expected 'pricing', got 'causes'" in result.stdout
    assert "reply should contain 'tidak ada teks ini'" in result.stdout
    assert "1 FAILED" in result.stdout
