"""WhatsApp buttons and lists through Twilio's Content API.

The template definitions live in knowledge/content.yaml: quick-reply templates for 2 and 3
choices and list-picker templates for up to 10. `python -m bot content register` creates each
one (through the real twilio client) and writes name -> ContentSid to CONTENT_SIDS_FILE. A reply
whose choices have a registered template of their size still goes as its numbered text, and is
followed by the buttons (ContentSid + ContentVariables, through the outbox) in a short message of
their own (content.yaml `prompt`): the reply reaches the patient even if the buttons do not, and
no variable holds a line break, which WhatsApp refuses.

The appointment reminder is a template of its own: fixed text with three fixed buttons, which
goes outside the 24-hour window too, so `register` also asks WhatsApp to approve it and
`python -m bot content status` shows the decision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import yaml
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twilio.rest.content.v1.content import ContentList
from twilio.rest.content.v1.content.approval_create import ApprovalCreateList

from bot.config import ROOT, Config
from bot.core import knowledge
from bot.core.dialogue import APPOINTMENT_CHOICES
from bot.core.messages import Option
from bot.core.render import fill

from .settings import settings

DEFAULT_SIDS_FILE = ROOT / "instance" / "content_sids.json"
QUICK_REPLY, LIST_PICKER = "twilio/quick-reply", "twilio/list-picker"
# WhatsApp's limits (characters): a template's body, a button's title, a list row and its description.
# The prompt the buttons go with: one short line (a content variable; Twilio's limit is larger).
PROMPT_LIMIT = 200
TITLE_LIMIT = {QUICK_REPLY: 20, LIST_PICKER: 24}
DESCRIPTION_LIMIT = 72
# WhatsApp's approval status of a template not yet submitted.
_NOT_SUBMITTED = (None, "", "unsubmitted")
# The variables each choice takes after the body ({{1}}): title and id; a list row, its description too.
_PER_CHOICE = {QUICK_REPLY: 2, LIST_PICKER: 3}


@dataclass(frozen=True)
class Definition:
    """One template: its name (the friendly name, the key in the sids file), type and size."""

    name: str
    kind: str
    size: int
    button: str = ""  # a list's button label

    def payload(self, language: str, sample_body: str) -> dict:
        """The Content API create request: {{1}} the body, then each choice's variables."""
        per = _PER_CHOICE[self.kind]
        slots = [[f"{{{{{2 + per * i + k}}}}}" for k in range(per)] for i in range(self.size)]
        if self.kind == QUICK_REPLY:
            body = {"body": "{{1}}", "actions": [{"type": "QUICK_REPLY", "title": t, "id": c} for t, c in slots]}
        else:
            items = [{"item": t, "id": c, "description": d} for t, c, d in slots]
            body = {"body": "{{1}}", "button": self.button, "items": items}
        samples = [Option(f"choice_{n}", f"Pilihan {n}", str(n)) for n in range(1, self.size + 1)]
        return {
            "friendly_name": self.name,
            "language": language,
            "variables": variables(self.kind, sample_body, tuple(samples)),
            "types": {self.kind: body},
        }


@dataclass(frozen=True)
class Reminder:
    """The appointment reminder: knowledge/content.yaml `reminder`, with the text and buttons
    filled in from the knowledge base when it is registered."""

    name: str
    category: str
    sample_name: str
    sample_when: str

    def payload(self, language: str, kb: knowledge.KnowledgeBase) -> dict:
        body = fill(kb.texts["booking_reminder"], {"clinic_name": kb.clinic.name, "name": "{{1}}", "when": "{{2}}"})
        actions = [
            {"type": "QUICK_REPLY", "title": shorten(kb.texts[key], TITLE_LIMIT[QUICK_REPLY]), "id": choice}
            for choice, key in APPOINTMENT_CHOICES
        ]
        return {
            "friendly_name": self.name,
            "language": language,
            "variables": {"1": self.sample_name, "2": self.sample_when},
            "types": {QUICK_REPLY: {"body": body.strip(), "actions": actions}},
        }


