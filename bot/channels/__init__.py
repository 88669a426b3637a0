"""Channels: one package per messaging platform, translating its payloads at the edge.

Every package in this folder is a channel; the app finds them here, so nothing else in the bot
names one (docs/ARCHITECTURE.md: how to add one). A channel package has:

- `init_app(app, inbox, config)`: its routes; what arrives becomes a
  bot.core.messages.InboundMessage for the inbox, the outcome what its platform expects;
- `ADDRESS_SCHEME`: the prefix of its patients' addresses ("<scheme>:<their id there>");
- `sender(config)`: what sends the outbox's messages to those addresses (None: not configured),
  and `SENDER_NEEDS`, the settings sending needs;
- optionally `REPLY_WINDOW` (how long after a patient's last message a free-form message may
  still go) and `MAX_MESSAGE_LENGTH`, which the services read as `delivery_rules()`;
- the home channel alone (`HOME = True`): `patient_side(config)`, how the simulator, the
  terminal chat and live replays write as a patient would.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from types import ModuleType

from bot.services.handoff import DeliveryRules
from bot.services.outbox import SendError, Sent


@functools.cache
def packages() -> tuple[ModuleType, ...]:
    """Every channel package, by name."""
    names = sorted(info.name for info in pkgutil.iter_modules(__path__) if info.ispkg)
    return tuple(importlib.import_module(f"{__name__}.{name}") for name in names)


def init_app(app, inbox, config) -> None:
    """Register every channel's routes on the app."""
    for package in packages():
        package.init_app(app, inbox, config)


@functools.cache
def delivery_rules() -> DeliveryRules:
    """The reply windows and message limits the channels declare, by address scheme."""
    declared = packages()
    return DeliveryRules(
        windows={p.ADDRESS_SCHEME: p.REPLY_WINDOW for p in declared if hasattr(p, "REPLY_WINDOW")},
        lengths={p.ADDRESS_SCHEME: p.MAX_MESSAGE_LENGTH for p in declared if hasattr(p, "MAX_MESSAGE_LENGTH")},
    )


def patient_side(config):
    """The home channel's patient side: its webhook path, clients that sign as its platform does,
    addresses of simulated patients."""
    return _home().patient_side(config)


def _home() -> ModuleType:
    (home,) = [package for package in packages() if getattr(package, "HOME", False)]
    return home


class Outbound:
    """Sends each outbox message through the channel its address names ('whatsapp:+62…')."""

    def __init__(self, senders: dict[str, object]):
        self.senders = senders

    def send(self, to: str, body: str = "", template_id=None, content_variables=None, outbox_id=None) -> Sent:
        scheme = to.partition(":")[0]
        sender = self.senders.get(scheme)
        if sender is None:
            raise SendError(f"no channel sends to {scheme}: addresses", retryable=False)
        return sender.send(to, body, template_id, content_variables, outbox_id=outbox_id)


def outbound(config, stand_in=None) -> Outbound:
    """The senders of every channel that can send; `stand_in` (dev mode's, which logs and sends
    nothing) for each that cannot. Without the home channel's sender (staff alerts go over it),
    an error naming what it needs."""
    senders = {}
    for package in packages():
        sender = package.sender(config) or stand_in
        if sender is not None:
            senders[package.ADDRESS_SCHEME] = sender
    home = _home()
    if home.ADDRESS_SCHEME not in senders:
        # Staff alerts, emergencies' among them, go over the home channel: never start without it.
        raise ValueError(f"sending needs {home.SENDER_NEEDS} (or BOT_DEV_MODE=1)")
    return Outbound(senders)
