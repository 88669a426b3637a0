"""Load and validate the knowledge base (knowledge/*.yaml) into typed, immutable objects.

Every problem is reported with its file and line; `load` raises KnowledgeError listing all of
them, so a clinic editing YAML sees every mistake at once, never a traceback.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from dataclasses import fields as fields_of
from datetime import date as datetime_date
from datetime import time as datetime_time
from pathlib import Path

import yaml

from .dates import CalendarWords
from .messages import FALLBACK_INTENT
from .normalize import Normalizer
from .review import read_review, review_answers
from .schedule import Schedule, Treatment
from .yamlschema import Problem, Problems, Reader, compose

# Intent ids that the tests, fixtures and reports rely on. A KB may add more, never fewer.
REQUIRED_INTENTS = (
    "greeting", "about_twitching", "causes", "cause_fatigue", "cause_electrolyte",
    "cause_stress", "cause_dehydration", "cause_caffeine", "prevention", "when_to_worry",
    "red_flag", "tcm_treatment", "booking", "clinic_info", "pricing", "calf_pain",
    "calf_cramp", "human_agent", "menu", "thanks", "goodbye", "fallback",
)  # fmt: skip

# Fewer examples than this cannot teach the intent model a topic.
MIN_EXAMPLES = 5
ACTIONS = ("start_booking", "handoff_human", "handoff_urgent", "erase_request", "data_summary")

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEEKDAY_NAMES_ID = ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu")

# Facts about the care itself, in the `care:` block of knowledge/clinic.yaml; each is also a placeholder.
CARE_FACTS = (
    "session_length", "needles", "therapies", "herb_forms", "herbs_halal", "herbs_bpom", "bpjs", "receipt",
    "practitioners", "female_therapist", "doctor_on_site", "children",
)  # fmt: skip
# Placeholders an answer may use; each is filled from knowledge/clinic.yaml.
PLACEHOLDERS = (
    "clinic_name", "address", "maps_url", "hours", "phone", "whatsapp", "website", "prices", "payment_methods",
    "insurance", "parking", "home_visit", *CARE_FACTS,
)  # fmt: skip
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")

TEXT_KEYS = (
    "first_contact", "greeting_prefix", "empty", "media", "voice_note", "media_received_image",
    "media_received_document", "media_received_video", "clarify", "clarify_other", "questions_skipped",
    "handoff_also", "options_hint",
    "follow_up_prompt", "invalid_option", "fallback_again", "missing_fact", "missing_fact_offer",
    "closed_day", "rate_limited", "emoji_only", "salam_reply", "error",
    "booking_ask_name_confirm", "booking_ask_name", "booking_ask_complaint", "booking_ask_when", "booking_no_time",
    "booking_no_date", "booking_which_day", "booking_either_day", "booking_past", "booking_invalid_date",
    "booking_invalid_time", "booking_invalid_time_later", "booking_closed", "booking_outside_hours", "booking_break",
    "booking_full", "booking_offer", "booking_when_noted",
    "booking_reminder", "appointment_none", "appointment_cancelled", "appointment_move",
    "appointment_kept", "booking_booked", "booking_confirm", "booking_ask_change", "booking_sent", "booking_cancelled",
    "booking_resume", "staff_holding", "staff_holding_again", "staff_thanks", "staff_will_reply", "out_of_hours",
    "emergency_again", "crisis_again", "emergency_not_clinic", "emergency_thanks", "doctor_advice",
    "doctor_reason_unknown", "doctor_only",
    "staff_alert", "staff_reason_booking", "staff_reason_human_agent", "staff_reason_urgent", "staff_booking_details",
    "staff_reason_booking_cancelled", "staff_booking_cancelled_details", "staff_reason_booking_booked",
    "staff_booking_held", "staff_booking_confirmed_now",
    "staff_last_messages", "staff_booking_confirmed", "staff_booking_rejected", "staff_booking_cancelled", "staff_note",
    "staff_booking_moved", "staff_template_reply",
    "erase_done", "erase_cancelled", "erase_unclear", "data_summary", "erased_by_staff_case", "staff_template_no_name",
    "feedback_question", "feedback_question_case", "feedback_thanks", "feedback_sorry",
    "choice_yes", "choice_change", "choice_cancel", "choice_other_name", "choice_field_name",
    "choice_field_complaint", "choice_field_when", "choice_stale", "choice_erase_yes", "choice_erase_no",
    "choice_appointment_attend", "choice_appointment_move", "choice_appointment_cancel", "appointment_attending",
)  # fmt: skip

MATCHER_KEYS = (
    "answer_threshold", "clarify_threshold", "clarify_margin", "context_bonus", "context_max_tokens", "typo_cutoff",
    "max_tokens", "c", "cutoffs", "triage_c", "emergency_threshold", "doctor_threshold", "lasting_threshold",
    "question_floor", "question_marked_floor", "question_run_on_floor", "question_conditional_floor",
)  # fmt: skip


class KnowledgeError(Exception):
    """The knowledge base is invalid; `problems` says where and why."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def report(self) -> str:
        count = len(self.problems)
        head = f"Knowledge base has {count} problem{'s' if count != 1 else ''}:"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


@dataclass(frozen=True)
class Example:
    text: str
    file: str
    line: int


@dataclass(frozen=True)
class Intent:
    id: str
    title: str
    answer: str
    examples: tuple[Example, ...] = ()
    follow_up: tuple[str, ...] = ()
    action: str | None = None
    out_of_scope: bool = False
    file: str = ""
    line: int = 0
    # A broader intent whose answer this one narrows (cause_caffeine of causes): asked together
    # in one message, only the narrower one is answered.
    part_of: str | None = None
    # The line of the answer's first line of text (for warnings about a line of the answer).
    answer_line: int = 0


LEVELS = ("emergency", "doctor")


@dataclass(frozen=True)
class TriageRule:
    """A triage rule of knowledge/triage.yaml: present when every group has one of its terms
    in the message (and no term of `unless` stands beside them)."""

    id: str
    groups: tuple[tuple[str, ...], ...]
    level: str = "emergency"
    # The intent that answers an emergency (red_flag, or crisis).
    intent: str = "red_flag"
    # True: the groups may lie anywhere in the message, in different sentences.
    anywhere: bool = False
    unless: tuple[str, ...] = ()
    # For the patient: a first-aid line (emergency) or why to see a doctor (doctor).
    note: str | None = None
    # An emergency sign that, told as lasting weeks, may be a doctor's matter (`if_lasting: doctor`).
    slow_is_doctor: bool = False
    # A sign people also use as a figure of speech ("sesek", "mau pecah"): not counted in jest.
    figurative: bool = False
    file: str = ""
    line: int = 0


