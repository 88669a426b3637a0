"""A newcomer's first run, as the README tells it: `make run` while another program holds port
5000, then the README's curl example against the port it printed. `make` runs for real, with the
virtualenv of this test run as its .venv (its requirements are installed already, so pip only
checks them)."""

import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.request import urlopen

import pytest
from conftest import ROOT
from sqlalchemy import select

from bot.store import storage
from bot.store.storage import Conversation, Message

README = (ROOT / "README.md").read_text(encoding="utf-8")


def environment(**values) -> dict:
    """This environment as a newcomer's shell has it: without what an outer `make test` set."""
    return {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")} | values


def this_venv() -> Path:
    if sys.prefix == sys.base_prefix:
        pytest.fail("the tests must run from a virtualenv (make test makes .venv) for `make run` to use it")
    return Path(sys.prefix)


def readme_curl_example() -> str:
    """The README's curl command that posts a message to a local webhook, as written."""
    for block in re.findall(r"```sh\n(.*?)```", README, re.DOTALL):
        if block.startswith("curl ") and "/webhook/whatsapp" in block:
            return block
    raise AssertionError("the README has no curl example for the webhook")


@pytest.fixture
def port_5000_taken():
    """Port 5000 held by another program (this test, or whatever already has it)."""
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 5000))
        holder.listen()
    except OSError as error:
        assert error.errno == errno.EADDRINUSE, error
    yield
    holder.close()


def test_make_run_installs_only_the_runtime_and_make_test_adds_the_test_tools(tmp_path):
    """What `make` would do in a fresh clone (dry run: nothing is installed)."""
    fresh = tmp_path / "venv"
    run = subprocess.run(
        ["make", "-n", "run", f"VENV={fresh}"], cwd=ROOT, env=environment(), capture_output=True, text=True, check=True
    ).stdout
    assert f"-m venv {fresh}" in run
    assert "-r requirements.txt" in run and "requirements-dev.txt" not in run
    test = subprocess.run(
        ["make", "-n", "test", f"VENV={fresh}"], cwd=ROOT, env=environment(), capture_output=True, text=True, check=True
    ).stdout
    assert "-r requirements.txt" in test and "-r requirements-dev.txt" in test and "-m pytest" in test


def test_make_run_with_port_5000_taken_serves_elsewhere_and_the_readme_curl_works(tmp_path, port_5000_taken):
    assert shutil.which("curl"), "curl is needed for the README's example (.ci/run installs it)"
    database = f"sqlite:///{tmp_path / 'klinik.db'}"
    env = environment(DATABASE_URL=database, TWILIO_AUTH_TOKEN="", TWILIO_ACCOUNT_SID="", BOT_DEV_MODE="")
    with (tmp_path / "stderr").open("w") as errors:
        process = subprocess.Popen(
            ["make", "run", f"VENV={this_venv()}"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=errors, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            banner = ""
            for line in process.stdout:
                banner += line
                if line.startswith("Ctrl-C"):
                    break
            report = banner + (tmp_path / "stderr").read_text()
            taken = re.search(
                r"^Port 5000 is taken by another program, so this runs on port (\d+)\.$", banner, re.MULTILINE
            )
            assert taken, report
            port = taken.group(1)
            assert port != "5000"
            health = re.search(r"^  health +(\S+)", banner, re.MULTILINE).group(1)
            assert health == f"http://127.0.0.1:{port}/healthz", report
            assert urlopen(health).status == 200
            reply = subprocess.run(
                ["bash", "-c", readme_curl_example()],
                env=dict(os.environ, PORT=port),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert reply.returncode == 0, reply.stderr
            assert "<Response><Message" in reply.stdout and "elektrolit" in reply.stdout, reply.stdout
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    engine = storage.make_engine(database)
    with storage.session_factory(engine)() as session:
        (conversation,) = session.execute(select(Conversation)).scalars()
        (body,) = session.execute(select(Message.body).where(Message.direction == "in")).scalars()
    engine.dispose()
    assert conversation.address == "whatsapp:+6281200000001"  # the "+" arrived
    assert body == "knp betis kedutan trs"
