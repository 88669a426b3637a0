"""A load of simulated patients over real HTTP, and what the database must show afterwards.

Shared by tests/test_load.py (short form, in the suite) and bench/soak.py (long form).

Each patient sends a conversation of signed messages, one after the other as people do, while
a thread pool runs many patients at once. Mixed in, per patient:
- a retry: the same MessageSid delivered again after its reply (Twilio retries on a timeout);
- a concurrent duplicate: the same MessageSid delivered twice at the same moment;
- out of order: two messages delivered in the reverse order, or both at the same moment.

Afterwards `verify` reads the database: every MessageSid stored once, every message answered by
exactly one group of replies (linked by in_reply_to_id, positions 0..n-1, one transaction), the
replies each delivery received equal to the stored ones (so duplicates got identical replies),
no 5xx, no message stored with the apology for a processing error, every conversation's state
readable. The plan is drawn from a seeded random generator: the same seed, the same load.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import select

from bot.channels.twilio.client import WebhookClient
from bot.core.messages import ConversationState
from bot.services.inbox import PROCESSING_FAILED
from bot.store import storage
from bot.store.storage import INBOUND, OUTBOUND, RATE_NOTICE, RATE_SILENCED, Conversation, Message

# Conversations patients have with the bot: questions, follow-ups, the menu and its numbers.
ANSWERED = [
    ["halo kak", "knp betis kedutan trs", "gmn cara mencegahnya", "kalau kopi?", "makasih"],
    ["menu", "3", "menu", "8", "jam buka hari sabtu?", "ok makasih"],
    ["betis kiri kedut2 udah seminggu", "bahaya ga?", "kurang magnesium ya?", "harga akupunktur brp", "sip"],
    ["assalamualaikum", "kenapa betis saya kedutan terus?", "5", "apa itu akupunktur", "sakit ga"],
    ["😀", "", "betis pegel bgt", "alamat klinik di mana", "parkir ada?"],
    ["jual kuota internet?", "betis saya kedutan", "kalau stres?", "2", "makasih banyak"],
]
# Conversations that end with the chat handed to staff (a booking, a request for a person, a
# danger sign): from then on messages are stored for staff and acknowledged.
HANDED_OVER = [
    ["mau booking akupuntur besok jam 3", "ya", "betis kanan kedutan terus", "ya", "halo?"],
    ["bisa chat sama admin aja?", "halo?"],
    ["tolong dada nyeri sesak napas", "betis kedutan"],
]
HANDOVER_SHARE = 0.2


@dataclass(frozen=True)
class Delivery:
    patient: str
    sid: str
    text: str


@dataclass
class Plan:
    """Per patient, batches of deliveries: batches one after the other, the deliveries of one
    batch at the same moment."""

    patients: dict[str, list[list[Delivery]]]
    retries: int = 0
    concurrent_duplicates: int = 0
    reversed_pairs: int = 0
    concurrent_pairs: int = 0

    @property
    def deliveries(self) -> int:
        return sum(len(batch) for batches in self.patients.values() for batch in batches)

    def messages(self) -> dict[str, Delivery]:
        """Each distinct message by MessageSid."""
        return {d.sid: d for batches in self.patients.values() for batch in batches for d in batch}


def make_plan(patients: int, messages: int, seed: int = 8, mix: float = 0.08) -> Plan:
    """About `messages` deliveries from `patients` patients; `mix` is the chance of each kind
    of trouble (retry, concurrent duplicate, reversed pair, concurrent pair) per message."""
    rng = random.Random(seed)
    per_patient = max(1, round(messages / patients / (1 + 2 * mix)))
    plan = Plan({})
    for number in range(patients):
        patient = f"whatsapp:+628{1200000000 + number:010d}"
        texts: list[str] = []
        while len(texts) < per_patient:
            texts += rng.choice(ANSWERED)
        if rng.random() < HANDOVER_SHARE:
            ending = rng.choice(HANDED_OVER)[:per_patient]
            texts = texts[: per_patient - len(ending)] + ending
        sent = [Delivery(patient, f"SM{rng.getrandbits(128):032x}", text) for text in texts[:per_patient]]
        batches: list[list[Delivery]] = []
        index = 0
        while index < len(sent):
            current = sent[index]
            roll = rng.random()
            if roll < mix:
                batches += [[current], [current]]
                plan.retries += 1
            elif roll < 2 * mix:
                batches.append([current, current])
                plan.concurrent_duplicates += 1
            elif roll < 3 * mix and index + 1 < len(sent):
                batches += [[sent[index + 1]], [current]]
                plan.reversed_pairs += 1
                index += 1
            elif roll < 4 * mix and index + 1 < len(sent):
                batches.append([current, sent[index + 1]])
                plan.concurrent_pairs += 1
                index += 1
            else:
                batches.append([current])
            index += 1
        plan.patients[patient] = batches
    return plan


@dataclass(frozen=True)
class Result:
    delivery: Delivery
    status: int
    replies: tuple[str, ...]
    seconds: float


def run(base_url: str, plan: Plan, auth_token: str, threads: int = 16) -> tuple[list[Result], float]:
    """Send the plan over HTTP: `threads` patients at a time. Returns results and wall time."""
    client = WebhookClient(f"{base_url}/webhook/whatsapp", auth_token=auth_token, timeout=60)
    results: list[Result] = []
    lock = threading.Lock()

    def deliver(delivery: Delivery, start: threading.Barrier | None = None) -> None:
        if start is not None:
            start.wait()
        began = time.perf_counter()
        reply = client.send(delivery.patient, delivery.text, profile_name="Pasien Uji", sid=delivery.sid)
        with lock:
            results.append(Result(delivery, reply.status, reply.messages, time.perf_counter() - began))

    def patient(batches: list[list[Delivery]]) -> None:
        for batch in batches:
            if len(batch) == 1:
                deliver(batch[0])
                continue
            start = threading.Barrier(len(batch))
            together = [threading.Thread(target=deliver, args=(d, start)) for d in batch]
            for thread in together:
                thread.start()
            for thread in together:
                thread.join()

    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(patient, batches) for batches in plan.patients.values()]:
            future.result()
    return results, time.perf_counter() - began


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    inbound: int = 0
    outbound: int = 0
    silent: int = 0  # messages answered with silence (flooding only)
    conversations: int = 0

    def problem(self, text: str) -> None:
        if len(self.problems) < 50:
            self.problems.append(text)


def verify(database_url: str, plan: Plan, results: list[Result], allow_rate_limit: bool = False) -> Report:
    """Everything the database and the responses must show after the load; problems listed."""
    report = Report()
    sent = plan.messages()
    for result in results:
        if result.status != 200:
            report.problem(f"{result.delivery.sid}: HTTP {result.status}")
    if len(results) != plan.deliveries:
        report.problem(f"{len(results)} responses for {plan.deliveries} deliveries")

    engine = storage.make_engine(database_url)
    try:
        with storage.session_factory(engine)() as session:
            messages = list(session.execute(select(Message)).scalars())
            conversations = list(session.execute(select(Conversation)).scalars())
    finally:
        engine.dispose()

    inbound = [m for m in messages if m.direction == INBOUND]
    report.inbound, report.outbound, report.conversations = (
        len(inbound),
        len(messages) - len(inbound),
        len(conversations),
    )
    stored_sids = Counter(m.channel_message_id for m in inbound)
    for sid, count in stored_sids.items():
        if count != 1:
            report.problem(f"{sid}: stored {count} times")
    if set(stored_sids) != set(sent):
        report.problem(f"stored MessageSids differ from sent: {len(set(stored_sids) ^ set(sent))} differ")

    by_sid = _check_replies(report, messages, inbound, allow_rate_limit)
    for result in results:
        stored = by_sid.get(result.delivery.sid)
        if result.status == 200 and stored is not None and result.replies != stored:
            report.problem(
                f"{result.delivery.sid}: delivery got {len(result.replies)} replies, the database has {len(stored)}"
            )
    _check_conversations(report, conversations, inbound, Counter(d.patient for d in sent.values()))
    return report


def _check_replies(
    report: Report, messages: list[Message], inbound: list[Message], allow_rate_limit: bool
) -> dict[str, tuple[str, ...]]:
    """Each inbound message has one group of replies (or a reason for silence); the replies by sid."""
    replies: dict[int, list[Message]] = defaultdict(list)
    for message in messages:
        if message.direction == OUTBOUND:
            replies[message.in_reply_to_id].append(message)
    by_sid: dict[str, tuple[str, ...]] = {}
    for message in inbound:
        group = sorted(replies.pop(message.id, []), key=lambda m: m.position)
        if [m.position for m in group] != list(range(len(group))) or len({m.created_at for m in group}) > 1:
            report.problem(
                f"{message.channel_message_id}: replies are not one group: positions {[m.position for m in group]}"
            )
        if not group:
            report.silent += 1
            if message.reason != RATE_SILENCED:
                report.problem(f"{message.channel_message_id}: no reply (reason {message.reason})")
        if message.reason == PROCESSING_FAILED:
            report.problem(f"{message.channel_message_id}: processing failed (the apology was sent)")
        if not allow_rate_limit and (message.rate_limited or message.reason in (RATE_NOTICE, RATE_SILENCED)):
            report.problem(f"{message.channel_message_id}: rate limited")
        by_sid[message.channel_message_id] = tuple(m.body for m in group)
    if replies:
        report.problem(f"{len(replies)} reply groups answer no stored inbound message")
    return by_sid


def _check_conversations(
    report: Report, conversations: list[Conversation], inbound: list[Message], expected: Counter
) -> None:
    """Every stored state loads and round-trips; each patient has the messages sent."""
    counts = Counter()
    for conversation in conversations:
        try:
            state = ConversationState.from_dict(conversation.state)
            if ConversationState.from_dict(state.to_dict()) != state:
                report.problem(f"conversation {conversation.id}: state does not round-trip")
        except Exception as error:  # noqa: BLE001 - reported, with every other problem
            report.problem(f"conversation {conversation.id}: state does not load: {error!r}")
        counts[conversation.address] = sum(1 for m in inbound if m.conversation_id == conversation.id)
    if counts != expected:
        report.problem(
            f"messages per conversation differ from sent for"
            f" {len(set(counts.items()) ^ set(expected.items()))} patients"
        )


def latency_summary(results: list[Result], seconds: float) -> str:
    times = sorted(r.seconds * 1000 for r in results)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return (
        f"{len(results)} deliveries in {seconds:.1f} s = {len(results) / seconds:.0f} requests/s; "
        f"latency p50 {statistics.median(times):.0f} ms, p99 {p99:.0f} ms, max {times[-1]:.0f} ms"
    )