@dataclass(frozen=True)
class TriageWords:
    """The word lists of knowledge/triage.yaml that tell how a sign is told, not what it is."""

    # A complaint has lasted weeks or came slowly; it is recent.
    lasting: tuple[str, ...] = ()
    recent: tuple[str, ...] = ()
    # A sign in the same clause is asked about, not reported ("kalau ada orang kejang"), unless
    # it is happening now.
    hypothetical: tuple[str, ...] = ()
    now: tuple[str, ...] = ()
    # The message says nobody has the sign: it is only asked about ("nanya aja, semua sehat").
    just_asking: tuple[str, ...] = ()
    # A doctor has seen the complaint, it is getting better, and nothing is worse or new.
    seen_by_doctor: tuple[str, ...] = ()
    better: tuple[str, ...] = ()
    worse: tuple[str, ...] = ()
    # Laughter ("wkwk": also "wkwkwk") and emoji that tell a message is a joke.
    joking: tuple[str, ...] = ()


@dataclass(frozen=True)
class Lexicon:
    slang: dict[str, str]
    phrases: dict[str, str]
    particles: frozenset[str]
    greeting_words: frozenset[str]
    thanks_words: frozenset[str]
    clitics: tuple[str, ...]
    numbers: dict[str, int]
    option_fillers: frozenset[str]
    common_words: frozenset[str]
    negations: frozenset[str]
    negation_bridges: frozenset[str]
    negation_lists: frozenset[str]
    # Words before "ga" that make it ask, not deny ("boleh ga minum jamu sama warfarin?").
    negation_askers: frozenset[str]
    reassurance_tags: frozenset[str]
    affirmations: frozenset[str]
    cancel_words: frozenset[str]
    change_words: frozenset[str]
    appointment_words: frozenset[str]
    move_words: frozenset[str]
    attend_words: frozenset[str]
    booking_question_words: frozenset[str]
    booking_not_this_name: frozenset[str]
    booking_asks_for_slot: frozenset[str]
    booking_neutral: frozenset[str]
    # A word that names a booking field to correct -> the field (name, complaint, when).
    booking_field_words: dict[str, str]
    calf_words: frozenset[str]
    other_body_parts: frozenset[str]
    question_joiners: frozenset[str]
    asking_words: frozenset[str]
    not_joining: frozenset[str]
    question_starters: frozenset[str]
    request_words: frozenset[str]
    conditional_words: frozenset[str]
    not_asked_words: frozenset[str]
    # Words that end a question as a tag ("jarumnya steril kan"): the part asks.
    question_tags: frozenset[str]
    # A part of a message that ends with one of these is unfinished ("bisa bikin | kedutan?").
    unfinished_words: frozenset[str]
    # A "ga" after one of these negates what follows ("biar ga kedutan"), it does not ask.
    purpose_words: frozenset[str]
    # Answers to the satisfaction question (bot.core.feedback).
    feedback_yes: frozenset[str]
    feedback_no: frozenset[str]
    feedback_fillers: frozenset[str]

    @functools.cached_property
    def normalizer(self) -> Normalizer:
        """Built once: it remembers the texts and words it has read, and loading, the checks
        and both models read the same examples."""
        return Normalizer(self.slang, self.particles, self.phrases)


@dataclass(frozen=True)
class ClinicFacts:
    """Facts the article does not give. None means unknown: the bot must not guess."""

    name: str
    example_values: bool
    address: str | None = None
    maps_url: str | None = None
    phone: str | None = None
    whatsapp: str | None = None
    website: str | None = None
    opening_hours: dict[str, tuple[str, str] | None] = field(default_factory=dict)
    prices: tuple[tuple[str, str], ...] = ()
    payment_methods: str | None = None
    insurance: str | None = None
    parking: str | None = None
    home_visit: str | None = None
    # CARE_FACTS by name; a fact left out or null is unknown.
    care: Mapping[str, str | None] = field(default_factory=dict)
    # When appointments may start and how many at once (built from opening_hours alone, one
    # place per slot, when clinic.yaml has no `schedule`).
    schedule: Schedule = field(default_factory=lambda: Schedule(hours={}))


@dataclass(frozen=True)
class MatcherSettings:
    """The intent model's regularization and the decision thresholds, chosen by
    `python -m bot tune` on the dev and calib splits of tests/eval. Scores are 0..1."""

    answer_threshold: float = 0.45
    clarify_threshold: float = 0.35
    clarify_margin: float = 0.05
    context_bonus: float = 0.1
    context_max_tokens: int = 4
    typo_cutoff: float = 80
    max_tokens: int = 120
    c: float = 1.0
    # The triage model (the second net behind the rules): its C, and the confidences at which
    # it raises a message to emergency or to doctor.
    triage_c: float = 1.0
    emergency_threshold: float = 0.6
    doctor_threshold: float = 0.6
    # ... and at which it lowers a rule's emergency told as lasting weeks to a doctor's visit.
    lasting_threshold: float = 1.0
    # Several questions in one message (bot.core.questions): a part counts as a question when
    # the model is this sure of it alone (less when it is marked by "?" or a joining word).
    question_floor: float = 0.5
    question_marked_floor: float = 0.5
    question_run_on_floor: float = 0.6
    # ... and a part that only adds a condition ("kalo kurang minum?") this sure of another topic.
    question_conditional_floor: float = 0.75
    # Per intent, an answer cutoff that replaces answer_threshold (where tuning found one better).
    cutoffs: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DialogueWords:
    """The words the dialogue engine reads (dialogue.yaml `words`)."""

    privacy: frozenset[str] = frozenset()
    appointment: frozenset[str] = frozenset()
    erase_yes: frozenset[str] = frozenset()
    erase_fillers: frozenset[str] = frozenset()
    erase_no: frozenset[str] = frozenset()
    salam: frozenset[str] = frozenset()


DIALOGUE_WORD_KEYS = tuple(DialogueWords.__dataclass_fields__)


@dataclass(frozen=True)
class KnowledgeBase:
    intents: dict[str, Intent]
    lexicon: Lexicon
    triage_rules: tuple[TriageRule, ...]
    triage_words: TriageWords
    # Labelled messages (emergency, doctor, none) the triage model learns from.
    triage_examples: tuple[tuple[str, str], ...]
    clinic: ClinicFacts
    texts: dict[str, str]
    menu_prompt: str
    menu_items: tuple[str, ...]
    # Topics still answered by the bot while staff have the chat.
    practical_intents: tuple[str, ...]
    settings: MatcherSettings
    warnings: tuple[Problem, ...] = ()
    # The satisfaction question: topics never rated (talk about the conversation itself), and
    # the replies (thanks, goodbye) that ask about the topic answered before them.
    unrated_intents: tuple[str, ...] = ()
    closing_intents: tuple[str, ...] = ()
    dialogue_words: DialogueWords = DialogueWords()

    def topics(self, intent_ids) -> set[str]:
        """The intents, with the broader topic each narrows (part_of): the topics their answers
        cover (cause_caffeine covers causes)."""
        ids = [i for i in intent_ids if i in self.intents]
        return set(ids) | {self.intents[i].part_of for i in ids if self.intents[i].part_of}

    def normalizer(self) -> Normalizer:
        """The lexicon's normalizer (one per lexicon, kept by copies of the knowledge base)."""
        return self.lexicon.normalizer


