"""Conversation fixtures: scripted chats with what each bot reply must show.

A fixture file is YAML:

    name: causes, then a follow-up about coffee
    turns:
      - user: "knp betis kedutan trs"
        expect: {intent: causes, decision: answer, contains: ["lelah"]}
      - user: "kalau kopi?"
        expect: {intent: cause_caffeine}

`expect` keys: intent, decision, reason, contains / not_contains (text or list of texts,
case-insensitive, over all replies of the turn), actions (exact list, e.g. [handoff:urgent]),
replies (number of reply messages), paused (the bot is waiting for staff), booking_step (the
booking question pending, or null), booking (the request sent: name, complaint, start),
answered (every intent answered, in order, for a message with several questions).
A turn may also send `media: [image/jpeg]`, set `profile_name`, or say when it happens with
`at: "2026-11-25 10:00"` (Jakarta time; default: the fixture's `now`, itself defaulting to
Wednesday 25 November 2026, 10:00). A turn `event: case_closed` stands for staff closing the
handoff case (its replies: the satisfaction question the patient is sent then, if any),
`event: staff_replied` for a staff reply in it. Each file is one fresh conversation.

Replayed offline against the engine (default), or live against a running webhook over HTTP
(`webhook_conversation`): there a fresh patient number plays each fixture, intent, decision,
reason, actions, paused and booking_step are read from the X-Klinik-* response headers, and what
a response cannot show is reported rather than passed: `booking` and `answered` are "not checked live", and
turns that need a fixed clock (`now`, `at`) or a staff action (`event`) are skipped, with the
rest of their fixture, as "offline only".
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bot.core.dates import JAKARTA
from bot.core.messages import (
    CancelBooking,
    ConversationState,
    EraseData,
    Handoff,
    HandoffReason,
    Incoming,
    StaffView,
    booked,
    describe_action,
)
from bot.core.schedule import CalendarView
from bot.core.yamlschema import Problems, Reader, compose, to_python

EXPECT_KEYS = (
    "intent", "decision", "reason", "contains", "not_contains", "actions", "replies", "paused", "booking_step",
    "booking",
    "answered",
)  # fmt: skip
DEFAULT_NOW = "2026-11-25 10:00"
EVENTS = ("case_closed", "staff_replied")
# Moments (Jakarta) a fixture without a fixed clock must behave the same at, to be replayable
# live at any time: open and closed hours, Saturday afternoon, Sunday night, a year's end.
PROBE_CLOCKS = (
    "2026-11-25 10:00",
    "2026-11-28 13:30",
    "2026-11-29 22:00",
    "2026-11-30 08:00",
    "2027-02-05 17:59",
    "2026-12-31 23:50",
)
# What a live webhook response cannot show, and what it shows only in its X-Klinik-* headers.
NOT_LIVE = frozenset({"booking", "answered"})
HEADER_KEYS = frozenset({"intent", "decision", "reason", "actions", "paused", "booking_step"})


class FixtureError(Exception):
    pass


@dataclass(frozen=True)
class FixtureTurn:
    user: str
    expect: dict
    line: int
    media: tuple[str, ...] = ()
    profile_name: str | None = None
    at: datetime | None = None
    event: str | None = None
    # The turn's time was written in the fixture (its own `at`, or the fixture's `now`).
    fixed_clock: bool = False


@dataclass(frozen=True)
class Fixture:
    name: str
    path: str
    turns: tuple[FixtureTurn, ...]


@dataclass(frozen=True)
class Observed:
    """What one turn produced, in the shape fixtures describe."""

    replies: tuple[str, ...]
    intent: str | None
    decision: str | None
    reason: str | None
    actions: tuple[str, ...]
    paused: bool | None = None
    booking_step: str | None = None
    booking: dict | None = None
    # The intents answered, in order (several when the message asked several things).
    answered: tuple[str, ...] = ()
    # Expectation keys this way of replaying cannot see (reported as not checked).
    unobserved: frozenset[str] = frozenset()
    # The turn could not be played (e.g. the webhook answered 403).
    error: str | None = None


NOTHING = Observed((), None, None, None, ())


class Skip(Exception):
    """Raised by a conversation for a turn it cannot play; that turn and the rest of its
    fixture are reported as skipped, with this reason."""


@dataclass
class TurnResult:
    fixture: Fixture
    index: int
    turn: FixtureTurn
    observed: Observed
    mismatches: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def passed(self) -> bool:
        """No mismatch. A skipped turn fails nothing, but the report says it was not run."""
        return not self.mismatches


def fixture_paths(path: str | Path) -> list[Path]:
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.rglob("*.yaml"))
    if path.is_file():
        return [path]
    raise FixtureError(f"{path}: no such file or directory")


def load_fixture(path: Path) -> Fixture:
    problems = Problems()
    node = compose(path, str(path), problems)
    reader = Reader(str(path), problems)
    turns: list[FixtureTurn] = []
    name = path.stem
    if node is not None:
        top = reader.mapping(node, "fixture", required=("turns",), optional=("name", "description", "now"))
        if top:
            if "name" in top:
                name = reader.string(top["name"], "name") or name
            default_at = _moment(reader, top["now"]) if "now" in top else _parse_moment(DEFAULT_NOW)
            fixture_clock = "now" in top
            for item in reader.sequence(top.get("turns"), "turns") if "turns" in top else ():
                fields = reader.mapping(
                    item, "turn", optional=("user", "expect", "media", "profile_name", "at", "event")
                )
                if fields is None:
                    continue
                if ("user" in fields) == ("event" in fields):
                    reader.fail(item, "turn: give either user (a message) or event")
                    continue
                event = reader.string(fields["event"], "event") if "event" in fields else None
                if event is not None and event not in EVENTS:
                    reader.fail(fields["event"], f"event: unknown '{event}' (known: {', '.join(EVENTS)})")
                if event == "staff_replied" and "at" not in fields:
                    reader.fail(item, "event staff_replied: give its time with at (after the messages it answers)")
                user = reader.string(fields["user"], "user", allow_empty=True) if "user" in fields else ""
                expect = {}
                if "expect" in fields:
                    expect_nodes = reader.mapping(fields["expect"], "expect", optional=EXPECT_KEYS) or {}
                    for key, value in expect_nodes.items():
                        expect[key] = to_python(value)
                media = tuple(text for text, _ in reader.strings(fields["media"], "media")) if "media" in fields else ()
                profile = reader.optional_string(fields.get("profile_name"), "profile_name")
                at = _moment(reader, fields["at"]) if "at" in fields else default_at
                if user is not None:
                    fixed = fixture_clock or "at" in fields
                    turns.append(FixtureTurn(user, expect, item.start_mark.line + 1, media, profile, at, event, fixed))
    if problems:
        raise FixtureError("\n".join(str(p) for p in sorted(problems)))
    return Fixture(name, str(path), tuple(turns))


def _parse_moment(text: str) -> datetime:
    return datetime.strptime(text.strip(), "%Y-%m-%d %H:%M").replace(tzinfo=JAKARTA)


def _moment(reader: Reader, node) -> datetime | None:
    text = reader.string(node, "time")
    try:
        return _parse_moment(text) if text else None
    except ValueError:
        reader.fail(node, f"time '{text}': write 'YYYY-MM-DD HH:MM' (Jakarta time)")
        return None


def check_turn(expect: dict, observed: Observed) -> list[str]:
    """Differences between what a fixture expects and what a turn produced (keys the turn
    could not observe are left out)."""
    if observed.error:
        return [observed.error]
    expect = {key: value for key, value in expect.items() if key not in observed.unobserved}
    problems = []
    for key in ("intent", "decision", "reason"):
        if key in expect and expect[key] != getattr(observed, key):
            problems.append(f"{key}: expected {expect[key]!r}, got {getattr(observed, key)!r}")
    problems += _text_problems(expect, "\n".join(observed.replies).lower())
    if "actions" in expect and list(expect["actions"] or []) != list(observed.actions):
        problems.append(f"actions: expected {list(expect['actions'] or [])}, got {list(observed.actions)}")
    if "answered" in expect and list(expect["answered"] or []) != list(observed.answered):
        problems.append(f"answered: expected {list(expect['answered'] or [])}, got {list(observed.answered)}")
    if "replies" in expect and expect["replies"] != len(observed.replies):
        problems.append(f"replies: expected {expect['replies']} messages, got {len(observed.replies)}")
    for key in ("paused", "booking_step"):
        if key in expect and expect[key] != getattr(observed, key):
            problems.append(f"{key}: expected {expect[key]!r}, got {getattr(observed, key)!r}")
    if "booking" in expect:
        problems += _booking_problems(expect["booking"] or {}, observed.booking or {})
    return problems


def _text_problems(expect: dict, text: str) -> list[str]:
    """What the replies (lowercased, joined) should and should not contain."""
    missing = [f"reply should contain {n!r}" for n in _as_list(expect.get("contains")) if str(n).lower() not in text]
    found = [f"reply should not contain {n!r}" for n in _as_list(expect.get("not_contains")) if str(n).lower() in text]
    return missing + found


def _booking_problems(wanted: dict, got: dict) -> list[str]:
    problems = [
        f"booking {key}: expected {value!r}, got {got.get(key)!r}"
        for key, value in wanted.items()
        if str(got.get(key)) != str(value)
    ]
    if not wanted and got:
        problems.append(f"booking: expected none, got {got}")
    return problems


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


Conversation = Callable[[FixtureTurn], Observed]


def run_fixture(fixture: Fixture, conversation: Conversation) -> list[TurnResult]:
    results = []
    skipped = None
    for index, turn in enumerate(fixture.turns, start=1):
        if skipped is None:
            try:
                observed = conversation(turn)
            except Skip as skip:
                skipped = str(skip)
        if skipped is not None:
            results.append(TurnResult(fixture, index, turn, NOTHING, skipped=skipped))
            continue
        unchecked = [key for key in turn.expect if key in observed.unobserved]
        results.append(TurnResult(fixture, index, turn, observed, check_turn(turn.expect, observed), unchecked))
    return results


def at_clock(fixture: Fixture, moment: datetime) -> Fixture:
    """The fixture with every turn that has no fixed clock happening at `moment` instead."""
    turns = tuple(turn if turn.fixed_clock else dataclasses.replace(turn, at=moment) for turn in fixture.turns)
    return dataclasses.replace(fixture, turns=turns)


def probe_moments() -> list[datetime]:
    return [_parse_moment(text) for text in PROBE_CLOCKS]


def engine_conversation(engine) -> Conversation:
    """Play turns against the dialogue engine in memory, keeping state between turns."""
    state = ConversationState()
    staff = StaffView()  # a case opens with a handoff and closes with the event, as in storage
    profile_name = None
    cases, urgent = 0, False  # cases opened so far; whether the open one is urgent
    calendar = CalendarView()  # the patient's appointment, as storage would hold it

    def play(turn: FixtureTurn) -> Observed:
        nonlocal state, staff, profile_name, cases, urgent, calendar
        profile_name = turn.profile_name or profile_name  # WhatsApp sends it with every message
        if turn.event == "case_closed":
            state, question = engine.feedback.after_case(state.resumed(), turn.at, cases, urgent)
            staff, urgent = StaffView(), False
            return Observed((question,) if question else (), None, None, None, (), paused=False, booking_step=None)
        if turn.event == "staff_replied":
            staff = dataclasses.replace(staff, replied_at=turn.at)
            return Observed((), None, None, None, (), paused=staff.has_chat, booking_step=None)
        incoming = Incoming(turn.user, profile_name=profile_name, media_types=turn.media)
        result = engine.step(state, incoming, turn.at, staff, calendar)
        state = result.state
        calendar = _calendar_after(calendar, result.actions)
        if any(isinstance(a, EraseData) for a in result.actions):
            staff = StaffView()  # erasure closes the case, as privacy.erase does in storage
        elif any(isinstance(a, Handoff) for a in result.actions):
            cases += not staff.has_chat
            urgent = urgent or any(isinstance(a, Handoff) and a.reason is HandoffReason.URGENT for a in result.actions)
            staff = dataclasses.replace(staff, has_chat=True)
        match = result.match
        appointment = booked(result.actions)
        booking = appointment.as_dict() if appointment else None
        return Observed(
            replies=tuple(r.text for r in result.replies),
            intent=match.intent if match else None,
            decision=match.decision.value if match else None,
            reason=match.reason if match else None,
            actions=tuple(describe_action(a) for a in result.actions),
            paused=staff.has_chat,
            booking_step=state.booking.step if state.booking else None,
            booking=booking,
            answered=tuple(m.intent for m in result.questions if m.decision.value == "answer")
            or ((match.intent,) if match and match.decision.value == "answer" else ()),
        )

    return play


def _calendar_after(calendar: CalendarView, actions) -> CalendarView:
    """The appointment after a turn's actions: cancelled, then (moved or new) booked."""
    upcoming = None if any(isinstance(a, CancelBooking) for a in actions) else calendar.upcoming
    return CalendarView(calendar.full, booked(actions) or upcoming)


