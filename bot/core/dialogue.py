"""The dialogue engine: (conversation state, incoming message) -> replies, actions, new state.

Pure: no I/O, no clock, no Flask or Twilio. The edges store the state, send the replies and
carry out the actions (handoff to staff, booking).
"""

from __future__ import annotations

import re
from dataclasses import replace

from .knowledge import KnowledgeBase
from .matcher import Matcher
from .messages import (
    FALLBACK_INTENT,
    Action,
    ConversationState,
    Decision,
    Handoff,
    HandoffReason,
    Incoming,
    Match,
    Reply,
    StartBooking,
    Turn,
)
from .render import numbered, render

_ACTIONS: dict[str, Action] = {
    "start_booking": StartBooking(),
    "handoff_human": Handoff(HandoffReason.HUMAN_AGENT),
    "handoff_urgent": Handoff(HandoffReason.URGENT),
}
# After this many messages in a row that the bot could not place, staff take over.
MISSES_BEFORE_HANDOFF = 2


class Engine:
    """Holds the knowledge base and its matcher; `step` is the whole dialogue logic."""

    def __init__(self, kb: KnowledgeBase, matcher: Matcher | None = None):
        self.kb = kb
        self.matcher = matcher or Matcher(kb)
        self._numbers = kb.lexicon.numbers
        self._fillers = kb.lexicon.option_fillers
        self._affirmations = kb.lexicon.affirmations
        self._salam = "assalamualaikum"

    def step(self, state: ConversationState, incoming: Incoming) -> Turn:
        turn = self._step(replace(state, started=True), incoming, first=not state.started)
        if state.started:
            return turn
        # A new patient learns first that this is an automated assistant, unless the message
        # is urgent: then the urgent advice comes first and the introduction after it.
        intro = Reply(self.text("first_contact"))
        urgent = any(isinstance(a, Handoff) and a.reason is HandoffReason.URGENT for a in turn.actions)
        replies = (*turn.replies, intro) if urgent else (intro, *turn.replies)
        return replace(turn, replies=replies)

    def _step(self, state: ConversationState, incoming: Incoming, first: bool) -> Turn:
        replies: list[Reply] = []
        text = (incoming.text or "").strip()
        tokens = self.matcher.normalize.tokens(text)
        if state.options:
            choice = self._option_choice(tokens)
            if choice is not None and 1 <= choice <= len(state.options):
                match = Match(Decision.ANSWER, state.options[choice - 1], 1.0, reason="option")
                return self._answer(state, match, replies)
            said = re.findall(r"[a-z]+", text.lower())
            if choice is not None or (said and set(said) <= self._affirmations):
                # A number outside the list, or "iya" to a numbered question: ask for the number.
                replies.append(Reply(self.text("invalid_option").replace("{n}", str(len(state.options)))))
                return Turn(tuple(replies), (), state, None)
        elif 1 <= (self._option_choice(tokens) or 0) <= len(self.kb.menu_items):
            # A small number when no list is showing: show the menu it was probably meant for.
            match = Match(Decision.ANSWER, "menu", 1.0, reason="number_without_menu")
            return self._answer(state, match, replies)

        if not tokens:
            if incoming.media_types or incoming.has_location:
                key = "media"
            else:
                key = "emoji_only" if text else "empty"
            replies.append(Reply(self.text(key)))
            return Turn(tuple(replies), (), state, Match(Decision.FALLBACK, FALLBACK_INTENT, 0.0, reason=key))

        context = state.options or (*self._follow_ups(state.last_intent), *([state.last_intent] if state.last_intent else []))
        match = self.matcher.match(text, context=context)
        if match.decision is Decision.ANSWER:
            return self._answer(state, match, replies, salam=self._salam in tokens, first=first)
        if match.decision is Decision.CLARIFY:
            options = self.matcher.clarify_options(match)
            titles = [self.kb.intents[i].title for i in options]
            replies.append(Reply(f"{self.text('clarify')}\n{numbered(titles)}\n{self.text('options_hint')}"))
            return Turn(tuple(replies), (), replace(state, options=options), match)
        return self._fallback(state, match, replies)

    def _answer(self, state: ConversationState, match: Match, replies: list[Reply], salam: bool = False, first: bool = False) -> Turn:
        intent = self.kb.intents[match.intent]
        if intent.id == FALLBACK_INTENT:
            return self._fallback(state, match, replies)
        if intent.id == "greeting" and state.last_intent is None and not state.misses:
            # A first hello gets the introduction anyway: show what the bot can do instead.
            intent = self.kb.intents["menu"]
        if intent.id == "menu":
            options = self.kb.menu_items
            prompt = self.kb.menu_prompt
        else:
            options = intent.follow_up
            prompt = self.text("follow_up_prompt")
        body, _ = render(intent.answer, self.kb)
        if salam:
            body = f"{self.text('salam_reply')}\n{body}"
        elif match.greeted and intent.id != "greeting" and not first:
            body = f"{self.text('greeting_prefix')} {body}"
        if options:
            titles = [self.kb.intents[i].title for i in options]
            body = f"{body}\n\n{prompt}\n{numbered(titles)}"
        replies.append(Reply(body))
        actions = (_ACTIONS[intent.action],) if intent.action else ()
        new_state = replace(state, options=tuple(options), last_intent=intent.id, misses=0)
        return Turn(tuple(replies), actions, new_state, match)

    def _fallback(self, state: ConversationState, match: Match, replies: list[Reply]) -> Turn:
        named = match.reason.removeprefix("out_of_scope:")
        if match.reason.startswith("out_of_scope:") and named in self.kb.intents:
            # A topic the bot recognises but does not handle: its own guidance, not a miss.
            body, _ = render(self.kb.intents[named].answer, self.kb)
            replies.append(Reply(body))
            return Turn(tuple(replies), (), replace(state, options=(), last_intent=named, misses=0), match)
        misses = state.misses + 1
        if misses >= MISSES_BEFORE_HANDOFF:
            replies.append(Reply(self.text("fallback_again")))
            new_state = replace(state, options=(), misses=0)
            return Turn(tuple(replies), (Handoff(HandoffReason.HUMAN_AGENT),), new_state, match)
        body, _ = render(self.kb.intents[FALLBACK_INTENT].answer, self.kb)
        replies.append(Reply(body))
        return Turn(tuple(replies), (), replace(state, options=(), misses=misses), match)

    def _option_choice(self, tokens: list[str]) -> int | None:
        """The number a reply picks ("2", "yang kedua", "no 3"), or None if it is not a pick."""
        rest = [t for t in tokens if t not in self._fillers]
        if len(rest) != 1:
            return None
        word = rest[0]
        if word.isdigit():
            return int(word)
        return self._numbers.get(word)

    def _follow_ups(self, intent_id: str | None) -> tuple[str, ...]:
        intent = self.kb.intents.get(intent_id) if intent_id else None
        return intent.follow_up if intent else ()

    def urgent(self, text: str) -> bool:
        """Whether a message shows a danger sign (answered even when nothing else would be)."""
        return bool(self.matcher.analyze(text).danger_signs)

    def text(self, key: str) -> str:
        """A fixed text of knowledge/dialogue.yaml, with the clinic's name filled in."""
        return self.kb.texts[key].replace("{clinic_name}", self.kb.clinic.name)
