"""Command line: `python -m bot chat | evaluate | replay | kb check`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import evaluation, replay
from .config import Config
from .core import knowledge
from .core.dialogue import Engine
from .core.messages import ConversationState, Incoming, describe_action

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


def load_engine(directory: Path) -> Engine:
    try:
        return Engine(knowledge.load(directory))
    except knowledge.KnowledgeError as exc:
        raise CliError(exc.report()) from None


def cmd_chat(args, out=sys.stdout, inp=sys.stdin) -> int:
    engine = load_engine(args.knowledge)
    interactive = inp.isatty()
    if interactive:
        print("Klinik-bot local chat: type as a patient would; /quit or Ctrl-D to stop.\n", file=out)
    state = ConversationState()
    while True:
        if interactive:
            print("You> ", end="", file=out, flush=True)
        line = inp.readline()
        if not line or line.strip() in ("/quit", "/exit"):
            break
        turn = engine.step(state, Incoming(line.rstrip("\n")))
        state = turn.state
        for reply in turn.replies:
            print(f"Bot> {reply.text}\n", file=out)
        if args.debug and turn.match:
            m = turn.match
            top = ", ".join(f"{c.intent} {c.score:.2f}" for c in m.candidates[:3])
            print(f"  [{m.decision.value} {m.intent} {m.score:.2f} {m.reason}; {top}]", file=out)
        for action in turn.actions:
            print(f"  [action: {describe_action(action)}]", file=out)
    return 0


def cmd_evaluate(args, out=sys.stdout) -> int:
    engine = load_engine(args.knowledge)
    reports = []
    missed = False
    for path in args.files:
        try:
            items = evaluation.load_labelled(path)
            results = evaluation.run(engine, items)
        except (evaluation.LabelledSetError, OSError) as exc:
            raise CliError(str(exc)) from None
        summary = evaluation.summarize(results)
        missed = missed or bool(evaluation.target_failures(summary))
        reports.append((path, summary, results))
    if args.json:
        payload = [
            {"file": str(path), "summary": summary, "results": [r.as_dict() for r in results]}
            for path, summary, results in reports
        ]
        json.dump(payload[0] if len(payload) == 1 else payload, out, ensure_ascii=False, indent=1)
        out.write("\n")
    else:
        for path, summary, results in reports:
            print(evaluation.format_report(str(path), summary, results, show_errors=args.errors), file=out)
            print(file=out)
    return EXIT_FAILED if args.check and missed else 0


def cmd_replay(args, out=sys.stdout) -> int:
    engine = load_engine(args.knowledge)
    try:
        fixtures = [replay.load_fixture(p) for p in replay.fixture_paths(args.path)]
    except replay.FixtureError as exc:
        raise CliError(str(exc)) from None
    if not fixtures:
        raise CliError(f"{args.path}: no fixtures (*.yaml) found")
    results = []
    for fixture in fixtures:
        results.extend(replay.run_fixture(fixture, replay.engine_conversation(engine)))
    print(replay.format_results(results, verbose=args.verbose), file=out)
    return 0 if all(r.passed for r in results) else EXIT_FAILED


def cmd_tune(args, out=sys.stdout) -> int:
    from . import tuning

    engine = load_engine(args.knowledge)
    items = []
    for path in args.files:
        if Path(path).name.startswith("heldout"):
            raise CliError(f"{path}: the held-out split must never be used for tuning")
        try:
            items += evaluation.load_labelled(path)
        except (evaluation.LabelledSetError, OSError) as exc:
            raise CliError(str(exc)) from None

    def progress(done, total):
        print(f"\r  weights {done}/{total}", end="", file=sys.stderr, flush=True)

    trials = tuning.tune(engine.kb, items, max_wrong=args.max_wrong, progress=progress, clarify_value=args.clarify_value)
    print(file=sys.stderr)
    print(f"{len(trials)} trials on {len(items)} messages; best first ('ok' = targets met):", file=out)
    print(tuning.format_trials(trials, args.top), file=out)
    return 0


def cmd_kb_check(args, out=sys.stdout) -> int:
    errors, warnings = knowledge.check(args.knowledge)
    for warning in warnings:
        print(f"warning: {warning}", file=out)
    if errors:
        raise CliError(knowledge.KnowledgeError(errors).report())
    kb = knowledge.load(args.knowledge)
    examples = sum(len(i.examples) for i in kb.intents.values())
    print(f"OK: {len(kb.intents)} intents, {examples} examples, {len(kb.danger_signs)} danger signs", file=out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Klinik-bot command line")
    parser.add_argument("--knowledge", type=Path, default=None, help="knowledge directory (default: $KNOWLEDGE_DIR or ./knowledge)")
    sub = parser.add_subparsers(dest="command", required=True)

    chat = sub.add_parser("chat", help="talk to the bot in the terminal")
    chat.add_argument("--debug", action="store_true", help="show intent, decision and score of each reply")
    chat.set_defaults(func=cmd_chat)

    ev = sub.add_parser("evaluate", help="accuracy report on labelled messages")
    ev.add_argument("files", nargs="+", help="YAML list of {text, intent}")
    ev.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    ev.add_argument("--errors", type=int, default=30, help="how many misses to list (default 30)")
    ev.add_argument("--check", action="store_true", help="exit 1 when a target of the core issue is missed")
    ev.set_defaults(func=cmd_evaluate)

    rp = sub.add_parser("replay", help="run conversation fixtures")
    rp.add_argument("path", help="fixture file or directory")
    rp.add_argument("--verbose", action="store_true", help="list passing turns too")
    rp.set_defaults(func=cmd_replay)

    tn = sub.add_parser("tune", help="grid-search matcher weights and thresholds on labelled messages")
    tn.add_argument("files", nargs="+", help="labelled YAML files (never the held-out split)")
    tn.add_argument("--top", type=int, default=10, help="how many settings to print")
    tn.add_argument("--max-wrong", type=float, default=0.025, help="highest acceptable wrong-answer rate")
    tn.add_argument("--clarify-value", type=float, default=None, help="worth of a clarify question that offers the right topic, 0..1 (default 0.5)")
    tn.set_defaults(func=cmd_tune)

    kb = sub.add_parser("kb", help="knowledge base tools")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True)
    check = kb_sub.add_parser("check", help="validate knowledge/*.yaml")
    check.set_defaults(func=cmd_kb_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.knowledge is None:
        args.knowledge = Config().knowledge_dir
    try:
        return args.func(args)
    except CliError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
