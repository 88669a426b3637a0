"""Property-based fuzzing (hypothesis): whatever a patient or a stranger sends, the normalizer,
the matcher, the date parser, the dialogue engine and the webhook never raise, never answer
500, and keep their promises.

Deterministic in the suite: `derandomize=True` draws the same examples on every run, so a red
build is reproducible. `HYPOTHESIS_PROFILE=explore` draws fresh random examples, 20 times as
many (about 6 minutes), to look for new bugs:

    HYPOTHESIS_PROFILE=explore .venv/bin/python -m pytest tests/test_fuzz.py
"""

from __future__ import annotations

import json
import math
import os
import re
import xml.etree.ElementTree as ET
from datetime import date, datetime, time, timedelta
from urllib.parse import quote_from_bytes, urlencode

import pytest
from conftest import app_config, fresh_database, shipped_kb, sign
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from bot.core import dates
from bot.core.messages import ConversationState, Decision, Handoff, Incoming, Reply, ReportData, StaffView, StartBooking
from bot.core.normalize import Normalizer
from bot.web import create_app

_EXPLORE = os.environ.get("HYPOTHESIS_PROFILE") == "explore"
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("suite", derandomize=True, database=None, deadline=None, suppress_health_check=_SLOW_OK)
settings.register_profile("explore", deadline=None, suppress_health_check=_SLOW_OK)
settings.load_profile("explore" if _EXPLORE else "suite")


def examples(count: int) -> int:
    return count * 20 if _EXPLORE else count


# -- what patients type -------------------------------------------------------------------------

KB = shipped_kb()
_LEXICON = KB.lexicon
WORDS = sorted(
    {w for intent in KB.intents.values() for e in intent.examples for w in e.text.lower().split()}
    | set(_LEXICON.slang)
    | {p for phrase in _LEXICON.phrases for p in phrase.split()}
    | set(_LEXICON.particles)
    | set(_LEXICON.numbers)
    | set(_LEXICON.affirmations)
    | set(_LEXICON.cancel_words)
    | set(_LEXICON.change_words)
    | set(dates.WEEKDAYS)
    | set(dates.MONTHS)
    | {
        "besok",
        "lusa",
        "kemarin",
        "hari",
        "ini",
        "depan",
        "jam",
        "pukul",
        "setengah",
        "tgl",
        "pagi",
        "siang",
        "sore",
        "malam",
    }
    | {"menu", "admin", "booking", "mau", "ya", "batal", "ubah"}
)
EMOJI = ["😀", "🙏", "👍🏽", "😭", "❤️", "🤒", "💊", "👨‍⚕️", "🇮🇩"]
# Invisible, direction and control characters, as pasted text and broken keyboards send them.
INVISIBLE = ["\u200b", "\u200d", "\u202e", "\ufeff", "\ufe0f", "\x00", "\x01", "\x08", "\x0b", "\x1b", "\x7f", "\ufffe"]
PUNCTUATION = list("?!.,;:/-'\"()*_~\n\t") + ["...", "??", "!!!", "\r\n", "’"]
# Whole messages that move a conversation along: booking steps, choices, danger signs.
SCRIPTED = [
    "halo kak", "menu", "1", "2", "3", "8", "10", "42", "yang kedua", "iya", "ya", "ya kirim", "tidak",
    "mau booking akupuntur besok jam 3", "booking dong", "Budi Santoso", "betis kanan kedutan terus seminggu",
    "besok jam 10", "besok", "jam 3 sore", "minggu depan", "jumat depan jam 4 sore", "hari minggu jam 10",
    "tgl 31", "tgl 0", "5/12", "31/2", "29/2/2027", "12 desember 2099", "kemarin jam 3", "jam 25", "setengah 0",
    "ubah", "ganti jam", "batal", "ga jadi", "berapa harga akupunktur?", "knp betis kedutan trs",
    "tolong dada nyeri sesak napas", "kaki kanan lumpuh", "admin", "jual kuota internet?", "makasih",
]  # fmt: skip