def load(directory: str | Path) -> KnowledgeBase:
    """Load and validate a knowledge directory; raise KnowledgeError listing every problem."""
    kb, problems = _load(Path(directory))
    if problems:
        raise KnowledgeError(problems)
    return kb


def check(directory: str | Path) -> tuple[list[Problem], list[Problem]]:
    """Validate without raising: (errors, warnings)."""
    kb, problems = _load(Path(directory))
    return sorted(problems), list(kb.warnings) if kb else []


# How knowledge/clinic.yaml marks a shipped example value.
EXAMPLE_MARK = "(contoh)"


class ExampleValuesError(KnowledgeError):
    """The clinic facts are still the shipped examples, which patients must never read."""

    def report(self) -> str:
        return "\n".join([
            "Refusing to start: the clinic facts are still the shipped EXAMPLE values, and patients would read them.",
            "Write the clinic's own into these fields, then set example_values: false (BOT_DEV_MODE=1 runs with the",
            "examples on a developer's machine, shown with \"(contoh)\"):",
            *(f"  {p}" for p in self.problems),
        ])  # fmt: skip


def example_values(directory: str | Path) -> list[Problem]:
    """Where clinic.yaml still holds the shipped examples, as file:line and field:
    `example_values: true`, and every value marked "(contoh)". Empty when the file cannot be
    read: `load` reports that."""
    directory = Path(directory)
    path = directory / "clinic.yaml"
    shown = str(path.relative_to(directory.parent))
    node = compose(path, shown, Problems())
    problems = Problems()
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, value in node.value:
        if key.value == "example_values":
            if value.tag == "tag:yaml.org,2002:bool" and value.value.lower() in ("true", "yes", "on"):
                problems.add(shown, value, "example_values: true (false once every fact below is the clinic's own)")
            continue
        for field_name, scalar in _scalars(value, key.value):
            if EXAMPLE_MARK in scalar.value.lower():
                problems.add(shown, scalar, f"{field_name}: {scalar.value!r} is an example value")
    return sorted(problems)


def _scalars(node: yaml.Node, name: str):
    """(field name, scalar node) of every scalar under `node`: address, prices[0].price, ..."""
    if isinstance(node, yaml.ScalarNode):
        yield name, node
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _scalars(item, f"{name}[{index}]")
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from _scalars(value, f"{name}.{key.value}")


def _load(directory: Path) -> tuple[KnowledgeBase | None, Problems]:
    problems = Problems()
    if not directory.is_dir():
        problems.add(str(directory), 1, "knowledge directory not found")
        return None, problems
    base = directory.parent

    def display(path: Path) -> str:
        try:
            return str(path.relative_to(base))
        except ValueError:
            return str(path)

    def root(name: str):
        path = directory / name
        if not path.is_file():
            problems.add(display(path), 1, "file is missing")
            return None, None
        return compose(path, display(path), problems), Reader(display(path), problems)

    lexicon = _read_lexicon(*root("lexicon.yaml"))
    clinic = _read_clinic(*root("clinic.yaml"))
    _read_calendar(*root("calendar.yaml"))  # checked here; bot.core.dates reads it
    texts, menu_prompt, menu_items, practical, feedback, dialogue_words = _read_dialogue(*root("dialogue.yaml"))
    settings = _read_settings(*root("matcher.yaml"))
    triage_rules, triage_words = _read_triage_rules(*root("triage.yaml"))
    triage_examples = _read_triage_examples(*root("triage_examples.yaml"))
    review = read_review(*root("review.yaml"))

    intent_files = sorted((directory / "intents").glob("*.yaml"))
    if not intent_files:
        problems.add(display(directory / "intents"), 1, "no intent files (*.yaml) found")
    intents: dict[str, Intent] = {}
    unreadable = False
    for path in intent_files:
        node = compose(path, display(path), problems)
        unreadable = unreadable or node is None
        for intent in _read_intents(node, Reader(display(path), problems)):
            if intent.id in intents:
                other = intents[intent.id]
                problems.add(
                    intent.file,
                    intent.line,
                    f"intent '{intent.id}' is defined twice (also at {other.file}:{other.line})",
                )
            else:
                intents[intent.id] = intent

    for path in sorted((directory / "examples").glob("*.yaml")):
        node = compose(path, display(path), problems)
        if not unreadable:
            _read_extra_examples(node, Reader(display(path), problems), intents)
        unreadable = unreadable or node is None

    node, reader = root("out_of_scope.yaml")
    if not unreadable:
        _read_out_of_scope(node, reader, intents)
    unreadable = unreadable or node is None

    if None in (lexicon, clinic, texts, settings, triage_rules, triage_examples, review, dialogue_words):
        return None, problems

    kb = KnowledgeBase(
        intents=intents,
        lexicon=lexicon,
        triage_rules=triage_rules,
        triage_words=triage_words,
        triage_examples=triage_examples,
        clinic=clinic,
        texts=texts,
        menu_prompt=menu_prompt or "",
        menu_items=tuple(menu_items or ()),
        practical_intents=tuple(practical or ()),
        unrated_intents=tuple(feedback.get("not_rated", ())),
        closing_intents=tuple(feedback.get("closing", ())),
        dialogue_words=dialogue_words,
        settings=settings,
    )
    if unreadable:
        # Intents of an unreadable file would all look missing: report the syntax error alone.
        return kb, problems
    names = {name: display(directory / name) for name in ("intents", "dialogue.yaml", "clinic.yaml")}
    warnings = _cross_check(kb, problems, names) + review_answers(intents.values(), review, lexicon.numbers)
    return _with_warnings(kb, warnings), problems


def _with_warnings(kb: KnowledgeBase, warnings: list[Problem]) -> KnowledgeBase:
    return replace(kb, warnings=tuple(warnings))


