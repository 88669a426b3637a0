"""Webhook throughput: requests per second and latency of the full signed path (POST
/webhook/whatsapp with a valid signature, storage, dialogue, TwiML) under gunicorn on loopback,
measured with wrk, beside a bare Flask app returning fixed TwiML (bench/bare_app.py) and the
minimal correct webhook (bench/minimal_app.py: signature checked, one SQLite insert, fixed TwiML;
the baseline issue 17's target is a ratio of) under the same gunicorn settings; on SQLite and on
PostgreSQL, at several concurrency levels. A third baseline, the bot with storage taken out
(bench/engine_app.py), splits the gap into what the web layer and the dialogue engine cost and
what storage costs.

    python bench/webhook_throughput.py [--databases sqlite postgresql] [--connections 1 4 16 64]
                                       [--duration 10] [--workers 2] [--threads 4] [--json FILE]

Needs wrk (`apt-get install -y wrk`) and, for PostgreSQL, Debian's postgresql package (the
database `klinik_bench` on the server of scripts/test-postgres); installs nothing itself.

Requests are signed in advance: a signature covers the URL and every form field, so each
concurrency level gets its own file of signed requests, each with a new MessageSid (no request
is a duplicate delivery), from 200 patients, with the texts of tests/eval that the bot answers
itself (a chat handed to staff would leave the bot only acknowledging that patient's
messages, and the benchmark measure the acknowledgement). bench/wrk_signed.lua sends them in turn. The flood limit
(RATE_LIMIT_PER_MINUTE) is raised for the run, so that every request goes through the dialogue
engine rather than being silenced. wrk runs on the same machine as the server and takes CPU
from it: compare figures from one machine only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import servers  # noqa: E402
from corpus import answered_messages, load_average, machine  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from bot.core import knowledge  # noqa: E402
from bot.core.dialogue import Engine  # noqa: E402
from bot.store import storage  # noqa: E402
from bot.store.storage import Message  # noqa: E402

LUA = Path(__file__).resolve().parent / "wrk_signed.lua"
PATIENTS = 200
WARM_UP_SECONDS = 3


def signed_requests(path: Path, url: str, texts: list[str], count: int, label: str, seed: int) -> None:
    """`count` lines "signature<TAB>form" for wrk_signed.lua, each with a new MessageSid."""
    rng = random.Random(seed)
    validator = RequestValidator(servers.AUTH_TOKEN)
    with path.open("w") as out:
        for n in range(count):
            patient = f"+628130{rng.randrange(PATIENTS):07d}"
            form = {
                "MessageSid": f"SM{label}{n:0{32 - len(label)}d}",
                "AccountSid": "ACbench",
                "From": f"whatsapp:{patient}",
                "To": "whatsapp:+14155238886",
                "Body": rng.choice(texts),
                "NumMedia": "0",
                "ProfileName": "Pasien Uji",
                "WaId": patient.lstrip("+"),
            }
            out.write(f"{validator.compute_signature(url, form)}\t{urlencode(form)}\n")


def run_wrk(base: str, bodies: Path, connections: int, seconds: int) -> dict:
    threads = min(2, connections)
    command = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        base,
    ]
    env = dict(os.environ, BODIES=str(bodies), WRK_THREADS=str(threads))
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    raw = json.loads(line.removeprefix("RESULT "))
    errors = raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"]
    return {
        "connections": connections,
        "requests": raw["requests"],
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "non_2xx": raw["status_errors"],
        "socket_errors": errors,
        "repeated": raw["wraps"],
    }


def stored_inbound(database_url: str) -> int:
    engine = storage.make_engine(database_url)
    try:
        with storage.session_factory(engine)() as session:
            return session.execute(select(func.count(Message.id)).where(Message.direction == "in")).scalar_one()
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"])
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (production default: 2)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (production default: 4)")
    parser.add_argument("--requests", type=int, default=6000, help="signed requests prepared per measurement")
    parser.add_argument("--json", type=Path, help="also write the figures here (for bench/plot.py)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed. Install it with:  apt-get install -y wrk", file=sys.stderr)
        return 2
    if "postgresql" in args.databases:
        try:
            servers.postgres_server()
        except RuntimeError as error:
            print(
                f"{error}\nInstall it (apt-get install -y postgresql) or leave it out: --databases sqlite",
                file=sys.stderr,
            )
            return 3

    texts = answered_messages(Engine(knowledge.load(ROOT / "knowledge")))
    version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.splitlines()[0].split(" [")[0]
    print(f"machine: {machine()}; {load_average()} at the start")
    print(
        f"gunicorn: {args.workers} workers x {args.threads} threads (gunicorn.conf.py); {version},"
        f" {args.duration} s per figure\n"
    )
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="klinik-wrk-") as directory:
        folder = Path(directory)
        bodies = folder / "bodies.tsv"
        with servers.gunicorn(
            "sqlite://",
            folder / "bare.log",
            app="bench.bare_app:app",
            workers=args.workers,
            threads=args.threads,
            migrate=False,
        ) as base:
            signed_requests(bodies, f"{base}/webhook/whatsapp", texts, args.requests, "bare", 0)
            run_wrk(base, bodies, 4, WARM_UP_SECONDS)
            for connections in args.connections:
                rows.append({"app": "bare", "database": None, **run_wrk(base, bodies, connections, args.duration)})

        minimal_folder = folder / "minimal"
        minimal_folder.mkdir()
        with servers.gunicorn(
            f"sqlite:///{minimal_folder / 'minimal.db'}",
            folder / "minimal.log",
            app="bench.minimal_app:app",
            workers=args.workers,
            threads=args.threads,
            migrate=False,
        ) as base:
            signed_requests(bodies, f"{base}/webhook/whatsapp", texts, args.requests, "mwarm", 19)
            run_wrk(base, bodies, 4, WARM_UP_SECONDS)
            for index, connections in enumerate(args.connections):
                signed_requests(
                    bodies, f"{base}/webhook/whatsapp", texts, args.requests, f"m{connections}x", 20 + index
                )
                rows.append({"app": "minimal", "database": None, **run_wrk(base, bodies, connections, args.duration)})

        with servers.gunicorn(
            servers.sqlite_database(folder),
            folder / "engine.log",
            app="bench.engine_app:app",
            workers=args.workers,
            threads=args.threads,
        ) as base:
            signed_requests(bodies, f"{base}/webhook/whatsapp", texts, args.requests, "engine", 1)
            run_wrk(base, bodies, 4, WARM_UP_SECONDS)
            for connections in args.connections:
                rows.append({"app": "engine", "database": None, **run_wrk(base, bodies, connections, args.duration)})

        for database in args.databases:
            folder_db = folder / database
            folder_db.mkdir()
            url = (
                servers.sqlite_database(folder_db)
                if database == "sqlite"
                else servers.postgres_database("klinik_bench")
            )
            with servers.gunicorn(
                url,
                folder_db / "bot.log",
                workers=args.workers,
                threads=args.threads,
                migrate=False,
                RATE_LIMIT_PER_MINUTE="1000000",
            ) as base:
                signed_requests(bodies, f"{base}/webhook/whatsapp", texts, args.requests, "warm", 1)
                run_wrk(base, bodies, 4, WARM_UP_SECONDS)
                for index, connections in enumerate(args.connections):
                    signed_requests(
                        bodies, f"{base}/webhook/whatsapp", texts, args.requests, f"c{connections}x", 2 + index
                    )
                    rows.append(
                        {"app": "bot", "database": database, **run_wrk(base, bodies, connections, args.duration)}
                    )
            bot_rows = [r for r in rows if r["database"] == database]
            sent = sum(r["requests"] for r in bot_rows)
            print(f"{database}: {stored_inbound(url)} messages stored for {sent} measured requests (+ the warm-up)")

    bare = {r["connections"]: r for r in rows if r["app"] == "bare"}
    minimal = {r["connections"]: r for r in rows if r["app"] == "minimal"}
    print(
        f"\n{'app':<18} {'conn':>4} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}"
        f" {'non-2xx':>8} {'errors':>6} {'vs bare':>8} {'vs minimal':>10}"
    )
    for row in rows:
        name = {"bare": "bare Flask", "minimal": "minimal webhook", "engine": "bot, no storage"}.get(
            row["app"], f"bot, {row['database']}"
        )
        ratio = row["rps"] / bare[row["connections"]]["rps"]
        to_minimal = row["rps"] / minimal[row["connections"]]["rps"]
        flag = "  (requests repeated: too few prepared)" if row["app"] == "bot" and row["repeated"] else ""
        print(
            f"{name:<18} {row['connections']:>4} {row['rps']:>8.1f} {row['p50_ms']:>8.1f} {row['p90_ms']:>8.1f}"
            f" {row['p99_ms']:>8.1f} "
            f"{row['max_ms']:>8.1f} {row['non_2xx']:>8} {row['socket_errors']:>6} {ratio:>7.2f}x"
            f" {to_minimal:>9.2f}x{flag}"
        )
    print("\ngoal: the bot at >= 0.5x the bare app's requests/s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        settings = {"workers": args.workers, "threads": args.threads, "duration": args.duration, "wrk": version}
        args.json.write_text(
            json.dumps(
                {"machine": machine(), "load_at_end": load_average(), "settings": settings, "rows": rows}, indent=2
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
