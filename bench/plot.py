"""Plots for docs/PERFORMANCE.md from the JSON the benchmarks write (`--json`):
latency vs knowledge-base size (bench/matcher_latency.py) and throughput and p99 latency vs
concurrency (bench/webhook_throughput.py).

    python bench/plot.py [FOLDER]    # default docs/perf: reads *.json there, writes PNGs there

Needs matplotlib (requirements-bench.txt; not part of the runtime).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def latency_vs_kb(figures: dict, target: Path) -> None:
    sizes = figures["sizes"]
    examples = [row["examples"] for row in sizes]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, label, style in [
        ("warm_p99", "match p99, warm cache", "o-"),
        ("warm_p50", "match p50, warm cache", "o--"),
        ("cold_p99", "match p99, cold cache", "s-"),
        ("cold_p50", "match p50, cold cache", "s--"),
        ("normalize_p99", "normalization only p99 (baseline)", "^:"),
    ]:
        ax.plot(examples, [row[key] for row in sizes], style, label=label)
    for row in sizes:
        ax.annotate(f"{row['factor']}x", (row["examples"], row["warm_p99"]), textcoords="offset points", xytext=(4, 6))
    ax.set_xscale("log")
    ax.set_xlabel("examples in the knowledge base (log scale)")
    ax.set_ylabel("CPU ms per message")
    ax.set_title(f"Matcher latency vs knowledge-base size ({figures['messages']} messages)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.text(0.01, 0.01, figures["machine"], fontsize=7, color="gray")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(target, dpi=110)
    plt.close(fig)


def throughput_vs_concurrency(figures: dict, target: Path) -> None:
    rows = figures["rows"]
    series: dict[str, list[dict]] = {}
    for row in rows:
        name = {"bare": "bare Flask (fixed TwiML)", "minimal": "minimal webhook", "engine": "bot, no storage"}.get(
            row["app"], f"bot, {row['database']}"
        )
        series.setdefault(name, []).append(row)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, points in series.items():
        points.sort(key=lambda r: r["connections"])
        connections = [p["connections"] for p in points]
        left.plot(connections, [p["rps"] for p in points], "o-", label=name)
        right.plot(connections, [p["p99_ms"] for p in points], "o-", label=name)
    ticks = sorted({row["connections"] for row in rows})
    for ax, label in ((left, "requests per second"), (right, "p99 latency, ms")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_yscale("log")
        ax.set_xlabel("concurrent connections (wrk -c)")
        ax.set_ylabel(f"{label} (log scale)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    settings = figures["settings"]
    left.set_title("Throughput, signed POST /webhook/whatsapp")
    right.set_title("Tail latency")
    fig.text(
        0.01,
        0.01,
        f"{figures['machine']}; gunicorn {settings['workers']} workers x {settings['threads']} threads; "
        f"{settings['duration']} s per point",
        fontsize=7,
        color="gray",
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(target, dpi=110)
    plt.close(fig)


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "perf"
    made = []
    latency = folder / "matcher_latency.json"
    if latency.exists():
        latency_vs_kb(json.loads(latency.read_text()), folder / "latency_vs_kb.png")
        made.append("latency_vs_kb.png")
    throughput = folder / "webhook_throughput.json"
    if throughput.exists():
        throughput_vs_concurrency(json.loads(throughput.read_text()), folder / "throughput_vs_concurrency.png")
        made.append("throughput_vs_concurrency.png")
    print(f"wrote {', '.join(made) or 'nothing (no benchmark JSON found)'} in {folder}")


if __name__ == "__main__":
    main()
