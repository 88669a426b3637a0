"""Channels: one package per messaging platform, translating its payloads at the edge.

A channel package has `init_app(app, inbox, config)`: it registers its routes, turns what
arrives into a bot.core.messages.InboundMessage for the inbox, and the outcome into what its
platform expects. The app factory registers every channel named in CHANNELS; nothing else in
the bot names a channel (docs/ARCHITECTURE.md: how to add one).
"""

from __future__ import annotations

import importlib

# The channels the app serves. Adding one: a package beside these, and its name here.
CHANNELS = ("bot.channels.twilio", "bot.channels.json")


def init_app(app, inbox, config) -> None:
    """Register every channel's routes on the app."""
    for name in CHANNELS:
        importlib.import_module(name).init_app(app, inbox, config)