def _read_intents(node, r: Reader) -> list[Intent]:
    if node is None:
        return []
    top = r.mapping(node, "intent file", required=("intents",))
    if not top:
        return []
    out = []
    for item in r.sequence(top["intents"], "intents") or ():
        fields = r.mapping(
            item,
            "intent",
            required=("id", "title", "answer"),
            optional=("examples", "follow_up", "action", "out_of_scope", "part_of"),
        )
        if fields is None:
            continue
        intent_id = r.string(fields["id"], "intent id") if "id" in fields else None
        if intent_id is None:
            continue
        what = f"intent '{intent_id}'"
        if not re.fullmatch(r"[a-z][a-z0-9_]*", intent_id):
            r.fail(fields["id"], f"{what}: ids are lowercase words joined by '_'")
        title = r.string(fields["title"], f"{what} title") if "title" in fields else None
        answer = r.string(fields["answer"], f"{what} answer") if "answer" in fields else None
        if answer is not None:
            for name in _PLACEHOLDER.findall(answer):
                if name not in PLACEHOLDERS:
                    r.fail(
                        fields["answer"],
                        f"{what} answer: unknown placeholder {{{name}}} (known: {', '.join(PLACEHOLDERS)})",
                    )
        examples = tuple(
            Example(text, r.file, line)
            for text, line in (r.strings(fields["examples"], f"{what} examples") if "examples" in fields else [])
        )
        follow_up = (
            tuple(text for text, _ in r.strings(fields["follow_up"], f"{what} follow_up"))
            if "follow_up" in fields
            else ()
        )
        action = None
        if "action" in fields:
            action = r.string(fields["action"], f"{what} action")
            if action is not None and action not in ACTIONS:
                r.fail(fields["action"], f"{what}: unknown action '{action}' (known: {', '.join(ACTIONS)})")
        out_of_scope = (
            bool(r.boolean(fields["out_of_scope"], f"{what} out_of_scope")) if "out_of_scope" in fields else False
        )
        part_of = r.string(fields["part_of"], f"{what} part_of") if "part_of" in fields else None
        # An intent with a broken field is still registered (its problem is already recorded),
        # so that it is not also reported as missing.
        out.append(
            Intent(
                intent_id,
                (title or "").strip(),
                (answer or "").strip(),
                examples,
                follow_up,
                action,
                out_of_scope,
                r.file,
                item.start_mark.line + 1,
                part_of,
                _text_line(fields.get("answer")),
            )  # fmt: skip
        )
    return out


def _text_line(node) -> int:
    """The line (1-based) of a scalar's first line of text: the line after a `|` or `>`."""
    if node is None:
        return 0
    return node.start_mark.line + 1 + (1 if getattr(node, "style", None) in ("|", ">") else 0)


@dataclass(frozen=True)
class Taught:
    """An example taught by staff from a real message (kept by the application, not in files)."""

    id: int
    intent: str
    text: str


TAUGHT_SOURCE = "learned_examples"  # where a taught example comes from (its Example.file); its line is its id


def with_taught(kb: KnowledgeBase, taught: Sequence[Taught]) -> tuple[KnowledgeBase, list[tuple[Taught, str]]]:
    """The knowledge base with staff-taught examples added, and those left out with why:
    "unknown_intent" (the intent is gone), "empty" (nothing left after normalisation) or
    "conflict:<intent>" (the same words are an example of another intent). Leaving them out
    instead of failing means nothing stored by the application can stop the bot from starting;
    the console refuses such an example when it is taught."""
    normalize = kb.normalizer()
    owner: dict[str, str] = {}
    for intent in kb.intents.values():
        for example in intent.examples:
            owner.setdefault(" ".join(normalize.example(example.text)), intent.id)
    added: dict[str, list[Example]] = {}
    skipped: list[tuple[Taught, str]] = []
    for item in taught:
        key = normalize(item.text)
        other = owner.get(key)
        if item.intent not in kb.intents or item.intent == "fallback":
            skipped.append((item, "unknown_intent"))
        elif not key:
            skipped.append((item, "empty"))
        elif other is not None and other != item.intent:
            skipped.append((item, f"conflict:{other}"))
        elif other is None:
            owner[key] = item.intent
            added.setdefault(item.intent, []).append(Example(item.text, TAUGHT_SOURCE, item.id))
    if not added:
        return kb, skipped
    intents = {
        i: replace(intent, examples=intent.examples + tuple(added.get(i, ()))) for i, intent in kb.intents.items()
    }
    return replace(kb, intents=intents), skipped


def _read_extra_examples(node, r: Reader, intents: dict[str, Intent]) -> None:
    """knowledge/examples/*.yaml: more phrasings for intents defined in knowledge/intents."""
    if node is None:
        return
    top = r.mapping(node, "examples file")
    for intent_id, items in (top or {}).items():
        intent = intents.get(intent_id)
        if intent is None:
            r.fail(items, f"examples for unknown intent '{intent_id}'")
            continue
        extra = tuple(Example(text, r.file, line) for text, line in r.strings(items, f"examples of '{intent_id}'"))
        intents[intent_id] = replace(intent, examples=intent.examples + extra)


def _read_out_of_scope(node, r: Reader | None, intents: dict[str, Intent]) -> None:
    """knowledge/out_of_scope.yaml: near misses the bot must not answer, in named groups; each
    is an example of the fallback intent."""
    fallback = intents.get(FALLBACK_INTENT)
    if node is None or fallback is None:
        return
    extra: list[Example] = []
    for group, items in (r.mapping(node, "out-of-scope groups") or {}).items():
        extra.extend(Example(text, r.file, line) for text, line in r.strings(items, f"out-of-scope group '{group}'"))
    intents[FALLBACK_INTENT] = replace(fallback, examples=fallback.examples + tuple(extra))


