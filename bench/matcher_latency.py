"""Matcher latency per message: p50/p99 on the shipped knowledge base and on inflated copies,
printed beside the cost of normalisation alone (the baseline, measured in the same run), and
how each figure grows with the size of the knowledge base (ratio to the first size, 1x).

    python bench/matcher_latency.py [--sizes 1 10 50] [--repeat 5] [--json FILE]

Messages are every labelled message under tests/eval (about 1,300 real-style texts); each
figure is a percentile over messages of the fastest of --repeat timings per message, in CPU
time of the matching thread. Each size
is measured "cold" (the word cache emptied before every run, so typo correction runs each
time) and "warm" (the cache filled, as in a long-running server). The inflated knowledge base adds generated
examples (shuffled words, typos, extra words) so that both the example count and the
vocabulary grow.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.core import knowledge  # noqa: E402
from bot.core.knowledge import Example  # noqa: E402
from bot.core.matcher import Matcher  # noqa: E402
from corpus import load_average, machine, messages  # noqa: E402


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
    print(f"messages: {len(texts)} labelled texts from tests/eval (+ one of {len(long_text)} characters)\n")
    header = f"{'KB':>4} {'examples':>8} {'vocab':>6} {'build ms':>8} | {'normalize p50/p99 ms':>20} | {'match cold p50/p99':>19} | {'match warm p50/p99':>19} | {'warm p99 / norm p99':>19} | {'5,000-char msg':>14}"
    print(header)
    print("-" * len(header))
    rows = []
    for factor in args.sizes:
        kb = inflate(base, factor)
        start = time.perf_counter()
        matcher = Matcher(kb)
        build_ms = (time.perf_counter() - start) * 1000
        examples = sum(len(i.examples) for i in kb.intents.values())
        # Warm-up: first calls allocate buffers and fill caches, and a CPU that was idle takes
        # a moment to reach full speed on this kind of shared machine.
        timed(matcher.match, texts * 3)
        normalize = timed(matcher.normalize.tokens, texts, args.repeat)
        warm = timed(matcher.match, texts, args.repeat, before=matcher.forget)
        cold = timed(matcher.match, texts, args.repeat, before=lambda: matcher.forget(words=True))
        long_ms = timed(matcher.match, [long_text], args.repeat, before=matcher.forget)[0] / 1e6
        n50, n99 = percentiles(normalize)
        c50, c99 = percentiles(cold)
        w50, w99 = percentiles(warm)
        print(
            f"{factor:>3}x {examples:>8} {len(matcher.vocab):>6} {build_ms:>8.0f} | {n50:>9.3f} / {n99:<8.3f} | "
            f"{c50:>8.3f} / {c99:<8.3f} | {w50:>8.3f} / {w99:<8.3f} | {w99 / n99:>18.1f}x | {long_ms:>14.3f}"
        )
        rows.append(dict(
            factor=factor, examples=examples, vocab=len(matcher.vocab), build_ms=build_ms,
            normalize_p50=n50, normalize_p99=n99, cold_p50=c50, cold_p99=c99, warm_p50=w50, warm_p99=w99, long_ms=long_ms,
        ))  # fmt: skip
        del matcher, kb

    first = rows[0]
    print(f"\ngrowth, as a multiple of the {first['factor']}x figures:")
    columns = ["examples", "build_ms", "normalize_p99", "cold_p50", "cold_p99", "warm_p50", "warm_p99", "long_ms"]
    print(f"{'KB':>4} " + " ".join(f"{c:>13}" for c in columns))
    for row in rows:
        print(f"{row['factor']:>3}x " + " ".join(f"{row[c] / first[c]:>12.2f}x" for c in columns))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        figures = {"machine": machine(), "load": load_average(), "messages": len(texts), "sizes": rows}
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
