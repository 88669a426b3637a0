"""What the benchmarks share: the machine they ran on and the messages they send."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    """CPU model, cores, memory, operating system and Python, on one line."""
    try:
        kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        memory = f"{kib / 1024**2:.0f} GiB RAM"
    except (OSError, StopIteration):
        memory = "unknown RAM"
    try:
        system = platform.freedesktop_os_release().get("PRETTY_NAME", platform.system())
    except OSError:
        system = platform.system()
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, {memory}, {system}, {platform.machine()},"
        f" Python {platform.python_version()}"
    )


def load_average() -> str:
    """The 1/5/15-minute load averages: on a shared machine, read every figure beside them."""
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def messages() -> list[str]:
    """Every labelled message under tests/eval (about 1,300 texts written the way patients type)."""
    texts = []
    for path in sorted((ROOT / "tests" / "eval").glob("*.yaml")):
        texts += [item["text"] for item in yaml.safe_load(path.read_text(encoding="utf-8"))]
    return texts


def answered_messages(engine) -> list[str]:
    """The messages the bot answers itself, without handing the chat to staff: once a chat is
    handed over the bot only acknowledges it, and a benchmark would measure the acknowledgement."""
    kb = engine.kb
    texts = []
    for text in messages():
        match = engine.matcher.match(text)
        intent = kb.intents.get(match.intent)
        if match.decision.value == "answer" and intent is not None and not intent.action:
            texts.append(text)
    return texts
