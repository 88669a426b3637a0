"""Memory: the resident set size (RSS) of one process as a web worker builds up, from bare Python
with the app's imports, to the loaded knowledge base, to 10,000 messages received through the
Inbox (storage on SQLite + the dialogue engine) in-process; growth along the way shows a leak.

    python bench/memory.py [--messages 10000] [--patients 500] [--json FILE]

Also prints the time per message through the Inbox beside the dialogue engine alone on the
same messages (the difference is storage). The messages are the texts of tests/eval that the
bot answers itself (bench/corpus.py), from --patients patients; the flood limit is off.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def rss_mib() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB, from /proc/self/status."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def python_alone_mib() -> float:
    code = (
        "from pathlib import Path; "
        "print(next(l for l in Path('/proc/self/status').read_text().splitlines() if l.startswith('VmRSS')).split()[1])"
    )
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    stages: list[tuple[str, float, float | None]] = [("python alone (another process)", python_alone_mib(), None)]

    # Everything a web worker imports (app.py -> bot.web), before it loads anything.
    import servers
    from corpus import answered_messages, load_average, machine

    from bot.core import knowledge
    from bot.core.dialogue import Engine
    from bot.core.messages import ConversationState, Incoming
    from bot.services.inbox import InboundMessage, Inbox
    from bot.store import storage
    from bot.web import create_app  # noqa: F401 - imported for its imports (Flask, twilio)

    stages.append(("python + the app's imports (baseline)", *rss_mib()))
    engine = Engine(knowledge.load(ROOT / "knowledge"))
    stages.append(("knowledge base loaded, matcher built", *rss_mib()))

    texts = answered_messages(engine)
    rng = random.Random(3)
    plan = [(f"whatsapp:+628140{rng.randrange(args.patients):07d}", rng.choice(texts)) for _ in range(args.messages)]
    with tempfile.TemporaryDirectory(prefix="klinik-memory-") as directory:
        url = servers.sqlite_database(Path(directory))
        database = storage.make_engine(url)
        inbox = Inbox(storage.session_factory(database), engine, max_reply_length=1600, rate_limit_per_minute=10**9)
        checkpoints = {args.messages * k // 4 for k in (1, 2, 3, 4)}
        started = time.perf_counter()
        for number, (patient, text) in enumerate(plan, start=1):
            inbox.receive(
                InboundMessage(message_id=f"SMmem{number:029d}", sender=patient, body=text, profile_name="Pasien Uji")
            )
            if number in checkpoints:
                stages.append((f"after {number:,} messages through the Inbox", *rss_mib()))
        inbox_ms = (time.perf_counter() - started) * 1000 / len(plan)
        database.dispose()

    states: dict[str, ConversationState] = {}
    started = time.perf_counter()
    for patient, text in plan:
        states[patient] = engine.step(
            states.get(patient, ConversationState()), Incoming(text, profile_name="Pasien Uji")
        ).state
    engine_ms = (time.perf_counter() - started) * 1000 / len(plan)

    print(f"machine: {machine()}; {load_average()}")
    print(f"messages: {args.messages:,} from {args.patients} patients, {len(texts)} distinct texts\n")
    baseline = stages[1][1]
    print(f"{'stage':<46} {'RSS MiB':>8} {'vs baseline':>12} {'peak MiB':>9}")
    for name, rss, peak in stages:
        print(f"{name:<46} {rss:>8.1f} {rss - baseline:>+11.1f} {f'{peak:.1f}' if peak else '-':>9}")
    print(
        f"\ntime per message: {inbox_ms:.2f} ms through the Inbox (SQLite + engine),"
        f" {engine_ms:.2f} ms in the engine alone"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        rows = [{"stage": name, "rss_mib": rss, "peak_mib": peak} for name, rss, peak in stages]
        figures = {
            "machine": machine(),
            "load": load_average(),
            "stages": rows,
            "inbox_ms": inbox_ms,
            "engine_ms": engine_ms,
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
