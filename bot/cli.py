"""Command line: `python -m bot dev | chat | serve | evaluate | replay | kb check | ...`."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import socket
import sys
from pathlib import Path

from bot.config import Config
from bot.core import knowledge
from bot.core.dialogue import Engine
from bot.core.messages import ConversationState, EraseData, Handoff, Incoming, ReportData, StaffView, describe_action
from bot.core.render import fill
from bot.quality import evaluation, replay
from bot.services import privacy

EVAL_DIR = Path(__file__).resolve().parent.parent / "tests" / "eval"
# Evaluation sets that are never tuned on: their figures mean something only while unseen.
HELD_OUT = ("heldout", "hard", "triage", "two_questions")
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


def load_engine(directory: Path) -> Engine:
    """An engine over a knowledge directory, its intent model from the cache on disk."""
    from bot.models import DiskModels

    try:
        return Engine(knowledge.load(directory), models=DiskModels(Config.from_env().model_cache_dir))
    except knowledge.KnowledgeError as exc:
        raise CliError(exc.report()) from None


def _repl(out, inp, banner: str, respond) -> None:
    """Read patient lines until EOF or /quit; `respond(line)` prints the bot's side."""
    interactive = inp.isatty()
    if interactive:
        print(banner + "\n", file=out)
    while True:
        if interactive:
            print("You> ", end="", file=out, flush=True)
        line = inp.readline()
        if not line or line.strip() in ("/quit", "/exit"):
            return
        respond(line.rstrip("\n"))


def cmd_chat(args, out=sys.stdout, inp=sys.stdin) -> int:
    if args.via_webhook is not None:
        return _chat_via_webhook(args, out, inp)
    engine = load_engine(args.knowledge)
    state = ConversationState()
    staff = StaffView()  # no storage: a handoff gives the chat to (imaginary) staff until /close

    def respond(line: str) -> None:
        nonlocal state, staff
        if line.strip() == "/close":
            state, staff = state.resumed(), StaffView()
            print("  [case closed: the bot answers everything again]", file=out)
            return
        turn = engine.step(state, Incoming(line), staff=staff)
        state = turn.state
        if any(isinstance(action, EraseData) for action in turn.actions):
            staff = StaffView()  # erasure closes the case
        elif any(isinstance(action, Handoff) for action in turn.actions):
            staff = StaffView(has_chat=True)
        stored_nothing = any(isinstance(action, ReportData) for action in turn.actions)
        for reply in turn.replies:
            text = fill(reply.text, privacy.NOTHING_STORED) if stored_nothing else reply.text
            print(f"Bot> {text}\n", file=out)
        if stored_nothing:
            print("  [local chat without storage: the stored-data figures are shown as '-']", file=out)
        if args.debug and turn.match:
            m = turn.match
            top = ", ".join(f"{c.intent} {c.score:.2f}" for c in m.candidates[:3])
            print(f"  [{m.decision.value} {m.intent} {m.score:.2f} {m.reason}; {top}]", file=out)
            nearest = engine.matcher.nearest_example(line, m.intent) if m.decision.value == "answer" else None
            if nearest:
                print(f"  [nearest example of {m.intent}: {nearest[0]!r} ({nearest[1]:.0f})]", file=out)
        for action in turn.actions:
            print(f"  [action: {describe_action(action)}]", file=out)
        if args.debug and turn.triage is not None and turn.triage.level:
            print(f"  [triage: {turn.triage.level.label} by {turn.triage.rule}]", file=out)
        if staff.has_chat and any(isinstance(action, Handoff) for action in turn.actions):
            print("  [staff have the chat now; /close closes the case]", file=out)

    _repl(out, inp, "Klinik-bot local chat: type as a patient would; /quit or Ctrl-D to stop.", respond)
    return 0


def _chat_via_webhook(args, out, inp) -> int:
    """Chat through the real webhook: a running one at URL, or one started here in dev mode."""
    from bot import channels

    config = Config.from_env()
    side = channels.patient_side(config)
    server = None
    url = args.via_webhook
    if not url:
        server, url = _start_local_server(args, config, side)
    client = side.client(url)
    sender = args.phone if ":" in args.phone else side.address(args.phone)

    def respond(line: str) -> None:
        reply = client.send(sender, line, profile_name=args.name)
        if reply.status != 200:
            print(f"  [HTTP {reply.status}] {reply.raw[:200]}", file=out)
        for message in reply.messages:
            print(f"Bot> {message}\n", file=out)

    try:
        _repl(out, inp, f"Klinik-bot over its webhook at {url} (patient {sender}); /quit or Ctrl-D to stop.", respond)
    finally:
        if server is not None:
            server.shutdown()
    return 0