@st.composite
def phrase_with_particles(draw) -> str:
    """A lexicon phrase with particles among its words ("good ya morning")."""
    out: list[str] = []
    for word in draw(st.sampled_from(sorted(_LEXICON.phrases))).split():
        out += draw(st.lists(st.sampled_from(sorted(_LEXICON.particles)), max_size=2))
        out.append(word)
    return " ".join(out)


token = st.one_of(
    st.sampled_from(WORDS),
    phrase_with_particles(),
    st.sampled_from(WORDS).map(str.upper),
    st.sampled_from(WORDS).map(lambda w: w + w[-1:] * 4),  # stretched: "sakiiiit"
    st.sampled_from(WORDS).map(lambda w: w + "2"),  # written reduplication: "kedut2"
    st.integers(0, 10**6).map(str),
    st.sampled_from(EMOJI),
    st.sampled_from(INVISIBLE),
    st.sampled_from(PUNCTUATION),
    st.text(max_size=6),  # any Unicode at all
)
separator = st.sampled_from([" ", "  ", "", "\n", ", ", ".", "\u00a0"])


@st.composite
def sentence(draw) -> str:
    words = draw(st.lists(token, max_size=20))
    return "".join(word + draw(separator) for word in words)


message = st.one_of(
    sentence(),
    st.sampled_from(SCRIPTED),
    st.text(max_size=200),
    # Huge messages: a story of thousands of characters, or one character repeated.
    st.builds(lambda text, times: text * times, sentence(), st.integers(20, 300)),
    st.builds(
        lambda char, times: char * times, st.sampled_from(["a", "🙏", "9", " ", "kedutan "]), st.integers(1000, 20000)
    ),
)

# XML 1.0 allows tab, newline, carriage return and characters from U+0020 on, but not
# surrogates or U+FFFE/U+FFFF: anything else makes a TwiML document that Twilio cannot read.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


# -- the normalizer -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def normalize() -> Normalizer:
    return KB.normalizer()


@settings(max_examples=examples(400))
@given(text=message)
def test_normalizer_is_idempotent_and_yields_plain_tokens(normalize, text):
    tokens = normalize.tokens(text)
    assert all(re.fullmatch(r"[a-z0-9]+", t) for t in tokens), tokens
    once = normalize(text)
    assert normalize(once) == once
    sentences, clauses = normalize.split(text)
    assert all(sentences) and all(clauses)


# -- the matcher --------------------------------------------------------------------------------


@settings(max_examples=examples(300))
@given(text=message, context=st.lists(st.sampled_from([*KB.intents, "no_such_intent"]), max_size=3))
def test_matcher_always_decides_on_an_intent_of_the_knowledge_base(matcher, text, context):
    match = matcher.match(text, context=context)
    assert isinstance(match.decision, Decision)
    assert match.intent in KB.intents
    assert math.isfinite(match.score) and 0.0 <= match.score <= 1.0
    assert all(c.intent in KB.intents and math.isfinite(c.score) for c in match.candidates)
    assert [c.score for c in match.candidates] == sorted((c.score for c in match.candidates), reverse=True)
    if match.decision is Decision.CLARIFY:
        assert matcher.clarify_options(match)
    # The word cache (filled by the first call) never changes a decision.
    matcher.forget()
    assert matcher.match(text, context=context) == match


# -- dates ----------------------------------------------------------------------------------------

NOWS = [
    datetime(2026, 11, 25, 10, 0, tzinfo=dates.JAKARTA),  # a Wednesday morning (as in test_dates)
    datetime(2026, 12, 31, 23, 50, tzinfo=dates.JAKARTA),  # the year turns within minutes
    datetime(2028, 2, 28, 12, 0, tzinfo=dates.JAKARTA),  # a leap year
]
date_text = st.one_of(
    message,
    st.lists(
        st.one_of(
            st.sampled_from(SCRIPTED),
            st.sampled_from(
                sorted(
                    set(dates.WEEKDAYS) | set(dates.MONTHS) | {"besok", "lusa", "jam", "pukul", "tgl", "depan", "sore"}
                )
            ),
            st.integers(-5, 10000).map(str),
            st.builds("{}/{}/{}".format, st.integers(0, 99), st.integers(0, 99), st.integers(0, 99999)),
            st.builds("{}.{}".format, st.integers(0, 99), st.integers(0, 99)),
        ),
        max_size=6,
    ).map(" ".join),
)


