"""WhatsApp buttons and lists through Twilio's Content API.

The template definitions live in knowledge/content.yaml: quick-reply templates for 2 and 3
choices and list-picker templates for up to 10. `python -m bot content register` creates each
one (through the real twilio client) and writes name -> ContentSid to CONTENT_SIDS_FILE. A reply
whose choices have a registered template of their size still goes as its numbered text, and is
followed by the buttons (ContentSid + ContentVariables, through the outbox) in a short message of
their own (content.yaml `prompt`): the reply reaches the patient even if the buttons do not, and
no variable holds a line break, which WhatsApp refuses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twilio.rest.content.v1.content import ContentList

from bot.config import ROOT, Config
from bot.core.messages import Option

from .settings import settings

DEFAULT_SIDS_FILE = ROOT / "instance" / "content_sids.json"
QUICK_REPLY, LIST_PICKER = "twilio/quick-reply", "twilio/list-picker"
# WhatsApp's limits (characters): a template's body, a button's title, a list row and its description.
# The prompt the buttons go with: one short line (a content variable; Twilio's limit is larger).
PROMPT_LIMIT = 200
TITLE_LIMIT = {QUICK_REPLY: 20, LIST_PICKER: 24}
DESCRIPTION_LIMIT = 72
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
class Definitions:
    language: str
    sample_body: str
    templates: tuple[Definition, ...]
    prompt: str = ""

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
    return Definitions(str(data.get("language") or "id"), str(data["sample_body"]), tuple(templates), prompt)


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
    own = settings(config)
    if not (own.account_sid and own.auth_token):
        raise ValueError("registering templates needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    client = Client(own.account_sid, own.auth_token)
    client.content.base_url = own.content_base_url or client.content.base_url
    sids = read_sids(path)
    done = []
    for definition in definitions.templates:
        if definition.name in sids:
            done.append(Registered(definition.name, sids[definition.name], created=False))
            continue
        request = ContentList.ContentCreateRequest(definition.payload(definitions.language, definitions.sample_body))
        sids[definition.name] = client.content.v1.contents.create(request).sid
        _write(path, sids)
        done.append(Registered(definition.name, sids[definition.name], created=True))
    return done


def register_command(config: Config, out) -> int:
    """`python -m bot content register`: each template, created or already there, and the file."""
    path = sids_file(config)
    try:
        done = register(config, load_definitions(config.knowledge_dir / "content.yaml"), path)
    except (ValueError, TwilioRestException) as error:
        print(f"content register failed: {error}", file=out)
        return 1
    for item in done:
        print(f"{item.name}: {item.sid} ({'created' if item.created else 'already registered'})", file=out)
    print(f"ContentSids in {path}", file=out)
    return 0


def _write(path: Path, sids: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(sids, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    partial.replace(path)