def _build_app(config: Config, args, dev: bool, loopback: bool = False):
    """The Flask app for a local server, in dev mode when asked. A server only this machine
    can reach (`loopback`) also runs with the example clinic facts when signing requests."""
    import dataclasses

    from bot.core.knowledge import KnowledgeError
    from bot.web import create_app

    config = dataclasses.replace(
        config,
        knowledge_dir=args.knowledge,
        dev_mode=config.dev_mode or dev,
        allow_example_values=config.allow_example_values or loopback,
    )
    try:
        return create_app(config)
    except KnowledgeError as exc:
        raise CliError(exc.report()) from None


def _start_local_server(args, config: Config, side):
    """The app on a free loopback port (in dev mode unless the webhook checks signatures),
    served from a background thread; and the URL of `side`'s webhook there."""
    import threading

    from werkzeug.serving import make_server

    from bot import logs

    logs.configure("WARNING")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = _build_app(config, args, dev=not side.verifies, loopback=True)
    _start_worker_thread(app)
    server = make_server("127.0.0.1", args.port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}{side.webhook_path}"


def _start_worker_thread(app) -> None:
    """Dev convenience: the outbox worker in-process, so alerts flow without a second command."""
    from bot.worker import start_in_background

    start_in_background(app.extensions["klinik_config"], app.extensions["klinik_sessions"])


DEV_ACCOUNT = "dev"
DEV_PORT = 5000
# Tried in turn when DEV_PORT is taken (a port that stays the same across restarts keeps the
# browser's tabs working), then any free port.
SPARE_PORTS = (*range(DEV_PORT + 1, DEV_PORT + 10), 0)


def _listen(host: str, port: int | None) -> tuple[socket.socket, str]:
    """A listening socket for a local server: on `port` when one was asked for, else on
    DEV_PORT or, when another program has it, on a spare port. Bound here because werkzeug's
    own bind exits the process when the port is taken. Returns the socket and a note saying
    which port was taken (empty when none was)."""
    from werkzeug.serving import get_sockaddr, select_address_family

    def bound(number: int) -> socket.socket:
        family = select_address_family(host, number)
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(get_sockaddr(host, number, family))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        return sock

    try:
        return bound(DEV_PORT if port is None else port), ""
    except OSError as error:
        if port is not None or error.errno != errno.EADDRINUSE:
            wanted = DEV_PORT if port is None else port
            raise CliError(
                f"cannot listen on {host}:{wanted}: {error.strerror}; try another --port (0: any free one)"
            ) from None
    for spare in SPARE_PORTS:
        try:
            sock = bound(spare)
        except OSError:
            continue
        return sock, f"Port {DEV_PORT} is taken by another program, so this runs on port {sock.getsockname()[1]}.\n"
    raise CliError(f"no free port on {host}; choose one with --port")


def _serve_until_stopped(server) -> int:
    """Serve until Ctrl-C, then release the port."""
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _serve(app, host: str, port: int | None) -> tuple[object, str]:
    """A threaded werkzeug server for `app` on the socket of `_listen`, and its note."""
    from werkzeug.serving import make_server

    sock, note = _listen(host, port)
    with sock:
        return make_server(host, sock.getsockname()[1], app, threaded=True, fd=sock.fileno()), note