def _read_lexicon(node, r: Reader | None) -> Lexicon | None:
    if node is None:
        return None
    keys = (
        "slang",
        "particles",
        "greeting_words",
        "thanks_words",
        "clitics",
        "option_fillers",
        "common_words",
        "negations",
        "negation_bridges",
        "negation_lists",
        "negation_askers",
        "reassurance_tags",
        "affirmations",
        "cancel_words",
        "change_words",
        "appointment_words",
        "move_words",
        "attend_words",
        "booking_question_words",
        "booking_not_this_name",
        "booking_asks_for_slot",
        "booking_neutral",
        "calf_words",
        "other_body_parts",
        "question_joiners",
        "asking_words",
        "not_joining",
        "question_starters",
        "request_words",
        "conditional_words",
        "not_asked_words",
        "question_tags",
        "unfinished_words",
        "purpose_words",
        "feedback_yes",
        "feedback_no",
        "feedback_fillers",
    )
    top = r.mapping(node, "lexicon", required=(*keys, "numbers", "phrases", "booking_field_words"))
    if top is None or any(k not in top for k in (*keys, "numbers", "phrases", "booking_field_words")):
        return None
    slang, slang_lines = _read_slang(top["slang"], r)
    word_lists = {k: frozenset(text.lower() for text, _ in r.strings(top[k], k)) for k in keys[1:]}
    for key, value in slang.items():
        for word in value.split():
            if word in slang or word in word_lists["particles"]:
                r.fail(slang_lines[key], f"slang '{key}' -> '{value}': '{word}' is itself slang or a particle")
    phrases = _read_phrases(top, r, set(slang) | word_lists["particles"])
    numbers: dict[str, int] = {}
    for key_node, value_node in top["numbers"].value if r.mapping(top.get("numbers"), "numbers") is not None else ():
        value = r.number(value_node, f"number '{key_node.value}'")
        if value is not None:
            numbers[key_node.value] = int(value)
    return Lexicon(
        slang=slang,
        phrases=phrases,
        particles=word_lists["particles"],
        greeting_words=word_lists["greeting_words"],
        thanks_words=word_lists["thanks_words"],
        clitics=tuple(sorted(word_lists["clitics"], key=len, reverse=True)),
        numbers=numbers,
        option_fillers=word_lists["option_fillers"],
        common_words=word_lists["common_words"],
        negations=word_lists["negations"],
        negation_bridges=word_lists["negation_bridges"],
        negation_lists=word_lists["negation_lists"],
        negation_askers=word_lists["negation_askers"],
        reassurance_tags=word_lists["reassurance_tags"],
        affirmations=word_lists["affirmations"],
        cancel_words=word_lists["cancel_words"],
        change_words=word_lists["change_words"],
        appointment_words=word_lists["appointment_words"],
        move_words=word_lists["move_words"],
        attend_words=word_lists["attend_words"],
        booking_question_words=word_lists["booking_question_words"],
        booking_not_this_name=word_lists["booking_not_this_name"],
        booking_asks_for_slot=word_lists["booking_asks_for_slot"],
        booking_neutral=word_lists["booking_neutral"],
        booking_field_words=_read_field_words(top["booking_field_words"], r),
        calf_words=word_lists["calf_words"],
        other_body_parts=word_lists["other_body_parts"],
        question_joiners=word_lists["question_joiners"],
        asking_words=word_lists["asking_words"],
        not_joining=word_lists["not_joining"],
        question_starters=word_lists["question_starters"],
        request_words=word_lists["request_words"],
        conditional_words=word_lists["conditional_words"],
        not_asked_words=word_lists["not_asked_words"],
        question_tags=word_lists["question_tags"],
        unfinished_words=word_lists["unfinished_words"],
        purpose_words=word_lists["purpose_words"],
        feedback_yes=word_lists["feedback_yes"],
        feedback_no=word_lists["feedback_no"],
        feedback_fillers=word_lists["feedback_fillers"],
    )


def _read_slang(node, r: Reader) -> tuple[dict[str, str], dict[str, int]]:
    """The slang sections merged into one mapping, and the line of each key."""
    slang: dict[str, str] = {}
    slang_lines: dict[str, int] = {}
    for section_key, section in (r.mapping(node, "slang") or {}).items():
        if not isinstance(section, yaml.MappingNode):
            r.fail(section, f"slang section '{section_key}' must be a mapping")
            continue
        for key_node, value_node in section.value:
            key = str(key_node.value)
            value = r.string(value_node, f"slang '{key}'")
            if value is None:
                continue
            if not re.fullmatch(r"[a-z0-9]+", key):
                r.fail(key_node, f"slang '{key}': keys are single lowercase words")
            elif key in slang:
                r.fail(key_node, f"slang '{key}' is defined twice (first at line {slang_lines[key]})")
            else:
                slang[key] = value.strip().lower()
                slang_lines[key] = key_node.start_mark.line + 1
    return slang, slang_lines


def _read_phrases(top, r: Reader, not_targets: set[str]) -> dict[str, str]:
    """Phrases of two or more words; what they become must be neither slang nor a particle."""
    phrases: dict[str, str] = {}
    for key_node, value_node in top["phrases"].value if r.mapping(top.get("phrases"), "phrases") is not None else ():
        key, value = str(key_node.value).lower(), r.string(value_node, f"phrase '{key_node.value}'")
        if value is None:
            continue
        if len(key.split()) < 2 or not re.fullmatch(r"[a-z0-9 ]+", key):
            r.fail(key_node, f"phrase '{key}': keys are two or more lowercase words")
        for word in value.lower().split():
            if word in not_targets:
                r.fail(key_node, f"phrase '{key}' -> '{value}': '{word}' is itself slang or a particle")
        phrases[key] = value.strip().lower()
    return phrases


_CALENDAR_KEYS = (
    "weekdays", "months", "day_names", "month_names", "hour_words", "regional", "periods", "when_words",
)  # fmt: skip


def read_calendar_words(path: Path) -> CalendarWords:
    """knowledge/calendar.yaml alone (bot.core.dates reads it); KnowledgeError on a mistake."""
    problems = Problems()
    words = _read_calendar(compose(path, path.name, problems), Reader(path.name, problems))
    if problems or words is None:
        raise KnowledgeError(problems)
    return words


def _read_calendar(node, r: Reader | None) -> CalendarWords | None:
    if node is None:
        return None
    top = r.mapping(node, "calendar", required=_CALENDAR_KEYS)
    if top is None or any(key not in top for key in _CALENDAR_KEYS):
        return None
    numbers = {
        key: _word_numbers(top[key], r, key, limit)
        for key, limit in (("weekdays", 6), ("months", 12), ("hour_words", 12))
    }
    names = {key: [t for t, _ in r.strings(top[key], key)] for key in ("day_names", "month_names")}
    for key, count in (("day_names", 7), ("month_names", 12)):
        if len(names[key]) != count:
            r.fail(top[key], f"{key}: {count} names, in order")
    regional = {
        str(k.value).lower(): (r.string(v, f"regional '{k.value}'") or "").lower()
        for k, v in (top["regional"].value if r.mapping(top["regional"], "regional") is not None else ())
    }
    periods = {}
    for name, span in (r.mapping(top["periods"], "periods") or {}).items():
        times = r.mapping(span, f"periods.{name}", required=("default", "from", "to")) or {}
        clock = [_clock_of(times[k], r, f"periods.{name}.{k}") for k in ("default", "from", "to") if k in times]
        if len(clock) == 3 and None not in clock:
            periods[name] = tuple(clock)
    when = frozenset(t.lower() for t, _ in r.strings(top["when_words"], "when_words"))
    return CalendarWords(
        numbers["weekdays"], numbers["months"], tuple(names["day_names"]), tuple(names["month_names"]),
        numbers["hour_words"], regional, periods, when,
    )  # fmt: skip


