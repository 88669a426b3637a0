"""The second baseline of bench/webhook_throughput.py: the bot's own app (Flask, the signature
check, the form parsing, the dialogue engine, TwiML, the log line) with storage taken out:
conversation states live in a dict of this process. The gap between it and the bare app is
what the web layer and the engine cost; the gap between it and the bot is what storage costs.

    gunicorn bench.engine_app:app     (with the same settings as the bot)
"""

from __future__ import annotations

import itertools
import logging
import time

from bot.core.messages import ConversationState, Incoming, describe_action
from bot.logs import mask_phone
from bot.services.inbox import InboundMessage, Outcome, StoredReply
from bot.services.live import LiveEngine
from bot.web import create_app

log = logging.getLogger("klinik.inbox")


class MemoryInbox:
    """The Inbox's work without a database (not safe for real use: nothing is kept)."""

    def __init__(self, engines: LiveEngine):
        self.engines = engines
        self.states: dict[str, ConversationState] = {}
        self.ids = itertools.count(1)

    def receive(self, inbound: InboundMessage, max_reply_length: int | None = None, templates=None) -> Outcome:
        started = time.perf_counter()
        engine = self.engines.current()
        incoming = Incoming(inbound.text, profile_name=inbound.profile_name)
        turn = engine.step(self.states.get(inbound.sender, ConversationState()), incoming)
        self.states[inbound.sender] = ConversationState.from_dict(turn.state.to_dict())
        actions = tuple(describe_action(a) for a in turn.actions)
        fields = {
            "message": inbound.message_id,
            "from": mask_phone(inbound.sender),
            "intent": turn.match.intent if turn.match else None,
        }
        log.info("inbound", extra={"fields": {**fields, "ms": round((time.perf_counter() - started) * 1000, 1)}})
        return Outcome(
            message_id=next(self.ids),
            replies=tuple(StoredReply(next(self.ids), reply.text) for reply in turn.replies),
            match=turn.match,
            actions=actions,
            paused=None,
            booking_step=turn.state.booking.step if turn.state.booking else None,
        )


app = create_app()
app.extensions["klinik_inbox"] = MemoryInbox(app.extensions["klinik_engine"])