def webhook_conversation(client, sender: str) -> Conversation:
    """Play turns as patient `sender` against a running webhook (a WebhookClient, which signs
    each request). Sees the TwiML replies and the X-Klinik-* headers, nothing else."""
    from bot.headers import (
        ACTIONS_HEADER,
        BOOKING_STEP_HEADER,
        DECISION_HEADER,
        INTENT_HEADER,
        PAUSED_HEADER,
        REASON_HEADER,
    )

    profile_name = None

    def play(turn: FixtureTurn) -> Observed:
        nonlocal profile_name
        if turn.event is not None:
            raise Skip(f"event {turn.event} is a staff action: offline only")
        if turn.fixed_clock:
            raise Skip("needs a fixed clock (now/at): offline only")
        profile_name = turn.profile_name or profile_name
        reply = client.send(sender, turn.user, profile_name=profile_name, media=turn.media)
        if reply.status != 200:
            hint = getattr(client, "refused_hint", "") if reply.status == 403 else ""
            return dataclasses.replace(
                NOTHING, error=f"HTTP {reply.status} from the webhook" + (f" ({hint})" if hint else "")
            )
        headers = {key.lower(): value for key, value in reply.headers.items()}
        if DECISION_HEADER.lower() not in headers:
            return Observed(reply.messages, None, None, None, (), unobserved=NOT_LIVE | HEADER_KEYS)

        def header(name: str) -> str | None:
            return headers.get(name.lower()) or None

        paused = header(PAUSED_HEADER)
        return Observed(
            replies=reply.messages,
            intent=header(INTENT_HEADER),
            decision=header(DECISION_HEADER),
            reason=header(REASON_HEADER),
            actions=tuple(a for a in (header(ACTIONS_HEADER) or "").split(",") if a),
            paused=None if paused is None else paused == "1",
            booking_step=header(BOOKING_STEP_HEADER),
            unobserved=NOT_LIVE,
        )

    return play