def _word_numbers(node, r: Reader, what: str, limit: int) -> dict[str, int]:
    found: dict[str, int] = {}
    for key, value in node.value if r.mapping(node, what) is not None else ():
        number = _whole(value, r, f"{what} '{key.value}'", 0, limit)
        if number is not None:
            found[str(key.value).lower()] = number
    return found


def _clock_of(node, r: Reader, what: str):
    text = r.string(node, what)
    found = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", (text or "").strip())
    if not found:
        r.fail(node, f"{what}: write HH:MM")
        return None
    return datetime_time(int(found.group(1)), int(found.group(2)))


_BOOKING_FIELDS = ("name", "complaint", "when")


def _read_field_words(node, r: Reader) -> dict[str, str]:
    """lexicon.yaml booking_field_words: per field, the words that name it."""
    found: dict[str, str] = {}
    for field_name, words in (r.mapping(node, "booking_field_words", required=_BOOKING_FIELDS) or {}).items():
        for word, line in r.strings(words, f"booking_field_words.{field_name}"):
            if word.lower() in found:
                r.fail(line, f"booking_field_words: '{word}' names two fields")
            found[word.lower()] = field_name
    return found


def _read_clinic(node, r: Reader | None) -> ClinicFacts | None:
    if node is None:
        return None
    optional = (
        "address", "maps_url", "phone", "whatsapp", "website", "opening_hours", "prices", "payment_methods",
        "insurance", "parking", "home_visit", "care", "schedule",
    )  # fmt: skip
    top = r.mapping(node, "clinic", required=("name", "example_values"), optional=optional)
    if top is None or "name" not in top or "example_values" not in top:
        return None
    name = r.string(top["name"], "clinic name")
    example_values = r.boolean(top["example_values"], "example_values")
    hours: dict[str, tuple[str, str] | None] = {}
    if "opening_hours" in top:
        days = r.mapping(top["opening_hours"], "opening_hours", optional=WEEKDAYS) or {}
        for day, value_node in days.items():
            value = r.optional_string(value_node, f"opening_hours.{day}")
            if value is None or value.lower() == "closed":
                hours[day] = None
                continue
            found = _HOURS.match(value.replace(" ", ""))
            if not found or found.group(1, 2) >= found.group(3, 4):
                r.fail(value_node, f"opening_hours.{day}: write 'HH:MM-HH:MM' (opening before closing) or 'closed'")
                continue
            hours[day] = (f"{found.group(1)}:{found.group(2)}", f"{found.group(3)}:{found.group(4)}")
    prices = []
    if "prices" in top and not _is_null(top["prices"]):
        for item in r.sequence(top["prices"], "prices") or ():
            entry = r.mapping(item, "price", required=("item", "price"))
            if entry and "item" in entry and "price" in entry:
                label, price = r.string(entry["item"], "price item"), r.string(entry["price"], "price")
                if label and price:
                    prices.append((label.strip(), price.strip()))
    care_node = top.get("care")
    care_nodes = {} if care_node is None or _is_null(care_node) else r.mapping(care_node, "care", optional=CARE_FACTS)
    care = {key: r.optional_string(value, f"care.{key}") for key, value in (care_nodes or {}).items()}
    if name is None or example_values is None:
        return None
    return ClinicFacts(
        name=name.strip(),
        example_values=example_values,
        address=r.optional_string(top.get("address"), "address"),
        maps_url=r.optional_string(top.get("maps_url"), "maps_url"),
        phone=r.optional_string(top.get("phone"), "phone"),
        whatsapp=r.optional_string(top.get("whatsapp"), "whatsapp"),
        website=r.optional_string(top.get("website"), "website"),
        opening_hours=hours,
        prices=tuple(prices),
        payment_methods=r.optional_string(top.get("payment_methods"), "payment_methods"),
        insurance=r.optional_string(top.get("insurance"), "insurance"),
        parking=r.optional_string(top.get("parking"), "parking"),
        home_visit=r.optional_string(top.get("home_visit"), "home_visit"),
        care=care,
        schedule=_read_schedule(top.get("schedule"), r, hours),
    )


_SCHEDULE_KEYS = ("auto_confirm", "places_per_slot", "slot_minutes", "treatments", "breaks", "closed_dates", "holidays")


def _read_schedule(node, r: Reader, hours: dict[str, tuple[str, str] | None]) -> Schedule:
    """clinic.yaml `schedule`: every problem reported with its line; what is wrong is left
    at its default so the other problems are still found."""
    opening = {day: (_clock(v[0]), _clock(v[1])) if v else None for day, v in hours.items()}
    if node is None:
        return Schedule(hours=opening)
    top = r.mapping(node, "schedule", optional=_SCHEDULE_KEYS) or {}
    values: dict = {"hours": opening}
    if "auto_confirm" in top:
        values["auto_confirm"] = bool(r.boolean(top["auto_confirm"], "schedule.auto_confirm"))
    for key, name in (("places_per_slot", "places"), ("slot_minutes", "slot_minutes")):
        if key in top:
            number = _whole(top[key], r, f"schedule.{key}", 1, 24 * 60)
            if number is not None:
                values[name] = number
    if "treatments" in top:
        treatments = _read_treatments(top["treatments"], r, values.get("slot_minutes", 30))
        if treatments:
            values["treatments"] = treatments
    if "breaks" in top:
        values["breaks"] = _read_breaks(top["breaks"], r)
    closed: dict = {}
    for key in ("closed_dates", "holidays"):
        if key in top:
            closed.update(_read_dates(top[key], r, f"schedule.{key}"))
    values["closed"] = closed
    return Schedule(**values)


def _clock(text: str):
    hour, minute = text.split(":")
    return datetime_time(int(hour), int(minute))


def _whole(node, r: Reader, what: str, low: int, high: int) -> int | None:
    value = r.number(node, what)
    if value is None:
        return None
    if value != int(value) or not low <= value <= high:
        r.fail(node, f"{what} must be a whole number from {low} to {high}")
        return None
    return int(value)


def _read_treatments(node, r: Reader, slot_minutes: int) -> tuple[Treatment, ...]:
    found: list[Treatment] = []
    for item in r.sequence(node, "schedule.treatments") or ():
        entry = r.mapping(item, "treatment", required=("id", "name", "minutes"), optional=("words",))
        if not entry or not {"id", "name", "minutes"} <= entry.keys():
            continue
        treatment_id, name = r.string(entry["id"], "treatment id"), r.string(entry["name"], "treatment name")
        minutes = _whole(entry["minutes"], r, f"treatment '{treatment_id}' minutes", 1, 24 * 60)
        if minutes is not None and minutes % slot_minutes:
            r.fail(entry["minutes"], f"treatment '{treatment_id}' minutes: a multiple of slot_minutes ({slot_minutes})")
            continue
        words = tuple(w.lower() for w, _ in r.strings(entry["words"], "treatment words")) if "words" in entry else ()
        if any(t.id == treatment_id for t in found):
            r.fail(entry["id"], f"treatment '{treatment_id}' is defined twice")
        elif treatment_id and name and minutes:
            found.append(Treatment(treatment_id, name.strip(), minutes, words))
    return tuple(found)


