"""Several questions in one message: "harga akupuntur brp? terus alamatnya di mana?".

A message is cut into pieces at the signs people use between questions (? ! ; line breaks,
full stops, commas, "1." "2.", and the joining words of knowledge/lexicon.yaml: terus, oiya,
sekalian, dan ...). Pieces are read left to right: a piece the intent model is sure of by itself
is a question; a piece it is not sure of (a story, "kak", half a sentence) is read again together
with the next one. Only when two or more different questions are found does the message count
as several; otherwise the whole message is read as one, as before, so that a single question
split by a comma or by "kedutan terus" keeps its reading.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from .knowledge import MatcherSettings
from .matcher import NAMED_PREFIX, SOCIAL_INTENTS, Matcher
from .messages import Decision, Match
from .normalize import typed_words

# More than this many questions: the first ones are answered and the rest named as skipped.
MAX_ANSWERS = 3
_BOOKING = "start_booking"
_THANKS = "thanks"
# A comma or full stop at the end of the text before a cut.
_PUNCTUATION_BEFORE = re.compile(r"[.,;]\s*$")
# Pieces read at most (a 5,000-character message is not read as hundreds of questions).
_MAX_PIECES = 12
# Two questions run together are looked for in messages of this many words (each half at least
# the shortest): a cut is tried between every two words, two readings each.
_RUN_ON_SHORTEST = 3
_RUN_ON_LONGEST = 30
# ... or, for a second half with a word that asks ("| berapa tarifnya", "| alamatnya di mana"), this.
_RUN_ON_SHORTEST_ASKED = 2
# A half this sure is a question of its own beside a half that asks what the whole message asks
# (less sure after a first half that ends as a yes/no question: "...bikin kedutan gak | akupuntur
# bisa bantu ga").
_RUN_ON_SURE = 0.85
_RUN_ON_SURE_AFTER_YES_NO = 0.6
# Sentence and clause ends, and list numbers ("1." "2)": one digit, not "jam 3." or "tanggal 8.").
_BOUNDARY = (
    r"[!?;\n]+|(?<!\d)[.,]+|[.,]+(?!\d)|\s[+&]\s?|(?<=[a-z])[+&](?=\s?[a-z])"
    r"|(?<![a-z0-9.:])(?<!jam )(?<!pukul )(?<!tanggal )(?<!tgl )\(?\d[.)](?=\s*[a-z])"
)


@dataclass(frozen=True)
class Question:
    """One question of a message: the text that asks it and the intent model's verdict."""

    text: str
    match: Match
    # One of a list of things asked ("harga + alamat", one per line).
    listed: bool = False