def cmd_dev(args, out=sys.stdout) -> int:
    """Everything a newcomer needs on the embedded default: the app in dev mode (SQLite unless
    DATABASE_URL says otherwise, migrated at start) with the outbox worker in process, serving
    the simulator, the staff console and the webhook; prints their URLs and a console login."""
    from bot import channels, logs

    config = Config.from_env()
    logs.configure(config.log_level)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the simulator polls every 2 s
    app = _build_app(config, args, dev=True)
    server, note = _serve(app, args.host, args.port)
    _start_worker_thread(app)
    base = f"http://{args.host}:{server.port}"
    config = app.extensions["klinik_config"]
    database = app.extensions["klinik_database"].url.render_as_string(hide_password=True)
    side = channels.patient_side(config)
    described = side.describe()
    print(
        f"{note}Klinik-bot in dev mode. Database: {database}. "
        f"Outbox worker in this process, sending {described['sends']}.\n"
        f"  WhatsApp simulator  {base}/simulator/\n"
        f"  staff console       {base}/staff/   {_dev_login(app)}\n"
        f"  webhook             {base}{side.webhook_path}   ({described['webhook']})\n"
        f"  health              {base}/healthz   ready: {base}/readyz   metrics: {base}/metrics\n"
        f"{_example_values_note(config)}"
        "Ctrl-C stops it. A chat in the terminal instead: make chat",
        file=out,
        flush=True,
    )
    return _serve_until_stopped(server)


def _example_values_note(config: Config) -> str:
    if not knowledge.example_values(config.knowledge_dir):
        return ""
    shown = (config.knowledge_dir / "clinic.yaml").resolve()
    if shown.is_relative_to(Path.cwd()):
        shown = shown.relative_to(Path.cwd())
    return (
        f'  clinic facts        EXAMPLE values of {shown}, shown with "(contoh)";'
        " production refuses to start with them\n"
    )


def _dev_login(app) -> str:
    """A console login for `dev`: on SQLite, the account `dev` with a new random password at
    every start, printed here only (never logged); on another database, how to make one."""
    import secrets

    if app.extensions["klinik_database"].url.get_backend_name() != "sqlite":
        return "login: create an account with `python -m bot staff add NAME`"
    accounts = app.extensions["klinik_accounts"]
    password = secrets.token_urlsafe(12)
    if DEV_ACCOUNT in accounts.names():
        accounts.set_password(DEV_ACCOUNT, password)
    else:
        accounts.add(DEV_ACCOUNT, password)
    return f"login: {DEV_ACCOUNT} / {password}  (dev-only account, a new password at every start)"


def cmd_worker(args, out=sys.stdout) -> int:
    from bot import logs
    from bot.worker import run

    config = Config.from_env()
    logs.configure(config.log_level)
    return run(config)


# `content register` / `content status`: the function each channel with templates offers for it.
_CONTENT_COMMANDS = {"register": "register_content", "status": "content_status"}


def cmd_content(args, out=sys.stdout) -> int:
    """`content register` / `status`: every channel that sends templates registers its own and
    reports the platform's approval of them."""
    from bot import channels

    config = Config.from_env()
    commands = [getattr(package, _CONTENT_COMMANDS[args.content_command], None) for package in channels.packages()]
    return max((command(config, out) for command in commands if command), default=0)


def cmd_cases(args, out=sys.stdout) -> int:
    """The handoff queue from the command line (the staff console shows the same)."""
    from sqlalchemy import select

    from bot.logs import mask_phone
    from bot.services.handoff import close_case
    from bot.store import storage
    from bot.store.storage import CASE_OPEN, Conversation, HandoffCase

    config = Config.from_env()
    sessions = storage.session_factory(storage.make_engine(config.database_url))
    if args.cases_command == "close":
        if not close_case(sessions, args.case_id, storage.utcnow(), by="cli"):
            raise CliError(f"case {args.case_id} is not open")
        print(f"case {args.case_id} closed; the bot answers that patient again", file=out)
        return 0
    with sessions() as session:
        query = select(HandoffCase, Conversation).join(Conversation, HandoffCase.conversation_id == Conversation.id)
        if not args.all:
            query = query.where(HandoffCase.status == CASE_OPEN)
        for case, conversation in session.execute(query.order_by(HandoffCase.opened_at)):
            who = f"{conversation.profile_name or '-'} {mask_phone(conversation.address)}"
            print(
                f"#{case.id:<5} {case.status:<7} {case.reason:<12} alert={case.alert_status:<8}"
                f" {case.opened_at:%Y-%m-%d %H:%M}Z  {who}",
                file=out,
            )
    return 0


