"""Understanding latency per message, the intent model beside the old hand-tuned matcher:
p50/p99 on the shipped knowledge base and on inflated copies, with the cost of normalisation
alone as the floor (all measured in the same run); then start-up with a warm and a cold model
cache, a full retrain, and a worker's memory.

    python bench/matcher_latency.py [--sizes 1 10 50] [--repeat 5] [--json FILE]

Messages are every labelled message under tests/eval; each figure is a percentile over
messages of the fastest of --repeat timings per message, in CPU time of the matching thread.
"Cold" empties the repaired-word memo before every run (typo correction runs each time),
"warm" keeps it, as in a long-running server. The inflated knowledge base adds generated
examples (shuffled words, typos, extra words) so that the example count, the vocabulary and
the model's n-grams all grow. The old matcher is read from git history (bench/legacy.py).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from corpus import load_average, machine, messages  # noqa: E402
from legacy import LEGACY_COMMIT, legacy_matcher  # noqa: E402

from bot.core import knowledge  # noqa: E402
from bot.core.knowledge import Example  # noqa: E402
from bot.core.matcher import Matcher  # noqa: E402
from bot.core.understand import ModelSource, train  # noqa: E402


def typo(word: str, rng: random.Random) -> str:
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        return word[:i] + word[i + 1 :]
    if kind == 1:
        return word[:i] + word[i] + word[i:]
    return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]


def inflate(kb, factor: int, seed: int = 7):
    """A copy of the knowledge base with `factor` times as many examples per intent."""
    if factor <= 1:
        return kb
    rng = random.Random(seed)
    vocabulary = sorted({w for i in kb.intents.values() for e in i.examples for w in e.text.split()})
    intents = {}
    for intent_id, intent in kb.intents.items():
        examples = list(intent.examples)
        for _ in range(len(intent.examples) * (factor - 1)):
            words = rng.choice(intent.examples).text.split()
            rng.shuffle(words)
            words = [typo(w, rng) if rng.random() < 0.3 else w for w in words]
            words += rng.sample(vocabulary, k=rng.randrange(0, 3))
            examples.append(Example(" ".join(words), intent.file, 0))
        intents[intent_id] = replace(intent, examples=tuple(examples))
    return replace(kb, intents=intents)


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(samples_ns)
    p50 = statistics.median(ordered) / 1e6
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1e6
    return p50, p99


# CPU time of this thread: the work a message costs, without the time this shared machine
# spends running other processes (wall-clock percentiles jump by 50% from run to run here).
CLOCK = time.thread_time_ns


def timed(function, texts: list[str], repeat: int = 1, before=None) -> list[int]:
    """Per message, the fastest of `repeat` timings: the cost of the message itself, not of
    whatever else this shared machine did during one run."""
    out = []
    for text in texts:
        runs = []
        for _ in range(repeat):
            if before:
                before()
            start = CLOCK()
            function(text)
            runs.append(CLOCK() - start)
        out.append(min(runs))
    return out


def measure(name: str, factor: int, build, texts: list[str], long_text: str, repeat: int) -> dict:
    """Build one matcher and time it on every message, cold and warm."""
    start = time.perf_counter()
    matcher = build()
    build_s = time.perf_counter() - start
    # Warm-up: first calls allocate buffers and fill caches, and a CPU that was idle takes
    # a moment to reach full speed on this kind of shared machine.
    timed(matcher.match, texts * 2)
    normalize = timed(matcher.normalize.split, texts, repeat)  # split: the normalizer without its memo of texts
    warm = timed(matcher.match, texts, repeat, before=matcher.forget)
    cold = timed(matcher.match, texts, repeat, before=lambda: matcher.forget(words=True))
    long_ms = timed(matcher.match, [long_text], repeat, before=matcher.forget)[0] / 1e6
    n50, n99 = percentiles(normalize)
    c50, c99 = percentiles(cold)
    w50, w99 = percentiles(warm)
    return dict(
        matcher=name, factor=factor, build_s=build_s, normalize_p50=n50, normalize_p99=n99,
        cold_p50=c50, cold_p99=c99, warm_p50=w50, warm_p99=w99, long_ms=long_ms,
    )  # fmt: skip


STARTUP = """
import resource, sys, time
started = time.perf_counter()
from bot.web import create_app
from bot.config import Config
app = create_app(Config.from_env())
elapsed = time.perf_counter() - started
rss = int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) / 1024
print(f"{elapsed:.3f} {rss:.1f} {int('sklearn' in sys.modules)}")
"""


def startup(cache: Path, database: Path) -> tuple[float, float, bool]:
    """(seconds to create the app, worker RSS in MiB, scikit-learn imported) in a new process."""
    import os

    env = {**os.environ, "MODEL_CACHE_DIR": str(cache), "DATABASE_URL": f"sqlite:///{database}", "BOT_DEV_MODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", STARTUP], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    seconds, rss, sklearn = done.stdout.split()
    return float(seconds), float(rss), sklearn == "1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--repeat", type=int, default=5, help="timings per message (the fastest is kept)")
    parser.add_argument("--json", type=Path, help="also write the figures here (for bench/plot.py)")
    args = parser.parse_args()

    base = knowledge.load(ROOT / "knowledge")
    texts = messages()
    long_text = ("saya mau cerita dulu ya kak, " * 172) + "kenapa betis saya kedutan terus?"
    print(f"machine: {machine()}; {load_average()}")
    print(f"messages: {len(texts)} labelled texts from tests/eval (+ one of {len(long_text)} characters)")
    print(f"old matcher: bot/core/matcher.py at {LEGACY_COMMIT}, run on today's knowledge base\n")
    header = (
        f"{'matcher':<12} {'KB':>4} {'examples':>8} {'build s':>8} | {'normalize p50/p99 ms':>20} | "
        f"{'match cold p50/p99':>19} | {'match warm p50/p99':>19} | {'5,000-char msg':>14}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for factor in args.sizes:
        kb = inflate(base, factor)
        examples = sum(len(i.examples) for i in kb.intents.values())
        builders = [("intent model", lambda kb=kb: Matcher(kb, ModelSource()))]
        if legacy_matcher(base) is not None:
            builders.append(("old matcher", lambda kb=kb: legacy_matcher(kb)))
        for name, build in builders:
            row = measure(name, factor, build, texts, long_text, args.repeat)
            row["examples"] = examples
            rows.append(row)
            print(
                f"{name:<12} {factor:>3}x {examples:>8} {row['build_s']:>8.1f} | "
                f"{row['normalize_p50']:>9.3f} / {row['normalize_p99']:<8.3f} | "
                f"{row['cold_p50']:>8.3f} / {row['cold_p99']:<8.3f} | "
                f"{row['warm_p50']:>8.3f} / {row['warm_p99']:<8.3f} | "
                f"{row['long_ms']:>14.3f}"
            )
        del kb

    print("\nthe intent model as a multiple of the old matcher (same size, same run):")
    columns = ["build_s", "cold_p50", "cold_p99", "warm_p50", "warm_p99", "long_ms"]
    print(f"{'KB':>4} " + " ".join(f"{c:>11}" for c in columns))
    by = {(r["matcher"], r["factor"]): r for r in rows}
    for factor in args.sizes:
        new, old = by[("intent model", factor)], by.get(("old matcher", factor))
        if old:
            print(f"{factor:>3}x " + " ".join(f"{new[c] / old[c]:>10.2f}x" for c in columns))

    training = Matcher(base).training
    retrain = min(_seconds(lambda: train(training)) for _ in range(3))
    with tempfile.TemporaryDirectory() as folder:
        cache, database = Path(folder) / "cache", Path(folder) / "klinik.db"
        cold_start = startup(cache, database)
        warm_start = min((startup(cache, database) for _ in range(3)), key=lambda r: r[0])
    print(f"\nfull retrain on the shipped knowledge ({len(training.docs)} examples): {retrain:.2f} s (fastest of 3)")
    print(f"app start (python -c 'create_app()', a new process), cold cache: {cold_start[0]:.2f} s,"
          f" RSS {cold_start[1]:.0f} MiB{' (scikit-learn loaded)' if cold_start[2] else ''}")  # fmt: skip
    print(f"app start, warm cache: {warm_start[0]:.2f} s (fastest of 3), worker RSS {warm_start[1]:.0f} MiB, "
          f"scikit-learn {'loaded' if warm_start[2] else 'not loaded'}")  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        figures = {
            "machine": machine(), "load": load_average(), "messages": len(texts), "legacy_commit": LEGACY_COMMIT,
            "sizes": rows,
            "retrain_s": retrain, "start_cold_s": cold_start[0], "start_warm_s": warm_start[0],
            "worker_rss_mib": warm_start[1],
        }  # fmt: skip
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def _seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