@settings(max_examples=examples(400))
@given(text=date_text, now=st.sampled_from(NOWS))
def test_parse_when_reads_only_real_days_within_range(text, now):
    when = dates.parse_when(text, now)
    assert set(when.problems) <= {
        dates.NO_DATE,
        dates.NO_TIME,
        dates.PAST,
        dates.INVALID_DATE,
        dates.INVALID_TIME,
        dates.WHICH_DAY,
        dates.EITHER_DAY,
    }
    assert (when.at is None) == (dates.NO_TIME in when.problems)
    if dates.INVALID_TIME in when.problems:
        assert when.at is None  # an hour that does not exist is never read as another one
    if when.day is not None:
        assert when.day <= now.date() + timedelta(days=dates.MAX_DAYS_AHEAD)
        assert type(when.day) is date  # a real calendar day, never a moment or a string
        if when.day < now.date():
            assert dates.PAST in when.problems
    if when.at is not None:
        assert isinstance(when.at, time)
    if when.complete:
        assert when.moment() >= now


# -- the dialogue engine ------------------------------------------------------------------------

turn_input = st.tuples(
    message,
    st.sampled_from([0, 0, 1, 5, 30, 150, 60 * 14]),  # minutes since the last message
    st.one_of(st.none(), st.sampled_from(["Budi", "siti aminah", "🙏", "", "A" * 300]), st.text(max_size=30)),
    st.sampled_from([(), (), ("image/jpeg",), ("audio/ogg", "image/png")]),
    st.booleans(),
)


@settings(max_examples=examples(150))
@given(conversation=st.lists(turn_input, min_size=1, max_size=12), start=st.sampled_from(NOWS))
def test_dialogue_never_fails_and_its_state_survives_storage(engine, conversation, start):
    state = ConversationState()
    staff = StaffView()  # a handoff gives staff the chat, as an open case does in storage
    now = start
    for text, minutes, profile_name, media, location in conversation:
        now += timedelta(minutes=minutes)
        incoming = Incoming(text, profile_name=profile_name, media_types=media, has_location=location and not text)
        turn = engine.step(state, incoming, now, staff)
        assert all(isinstance(r, Reply) and isinstance(r.text, str) and r.text.strip() for r in turn.replies)
        assert turn.replies, "a patient is never left without a reply"
        if any(isinstance(a, Handoff) for a in turn.actions):
            staff = StaffView(has_chat=True)
        assert not any(_NOT_XML.search(r.text) for r in turn.replies), "a reply TwiML cannot carry"
        assert turn.match is None or turn.match.intent in KB.intents
        assert all(isinstance(a, (Handoff, StartBooking, ReportData)) for a in turn.actions)  # "data saya": ReportData
        assert set(turn.state.options) <= set(KB.intents)
        stored = json.loads(json.dumps(turn.state.to_dict()))
        restored = ConversationState.from_dict(stored)
        assert restored == turn.state
        state = restored


# -- the webhook --------------------------------------------------------------------------------

WEBHOOK = "/webhook/whatsapp"
TWILIO_FIELDS = [
    "MessageSid", "SmsMessageSid", "AccountSid", "From", "To", "Body", "NumMedia", "ProfileName", "WaId",
    "MediaUrl0", "MediaContentType0", "MediaUrl9", "Latitude", "Longitude", "Address", "Label",
    "ButtonText", "ButtonPayload",
]  # fmt: skip
field_value = st.one_of(
    message,
    st.sampled_from(["", " ", "0", "-1", "11", "1e308", "nan", "inf", "-91.5", "ÿ", "whatsapp:+6281234567890"]),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=50),
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzz_client(request, tmp_path_factory):
    """One app for all examples, so conversations move on from one example to the next.
    Flooding is not what is fuzzed here: the per-patient limit is out of the way."""
    url = fresh_database(request, request.param, tmp_path_factory.mktemp("fuzz"))
    app = create_app(app_config(url, rate_limit_per_minute=1_000_000))
    yield app.test_client()
    app.extensions["klinik_database"].dispose()