def cmd_staff(args, out=sys.stdout, read_password=None) -> int:
    """Staff accounts for the console: add, password, token, revoke, disable, unlock, list."""
    import getpass

    from bot.services.accounts import AccountError, Accounts
    from bot.store import storage

    read_password = read_password or getpass.getpass
    config = Config.from_env()
    accounts = Accounts(storage.session_factory(storage.make_engine(config.database_url)))
    try:
        if args.staff_command in ("add", "password"):
            password = read_password(f"Password for {args.name}: ")
            if password != read_password("Again: "):
                raise CliError("the two passwords differ")
            if args.staff_command == "add":
                accounts.add(args.name, password)
                print(f"staff member {args.name!r} added; log in at /staff/login", file=out)
            else:
                accounts.set_password(args.name, password)
                print(f"password of {args.name!r} changed", file=out)
        elif args.staff_command == "token":
            token = accounts.issue_token(args.name)
            print(f"API token for {args.name!r} (shown once; send as 'Authorization: Bearer <token>'):", file=out)
            print(token, file=out)
        elif args.staff_command == "revoke":
            print(f"{accounts.revoke_tokens(args.name)} API token(s) of {args.name!r} revoked", file=out)
        elif args.staff_command == "disable":
            accounts.disable(args.name)
            print(f"{args.name!r} disabled: no login, sessions ended, API tokens revoked", file=out)
        elif args.staff_command == "unlock":
            forgotten = accounts.unlock(args.name)
            print(f"{args.name!r} may log in again now ({forgotten} failed attempt(s) forgotten)", file=out)
        else:
            for name in accounts.names():
                print(name, file=out)
    except AccountError as error:
        raise CliError(str(error)) from None
    return 0


def cmd_purge(args, out=sys.stdout) -> int:
    """Retention: delete what is older than the cut-off (safe to run daily from a scheduler)."""
    from datetime import timedelta

    from bot import logs
    from bot.services import privacy
    from bot.store import storage

    config = Config.from_env()
    logs.configure(config.log_level)
    days = args.older_than if args.older_than is not None else config.retention_days
    if days < 1:
        raise CliError("--older-than must be at least 1 day")
    now = storage.utcnow()
    report = privacy.purge(
        storage.session_factory(storage.make_engine(config.database_url)), now - timedelta(days=days), now
    )
    print(report, file=out)
    return 0


def cmd_serve(args, out=sys.stdout) -> int:
    """Run the webhook with werkzeug's development server (production uses gunicorn)."""
    from bot import channels, logs

    config = Config.from_env()
    logs.configure(config.log_level)
    app = _build_app(config, args, dev=args.dev)
    server, note = _serve(app, args.host, args.port)
    if args.dev or args.with_worker:
        _start_worker_thread(app)
    base = f"http://{args.host}:{server.port}"
    webhook = channels.patient_side(config).webhook_path
    print(f"{note}Webhook: {base}{webhook}   health: {base}/healthz", file=out, flush=True)
    return _serve_until_stopped(server)


def cmd_db(args, out=sys.stdout) -> int:
    from bot.store import migrate, storage

    config = Config.from_env()
    database = storage.make_engine(config.database_url)
    if database.url.get_backend_name() == "sqlite" and database.url.database:
        Path(database.url.database).parent.mkdir(parents=True, exist_ok=True)
    if args.db_command == "upgrade":
        migrate.upgrade(database)
        print(f"schema at revision {migrate.current_revision(database)}", file=out)
    elif args.db_command == "current":
        print(migrate.current_revision(database) or "empty database", file=out)
    elif args.db_command == "revision":
        migrate.revision(database, args.message)
    return 0


def _labelled(path) -> list[evaluation.Labelled]:
    try:
        return evaluation.load_labelled(path)
    except (evaluation.LabelledSetError, OSError) as exc:
        raise CliError(str(exc)) from None