def format_results(results: list[TurnResult], verbose: bool = False) -> str:
    lines = []
    current = None
    skipping = None
    for result in results:
        if result.fixture is not current:
            current = result.fixture
            skipping = None
            lines.append(f"{current.name}  ({current.path})")
        if result.skipped:
            if skipping is None:
                rest = len(current.turns) - result.index
                more = f" and the {rest} after it" if rest else ""
                lines.append(f"  SKIP turn {result.index} (line {result.turn.line}){more}: {result.skipped}")
            skipping = result.skipped
            continue
        mark = "PASS" if result.passed else "FAIL"
        if verbose or not result.passed or result.unchecked:
            lines.append(f"  {mark} turn {result.index} (line {result.turn.line}): {result.turn.user!r}")
            obs = result.observed
            lines.append(f"       got: intent={obs.intent} decision={obs.decision} actions={list(obs.actions)}")
        if result.unchecked:
            lines.append(f"       not checked live: {', '.join(result.unchecked)}")
        if not result.passed:
            for mismatch in result.mismatches:
                lines.append(f"       - {mismatch}")
            reply = " | ".join(result.observed.replies).replace("\n", " ")
            lines.append(f"       reply: {reply[:300]}")
    played = [r for r in results if not r.skipped]
    failed = sum(not r.passed for r in played)
    fixtures = len({id(r.fixture) for r in results})
    summary = f"{len(played) - failed}/{len(played)} turns passed in {fixtures} fixtures"
    if len(played) < len(results):
        summary += f"; {len(results) - len(played)} turns skipped (offline only)"
    unchecked = sum(len(r.unchecked) for r in played)
    if unchecked:
        summary += f"; {unchecked} expectations not checked live"
    return "\n".join(lines + [summary + (f"; {failed} FAILED" if failed else "")])


