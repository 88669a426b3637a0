"""Soak: the load test's long form. Thousands of signed messages from hundreds of simulated
patients over real HTTP against gunicorn on loopback, with retries, concurrent duplicates and
out-of-order deliveries mixed in; then every message is checked in the database (tests/load.py).

    python bench/soak.py --patients 300 --messages 5000 [--database sqlite|postgresql]

Prints throughput and latency (figures, never pass/fail) and the verification; exits 1 when
the database shows a problem. Flooding: when a patient would send more than the default 20
messages (RATE_LIMIT_PER_MINUTE), the limit is raised for the run, and said so, since the
flood limit is not what is soaked here. PostgreSQL uses the database `klinik_bench` on the
test server (scripts/test-postgres), never the suite's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import load  # noqa: E402
import servers  # noqa: E402
from corpus import load_average, machine  # noqa: E402

DEFAULT_RATE_LIMIT = 20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--messages", type=int, default=5000, help="deliveries, duplicates included (about)")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--clients", type=int, default=16, help="patients sending at the same time")
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()

    plan = load.make_plan(args.patients, args.messages, seed=args.seed)
    print(f"machine: {machine()}; {load_average()}")
    most = max(Counter(d.patient for d in plan.messages().values()).values())
    rate_limit = max(DEFAULT_RATE_LIMIT, most + 1)
    print(
        f"plan: {plan.deliveries} deliveries of {len(plan.messages())} messages from {len(plan.patients)} patients "
        f"(up to {most} each); {plan.retries} retries, {plan.concurrent_duplicates} concurrent duplicates, "
        f"{plan.reversed_pairs} reversed pairs, {plan.concurrent_pairs} concurrent pairs"
    )
    if rate_limit != DEFAULT_RATE_LIMIT:
        print(f"RATE_LIMIT_PER_MINUTE={rate_limit} for this run (a patient sends {most} messages)")
    print(f"server: gunicorn, {args.workers} workers x {args.threads} threads, {args.database}; {args.clients} clients")

    with tempfile.TemporaryDirectory(prefix="klinik-soak-") as directory:
        folder = Path(directory)
        try:
            url = (
                servers.sqlite_database(folder)
                if args.database == "sqlite"
                else servers.postgres_database("klinik_bench")
            )
        except RuntimeError as error:
            print(f"{error}\nInstall it (apt-get install -y postgresql) or use --database sqlite", file=sys.stderr)
            return 3
        log_path = folder / "gunicorn.log"
        with servers.gunicorn(
            url,
            log_path,
            workers=args.workers,
            threads=args.threads,
            migrate=False,
            RATE_LIMIT_PER_MINUTE=str(rate_limit),
        ) as base:
            results, seconds = load.run(base, plan, servers.AUTH_TOKEN, threads=args.clients)
        started = time.perf_counter()
        report = load.verify(url, plan, results)
        errors = [
            line for line in log_path.read_text().splitlines() if '"level": "ERROR"' in line or "Traceback" in line
        ]

    print(load.latency_summary(results, seconds))
    print(
        f"database: {report.inbound} inbound, {report.outbound} replies, {report.conversations} conversations, "
        f"{report.silent} answered with silence (flooding); checked in {time.perf_counter() - started:.1f} s"
    )
    problems = report.problems + [f"server log: {line[:200]}" for line in errors[:10]]
    if problems:
        print(f"PROBLEMS ({len(problems)}):")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print("verified: every MessageSid stored once, one reply group each, duplicates answered alike, no 5xx")
    return 0


if __name__ == "__main__":
    sys.exit(main())