def cmd_evaluate(args, out=sys.stdout) -> int:
    engine = load_engine(args.knowledge)
    reports = []
    missed = False
    triage_sets = [path for path in args.files if evaluation.is_triage_set(path)]
    for path in triage_sets:
        try:
            results = evaluation.run_triage(engine, evaluation.load_triage(path))
        except evaluation.LabelledSetError as exc:
            raise CliError(str(exc)) from None
        summary = evaluation.summarize_triage(results)
        missed = missed or bool(evaluation.target_failures(summary, evaluation.TRIAGE_TARGETS))
        if args.json:
            json.dump(
                {"file": str(path), "summary": summary, "results": [r.as_dict() for r in results]},
                out,
                ensure_ascii=False,
                indent=1,
            )
            out.write("\n")
        else:
            print(
                evaluation.format_triage_report(str(path), summary, results, show_errors=args.errors) + "\n", file=out
            )
    for path in [p for p in args.files if p not in triage_sets]:
        items = _labelled(path)
        try:
            results = evaluation.run(engine, items)
        except evaluation.LabelledSetError as exc:
            raise CliError(str(exc)) from None
        summary = evaluation.summarize(results)
        missed = missed or bool(evaluation.target_failures(summary, evaluation.targets_for(path)))
        reports.append((path, summary, results))
    if args.baseline:
        return _compare_with_baseline(args, engine, reports, out)
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


def _compare_with_baseline(args, engine: Engine, reports, out) -> int:
    """The same sets through the standard baseline pipeline, side by side with the bot."""
    tuning = [item for path in args.tuning for item in _labelled(path)]
    baseline = evaluation.Baseline(engine.kb, tuning)
    print(f"baseline: TF-IDF char_wb 2-5 + word 1-2, LogisticRegression(C=10); cutoff {baseline.cutoff:.2f} "
          f"picked on {', '.join(str(p) for p in args.tuning)}\n", file=out)  # fmt: skip
    payload = []
    for path, summary, _results in reports:
        base = evaluation.summarize(baseline.run(_labelled(path)))
        print(evaluation.format_comparison(str(path), {"bot": summary, "baseline": base}) + "\n", file=out)
        payload.append({"file": str(path), "bot": summary, "baseline": base})
    if args.json:
        json.dump(payload, out, ensure_ascii=False, indent=1)
        out.write("\n")
    return 0


def cmd_replay(args, out=sys.stdout) -> int:
    """Fixtures against the engine, or (--url) against a running webhook of the home channel,
    signed as it signs, each fixture as a new patient with a number of the test range."""
    from urllib.error import URLError

    from bot import channels

    engine = None if args.url else load_engine(args.knowledge)
    try:
        fixtures = [replay.load_fixture(p) for p in replay.fixture_paths(args.path)]
    except replay.FixtureError as exc:
        raise CliError(str(exc)) from None
    if not fixtures:
        raise CliError(f"{args.path}: no fixtures (*.yaml) found")
    side = channels.patient_side(Config.from_env())
    if args.url:
        if not side.verifies:
            print(f"requests go unsigned, {side.describe()['unsigned']}", file=sys.stderr)
        client = side.client(args.url)
        print(f"live against {args.url}, each fixture as a new patient", file=out)
    results = []
    for fixture in fixtures:
        conversation = (
            replay.webhook_conversation(client, side.fake_address()) if args.url else replay.engine_conversation(engine)
        )
        try:
            results.extend(replay.run_fixture(fixture, conversation))
        except URLError as exc:
            raise CliError(f"{args.url}: cannot reach the webhook ({exc.reason})") from None
    print(replay.format_results(results, verbose=args.verbose), file=out)
    return 0 if all(r.passed for r in results) else EXIT_FAILED


def cmd_tune(args, out=sys.stdout) -> int:
    from bot.quality import tuning

    engine = load_engine(args.knowledge)
    sets, triage_sets = {}, {}
    for path in args.files:
        if Path(path).stem in HELD_OUT:
            raise CliError(f"{path}: a held-out set must never be used for tuning")
        if evaluation.is_triage_set(path):
            triage_sets[Path(path).stem] = evaluation.load_triage(path)
        else:
            sets[Path(path).stem] = _labelled(path)
    items = [item for labelled in sets.values() for item in labelled]
    if triage_sets:
        _tune_triage(args, engine, sets, triage_sets, out)
    if not sets:
        return 0

    def progress(done, total):
        print(f"\r  weights {done}/{total}", end="", file=sys.stderr, flush=True)

    trials = tuning.tune(engine.kb, sets, engine.matcher.models, progress=progress)
    print(file=sys.stderr)
    print(f"{len(trials)} trials on {len(items)} messages; best first ('ok' = targets met):", file=out)
    print(tuning.format_trials(trials, args.top), file=out)
    if args.write:
        _write_tuned(args, trials[0].feasible, trials[0].settings, (*tuning.TUNED_KEYS, "cutoffs"), out)
    return 0