class QuestionFinder:
    def __init__(self, matcher: Matcher, settings: MatcherSettings | None = None):
        self.matcher = matcher
        settings = settings or matcher.settings
        # A piece's question counts only when the model is this sure of it in the piece.
        self.piece_floor = settings.question_floor
        # A piece marked as a question ("...?", "terus ...") needs less.
        self.marked_floor = settings.question_marked_floor
        # Each half of two questions typed with nothing between them needs this.
        self.run_on_floor = settings.question_run_on_floor
        # A part that only adds a condition to the question before ("kalo kurang minum?") is a
        # question of its own when the model is this sure it asks about another topic.
        self.conditional_floor = settings.question_conditional_floor
        # A piece that is not marked ("...?", "terus ...") must ask something itself: "kedutan"
        # or "kemarin main futsal" is the story around a question.
        lexicon = matcher.kb.lexicon
        self._asking = lexicon.asking_words
        # ... of them, the words that ask rather than only request (berapa, not mau).
        self._questioning = lexicon.asking_words - lexicon.request_words
        self._conditional = lexicon.conditional_words
        self._not_asked = lexicon.not_asked_words
        self._tags = lexicon.question_tags
        self._joiners = lexicon.question_joiners
        self._unfinished = lexicon.unfinished_words
        self._purpose = lexicon.purpose_words
        self._practical = frozenset(matcher.kb.practical_intents)
        starters = sorted((re.escape(w) for w in lexicon.question_starters), key=len, reverse=True)
        self._starts = re.compile(rf"(?:{'|'.join(starters)})(?![a-z0-9])", re.IGNORECASE) if starters else None
        words = sorted((re.escape(j) for j in lexicon.question_joiners), key=len, reverse=True)
        # ... but not in the phrases that only look like one ("kedutan terus menerus").
        phrases = (
            "|".join(re.escape(p) + r"(?![a-z0-9])" for p in sorted(lexicon.not_joining, key=len, reverse=True))
            or "(?!)"
        )
        joined = rf"(?<![a-z0-9])(?!{phrases})(?=(?:{'|'.join(words)})(?![a-z0-9]))" if words else r"(?!)"
        self._cut = re.compile(rf"{_BOUNDARY}|{joined}", re.IGNORECASE)

    def pieces(self, text: str) -> list[str]:
        """The message cut at every sign that may start another question (empty pieces left out)."""
        return [piece for piece, _, _ in self._marked_pieces(text)]

    def _marked_pieces(self, text: str) -> list[tuple[str, bool, bool]]:
        """The pieces, each with whether it is marked as a question of its own (it ends with
        "?" or starts with a joining word: "terus alamatnya di mana"; a piece asked with "?" is
        a question whatever its words), and whether it is listed: it starts with a joining word
        right after a comma or a full stop ("jam buka, sama harga terapinya")."""
        pieces, start, joined, listed = [], 0, False, False
        for found in self._cut.finditer(text):
            piece = text[start : found.start()].strip()
            if piece:
                pieces.append((piece + ("?" if "?" in found.group(0) else ""), joined or "?" in found.group(0), listed))
            joined = found.start() == found.end()  # cut before a joining word: the next piece starts with it
            listed = (joined and bool(_PUNCTUATION_BEFORE.search(text[: found.start()]))) or _is_list_cut(
                found.group(0)
            )
            if listed and pieces and not joined:
                pieces[-1] = (*pieces[-1][:2], True)  # the piece before a line break or "+" is an item too
            start = found.end()
        rest = text[start:].strip()
        if rest and pieces and joined and rest.lower().rstrip("?!. ") in self._joiners:
            # A joining word that ends the message ends the question before it ("kok bisa di betis terus").
            last, marked, was_listed = pieces[-1]
            pieces[-1] = (f"{last} {rest}", marked or rest.endswith("?"), was_listed)
        elif rest:
            pieces.append((rest, joined or rest.endswith("?"), listed))
        return pieces

    def find(self, text: str, whole: Match) -> tuple[Question, ...]:
        """The questions of a message whose reading as one question is `whole`: two or more
        when it asks about different things; one narrower than `whole` when the message asks a
        broad question and a narrower one of it; else just the whole message."""
        pieces = self._marked_pieces(text)
        if len(pieces) < 2:
            return self._run_on(text, whole) or (Question(text, whole),)
        if len(pieces) > _MAX_PIECES:
            # A long story before the questions: read its start as one piece, the questions
            # at its end one by one.
            cut = len(pieces) - _MAX_PIECES + 1
            pieces = [(" ".join(piece for piece, _, _ in pieces[:cut]), *pieces[cut - 1][1:]), *pieces[cut:]]
        # One reading per text: a part is read alone, then as the part that builds up (often
        # the same text), and the rest once more for the unclear last part.
        read = functools.cache(self.matcher.match)
        found: list[Question] = []
        pending = ""
        for piece, marked, listed in pieces:
            current = f"{pending} {piece}".strip()
            if found and not pending and self._conditional_question(piece, found, read):
                continue
            if not pending and self._only_thanks(piece, read):
                continue  # "makasih kak infonya 🙏 | satu lagi, ...": not a story for the next part
            # A part listed with a joining word after a comma, on its own line or after "+" asks
            # what the others ask ("tolong kasih tau jam buka, sama harga terapinya").
            if not self._asks(piece, first=not found) and not (listed and not pending):
                if found and not pending and read(piece).intent == found[-1].match.intent:
                    # "mau ngomong | sama admin": the rest of the question before, not a story
                    # to read with the next one.
                    found[-1] = replace(found[-1], text=f"{found[-1].text} {piece}")
                else:
                    pending = current
                continue
            match = _named(read(current))
            floor = self.marked_floor if marked or listed else self.piece_floor
            if match.score < self.piece_floor and self._sibling(match.intent, found):
                floor = self.piece_floor  # "teh ada kafeinnya? bisa bikin kedutan juga?" is one question
            if _is_question(match) and match.score >= floor:
                found.append(Question(current, match, listed))
                pending = ""
            else:
                pending = current
        distinct = _distinct(found)
        questions = self._narrowest(distinct)
        if any(self.matcher.kb.intents[q.match.intent].action == _BOOKING for q in questions):
            # Beside a booking request, what only requests is its detail ("mau daftar, mau
            # akupuntur ya"); what asks (with "?", "kalo ke rumah?", or a word like berapa),
            # stands in a list of things asked, or requests a practical fact ("sama tolong info
            # alamatnya") is a question too.
            questions = [
                q
                for q in questions
                if self.matcher.kb.intents[q.match.intent].action
                or q.listed
                or q.match.intent in self._practical
                or self._asks(q.text, requests=False, first=True)
            ]
        # An unsure last part is asked about only when it has a word that asks ("terus betis saya
        # gimana?"), not for a "?" alone ("brp kalau 5 sesi?").
        asks = not self._questioning.isdisjoint(self.matcher.normalize.tokens(pending))
        unclear = self._unclear(pending, questions, read) if text.rstrip().endswith("?") and asks else None
        if len(questions) == 1 and len(distinct) > 1 and unclear is None and self._agrees(whole, questions):
            # "Kenapa kedutan? Apa karena stres?": the narrower question answers both.
            return (replace(questions[0], text=text),)
        if len(questions) == 1 and unclear is None and whole.intent in SOCIAL_INTENTS and "?" in questions[0].text:
            # Thanks around one question asked ("makasih infonya, satu lagi, ...?"): the question.
            return (questions[0],)
        if len(questions) + (unclear is not None) < 2 or not questions or not self._agrees(whole, questions):
            return self._run_on(text, whole) or (Question(text, whole),)
        return (*questions, *([unclear] if unclear else ()))

    def _run_on(self, text: str, whole: Match) -> tuple[Question, ...] | None:
        """Two questions typed with nothing between them ("brp tarif akupunktur terapisnya bisa
        dateng ke rumah gak"): the cut between two words where both halves ask, are questions of
        different topics, and the model is surest of the less sure half: at least run_on_floor,
        and surer than of the whole message ("kekurangan nutrisi bisa | jd penyebab kedutan?"
        reads surer as one), unless one half asks what the whole message is read as and the
        other is a sure question of its own (run_on_sure). None when there is no such cut, or
        it loses the whole message's clear answer."""
        words = text.split()
        if not _RUN_ON_SHORTEST + _RUN_ON_SHORTEST_ASKED <= len(words) <= _RUN_ON_LONGEST:
            return None
        best, surest = None, self.run_on_floor
        for cut in range(_RUN_ON_SHORTEST, len(words) - _RUN_ON_SHORTEST_ASKED + 1):
            left, right = " ".join(words[:cut]), " ".join(words[cut:])
            short = len(words) - cut < _RUN_ON_SHORTEST
            if short and self._questioning.isdisjoint(self.matcher.normalize.tokens(right)):
                continue
            left_tokens = self.matcher.normalize.tokens(left)
            ending = left_tokens[-1:]
            if not (self._asks(left) and self._asks(right)) or self._unfinished.issuperset(ending):
                continue
            first, second = _named(self.matcher.match(left)), _named(self.matcher.match(right))
            if not (_is_question(first) and _is_question(second)) or first.intent == second.intent:
                continue
            less = min(first.score, second.score)
            # A first half that ends as a yes/no question and asks what the whole message asks.
            yes_no = (
                bool(ending)
                and ending[0] in self._tags
                and self._purpose.isdisjoint(left_tokens)
                and whole.intent == first.intent
            )
            sure = _RUN_ON_SURE_AFTER_YES_NO if yes_no else _RUN_ON_SURE
            beside_whole = whole.intent in (first.intent, second.intent) and less >= sure
            if less > surest and (less > whole.score or beside_whole):
                best, surest = (Question(left, first), Question(right, second)), min(first.score, second.score)
        questions = self._narrowest(list(best or ()))
        return tuple(questions) if len(questions) == 2 and self._agrees(whole, questions) else None

    def _asks(self, text: str, requests: bool = True, first: bool = False) -> bool:
        """Whether a piece asks or requests: it ends with "?" or a question tag ("kopi bikin
        kedutan ga", "jarumnya steril kan"),
        starts with a word that starts a new question (sekalian, oiya, btw...), or has an
        asking word (apa, berapa, bisa, mau, tolong...; with `requests` False, only the words
        that ask). A piece starting with "kalau" belongs to the question before ("harga brp? kalau
        5 sesi?"), unless it is the `first` one ("kalau kurang magnesium bikin kedutan ya?"); one
        starting with "bukan" says what is not asked."""
        tokens = self.matcher.normalize.tokens(text)
        if tokens and tokens[0] in self._not_asked:
            return False
        conditional = bool(tokens) and tokens[0] in self._conditional and not first
        if (text.rstrip().endswith("?") and not conditional) or (
            self._starts is not None and self._starts.match(text.lstrip())
        ):
            return True
        words = self._asking if requests else self._questioning
        return (bool(tokens) and tokens[-1] in self._tags) or self._tagged(text) or not words.isdisjoint(tokens)

    def _tagged(self, text: str) -> bool:
        """Whether the text as typed ends with a question tag the word reading drops ("kan")."""
        typed = typed_words(text)
        return bool(typed) and typed[-1] in self._tags

    def _conditional_question(self, piece: str, found: list[Question], read: Callable[[str], Match]) -> bool:
        """A part that only adds a condition to the question before it ("kurang magnesium bikin
        kedutan ya? | kalo kurang minum?"), read by itself as another topic with conditional_floor:
        a question of its own; read as a narrower topic of the question before ("knp betis
        kedutan | kalo lg banyak pikiran?"), that question narrowed. Updates `found`; False
        when the part is not such a question ("harga brp? | kalau 5 sesi?" belongs to the price)."""
        tokens = self.matcher.normalize.tokens(piece)
        if not tokens or tokens[0] not in self._conditional:
            return False
        match = _named(read(piece))
        before = found[-1]
        if not _is_question(match) or match.score < self.conditional_floor or match.intent == before.match.intent:
            return False
        if self.matcher.kb.intents[match.intent].part_of == before.match.intent:
            found[-1] = Question(f"{before.text} {piece}", match, before.listed)
        else:
            found.append(Question(piece, match))
        return True

    def _only_thanks(self, piece: str, read: Callable[[str], Match]) -> bool:
        """Whether a part only thanks, surely ("makasih kak infonya"; a greeting before a story
        stays with it: "selamat pagi, kalau betis kedutan terus, ...")."""
        match = read(piece)
        return match.decision is Decision.ANSWER and match.intent == _THANKS and match.score >= self.piece_floor

    def _sibling(self, intent_id: str, found: Sequence[Question]) -> bool:
        """Whether an intent narrows the same broader topic as a question found before it
        (two causes of twitching)."""
        intents = self.matcher.kb.intents
        broader = intents[intent_id].part_of if intent_id in intents else None
        return broader is not None and any(intents[q.match.intent].part_of == broader for q in found)

    def _agrees(self, whole: Match, questions: Sequence[Question]) -> bool:
        """Whether the parts include what the whole message is answered as (when it is): a
        split that loses the whole message's clear answer misread its parts."""
        if whole.decision is not Decision.ANSWER or not _is_question(whole):
            return True
        return whole.intent in self.matcher.kb.topics(q.match.intent for q in questions)

    def _unclear(self, rest: str, clear: Sequence[Question], read: Callable[[str], Match]) -> Question | None:
        """The last part of a message, asked with "?", when the model is unsure of it (it would
        answer it as a message of its own, but not as a part of one; or it cannot place it
        between two intents), and the intents it hesitates between were not answered already:
        asked about after the clear questions."""
        if not rest:
            return None
        match = read(rest)
        unsure = match.decision is Decision.CLARIFY or (_is_question(match) and match.score < self.piece_floor)
        answered = self.matcher.kb.topics(q.match.intent for q in clear)
        options = set(self.matcher.clarify_options(match))
        # The topics of the options, with the broader topic each narrows ("ngaruh ke kedutan?"
        # after a cause is answered hesitates between causes the answer already placed).
        topics = self.matcher.kb.topics(options)
        if unsure and len(options) == 2 and not topics & (SOCIAL_INTENTS | answered):
            return Question(rest, replace(match, decision=Decision.CLARIFY))
        return None

    def _narrowest(self, questions: list[Question]) -> list[Question]:
        """A broader topic asked beside a narrower one of it ("causes" beside "cause_caffeine")
        is answered by the narrower one alone."""
        intents = self.matcher.kb.intents
        broader = {intents[q.match.intent].part_of for q in questions}
        return [q for q in questions if q.match.intent not in broader]


def _named(match: Match) -> Match:
    """A topic the bot recognises and answers with its own text (a calf injury: see a doctor
    or a physiotherapist) is a question like any other here."""
    named = match.reason.removeprefix(NAMED_PREFIX)
    if match.reason.startswith(NAMED_PREFIX) and named:
        return replace(match, decision=Decision.ANSWER, intent=named)
    return match


def _is_question(match: Match) -> bool:
    """A piece that asks something the model is sure of (not a greeting, thanks or out of scope)."""
    return match.decision is Decision.ANSWER and match.intent not in SOCIAL_INTENTS  # fallback is one of them


def _distinct(questions: Sequence[Question]) -> list[Question]:
    """The same question asked twice is answered once (where it was first asked)."""
    seen: set[str] = set()
    out = []
    for question in questions:
        if question.match.intent not in seen:
            seen.add(question.match.intent)
            out.append(question)
    return out


def _is_list_cut(cut: str) -> bool:
    """A line break, "+" or "&" between the parts: a list of things asked ("harga + alamat",
    "- harga\n- jam buka")."""
    return "\n" in cut or "+" in cut or "&" in cut