@dataclass(frozen=True)
class Definitions:
    language: str
    sample_body: str
    templates: tuple[Definition, ...]
    prompt: str = ""
    reminder: Reminder | None = None

    def for_size(self, size: int) -> Definition | None:
        """The template for this many choices: buttons when they fit, else a list."""
        return next((d for d in self.templates if d.size == size), None)


def load_definitions(path: Path) -> Definitions:
    """knowledge/content.yaml -> the templates, buttons before lists for each size."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    quick, listed = data["quick_reply"], data["list_picker"]
    templates = [Definition(f"{quick['name']}_{n}", QUICK_REPLY, n) for n in quick["sizes"]]
    button = str(listed["button"])
    if len(button) > 20:
        raise ValueError(f"{path}: the list button '{button}' is longer than 20 characters")
    templates += [Definition(f"{listed['name']}_{n}", LIST_PICKER, n, button) for n in listed["sizes"]]
    if any(d.size > 10 or (d.kind == QUICK_REPLY and d.size > 3) for d in templates):
        raise ValueError(f"{path}: at most 3 buttons and 10 list rows")
    prompt = " ".join(str(data["prompt"]).split())
    if not prompt or len(prompt) > PROMPT_LIMIT:
        raise ValueError(f"{path}: prompt must be one line of at most {PROMPT_LIMIT} characters")
    reminder = data.get("reminder")
    if reminder is not None:
        reminder = Reminder(*(str(reminder[key]) for key in ("name", "category", "sample_name", "sample_when")))
        if not reminder.name.replace("_", "").isalnum() or reminder.name.lower() != reminder.name:
            raise ValueError(f"{path}: reminder name '{reminder.name}': lowercase letters, digits and _ only")
    language = str(data.get("language") or "id")
    return Definitions(language, str(data["sample_body"]), tuple(templates), prompt, reminder)


def shorten(title: str, limit: int) -> str:
    """A title of at most `limit` characters: cut at a word where one ends late enough, with '…'."""
    title = " ".join(title.split())
    if len(title) <= limit:
        return title
    cut = title[: limit - 1]
    if title[limit - 1] != " ":  # the cut falls inside a word: back to its start, if not too far
        space = cut.rfind(" ")
        cut = cut[:space] if space >= limit // 2 else cut
    return cut.rstrip(" ,.&-") + "…"


def variables(kind: str, body: str, options: tuple[Option, ...]) -> dict[str, str]:
    """The ContentVariables of a reply: "1" its text, then per choice its title and id (and for a
    list row its description, the full title)."""
    values = {"1": body}
    per = _PER_CHOICE[kind]
    for index, option in enumerate(options):
        first = 2 + per * index
        values[str(first)] = shorten(option.title, TITLE_LIMIT[kind])
        values[str(first + 1)] = option.id
        if kind == LIST_PICKER:
            values[str(first + 2)] = shorten(option.title, DESCRIPTION_LIMIT)
    return values


def sids_file(config: Config) -> Path:
    return Path(settings(config).content_sids_file or DEFAULT_SIDS_FILE)


def read_sids(path: Path) -> dict[str, str]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


class ContentTemplates:
    """The channel's OptionTemplates (bot.services.inbox): the registered template for a reply's
    choices and its variables. The sids file is read again when it changes (registering while
    the app runs takes effect at once)."""

    def __init__(self, definitions: Definitions, path: Path):
        self.definitions = definitions
        self.path = path
        self._seen: tuple[float, dict[str, str]] = (-1.0, {})

    @classmethod
    def from_config(cls, config: Config) -> ContentTemplates | None:
        """None when the knowledge has no content.yaml: choices stay text."""
        path = config.knowledge_dir / "content.yaml"
        return cls(load_definitions(path), sids_file(config)) if path.exists() else None

    def sids(self) -> dict[str, str]:
        mtime = self.path.stat().st_mtime if self.path.exists() else 0.0
        if mtime != self._seen[0]:
            self._seen = (mtime, read_sids(self.path))
        return self._seen[1]

    def template(self, options: tuple[Option, ...]) -> tuple[str, str, dict] | None:
        """(the prompt, the template, its variables) of the message carrying these choices as
        buttons or a list; None when no template of their size is registered."""
        definition = self.definitions.for_size(len(options))
        sid = self.sids().get(definition.name) if definition else None
        if sid is None:
            return None
        prompt = self.definitions.prompt
        return prompt, sid, variables(definition.kind, prompt, options)


@dataclass(frozen=True)
class Registered:
    name: str
    sid: str
    created: bool  # False: it was registered already


def register(config: Config, definitions: Definitions, path: Path) -> list[Registered]:
    """Create each template not in the sids file yet (the file is written after each one, so an
    interrupted run resumes where it stopped); TWILIO_CONTENT_BASE_URL points the client elsewhere."""
    client = _client(config)
    sids = read_sids(path)
    language = definitions.language
    payloads = {d.name: partial(d.payload, language, definitions.sample_body) for d in definitions.templates}
    reminder = definitions.reminder
    if reminder is not None:
        payloads[reminder.name] = partial(reminder.payload, language, knowledge.load(config.knowledge_dir))
    done = []
    for name, payload in payloads.items():
        if name in sids:
            done.append(Registered(name, sids[name], created=False))
            continue
        sids[name] = client.content.v1.contents.create(ContentList.ContentCreateRequest(payload())).sid
        _write(path, sids)
        done.append(Registered(name, sids[name], created=True))
    if reminder is not None and _approval(client, sids[reminder.name]).get("status") in _NOT_SUBMITTED:
        request = ApprovalCreateList.ContentApprovalRequest({"name": reminder.name, "category": reminder.category})
        client.content.v1.contents(sids[reminder.name]).approval_create.create(request)
    return done


def _client(config: Config) -> Client:
    own = settings(config)
    if not (own.account_sid and own.auth_token):
        raise ValueError("the Content API needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    client = Client(own.account_sid, own.auth_token)
    client.content.base_url = own.content_base_url or client.content.base_url
    return client


def _approval(client: Client, sid: str) -> dict:
    """WhatsApp's decision on a template: its status ("received", "pending", "approved",
    "rejected"…) and any rejection reason; an empty status when none was asked for."""
    return client.content.v1.contents(sid).approval_fetch().fetch().whatsapp or {}


def status(config: Config, definitions: Definitions, path: Path) -> list[tuple[str, str, str]]:
    """(name, ContentSid, WhatsApp's decision) of each registered template that needs one."""
    client = _client(config)
    sids = read_sids(path)
    reminder = definitions.reminder
    if reminder is None or reminder.name not in sids:
        return []
    decision = _approval(client, sids[reminder.name])
    said = decision.get("status") or "unsubmitted"
    if decision.get("rejection_reason"):
        said = f"{said}: {decision['rejection_reason']}"
    return [(reminder.name, sids[reminder.name], said)]


def status_command(config: Config, out) -> int:
    """`python -m bot content status`: WhatsApp's decision on the reminder template, and what to
    set once it is approved."""
    try:
        decisions = status(config, load_definitions(config.knowledge_dir / "content.yaml"), sids_file(config))
    except (ValueError, TwilioRestException) as error:
        print(f"content status failed: {error}", file=out)
        return 1
    if not decisions:
        print("no template waits for WhatsApp's approval: run `python -m bot content register` first", file=out)
    for name, sid, said in decisions:
        print(f"{name}: {sid} {said}", file=out)
        if said == "approved" and config.reminder_template_id != sid:
            print(f"  reminders go with buttons once REMINDER_CONTENT_SID={sid} is set", file=out)
    return 0


def register_command(config: Config, out) -> int:
    """`python -m bot content register`: each template, created or already there, and the file."""
    path = sids_file(config)
    try:
        definitions = load_definitions(config.knowledge_dir / "content.yaml")
        done = register(config, definitions, path)
    except (ValueError, TwilioRestException) as error:
        print(f"content register failed: {error}", file=out)
        return 1
    for item in done:
        print(f"{item.name}: {item.sid} ({'created' if item.created else 'already registered'})", file=out)
    print(f"ContentSids in {path}", file=out)
    if definitions.reminder is not None:
        print(f"{definitions.reminder.name} needs WhatsApp's approval: `python -m bot content status`", file=out)
    return 0


def _write(path: Path, sids: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(sids, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    partial.replace(path)