def _write_tuned(args, feasible: bool, settings, keys: tuple[str, ...], out) -> None:
    """Tuned settings into the knowledge directory's matcher.yaml, only when they meet the targets."""
    from bot.quality import tuning

    if not feasible:
        print("nothing written: no setting meets the targets", file=out)
        return
    path = Path(args.knowledge) / "matcher.yaml"
    tuning.write_settings(path, settings, keys)
    print(f"written to {path}: " + ", ".join(f"{key}={getattr(settings, key)}" for key in keys), file=out)


def _tune_triage(args, engine: Engine, sets: dict, triage_sets: dict, out) -> None:
    """The triage model's C and thresholds, on the triage sets and, as harmless messages, the
    intent sets' messages that are not emergencies."""
    from bot.quality import tuning

    levelled = [(item.text, item.level) for items in triage_sets.values() for item in items]
    urgent = {"red_flag", "crisis"}
    levelled += [(item.text, "none") for items in sets.values() for item in items if item.intent not in urgent]
    trials = tuning.tune_triage(engine.kb, levelled, engine.matcher.models)
    print(
        f"triage: {len(trials)} trials on {len(levelled)} messages; best first ('ok' = false alarms within bounds):",
        file=out,
    )
    print(tuning.format_triage_trials(trials, args.top), file=out)
    if args.write:
        _write_tuned(args, trials[0].feasible, trials[0].settings, tuning.TRIAGE_KEYS, out)