def assert_answered_safely(response, form) -> None:
    """200 with readable TwiML when the message has the fields every message has, else 400."""
    event(f"HTTP {response.status_code}")
    assert response.status_code < 500 and b"Traceback" not in response.data
    has_id = bool(
        (form.get("MessageSid") or form.get("SmsMessageSid") or "").strip() and (form.get("From") or "").strip()
    )
    if not has_id:
        assert response.status_code == 400
        return
    assert response.status_code == 200, response.data[:500]
    root = ET.fromstring(response.data)
    assert root.tag == "Response"
    assert all((element.text or "").strip() for element in root.iter("Message"))


@settings(max_examples=examples(100))
@given(
    fields=st.dictionaries(st.sampled_from(TWILIO_FIELDS), field_value, max_size=12),
    extra=st.dictionaries(st.text(min_size=1, max_size=20), field_value, max_size=4),
    sender=st.sampled_from(["whatsapp:+6281200000001", "whatsapp:+6281200000002", "whatsapp:+6281200000003"]),
    sid=st.integers(0, 400).map("SMfuzz{}".format),
    keep_id=st.integers(0, 3).map(bool),  # mostly a well-formed message, sometimes not
)
def test_webhook_answers_any_signed_form_without_a_server_error(fuzz_client, fields, extra, sender, sid, keep_id):
    form = {**extra, **fields}
    if keep_id:
        form = {**form, "MessageSid": sid, "From": sender}
    response = fuzz_client.post(WEBHOOK, data=form, headers={"X-Twilio-Signature": sign(WEBHOOK, form)})
    assert_answered_safely(response, form)


raw_body = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(
        lambda b: b"MessageSid=SMraw&From=whatsapp%3A%2B6281200000009&Body=" + quote_from_bytes(b).encode()
    ),
    st.text(max_size=100).map(lambda t: urlencode({"MessageSid": "SMlatin", "From": "x", "Body": t}).encode("utf-8")),
    st.sampled_from(["latin-1", "utf-16", "cp1252"]).flatmap(
        lambda codec: st.text(alphabet=st.characters(codec=codec), max_size=80).map(
            lambda t: f"MessageSid=SMenc&From=whatsapp:+6281200000008&Body={t}".encode(codec)
        )
    ),
)
content_type = st.sampled_from([
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=latin-1",
    "application/x-www-form-urlencoded; charset=utf-16",
    "multipart/form-data",  # without a boundary
    "multipart/form-data; boundary=xyz",
    "application/json",
    "text/plain; charset=utf-8",
])  # fmt: skip


@settings(max_examples=examples(100))
@given(body=raw_body, kind=content_type)
def test_webhook_survives_odd_bodies_and_encodings(fuzz_client, body, kind):
    """Signed over the fields as the server will read them, so that the request gets past the
    signature check and its odd content reaches the processing."""
    environ = EnvironBuilder(path=WEBHOOK, method="POST", data=body, content_type=kind).get_environ()
    seen = Request(environ).form
    signature = sign(WEBHOOK, seen)
    response = fuzz_client.post(WEBHOOK, data=body, content_type=kind, headers={"X-Twilio-Signature": signature})
    assert_answered_safely(response, seen)


def test_webhook_refuses_a_body_over_the_size_limit(fuzz_client):
    form = {"MessageSid": "SMhuge", "From": "whatsapp:+6281200000007", "Body": "betis " * 200_000}
    response = fuzz_client.post(WEBHOOK, data=form, headers={"X-Twilio-Signature": sign(WEBHOOK, form)})
    assert response.status_code == 413
    assert b"Traceback" not in response.data