def _read_breaks(node, r: Reader) -> dict:
    """Breaks per weekday; `daily` applies to every weekday not listed."""
    days = r.mapping(node, "schedule.breaks", optional=(*WEEKDAYS, "daily")) or {}
    read: dict[str, tuple] = {}
    for day, value in days.items():
        spans = []
        for text, line in r.strings(value, f"schedule.breaks.{day}") if not _is_null(value) else ():
            found = _HOURS.match(text.replace(" ", ""))
            if not found or found.group(1, 2) >= found.group(3, 4):
                r.fail(line, f"schedule.breaks.{day}: write 'HH:MM-HH:MM' (start before end)")
                continue
            spans.append((_clock(f"{found.group(1)}:{found.group(2)}"), _clock(f"{found.group(3)}:{found.group(4)}")))
        read[day] = tuple(spans)
    daily = read.pop("daily", ())
    return {day: read.get(day, daily) for day in WEEKDAYS}


def _read_dates(node, r: Reader, what: str) -> dict:
    found = {}
    for item in r.sequence(node, what) or ():
        entry = r.mapping(item, f"{what} entry", required=("date", "name"))
        if not entry or not {"date", "name"} <= entry.keys():
            continue
        raw, name = entry["date"], r.string(entry["name"], f"{what} name")
        try:
            day = datetime_date.fromisoformat(str(raw.value)) if isinstance(raw, yaml.ScalarNode) else None
        except ValueError:
            day = None
        if day is None:
            r.fail(raw, f"{what}: '{getattr(raw, 'value', '')}' is not a date (write YYYY-MM-DD)")
        elif day in found:
            r.fail(raw, f"{what}: {day} is listed twice")
        elif name:
            found[day] = name.strip()
    return found


def _read_dialogue(node, r: Reader | None):
    if node is None:
        return None, None, None, None, {}, None
    top = r.mapping(node, "dialogue", required=("texts", "menu", "words"), optional=("practical_intents", "feedback"))
    if top is None or "texts" not in top or "menu" not in top:
        return None, None, None, None, {}, None
    text_nodes = r.mapping(top["texts"], "texts", required=TEXT_KEYS) or {}
    texts = {key: r.string(value, f"texts.{key}") for key, value in text_nodes.items()}
    menu = r.mapping(top["menu"], "menu", required=("prompt", "items")) or {}
    prompt = r.string(menu["prompt"], "menu prompt") if "prompt" in menu else None
    items = [text for text, _ in r.strings(menu["items"], "menu items")] if "items" in menu else []
    practical = (
        [text for text, _ in r.strings(top["practical_intents"], "practical_intents")]
        if "practical_intents" in top
        else []
    )
    feedback_nodes = (
        (r.mapping(top["feedback"], "feedback", optional=("not_rated", "closing")) or {}) if "feedback" in top else {}
    )
    feedback = {key: [text for text, _ in r.strings(value, f"feedback.{key}")] for key, value in feedback_nodes.items()}
    words = _read_dialogue_words(top.get("words"), r)
    if any(v is None for v in texts.values()) or len(texts) != len(TEXT_KEYS):
        return None, None, None, None, {}, None
    return {k: v.strip() for k, v in texts.items()}, prompt, items, practical, feedback, words


def _read_dialogue_words(node, r: Reader) -> DialogueWords | None:
    if node is None:
        return None
    lists = r.mapping(node, "words", required=DIALOGUE_WORD_KEYS) or {}
    if any(key not in lists for key in DIALOGUE_WORD_KEYS):
        return None
    return DialogueWords(
        **{key: frozenset(text.lower() for text, _ in r.strings(lists[key], f"words.{key}")) for key in lists}
    )


def _read_settings(node, r: Reader | None) -> MatcherSettings | None:
    if node is None:
        return None
    top = r.mapping(node, "matcher settings", optional=MATCHER_KEYS)
    if top is None:
        return None
    values: dict = {}
    for key, value_node in top.items():
        if key == "cutoffs":
            values[key] = _read_cutoffs(value_node, r)
            continue
        number = r.number(value_node, key)
        if number is not None:
            values[key] = int(number) if isinstance(getattr(MatcherSettings, key), int) else number
    settings = MatcherSettings(**values)
    if settings.clarify_threshold > settings.answer_threshold:
        r.fail(top.get("clarify_threshold", node), "clarify_threshold must not be above answer_threshold")
    if settings.c <= 0:
        r.fail(top.get("c", node), "c (the model's regularization) must be above 0")
    return settings


def _read_cutoffs(node, r: Reader) -> dict[str, float]:
    cutoffs = {}
    for intent_id, value_node in (r.mapping(node, "cutoffs") or {}).items():
        number = r.number(value_node, f"cutoffs.{intent_id}")
        if number is not None:
            cutoffs[intent_id] = float(number)
    return cutoffs