def cmd_kb_check(args, out=sys.stdout) -> int:
    errors, warnings = knowledge.check(args.knowledge)
    for warning in warnings:
        print(f"warning: {warning}", file=out)
    if errors:
        raise CliError(knowledge.KnowledgeError(errors).report())
    from bot.core.matcher import Matcher
    from bot.core.triage import Triage
    from bot.models import DiskModels

    kb = knowledge.load(args.knowledge)
    examples = sum(len(i.examples) for i in kb.intents.values())
    print(f"OK: {len(kb.intents)} intents, {examples} examples, {len(kb.triage_rules)} triage rules", file=out)
    models = DiskModels(Config.from_env().model_cache_dir)
    try:
        matcher = Matcher(kb, models)
        print(f"intent model: {models.last}", file=out)
        Triage(kb, matcher.rules, models, matcher.normalize, matcher.training)
        print(f"triage model: {models.last}", file=out)
    except ValueError as error:
        raise CliError(f"a model cannot be trained: {error}") from None
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Klinik-bot command line")
    parser.add_argument(
        "--knowledge", type=Path, default=None, help="knowledge directory (default: $KNOWLEDGE_DIR or ./knowledge)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    chat = sub.add_parser("chat", help="talk to the bot in the terminal")
    chat.add_argument("--debug", action="store_true", help="show intent, decision and score of each reply")
    chat.add_argument(
        "--via-webhook",
        nargs="?",
        const="",
        default=None,
        metavar="URL",
        help="go through the HTTP webhook: the one at URL, or (no URL) one started here in dev mode with SQLite",
    )
    chat.add_argument("--phone", default="whatsapp:+6281200000001", help="the patient's number (with --via-webhook)")
    chat.add_argument("--name", default="Pasien Uji", help="the patient's WhatsApp profile name (with --via-webhook)")
    chat.add_argument("--port", type=int, default=0, help="port of the local webhook (default: any free port)")
    chat.set_defaults(func=cmd_chat)

    dev = sub.add_parser("dev", help="run everything locally in dev mode: simulator, staff console, webhook, worker")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=None, help=f"default {DEV_PORT}, or any free port when it is taken")
    dev.set_defaults(func=cmd_dev)

    serve = sub.add_parser("serve", help="run the webhook with the development server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help=f"default {DEV_PORT}, or any free port when it is taken")
    serve.add_argument(
        "--dev", action="store_true", help="dev mode: accept unsigned requests, migrate at start, run the worker"
    )
    serve.add_argument("--with-worker", action="store_true", help="run the outbox worker in this process too")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="send queued WhatsApp messages (staff alerts, staff replies) with retries")
    worker.set_defaults(func=cmd_worker)

    content = sub.add_parser("content", help="buttons and lists: register the channels' content templates")
    content_sub = content.add_subparsers(dest="content_command", required=True)
    content_sub.add_parser(
        "register", help="create the templates of knowledge/content.yaml not registered yet; write their SIDs"
    ).set_defaults(func=cmd_content)
    content_sub.add_parser(
        "status", help="WhatsApp's approval of the reminder template (needed outside the 24-hour window)"
    ).set_defaults(func=cmd_content)

    cases = sub.add_parser("cases", help="handoff cases: list, close")
    cases_sub = cases.add_subparsers(dest="cases_command", required=True)
    listing = cases_sub.add_parser("list", help="open cases (--all: every case)")
    listing.add_argument("--all", action="store_true")
    listing.set_defaults(func=cmd_cases)
    closing = cases_sub.add_parser("close", help="close a case: the bot talks to the patient again")
    closing.add_argument("case_id", type=int)
    closing.set_defaults(func=cmd_cases)

    staff = sub.add_parser("staff", help="staff console accounts: add, password, token, revoke, disable, unlock, list")
    staff_sub = staff.add_subparsers(dest="staff_command", required=True)
    for command, text in (("add", "create an account (password prompted)"),
                          ("password", "change a password (ends its sessions)"),
                          ("token", "issue an API token (printed once)"),
                          ("revoke", "revoke every API token of an account"),
                          ("disable", "disable an account: no login, sessions ended, tokens revoked"),
                          ("unlock", "lift a login lockout now (failed attempts forgotten)")):  # fmt: skip
        account = staff_sub.add_parser(command, help=text)
        account.add_argument("name")
        account.set_defaults(func=cmd_staff)
    staff_sub.add_parser("list", help="account names").set_defaults(func=cmd_staff)

    purge = sub.add_parser("purge", help="delete conversations, bookings and cases older than the retention period")
    purge.add_argument("--older-than", type=int, metavar="DAYS", help="cut-off in days (default: RETENTION_DAYS, 365)")
    purge.set_defaults(func=cmd_purge)

    db = sub.add_parser("db", help="database schema (Alembic)")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="create or upgrade the schema to the latest revision").set_defaults(func=cmd_db)
    db_sub.add_parser("current", help="print the schema revision").set_defaults(func=cmd_db)
    rev = db_sub.add_parser("revision", help="autogenerate a migration after changing the models")
    rev.add_argument("-m", "--message", required=True)
    rev.set_defaults(func=cmd_db)

    ev = sub.add_parser("evaluate", help="accuracy report on labelled messages")
    ev.add_argument("files", nargs="+", help="YAML list of {text, intent}")
    ev.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    ev.add_argument("--errors", type=int, default=30, help="how many misses to list (default 30)")
    ev.add_argument("--check", action="store_true", help="exit 1 when a target of the core issue is missed")
    ev.add_argument(
        "--baseline", action="store_true", help="also train the standard baseline pipeline and print both side by side"
    )
    ev.add_argument(
        "--tuning",
        nargs="+",
        default=[str(EVAL_DIR / "dev.yaml"), str(EVAL_DIR / "calib.yaml")],
        metavar="FILE",
        help="labelled files the baseline's cutoff is picked on (default: tests/eval dev and calib)",
    )
    ev.set_defaults(func=cmd_evaluate)

    rp = sub.add_parser("replay", help="run conversation fixtures")
    rp.add_argument("path", help="fixture file or directory")
    rp.add_argument("--verbose", action="store_true", help="list passing turns too")
    rp.add_argument(
        "--url", help="replay against the webhook at URL (signed with TWILIO_AUTH_TOKEN) instead of the engine"
    )
    rp.set_defaults(func=cmd_replay)

    tn = sub.add_parser("tune", help="choose the model's C and the decision thresholds on labelled messages")
    tn.add_argument("files", nargs="+", help="labelled YAML files (never a held-out set)")
    tn.add_argument("--top", type=int, default=10, help="how many settings to print")
    tn.add_argument(
        "--write", action="store_true", help="write the best settings into the knowledge directory's matcher.yaml"
    )
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
        args.knowledge = Config.from_env().knowledge_dir
    try:
        return args.func(args)
    except CliError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