def dump_fixture(name: str, turns: list[Mapping], description: str | None = None) -> str:
    """A fixture file as YAML that load_fixture reads back. Each turn is a mapping of fixture
    keys (user or event, media, profile_name, expect) plus `comments`: lines written above it."""
    lines = [f"name: {_flow(name)}"]
    if description:
        lines.append(f"description: {_flow(description)}")
    lines.append("turns:")
    for turn in turns:
        for comment in turn.get("comments", ()):
            lines.append(f"  # {' '.join(str(comment).split())}")
        keys = [key for key in ("user", "event", "media", "profile_name", "expect") if key in turn]
        for position, key in enumerate(keys):
            lines.append(f"  {'-' if position == 0 else ' '} {key}: {_flow(turn[key])}")
    return "\n".join(lines) + "\n"


def _flow(value) -> str:
    """One value in YAML flow style: identifiers bare, text as JSON strings (valid YAML, with
    non-ASCII kept readable and control characters escaped)."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{key}: {_flow(item)}" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_flow(item) for item in value) + "]"
    if isinstance(value, str) and _BARE.fullmatch(value) and value not in _YAML_WORDS:
        return value
    return json.dumps(value, ensure_ascii=False)


_BARE = re.compile(r"[a-z][a-z0-9_]*(:[a-z][a-z0-9_]*)?")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}