def _read_triage_rules(node, r: Reader | None) -> tuple[tuple[TriageRule, ...] | None, TriageWords]:
    """knowledge/triage.yaml: named term lists (`terms`, used as "$name"), the rules, and the
    word lists of TriageWords (`lasting`, `recent`, `hypothetical`, `joking`...)."""
    word_lists = [f.name for f in fields_of(TriageWords)]
    if node is None:
        return None, TriageWords()
    top = r.mapping(node, "triage rules", required=("signs",), optional=("terms", *word_lists))
    if not top or "signs" not in top:
        return None, TriageWords()
    named = {}
    for name, value in (r.mapping(top["terms"], "terms") or {}).items() if "terms" in top else ():
        named[name] = tuple(text.strip().lower() for text, _ in r.strings(value, f"terms.{name}"))

    def terms_of(node, what: str) -> tuple[str, ...]:
        out: list[str] = []
        for text, line in r.strings(node, what):
            text = text.strip().lower()
            if text.startswith("$"):
                if text[1:] not in named:
                    r.fail(
                        line,
                        f"{what}: unknown term list '{text}' (known: {', '.join('$' + n for n in named) or 'none'})",
                    )
                out.extend(named.get(text[1:], ()))
            else:
                out.append(text)
        return tuple(out)

    rules = []
    seen: set[str] = set()
    optional = ("level", "intent", "anywhere", "unless", "note", "if_lasting", "figurative")
    for item in r.sequence(top["signs"], "signs") or ():
        fields = r.mapping(item, "triage rule", required=("id", "all_of"), optional=optional)
        if not fields or "id" not in fields or "all_of" not in fields:
            continue
        rule_id = r.string(fields["id"], "triage rule id")
        what = f"triage rule '{rule_id}'"
        if rule_id in seen:
            r.fail(fields["id"], f"{what} is defined twice")
        seen.add(rule_id)
        groups = [terms_of(group, f"{what} group") for group in r.sequence(fields["all_of"], f"{what} all_of") or ()]
        level = r.string(fields["level"], f"{what} level") if "level" in fields else "emergency"
        if level is not None and level not in LEVELS:
            r.fail(fields["level"], f"{what}: unknown level '{level}' (known: {', '.join(LEVELS)})")
        intent = r.string(fields["intent"], f"{what} intent") if "intent" in fields else "red_flag"
        anywhere = bool(r.boolean(fields["anywhere"], f"{what} anywhere")) if "anywhere" in fields else False
        figurative = bool(r.boolean(fields["figurative"], f"{what} figurative")) if "figurative" in fields else False
        unless = terms_of(fields["unless"], f"{what} unless") if "unless" in fields else ()
        note = r.string(fields["note"], f"{what} note") if "note" in fields else None
        if_lasting = r.string(fields["if_lasting"], f"{what} if_lasting") if "if_lasting" in fields else None
        if if_lasting not in (None, "doctor") or (if_lasting and level != "emergency"):
            r.fail(fields["if_lasting"], f"{what}: if_lasting can only be 'doctor', on an emergency rule")
        if rule_id and all(groups) and groups and intent and level in LEVELS:
            rules.append(
                TriageRule(
                    rule_id,
                    tuple(groups),
                    level,
                    intent.strip(),
                    anywhere,
                    unless,
                    note and note.strip(),
                    if_lasting == "doctor",
                    figurative,
                    r.file,
                    item.start_mark.line + 1,
                )  # fmt: skip
            )
        elif rule_id and not (groups and all(groups)):
            r.fail(fields["all_of"], f"{what}: every group of all_of needs at least one term")
    words = TriageWords(**{name: terms_of(top[name], name) for name in word_lists if name in top})
    return tuple(rules), words


def _read_triage_examples(node, r: Reader | None) -> tuple[tuple[str, str], ...] | None:
    """knowledge/triage_examples.yaml: level -> group -> messages; (level, text) pairs. Level
    `crisis` is an emergency answered with the crisis line (thoughts of suicide)."""
    if node is None:
        return None
    out = []
    for level, groups in (r.mapping(node, "triage examples", optional=(*LEVELS, "crisis", "none")) or {}).items():
        for group, items in (r.mapping(groups, f"triage examples '{level}'") or {}).items():
            out.extend((level, text) for text, _ in r.strings(items, f"triage examples '{level}.{group}'"))
    return tuple(out)


def _is_null(node) -> bool:
    return getattr(node, "tag", "") == "tag:yaml.org,2002:null"


def _cross_check(kb: KnowledgeBase, problems: Problems, names: dict[str, str]) -> list[Problem]:
    """Checks that span files: required intents, references, and duplicate examples."""
    warnings = Problems()
    _check_references(kb, problems, names)
    _check_examples(kb, problems, warnings)
    if kb.clinic.example_values:
        warnings.add(
            names["clinic.yaml"],
            0,
            "clinic facts are still the shipped EXAMPLE values: edit them and set example_values: false"
            " (outside dev mode the server refuses to start)",
        )
    return list(warnings)


def _check_references(kb: KnowledgeBase, problems: Problems, names: dict[str, str]) -> None:
    """Every intent another part names exists (and has enough examples to learn from)."""
    intents = kb.intents
    for required in REQUIRED_INTENTS:
        if required not in intents:
            problems.add(names["intents"], 0, f"required intent '{required}' is missing")
    for intent in intents.values():
        for ref in intent.follow_up:
            if ref not in intents:
                problems.add(intent.file, intent.line, f"intent '{intent.id}': follow_up names unknown intent '{ref}'")
        if intent.part_of is not None and intent.part_of not in intents:
            problems.add(
                intent.file, intent.line, f"intent '{intent.id}': part_of names unknown intent '{intent.part_of}'"
            )
        if intent.id != FALLBACK_INTENT and len(intent.examples) < MIN_EXAMPLES:
            count = len(intent.examples)
            problems.add(
                intent.file,
                intent.line,
                f"intent '{intent.id}' has {count or 'no'} example{'s' if count != 1 else ''};"
                f" the intent model needs at least {MIN_EXAMPLES}",
            )
    for rule in kb.triage_rules:
        if rule.level != "emergency":
            continue
        if rule.intent not in intents:
            problems.add(rule.file, rule.line, f"triage rule '{rule.id}' names unknown intent '{rule.intent}'")
        elif intents[rule.intent].action != "handoff_urgent":
            problems.add(
                rule.file, rule.line, f"triage rule '{rule.id}': intent '{rule.intent}' must have action handoff_urgent"
            )
    listed = (
        ("menu", kb.menu_items),
        ("practical_intents", kb.practical_intents),
        ("feedback", (*kb.unrated_intents, *kb.closing_intents)),
    )
    for label, items in listed:
        for item in items:
            if item not in intents:
                problems.add(names["dialogue.yaml"], 0, f"{label} names unknown intent '{item}'")


def _check_examples(kb: KnowledgeBase, problems: Problems, warnings: Problems) -> None:
    """No example empty after normalization; none the same as another (a warning within an
    intent, a problem across two)."""
    intents = kb.intents
    normalize = kb.normalizer()
    seen: dict[str, tuple[str, Example]] = {}
    for intent in intents.values():
        for example in intent.examples:
            key = " ".join(normalize.example(example.text))
            if not key:
                problems.add(
                    example.file,
                    example.line,
                    f"intent '{intent.id}': example \"{example.text}\" is empty after normalization",
                )
                continue
            if key in seen:
                other_intent, other = seen[key]
                where = f"{other.file}:{other.line}"
                if other_intent == intent.id:
                    warnings.add(
                        example.file, example.line, f"intent '{intent.id}': example \"{example.text}\" repeats {where}"
                    )
                else:
                    problems.add(
                        example.file,
                        example.line,
                        f"intent '{intent.id}': example \"{example.text}\""
                        f" is also an example of intent '{other_intent}' ({where})",
                    )
            else:
                seen[key] = (intent.id, example)
